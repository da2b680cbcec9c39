"""``open_rows``: any supported source as rows of features, lazily and chunk-aligned."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np

from .._typing import Data, Mixture
from .lazy import _xarray, _zarr
from .readers import (
    as_float_masked,
    check_numeric,
    find_feature_axis,
    from_dataarray,
    from_dataset,
    from_group,
    from_zarr_array,
    open_store,
    row_view_of,
)
from .row_view import RowView


def is_source(X: object) -> bool:
    """Whether ``X`` is for :func:`open_rows`: a store path or URL, a zarr or xarray
    object, or a :class:`RowView`, rather than an array.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from daskgmm import io
    >>> io.is_source("cube.zarr"), io.is_source(xr.DataArray(np.zeros(3)))
    (True, True)
    >>> io.is_source(np.zeros(3))                   # arrays are rows already
    False
    """
    if isinstance(X, (str, os.PathLike)):
        return True
    module = type(X).__module__
    return module.startswith(("zarr", "xarray", "daskgmm.io"))


def open_rows(
    source: Data,
    variables: str | Sequence[str] | None = None,
    *,
    feature_dim: str | None = None,
    feature_axis: int | None = None,
    chunks: Any = None,
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
        dimension.  Default: for unnamed data (numpy, dask, Zarr arrays without
        dimension names) the last axis; for named data the one dimension called
        band(s), channel(s), feature(s) or variable(s), and a ValueError listing
        the dimensions when there is no such one dimension; 1-D data are one
        feature.  See :mod:`daskgmm.io.feature_dim`.
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

    Examples
    --------
    >>> from daskgmm import GaussianMixture, io
    >>> from daskgmm.datasets import make_mixture
    >>> X, truth = make_mixture(4_000, n_features=3, n_components=2, chunk_rows=1_000,
    ...                         store="table.zarr", seed=0)
    >>> view = io.open_rows("table.zarr")
    >>> view.data.shape, view.data.chunks[0]
    ((4000, 3), (1000, 1000, 1000, 1000))
    >>> cube, _ = make_mixture(2 * 20 * 30, n_features=4, n_components=2, store="cube.zarr",
    ...                        cube_shape=(2, 20, 30), seed=0)
    >>> rows = io.open_rows("cube.zarr", "data", feature_dim="band")
    >>> rows.data.shape, rows.sample_shape
    ((1200, 4), (2, 20, 30))
    """
    return _open(
        source, variables, feature_dim, feature_axis, chunks, fill_value, storage_options, None
    )


def _open(source, variables, feature_dim, feature_axis, chunks, fill, storage_options, model_dim):
    """:func:`open_rows`; ``model_dim``: the feature dimension of the model the rows
    are read for (see :mod:`.feature_dim`)."""
    if isinstance(source, RowView):
        return source
    if isinstance(source, (str, os.PathLike)):
        return open_store(
            source, variables, storage_options, chunks, feature_dim, feature_axis, fill, model_dim
        )
    named = (feature_dim, feature_axis)
    module = type(source).__module__
    if module.startswith("zarr"):
        zarr = _zarr()
        if isinstance(source, zarr.Group):
            return from_group(source, variables, chunks, *named, fill, None, model_dim)
        return from_zarr_array(source, chunks, *named, fill, model_dim)
    if module.startswith("xarray"):
        xr = _xarray()
        if isinstance(source, xr.Dataset):
            return from_dataset(source, variables, *named, fill, model_dim)
        if isinstance(source, xr.DataArray):
            return from_dataarray(source, *named, fill, model_dim)
    array = source if isinstance(source, da.Array) else da.asarray(np.asarray(source))
    check_numeric(array.dtype, "X")
    dims = tuple(f"dim_{i}" for i in range(array.ndim))
    axis = find_feature_axis(dims, None, feature_axis, "X")
    values = [] if fill in (None, "auto") else [fill]
    return row_view_of(as_float_masked(array, values), dims, axis)


def rows_for_model(
    model: Mixture,
    source: Data,
    variables: str | Sequence[str] | None = None,
    *,
    feature_dim: str | None = None,
    fill_value: Any = "auto",
    storage_options: dict | None = None,
) -> RowView:
    """The rows of ``source`` for a fitted model: on its feature dimension, in its order.

    The feature dimension is ``feature_dim`` if given, else the model's
    ``feature_dim`` parameter, else the one it was fitted on (``feature_dim_``),
    found by name wherever it lies in ``source``; unnamed sources give their last
    axis.  When the model has ``feature_names_in_`` and the source labels its
    features, the features are taken by label in the model's order (lazily).

    Parameters
    ----------
    model : fitted estimator
    source, variables, feature_dim, fill_value, storage_options
        As for :func:`open_rows`.

    Returns
    -------
    RowView

    Raises
    ------
    ValueError
        When the source lacks the model's feature dimension, or labels that are
        missing or were not seen at fit time (naming them).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from daskgmm import GaussianMixture, io
    >>> cube = xr.DataArray(np.random.default_rng(0).normal(size=(20, 30, 2)),
    ...                     dims=("y", "x", "band"), coords={"band": ["red", "nir"]})
    >>> gm = GaussianMixture(2, random_state=0, feature_dim="band").fit(cube)
    >>> view = io.rows_for_model(gm, cube.sel(band=["nir", "red"]))   # put back in order
    >>> view.feature_names, view.shape
    (['red', 'nir'], (600, 2))
    """
    model_dim = getattr(model, "feature_dim", None) or getattr(model, "feature_dim_", None)
    view = _open(source, variables, feature_dim, None, None, fill_value, storage_options, model_dim)
    names = getattr(model, "feature_names_in_", None)
    return view if names is None else view.in_feature_order(list(names))
