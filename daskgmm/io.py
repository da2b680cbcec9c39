"""Zarr and xarray in and out, in constant memory.

The only module that touches zarr and xarray; both are imported lazily, inside the
functions that need them.  Nothing here imports an estimator: predictions are
written through the model's public ``predict`` / ``predict_proba`` /
``score_samples``.

In::

    view = open_rows("cube.zarr", "reflectance", feature_dim="band", fill_value=-9999)
    view.data          # lazy (n_samples, n_features) dask array, one row chunk per block
    GaussianMixture(8, nan_policy="omit").fit(view)

Every estimator also accepts the sources :func:`open_rows` accepts directly (with
the features on the last axis); open them here to name ``feature_dim``, pick
variables or a fill value.

Out: predictions on a :class:`RowView` (or an xarray/zarr source) come back on the
source's sample dimensions (DataArrays with its coordinates for xarray sources);
:func:`write_predictions` streams them to a Zarr store.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np

from ._engine import compute, flatten_samples, unflatten_samples

logger = logging.getLogger(__name__)

#: Attribute set to True on an output group once every array in it is written.
COMPLETE_ATTR = "daskgmm_complete"
#: Label written for rows left out under ``nan_policy='omit'``.
LABEL_FILL = -1


def _zarr():
    import zarr

    return zarr


def _xarray():
    import xarray

    return xarray


# --------------------------------------------------------------------------- #
# in
# --------------------------------------------------------------------------- #
def store_layout(source) -> dict[str, tuple]:
    """The arrays of a Zarr store, array or group: name -> (shape, chunks, dtype).

    ``source`` is a location (path or URL, opened read-only) or an open zarr
    array or group.  An array is named by its path ('' at a store's root), a
    group's arrays by their names, in sorted order.  Reads metadata only.

    Raises
    ------
    FileNotFoundError
        If no Zarr store is at the location.
    """
    zarr = _zarr()
    node = zarr.open(source, mode="r") if isinstance(source, (str, os.PathLike)) else source
    if isinstance(node, zarr.Array):
        return {node.path or "": (node.shape, node.chunks, node.dtype)}
    return {
        name: (arr.shape, arr.chunks, arr.dtype)
        for name, arr in sorted(node.arrays(), key=lambda item: item[0])
    }


@dataclass
class RowView:
    """N-D data seen as rows of feature values, with what it takes to go back.

    Attributes
    ----------
    data : dask.array.Array of shape (n_samples, n_features)
        One row chunk per block of the sample axes (aligned with the storage
        chunks), in block order.  Fill values are NaN.
    sample_dims : tuple of str
        Names of the sample dimensions (``dim_0``... for unnamed arrays).
    sample_chunks : tuple of tuples
        Chunks of the sample dimensions of the source.
    coords : dict
        xarray coordinates that lie on the sample dimensions (xarray sources).
    is_xarray : bool
        Whether predictions come back as DataArrays.
    feature_names : list or None
    attrs : dict
        The source's attributes.
    source : dict or None
        Where the rows were read from, for stores opened by path or URL:
        ``{"location": ..., "variables": ...}`` (recorded in saved models'
        training-data fingerprints).
    """

    data: da.Array
    sample_dims: tuple
    sample_chunks: tuple
    coords: dict = field(default_factory=dict)
    is_xarray: bool = False
    feature_names: list | None = None
    attrs: dict = field(default_factory=dict)
    source: dict | None = None

    @property
    def sample_shape(self) -> tuple:
        return tuple(sum(c) for c in self.sample_chunks)

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.data.shape[1])

    @property
    def shape(self) -> tuple:
        """``(n_samples, n_features)``, as an array's shape (for ``bic``/``aic``)."""
        return tuple(self.data.shape)

    def to_samples(self, values: da.Array, name: str | None = None, attrs: dict | None = None):
        """Per-row results back on the sample dimensions, lazily.

        Parameters
        ----------
        values : dask.array.Array of shape (n_samples,) or (n_samples, K)
            Row chunks as ``data``'s.
        name : str, optional
            Name of the DataArray (xarray sources).
        attrs : dict, optional

        Returns
        -------
        dask.array.Array of the sample shape (plus K), or an xarray.DataArray on
        the sample dimensions (plus ``component`` with coordinates 0..K-1).
        """
        out = unflatten_samples(values, self.sample_chunks)
        if not self.is_xarray:
            return out
        xr = _xarray()
        dims = tuple(self.sample_dims)
        coords = dict(self.coords)
        if values.ndim == 2:
            dims += ("component",)
            coords["component"] = np.arange(values.shape[1])
        return xr.DataArray(out, dims=dims, coords=coords, name=name, attrs=attrs or {})


def _fill_values(fill_value, declared, attrs: dict) -> list:
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


def _mask_block(block: np.ndarray, values: tuple, dtype) -> np.ndarray:
    out = block.astype(dtype, copy=True)
    out[np.isin(block, values)] = np.nan
    return out


def _as_float_masked(array: da.Array, values: list) -> da.Array:
    """Float data with ``values`` read as NaN (integers become float64)."""
    dtype = array.dtype if array.dtype.kind == "f" else np.dtype(np.float64)
    if not values:
        return array if array.dtype == dtype else array.astype(dtype)
    return array.map_blocks(_mask_block, tuple(values), dtype, dtype=dtype)


def _check_numeric(dtype, what: str) -> None:
    if np.dtype(dtype).kind not in "biuf":
        raise ValueError(
            f"{what} has dtype {np.dtype(dtype)}, which is not a real number type; "
            "pick numeric variables or convert them (e.g. .astype('float32'))."
        )


def _feature_axis(dims: tuple, feature_dim, feature_axis, what: str):
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
    return None if len(dims) == 1 else len(dims) - 1


def _view(array: da.Array, dims: tuple, axis, **kwargs) -> RowView:
    sample_axes = [a for a in range(array.ndim) if a != axis]
    return RowView(
        data=flatten_samples(array, axis),
        sample_dims=tuple(dims[a] for a in sample_axes),
        sample_chunks=tuple(array.chunks[a] for a in sample_axes),
        **kwargs,
    )


def _from_zarr_array(zarray, chunks, feature_dim, feature_axis, fill_value) -> RowView:
    _check_numeric(zarray.dtype, f"Zarr array {zarray.path or zarray.store}")
    attrs = dict(zarray.attrs)
    names = getattr(zarray.metadata, "dimension_names", None) or attrs.get("_ARRAY_DIMENSIONS")
    dims = tuple(names) if names else tuple(f"dim_{i}" for i in range(zarray.ndim))
    axis = _feature_axis(dims, feature_dim, feature_axis, "the Zarr array")
    array = da.from_zarr(zarray, chunks=chunks if chunks is not None else zarray.chunks)
    array = _as_float_masked(array, _fill_values(fill_value, zarray.fill_value, attrs))
    return _view(array, dims, axis, attrs=attrs)


def _dataarray_dask(arr) -> da.Array:
    data = arr.data
    if isinstance(data, da.Array):
        return data
    return da.from_array(np.asarray(data), chunks="auto")


def _from_dataarray(arr, feature_dim, feature_axis, fill_value) -> RowView:
    _check_numeric(arr.dtype, f"Variable {arr.name!r}" if arr.name else "The DataArray")
    dims = tuple(arr.dims)
    axis = _feature_axis(dims, feature_dim, feature_axis, f"DataArray {arr.name!r}")
    array = _as_float_masked(_dataarray_dask(arr), _fill_values(fill_value, None, arr.attrs))
    sample_dims = {d for i, d in enumerate(dims) if i != axis}
    coords = {k: c.variable for k, c in arr.coords.items() if set(c.dims) <= sample_dims}
    names = None
    if axis is not None and dims[axis] in arr.coords:
        names = arr.coords[dims[axis]].values.tolist()
    return _view(
        array, dims, axis, coords=coords, is_xarray=True, feature_names=names, attrs=dict(arr.attrs)
    )


def _from_dataset(ds, variables, feature_dim, feature_axis, fill_value) -> RowView:
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
        return _from_dataarray(ds[variables[0]], feature_dim, feature_axis, fill_value)
    if feature_axis is not None:
        raise ValueError("With several variables, name the feature dimension by feature_dim.")
    parts = []
    for name in variables:
        arr = ds[name]
        _check_numeric(arr.dtype, f"Variable {name!r}")
        if feature_dim is not None and feature_dim not in arr.dims:
            arr = arr.expand_dims(feature_dim)
        parts.append(arr)
    if feature_dim is None:
        # every variable is one feature, on a new trailing "variable" dimension
        xr = _xarray()
        stacked = xr.concat(parts, dim="variable", coords="minimal", compat="override")
        stacked = stacked.assign_coords(variable=variables)
        return _from_dataarray(stacked, "variable", None, fill_value)
    sample_dims = [d for d in parts[0].dims if d != feature_dim]
    for name, arr in zip(variables, parts, strict=True):
        if sorted(d for d in arr.dims if d != feature_dim) != sorted(sample_dims):
            raise ValueError(
                f"Variable {name!r} has dimensions {list(arr.dims)}; every stacked variable "
                f"needs the sample dimensions {sample_dims} (plus {feature_dim!r})."
            )
    order = [*sample_dims, feature_dim]
    arrays = [
        _as_float_masked(
            _dataarray_dask(arr.transpose(*order)), _fill_values(fill_value, None, arr.attrs)
        )
        for arr in parts
    ]
    dtype = np.result_type(*arrays)
    array = da.concatenate([a.astype(dtype) for a in arrays], axis=-1)
    ref = parts[0]
    coords = {k: c.variable for k, c in ref.coords.items() if set(c.dims) <= set(sample_dims)}
    return _view(array, tuple(order), len(order) - 1, coords=coords, is_xarray=True)


def _looks_like_xarray(group) -> bool:
    for _, arr in group.arrays():
        if getattr(arr.metadata, "dimension_names", None) or "_ARRAY_DIMENSIONS" in arr.attrs:
            return True
    return False


def _open_store(source, variables, storage_options, chunks, feature_dim, feature_axis, fill):
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
        view = _from_zarr_array(node, chunks, feature_dim, feature_axis, fill)
    else:
        view = _from_group(node, variables, chunks, feature_dim, feature_axis, fill, location)
    view.source = {"location": location, "variables": variables}
    return view


def _from_group(group, variables, chunks, feature_dim, feature_axis, fill, location=None):
    if _looks_like_xarray(group):
        xr = _xarray()
        store = location if location is not None else group.store
        ds = xr.open_zarr(
            store,
            group=group.path or None,
            chunks={} if chunks is None else chunks,
            consolidated=False,
        )
        return _from_dataset(ds, variables, feature_dim, feature_axis, fill)
    names = sorted(name for name, _ in group.arrays())
    if variables is None and len(names) == 1:
        variables = names[0]
    if not isinstance(variables, str) or variables not in names:
        raise ValueError(
            f"Array {variables!r} not found in the Zarr group; it holds arrays {names}. "
            "Name one with variables='name'."
        )
    return _from_zarr_array(group[variables], chunks, feature_dim, feature_axis, fill)


def open_rows(
    source,
    variables: str | Sequence[str] | None = None,
    *,
    feature_dim: str | None = None,
    feature_axis: int | None = None,
    chunks=None,
    fill_value: Any = "auto",
    storage_options: dict | None = None,
) -> RowView:
    """Open data as rows of features, lazily and chunk-aligned with the storage.

    Parameters
    ----------
    source
        A Zarr store path or URL (local path, ``file://``, ``memory://``, any fsspec
        URL zarr accepts) holding an array or a group, a ``zarr.Array``, a
        ``zarr.Group`` (with ``variables``), an ``xarray.DataArray``, an
        ``xarray.Dataset`` (with ``variables``), a dask or numpy array, or a
        :class:`RowView` (returned as is).
    variables : str or list of str, optional
        The array of a group, or the variable(s) of a Dataset (needed when there
        is more than one).  Several variables are stacked as features: each is
        one feature (on a new ``variable`` dimension) or, with ``feature_dim``,
        contributes its slices along it.
    feature_dim : str, optional
        The dimension holding the features; every other dimension is a sample
        dimension.  Default: the last dimension (for 1-D data, one feature).
    feature_axis : int, optional
        The same by position, for unnamed arrays.
    chunks : optional
        Override the storage chunks (passed to ``da.from_zarr`` / ``open_zarr``);
        keep them multiples of the storage chunks.
    fill_value : 'auto', number or None
        Values read as missing (NaN).  'auto': ``_FillValue`` / ``missing_value``
        attributes and the Zarr array's fill value unless it is 0 (zarr's default
        fill value, indistinguishable from real zeros); xarray decodes its own
        ``_FillValue`` when opening a store.
    storage_options : dict, optional
        For fsspec URLs.

    Returns
    -------
    RowView
    """
    if isinstance(source, RowView):
        return source
    if isinstance(source, (str, os.PathLike)):
        return _open_store(
            source, variables, storage_options, chunks, feature_dim, feature_axis, fill_value
        )
    module = type(source).__module__
    if module.startswith("zarr"):
        zarr = _zarr()
        if isinstance(source, zarr.Group):
            return _from_group(source, variables, chunks, feature_dim, feature_axis, fill_value)
        return _from_zarr_array(source, chunks, feature_dim, feature_axis, fill_value)
    if module.startswith("xarray"):
        xr = _xarray()
        if isinstance(source, xr.Dataset):
            return _from_dataset(source, variables, feature_dim, feature_axis, fill_value)
        if isinstance(source, xr.DataArray):
            return _from_dataarray(source, feature_dim, feature_axis, fill_value)
    array = source if isinstance(source, da.Array) else da.asarray(np.asarray(source))
    _check_numeric(array.dtype, "X")
    dims = tuple(f"dim_{i}" for i in range(array.ndim))
    axis = _feature_axis(dims, None, feature_axis, "X")
    values = [] if fill_value in (None, "auto") else [fill_value]
    return _view(_as_float_masked(array, values), dims, axis)


# --------------------------------------------------------------------------- #
# out
# --------------------------------------------------------------------------- #
def label_dtype(n_components: int) -> np.dtype:
    """Smallest signed integer dtype holding 0..K-1 and the fill value -1."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_components - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def model_attributes(model) -> dict:
    """What a written prediction records about the model that made it."""
    from . import __version__

    digest = hashlib.sha256()
    for arr in (model.weights_, model.means_, model.precisions_cholesky_):
        digest.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return {
        "daskgmm_version": __version__,
        "model_class": type(model).__name__,
        "model_id": getattr(model, "model_id_", None) or digest.hexdigest()[:16],
        "covariance_type": model.covariance_type,
        "n_components": int(model.n_components),
        "n_features": int(model.n_features_in_),
        "nan_policy": getattr(model, "nan_policy", "raise"),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _outputs(model, view: RowView, labels: bool, proba: bool, log_density: bool) -> dict:
    """Name -> lazy dask array on the sample dimensions, cast for storage.

    All outputs come from one E-step per chunk.
    """
    if not (labels or proba or log_density):
        raise ValueError("Nothing to write: set labels, proba or log_density to True.")
    out = model._predictions(view.data, labels, proba, log_density)
    dtypes = {
        "labels": label_dtype(model.n_components),
        "proba": np.float32,
        "log_density": np.float64,
    }
    return {
        name: unflatten_samples(values.astype(dtypes[name]), view.sample_chunks)
        for name, values in out.items()
    }


def _regular_chunks(array: da.Array) -> tuple:
    return tuple(c[0] if c else 1 for c in array.chunks)


def _fill_of(name: str, dtype):
    return LABEL_FILL if name == "labels" else np.nan


def write_predictions(
    model,
    source,
    store,
    *,
    variables=None,
    feature_dim: str | None = None,
    fill_value: Any = "auto",
    labels: bool = True,
    proba: bool = False,
    log_density: bool = False,
    region=None,
    overwrite: bool = False,
    storage_options: dict | None = None,
) -> dict:
    """Stream a fitted model's predictions on ``source`` to a Zarr store.

    Writes a group with ``labels`` (smallest signed integer dtype for K, -1 where
    a row was omitted), optionally ``proba`` (float32, ``component`` last) and
    ``log_density`` (float64, NaN where omitted), on the source's sample shape and
    chunks, with its coordinates when the source is xarray.  The group's
    attributes record the model (:func:`model_attributes`) and
    ``daskgmm_complete``, which is set to True only after every chunk is written
    (a failed fresh write removes what it wrote).

    Parameters
    ----------
    model : fitted estimator
    source
        Anything :func:`open_rows` opens (with ``variables``, ``feature_dim``,
        ``fill_value``).
    store : str, path or zarr store
        Where to write.
    labels, proba, log_density : bool
        Which outputs.
    region : dict or tuple of slices, optional
        Write into this part of an existing output (as written before for the
        whole source): ``{dim: slice}`` for xarray sources, else a tuple of slices
        over the sample dimensions.  ``source`` is then the matching part.
    overwrite : bool
        Replace an existing store (fresh writes only).
    storage_options : dict, optional

    Returns
    -------
    dict
        The attributes written.
    """
    view = open_rows(
        source,
        variables,
        feature_dim=feature_dim,
        fill_value=fill_value,
        storage_options=storage_options,
    )
    arrays = _outputs(model, view, labels, proba, log_density)
    attrs = model_attributes(model)
    zarr = _zarr()
    kwargs = {"storage_options": storage_options} if isinstance(store, str) else {}
    if region is not None:
        group = zarr.open_group(store, mode="r+", **kwargs)
        group.attrs[COMPLETE_ATTR] = False
        _write_region(view, arrays, group, region, store, kwargs)
        group.attrs.update({**attrs, COMPLETE_ATTR: True})
        return dict(group.attrs)
    if not overwrite and _exists(store, kwargs):
        raise FileExistsError(
            f"{store!r} already exists; pass overwrite=True to replace it, or region= to "
            "write into part of it."
        )
    try:
        if view.is_xarray:
            _write_xarray(view, arrays, store, {**attrs, COMPLETE_ATTR: False}, kwargs)
            group = zarr.open_group(store, mode="r+", **kwargs)
        else:
            group = zarr.open_group(store, mode="w", **kwargs)
            group.attrs.update({**attrs, COMPLETE_ATTR: False})
            _write_plain(view, arrays, group)
    except BaseException:
        _remove_outputs(store, list(arrays), kwargs)
        raise
    group.attrs[COMPLETE_ATTR] = True
    logger.info("wrote %s to %s", ", ".join(arrays), store)
    return dict(group.attrs)


def _exists(store, kwargs) -> bool:
    zarr = _zarr()
    try:
        zarr.open(store, mode="r", **kwargs)
    except FileNotFoundError:
        return False
    return True


def _remove_outputs(store, names, kwargs) -> None:
    """Best effort: delete arrays a failed fresh write created."""
    zarr = _zarr()
    try:
        group = zarr.open_group(store, mode="r+", **kwargs)
        group.attrs[COMPLETE_ATTR] = False
        for name in names:
            if name in group:
                del group[name]
    except Exception:  # the write failed before the group existed
        logger.debug("nothing to clean up at %s", store)


def _write_plain(view: RowView, arrays: dict, group) -> None:
    targets = []
    for name, values in arrays.items():
        dims = list(view.sample_dims) + (
            ["component"] if values.ndim > len(view.sample_dims) else []
        )
        target = group.create_array(
            name,
            shape=values.shape,
            chunks=_regular_chunks(values),
            dtype=values.dtype,
            fill_value=_fill_of(name, values.dtype),
            dimension_names=dims,
        )
        targets.append(target)
    compute(da.store(list(arrays.values()), targets, lock=False, compute=False))


def _as_dataset(view: RowView, arrays: dict, attrs: dict):
    xr = _xarray()
    data_vars = {}
    for name, values in arrays.items():
        dims = tuple(view.sample_dims)
        coords = dict(view.coords)
        if values.ndim > len(dims):
            dims += ("component",)
            coords["component"] = np.arange(values.shape[-1])
        data_vars[name] = xr.DataArray(values, dims=dims, coords=coords)
    return xr.Dataset(data_vars, attrs=attrs)


def _write_xarray(view: RowView, arrays: dict, store, attrs: dict, kwargs) -> None:
    ds = _as_dataset(view, arrays, attrs)
    encoding = {
        name: {"chunks": _regular_chunks(values), "_FillValue": _fill_of(name, values.dtype)}
        for name, values in arrays.items()
    }
    delayed_write = ds.to_zarr(
        store,
        mode="w",
        encoding=encoding,
        compute=False,
        zarr_format=3,
        consolidated=False,
        **kwargs,
    )
    compute(delayed_write)


def _write_region(view: RowView, arrays: dict, group, region, store, kwargs) -> None:
    if view.is_xarray:
        if not isinstance(region, dict):
            raise ValueError("For an xarray source, give region as {dim: slice}.")
        ds = _as_dataset(view, arrays, {})
        ds = ds.drop_vars(list(ds.coords))
        write = ds.to_zarr(
            store, mode="r+", region=region, compute=False, consolidated=False, **kwargs
        )
        compute(write)
        return
    if isinstance(region, dict):
        region = tuple(region.get(d, slice(None)) for d in view.sample_dims)
    targets, sources, regions = [], [], []
    for name, values in arrays.items():
        if name not in group:
            raise ValueError(f"{name!r} is not in the store; write it whole first.")
        targets.append(group[name])
        sources.append(values)
        regions.append(tuple(region) + (slice(None),) * (values.ndim - len(region)))
    compute(da.store(sources, targets, regions=regions, lock=False, compute=False))
