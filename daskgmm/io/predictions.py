"""Predictions out: a fitted model's labels, probabilities and log-densities to Zarr.

Nothing here imports an estimator: predictions come from the model's own
per-chunk outputs, one E-step per chunk for all of them.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import logging
from collections.abc import MutableMapping, Sequence
from typing import Any

import dask.array as da
import numpy as np

from .._typing import Data, Mixture, PathLike
from .._version import __version__
from ..engine.compute import compute, joinable_threads
from ..engine.samples import unflatten_samples
from ..errors import DiskFullError
from ..kernels.nan_policy import LABEL_FILL
from .lazy import _xarray, _zarr
from .row_view import RowView
from .sources import rows_for_model

logger = logging.getLogger("daskgmm.io")

#: Attribute set to True on an output group once every array in it is written.
COMPLETE_ATTR = "daskgmm_complete"


def label_dtype(n_components: int) -> np.dtype:
    """Smallest signed integer dtype holding 0..K-1 and the fill value -1.

    Examples
    --------
    >>> from daskgmm.io import label_dtype
    >>> label_dtype(8), label_dtype(200)
    (dtype('int8'), dtype('int16'))
    """
    for dtype in (np.int8, np.int16, np.int32):
        if n_components - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def model_attributes(model: Mixture) -> dict:
    """What a written prediction records about the model that made it.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import GaussianMixture
    >>> from daskgmm.io import model_attributes
    >>> gm = GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(100, 2)))
    >>> attrs = model_attributes(gm)
    >>> attrs["model_class"], attrs["daskgmm_version"] == __import__("daskgmm").__version__
    ('GaussianMixture', True)
    """
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
    model: Mixture,
    source: Data,
    store: PathLike | MutableMapping,
    *,
    variables: str | Sequence[str] | None = None,
    feature_dim: str | None = None,
    fill_value: Any = "auto",
    labels: bool = True,
    proba: bool = False,
    log_density: bool = False,
    region: dict[str, slice] | None = None,
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
        ``fill_value``).  Read on the model's feature dimension and, when both
        label their features, in the model's order
        (:func:`~daskgmm.io.sources.rows_for_model`); missing or unseen labels are
        refused before anything is written.
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

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from daskgmm import GaussianMixture, io
    >>> rng = np.random.default_rng(0)
    >>> cube = xr.DataArray(rng.normal(size=(20, 30, 3)), dims=("y", "x", "band")).chunk(y=10)
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(cube)
    >>> out = io.write_predictions(gm, cube, "labels.zarr", proba=True)
    >>> result = xr.open_zarr("labels.zarr", consolidated=False)
    >>> result["labels"].dims, result["proba"].shape
    (('y', 'x'), (20, 30, 2))
    """
    view = rows_for_model(
        model,
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
        try:
            _write_region(view, arrays, group, region, store, kwargs)
        except OSError as exc:
            _raise_if_disk_full(exc, store, "it stays marked incomplete; write the region again")
            raise
        group.attrs.update({**attrs, COMPLETE_ATTR: True})
        return dict(group.attrs)
    existed = _exists(store, kwargs)
    if existed and not overwrite:
        raise FileExistsError(
            f"{store!r} already exists; pass overwrite=True to replace it, or region= to "
            "write into part of it."
        )
    group = _write_new(view, arrays, store, attrs, kwargs, created=not existed)
    logger.info("wrote %s to %s", ", ".join(arrays), store)
    return dict(group.attrs)


def _write_new(view: RowView, arrays: dict, store, attrs: dict, kwargs: dict, created: bool):
    """Write a whole output, marked complete at the end; after a failure remove it
    (once the chunk writes still running have ended) and name a full disk."""
    zarr = _zarr()
    with joinable_threads() as pool:
        try:
            if view.is_xarray:
                _write_xarray(view, arrays, store, {**attrs, COMPLETE_ATTR: False}, kwargs)
                group = zarr.open_group(store, mode="r+", **kwargs)
            else:
                group = zarr.open_group(store, mode="w", **kwargs)
                group.attrs.update({**attrs, COMPLETE_ATTR: False})
                _write_plain(view, arrays, group)
            group.attrs[COMPLETE_ATTR] = True
        except BaseException as exc:
            if pool is not None:  # chunk writes still running would write after the removal
                pool.shutdown(wait=True)
            removed = _remove_outputs(store, kwargs, created=created)
            _raise_if_disk_full(
                exc, store, "what was written is removed" if removed else "it is marked incomplete"
            )
            raise
    return group


def _exists(store, kwargs) -> bool:
    """Whether something is at ``store``; an empty group that a failed write left
    (marked incomplete, holding no arrays) does not count."""
    zarr = _zarr()
    try:
        node = zarr.open(store, mode="r", **kwargs)
    except FileNotFoundError:
        return False
    if isinstance(node, zarr.Group) and node.attrs.get(COMPLETE_ATTR) is False:
        return any(True for _ in node.keys())
    return True


def _remove_outputs(store, kwargs, created: bool) -> bool:
    """Best effort: remove the group a failed fresh write made (whatever is there when
    it ``created`` it, else only an output marked incomplete); whether it did."""
    from zarr.core.sync import sync

    zarr = _zarr()
    try:
        group = zarr.open_group(store, mode="r+", **kwargs)
        if not created and group.attrs.get(COMPLETE_ATTR) is not False:
            return False
        sync(group.store_path.delete_dir())
    except Exception:  # the write failed before the group existed, or cannot be undone
        logger.debug("nothing removed at %s", store, exc_info=True)
        return False
    return True


def _raise_if_disk_full(exc: BaseException, store, what_then: str) -> None:
    """Raise :class:`DiskFullError` naming ``store`` if ``exc`` (or its cause) is ENOSPC."""
    cause = exc
    while cause is not None and getattr(cause, "errno", None) != errno.ENOSPC:
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return
    raise DiskFullError(
        errno.ENOSPC,
        f"No space left on the device while writing predictions to {store!r} ({what_then}). "
        "Free some space there, or write to another disk, then run the same write again "
        "(no overwrite is needed).",
    ) from exc


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
