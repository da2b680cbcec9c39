"""Readers: Zarr arrays and groups, xarray DataArrays and Datasets, as a :class:`RowView`.

Fill values become NaN; every block of the sample axes becomes one row chunk.
"""

from __future__ import annotations

import os

import dask.array as da
import numpy as np

from ..engine.samples import flatten_samples
from .chunk_reads import ChunkGuard, read_zarr_array
from .feature_dim import infer_feature_axis, is_unnamed
from .lazy import _xarray, _zarr
from .row_view import RowView


def fill_values(fill_value, declared, attrs: dict) -> list:
    """The values to read as missing.

    ``'auto'``: the CF attributes ``_FillValue`` / ``missing_value`` when present,
    and the array's own (zarr) fill value unless it is 0, zarr's default, which
    cannot be told apart from real zeros.  A number masks that value; None none.
    """
    if fill_value is None:
        return []
    if fill_value != "auto":
        return [fill_value]
    found = []
    for key in ("_FillValue", "missing_value"):
        value = attrs.get(key)
        if value is not None:
            found.extend(np.ravel(value).tolist())
    if declared is not None and np.ndim(declared) == 0:
        value = np.asarray(declared).item()
        if isinstance(value, (int, float)) and value != 0:
            found.append(value)
    return [v for v in found if not (isinstance(v, float) and np.isnan(v))]


def mask_block(block: np.ndarray, values: tuple, dtype) -> np.ndarray:
    out = block.astype(dtype, copy=True)
    out[np.isin(block, values)] = np.nan
    return out


def as_float_masked(array: da.Array, values: list) -> da.Array:
    """Float data with ``values`` read as NaN (integers become float64)."""
    dtype = array.dtype if array.dtype.kind == "f" else np.dtype(np.float64)
    if not values:
        return array if array.dtype == dtype else array.astype(dtype)
    return array.map_blocks(mask_block, tuple(values), dtype, dtype=dtype)


def check_numeric(dtype, what: str) -> None:
    if np.dtype(dtype).kind not in "biuf":
        raise ValueError(
            f"{what} has dtype {np.dtype(dtype)}, which is not a real number type; "
            "pick numeric variables or convert them (e.g. .astype('float32'))."
        )


def find_feature_axis(dims: tuple, feature_dim, feature_axis, what: str, model_dim=None):
    """The feature axis: named, by position, or by the rule of :mod:`.feature_dim`."""
    if feature_dim is not None and feature_axis is not None:
        raise ValueError("Give feature_dim or feature_axis, not both.")
    if feature_dim is not None:
        if feature_dim not in dims:
            raise ValueError(
                f"Unknown feature_dim {feature_dim!r}: {what} has dimensions {list(dims)}; "
                "name one of them."
            )
        return dims.index(feature_dim)
    if feature_axis is not None:
        if not -len(dims) <= feature_axis < len(dims):
            raise ValueError(
                f"feature_axis {feature_axis} is out of range for {what} with "
                f"{len(dims)} dimensions."
            )
        return feature_axis % len(dims)
    return infer_feature_axis(dims, model_dim, what)


def row_view_of(array: da.Array, dims: tuple, axis, **kwargs) -> RowView:
    sample_axes = [a for a in range(array.ndim) if a != axis]
    named = axis is not None and not is_unnamed(dims)
    kwargs.setdefault("feature_dim", dims[axis] if named else None)
    return RowView(
        data=flatten_samples(array, axis),
        sample_dims=tuple(dims[a] for a in sample_axes),
        sample_chunks=tuple(array.chunks[a] for a in sample_axes),
        **kwargs,
    )


def from_zarr_array(zarray, chunks, feature_dim, feature_axis, fill_value, model_dim=None):
    check_numeric(zarray.dtype, f"Zarr array {zarray.path or zarray.store}")
    attrs = dict(zarray.attrs)
    names = getattr(zarray.metadata, "dimension_names", None) or attrs.get("_ARRAY_DIMENSIONS")
    dims = tuple(names) if names else tuple(f"dim_{i}" for i in range(zarray.ndim))
    axis = find_feature_axis(dims, feature_dim, feature_axis, "the Zarr array", model_dim)
    masked = fill_values(fill_value, zarray.fill_value, attrs)
    array = read_zarr_array(zarray, chunks, check_missing=fill_value is not None, masked=masked)
    array = as_float_masked(array, masked)
    return row_view_of(array, dims, axis, attrs=attrs)


def dataarray_dask(arr) -> da.Array:
    data = arr.data
    if isinstance(data, da.Array):
        return data
    return da.from_array(np.asarray(data), chunks="auto")


def from_dataarray(arr, feature_dim, feature_axis, fill_value, model_dim=None) -> RowView:
    check_numeric(arr.dtype, f"Variable {arr.name!r}" if arr.name else "The DataArray")
    dims = tuple(arr.dims)
    what = f"DataArray {arr.name!r}" if arr.name is not None else "the DataArray"
    axis = find_feature_axis(dims, feature_dim, feature_axis, what, model_dim)
    array = as_float_masked(dataarray_dask(arr), fill_values(fill_value, None, arr.attrs))
    sample_dims = {d for i, d in enumerate(dims) if i != axis}
    coords = {k: c.variable for k, c in arr.coords.items() if set(c.dims) <= sample_dims}
    names = None
    if axis is not None and dims[axis] in arr.coords:
        names = arr.coords[dims[axis]].values.tolist()
    return row_view_of(
        array, dims, axis, coords=coords, is_xarray=True, feature_names=names, attrs=dict(arr.attrs)
    )


