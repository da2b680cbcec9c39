"""A pipeline's input: the Zarr store opened lazily, its growing extent, what identifies it.

The store is opened as an xarray object (a Dataset for xarray-written groups, a
DataArray named by the array's dimension names for a store that is one array),
so that a part along the append dimension is ``isel``; rows are made by
:func:`daskgmm.io.open_rows` as everywhere else.  zarr and xarray are imported
lazily, only when a run opens its source.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io import RowView, data_fingerprint, open_rows
from ._chunkfiles import ArrayLayout, array_layout, chunks_digest
from .spec import PipelineSpec, SpecError, _is_url

logger = logging.getLogger(__name__)


@dataclass
class Source:
    """The input of one run, opened lazily.

    Attributes
    ----------
    store : str
    data : xarray.Dataset or xarray.DataArray
        Lazy (dask) data as stored.
    variables : str, list of str or None
        What :func:`daskgmm.io.open_rows` takes from ``data``.
    feature_dim : str or None
    fill_value : 'auto' or number
    append_dim : str
        The sample dimension that grows.
    sample_dims : tuple of str
    extent : int
        Length of ``append_dim`` now.
    n_rows : int
        Rows (samples) now: the product of the sample dimensions' lengths.
    n_features : int
    structure : dict
        Everything but the extent that must stay the same for appended rows to
        continue the same data: sample dimensions and sizes, variables with their
        dims, dtypes and storage chunks, the number of features.
    layouts : dict of name -> ArrayLayout, or None
        The data variables' arrays of a local store (None for URLs).
    """

    store: str
    data: Any
    variables: Any
    feature_dim: str | None
    fill_value: Any
    append_dim: str
    sample_dims: tuple
    extent: int
    n_rows: int
    n_features: int
    structure: dict
    layouts: dict[str, ArrayLayout] | None = field(default=None, repr=False)

    def part(self, start: int | None = None, stop: int | None = None):
        """``data`` restricted to ``[start, stop)`` along the append dimension."""
        if start is None and stop is None:
            return self.data
        return self.data.isel({self.append_dim: slice(start, stop)})

    def rows(self, start: int | None = None, stop: int | None = None) -> RowView:
        """The rows of ``[start, stop)`` along the append dimension (all by default)."""
        return open_rows(
            self.part(start, stop),
            self.variables,
            feature_dim=self.feature_dim,
            fill_value=self.fill_value,
        )

    def digest(self, below: int | None = None) -> str | None:
        """Digest of the data variables' chunk files (names, sizes, mtimes), or of
        those wholly before ``below`` along the append dimension; None for stores
        that are not local directories."""
        if self.layouts is None:
            return None
        return chunks_digest(self.layouts, self.append_dim, below)

    def fingerprint(self) -> dict:
        """:func:`daskgmm.fingerprint.data_fingerprint` of the store."""
        return data_fingerprint(self.store)


def _dims_of(zarray) -> tuple:
    names = getattr(zarray.metadata, "dimension_names", None) or zarray.attrs.get(
        "_ARRAY_DIMENSIONS"
    )
    return tuple(names) if names else tuple(f"dim_{i}" for i in range(zarray.ndim))


def _wrap_array(zarray, name: str):
    """A zarr array as a lazy DataArray on its dimension names; a non-zero zarr fill
    value is declared as ``_FillValue`` so that ``open_rows`` masks it as it would
    for the array itself."""
    import dask.array as da
    import xarray as xr

    attrs = dict(zarray.attrs)
    fill = zarray.fill_value
    if fill is not None and np.ndim(fill) == 0:
        value = np.asarray(fill).item()
        if isinstance(value, (int, float)) and value != 0 and value == value:
            attrs.setdefault("_FillValue", value)
    return xr.DataArray(da.from_zarr(zarray), dims=_dims_of(zarray), name=name, attrs=attrs)


def _has_dimension_names(group) -> bool:
    return any(
        getattr(arr.metadata, "dimension_names", None) or "_ARRAY_DIMENSIONS" in arr.attrs
        for _, arr in group.arrays()
    )


def _pick(names: list, wanted, store: str) -> list:
    if wanted is None:
        if len(names) != 1:
            raise SpecError(
                "input.variable",
                f"{store} holds {len(names)} arrays {names}; name the one (or ones) to use.",
            )
        return names
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    missing = [w for w in wanted if w not in names]
    if missing:
        raise SpecError("input.variable", f"{missing} not in {store}; it holds {names}.")
    return wanted


def _open(spec: PipelineSpec):
    """(data, variables for open_rows, variable names, local array paths)."""
    import xarray as xr
    import zarr

    try:
        node = zarr.open(spec.store, mode="r")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise SpecError("input.store", f"no Zarr store at {spec.store}: {exc}") from None
    if isinstance(node, zarr.Array):
        if spec.variable is not None:
            raise SpecError(
                "input.variable",
                f"{spec.store} is a single array, not a group; remove input.variable.",
            )
        name = node.path or "data"
        return _wrap_array(node, name), None, [name], {name: ""}
    if _has_dimension_names(node):
        ds = xr.open_zarr(spec.store, chunks={}, consolidated=False)
        names = _pick(sorted(map(str, ds.data_vars)), spec.variable, spec.store)
        variables = names[0] if len(names) == 1 else names
        return ds, variables, names, {n: n for n in names}
    arrays = sorted(name for name, _ in node.arrays())
    names = _pick(arrays, spec.variable, spec.store)
    if len(names) != 1:
        raise SpecError(
            "input.variable",
            "several arrays without dimension names cannot be stacked; name one, or write "
            "the store with xarray.",
        )
    return _wrap_array(node[names[0]], names[0]), None, names, {names[0]: names[0]}


def open_source(spec: PipelineSpec) -> Source:
    """Open the spec's input store lazily and check ``input.*`` against it.

    Reads metadata only.

    Raises
    ------
    SpecError
        If the store is missing, or ``input.variable``, ``input.feature_dim`` or
        ``input.append_dim`` does not match what the store holds.
    """
    data, variables, names, paths = _open(spec)
    arrays = {n: (data[n] if hasattr(data, "data_vars") else data) for n in names}
    all_dims = sorted({str(d) for arr in arrays.values() for d in arr.dims})
    if spec.feature_dim is not None and spec.feature_dim not in all_dims:
        raise SpecError(
            "input.feature_dim",
            f"{spec.feature_dim!r} is not a dimension of {names}; their dimensions are {all_dims}.",
        )
    try:
        view = open_rows(data, variables, feature_dim=spec.feature_dim, fill_value=spec.fill_value)
    except (ValueError, TypeError) as exc:
        raise SpecError("input", str(exc)) from None
    sample_dims = tuple(str(d) for d in view.sample_dims)
    append_dim = spec.append_dim or sample_dims[0]
    if append_dim not in sample_dims:
        raise SpecError(
            "input.append_dim",
            f"{append_dim!r} is not a sample dimension of {names}; choose one of "
            f"{list(sample_dims)}.",
        )
    sizes = dict(zip(view.sample_dims, view.sample_shape, strict=True))
    structure = {
        "sample_dims": list(sample_dims),
        "sizes": {str(d): int(n) for d, n in sizes.items() if d != append_dim},
        "n_features": view.n_features,
        "variables": {
            n: {
                "dims": [str(d) for d in arr.dims],
                "dtype": str(arr.dtype),
                "chunks": [int(c) for c in arr.encoding.get("chunks", ())]
                or [int(c[0]) for c in (arr.chunks or ())],
            }
            for n, arr in arrays.items()
        },
    }
    layouts = None
    if not _is_url(spec.store):
        found = {n: array_layout(Path(spec.store, p)) for n, p in paths.items()}
        layouts = found if all(found.values()) else None
    return Source(
        store=spec.store,
        data=data,
        variables=variables,
        feature_dim=spec.feature_dim,
        fill_value=spec.fill_value,
        append_dim=append_dim,
        sample_dims=sample_dims,
        extent=int(sizes[append_dim]),
        n_rows=view.n_samples,
        n_features=view.n_features,
        structure=structure,
        layouts=layouts,
    )
