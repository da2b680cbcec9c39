"""Predictions out: a fitted model's labels, probabilities and log-densities to Zarr.

Nothing here imports an estimator: predictions come from the model's own
per-chunk outputs, one E-step per chunk for all of them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from typing import Any

import dask.array as da
import numpy as np

from .._version import __version__
from ..engine.compute import compute
from ..engine.samples import unflatten_samples
from ..kernels.nan_policy import LABEL_FILL
from .lazy import _xarray, _zarr
from .row_view import RowView
from .sources import open_rows

logger = logging.getLogger("daskgmm.io")

#: Attribute set to True on an output group once every array in it is written.
COMPLETE_ATTR = "daskgmm_complete"


def label_dtype(n_components: int) -> np.dtype:
    """Smallest signed integer dtype holding 0..K-1 and the fill value -1."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_components - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def model_attributes(model) -> dict:
    """What a written prediction records about the model that made it."""
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