def from_dataset(ds, variables, feature_dim, feature_axis, fill_value, model_dim=None):
    names = list(ds.data_vars)
    if variables is None:
        if len(names) != 1:
            raise ValueError(
                f"The Dataset has {len(names)} data variables {names}; choose them with "
                "variables='name' or variables=['a', 'b'] (stacked as features)."
            )
        variables = names
    single = isinstance(variables, str)
    variables = [variables] if single else list(variables)
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise ValueError(
            f"Variable(s) {missing} not found; the Dataset's data variables are {names}."
        )
    if len(variables) == 1:
        return from_dataarray(ds[variables[0]], feature_dim, feature_axis, fill_value, model_dim)
    if feature_axis is not None:
        raise ValueError("With several variables, name the feature dimension by feature_dim.")
    parts = []
    for name in variables:
        arr = ds[name]
        check_numeric(arr.dtype, f"Variable {name!r}")
        if feature_dim is not None and feature_dim not in arr.dims:
            arr = arr.expand_dims(feature_dim)
        parts.append(arr)
    if feature_dim is None:
        # every variable is one feature, on a new trailing "variable" dimension
        xr = _xarray()
        stacked = xr.concat(parts, dim="variable", coords="minimal", compat="override")
        stacked = stacked.assign_coords(variable=variables)
        return from_dataarray(stacked, "variable", None, fill_value)
    sample_dims = [d for d in parts[0].dims if d != feature_dim]
    for name, arr in zip(variables, parts, strict=True):
        if sorted(d for d in arr.dims if d != feature_dim) != sorted(sample_dims):
            raise ValueError(
                f"Variable {name!r} has dimensions {list(arr.dims)}; every stacked variable "
                f"needs the sample dimensions {sample_dims} (plus {feature_dim!r})."
            )
    order = [*sample_dims, feature_dim]
    arrays = [
        as_float_masked(
            dataarray_dask(arr.transpose(*order)), fill_values(fill_value, None, arr.attrs)
        )
        for arr in parts
    ]
    dtype = np.result_type(*arrays)
    array = da.concatenate([a.astype(dtype) for a in arrays], axis=-1)
    ref = parts[0]
    coords = {k: c.variable for k, c in ref.coords.items() if set(c.dims) <= set(sample_dims)}
    return row_view_of(array, tuple(order), len(order) - 1, coords=coords, is_xarray=True)


def looks_like_xarray(group) -> bool:
    for _, arr in group.arrays():
        if getattr(arr.metadata, "dimension_names", None) or "_ARRAY_DIMENSIONS" in arr.attrs:
            return True
    return False


def open_store(
    source, variables, storage_options, chunks, feature_dim, feature_axis, fill, model_dim=None
):
    zarr = _zarr()
    location = os.fspath(source) if isinstance(source, os.PathLike) else source
    try:
        node = zarr.open(location, mode="r", storage_options=storage_options)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"No Zarr store at {location!r}; check the path or URL (and storage_options)."
        ) from exc
    if isinstance(node, zarr.Array):
        if variables is not None:
            raise ValueError(f"{location!r} is a single array; it has no variable {variables!r}.")
        view = from_zarr_array(node, chunks, feature_dim, feature_axis, fill, model_dim)
    else:
        view = from_group(
            node, variables, chunks, feature_dim, feature_axis, fill, location, model_dim
        )
    view.source = {"location": location, "variables": variables}
    return view


def from_group(
    group, variables, chunks, feature_dim, feature_axis, fill, location=None, model_dim=None
):
    if looks_like_xarray(group):
        xr = _xarray()
        store = location if location is not None else group.store
        ds = xr.open_zarr(
            store,
            group=group.path or None,
            chunks={} if chunks is None else chunks,
            consolidated=False,
            from_array_kwargs={"getitem": _xarray_guard(store, fill)},
        )
        return from_dataset(ds, variables, feature_dim, feature_axis, fill, model_dim)
    names = sorted(name for name, _ in group.arrays())
    if variables is None and len(names) == 1:
        variables = names[0]
    if not isinstance(variables, str) or variables not in names:
        raise ValueError(
            f"Array {variables!r} not found in the Zarr group; it holds arrays {names}. "
            "Name one with variables='name'."
        )
    return from_zarr_array(group[variables], chunks, feature_dim, feature_axis, fill, model_dim)


def _xarray_guard(store, fill) -> ChunkGuard:
    """Chunk errors named (:mod:`.chunk_reads`); xarray has decoded the store's own
    fill values, ``fill`` (a number) is masked afterwards."""
    masked = () if fill in (None, "auto") else (fill,)
    return ChunkGuard(str(store), check_missing=fill is not None, masked=masked)
