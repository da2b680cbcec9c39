"""Data as row chunks for repeated passes: in-memory views, float dtypes, weights.

Every pass over the data (an EM iteration, a mini-batch, a prediction) sees the
rows as a 2-D dask array with one chunk along the features; :class:`RowChunks`
keeps its blocks as delayed objects, so a pass over some of them builds a graph
of just those.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

import dask.array as da
import numpy as np

from ..kernels.checks import (
    check_data_shape,
    check_numpy_data,
    check_sample_weight_shape,
    check_sample_weight_values,
)
from ..kernels.devices import empty_like_chunks, host_dtype, namespace, to_device, to_host
from .compute import compute

#: Upper bound on the size of the chunks made from an in-memory numpy array.
MAX_CHUNK_BYTES = 64 * 2**20


@dataclass
class RowChunks:
    """Data prepared for repeated passes: row chunks as delayed blocks.

    Attributes
    ----------
    array : dask.array.Array
        Shape (N, D), one chunk along the features.
    blocks : list of Delayed
        One per row chunk, in order.
    weights : list of Delayed or None
        Sample weights aligned with ``blocks``.
    weight_array : dask.array.Array or None
        The same weights as one array of shape (N,).
    init_sample : tuple or None
        The rows (and weights) sampled for initialisation, kept for later
        initialisations of the same fit.
    data_moments : tuple or None
        ``(weight, mean, m2)`` of all rows (:func:`daskgmm.kernels.priors.pooled_moments`),
        when a fit asked for them; taken with the initialisation's pass and kept.
    init_cache : dict
        Samples and moments already gathered, shared by the views of the same
        rows that the fits of a joint fit get (``dataclasses.replace(rows,
        init_sample=None, data_moments=None)``): a fit that draws the sample
        another drew reuses it instead of reading the data again.
    """

    array: da.Array
    blocks: list
    weights: list | None = None
    weight_array: da.Array | None = None
    init_sample: tuple | None = None
    data_moments: tuple | None = None
    init_cache: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.array.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.array.shape[1])

    @property
    def n_chunks(self) -> int:
        return len(self.blocks)


#: ``chunk_rows='auto'`` cuts an in-memory array into this many chunks ...
AUTO_CHUNKS = 16
#: ... of at least this many rows (fewer chunks for small arrays) and at most
#: ``MAX_CHUNK_BYTES`` each (more chunks for large ones).
MIN_AUTO_CHUNK_ROWS = 10_000


def auto_chunk_rows(n_samples: int, n_features: int, itemsize: int) -> int:
    """Rows per chunk for an in-memory array: up to 16 chunks of >= 10,000 rows, <= 64 MiB.

    It depends on the array alone, not on the machine's core count: the chunks
    decide the order of the merges (and the 'random' start, drawn per chunk), so
    the same data give the same fit on every machine.
    """
    rows = max(math.ceil(n_samples / AUTO_CHUNKS), MIN_AUTO_CHUNK_ROWS)
    cap = max(1, MAX_CHUNK_BYTES // max(1, n_features * itemsize))
    return int(max(1, min(rows, cap)))


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _views_as_dask(X: np.ndarray, chunk_rows: int) -> da.Array:
    """A dask array whose chunks are views of an in-memory array (no copy).

    ``dask.array.from_array`` copies every chunk of a numpy array into the graph,
    doubling the memory of a fit on in-memory data.
    """
    X = np.ascontiguousarray(X)
    name = f"daskgmm_rows-{uuid.uuid4().hex}"
    row_chunks = da.core.normalize_chunks((chunk_rows,), (X.shape[0],))[0]
    starts = np.concatenate([[0], np.cumsum(row_chunks)]).astype(int)
    layer = {(name, i, 0): X[starts[i] : starts[i + 1]] for i in range(len(row_chunks))}
    return da.Array(layer, name, chunks=(row_chunks, (X.shape[1],)), dtype=X.dtype)


def _device_views_as_dask(X, chunk_rows) -> da.Array:
    """A dask array whose chunks are row slices of an array of another namespace
    (a CuPy array stays on its GPU; no copy)."""
    dtype = host_dtype(X.dtype)
    if chunk_rows == "auto":
        chunk_rows = auto_chunk_rows(X.shape[0], X.shape[1], dtype.itemsize)
    name = f"daskgmm_rows-{uuid.uuid4().hex}"
    row_chunks = da.core.normalize_chunks((chunk_rows,), (X.shape[0],))[0]
    starts = np.concatenate([[0], np.cumsum(row_chunks)]).astype(int)
    layer = {(name, i, 0): X[starts[i] : starts[i + 1], :] for i in range(len(row_chunks))}
    # the dtype is the meta's (a namespace's own dtype may not compare with numpy's)
    return da.Array(layer, name, chunks=(row_chunks, (X.shape[1],)), meta=X[0:0, :])


def is_device_array(X) -> bool:
    """Whether ``X`` is an in-memory array of another namespace than numpy (CuPy)."""
    return not isinstance(X, da.Array) and namespace(X) is not None


def on_device(array: da.Array, device: str | None) -> da.Array:
    """``array`` with each chunk moved to ``device`` as it is read ('cuda'; None: as is).

    Parameters
    ----------
    array : dask.array.Array
    device : str or None
        See :func:`daskgmm.kernels.devices.to_device`.

    Returns
    -------
    dask.array.Array
    """
    if device is None:
        return array
    meta = to_device(np.empty((0,) * array.ndim, host_dtype(array.dtype)), device)
    return array.map_blocks(to_device, device, meta=meta)  # the dtype is the meta's


def on_host(array: da.Array) -> da.Array:
    """``array`` with chunks of another namespace (CuPy) copied to numpy as read."""
    if namespace(array._meta) is None:
        return array
    dtype = host_dtype(array.dtype)
    meta = empty_like_chunks(None, (0,) * array.ndim, dtype)
    return array.map_blocks(to_host, dtype=dtype, meta=meta)


def like_chunks_of(rows: da.Array, out: da.Array) -> da.Array:
    """``out`` on the host if ``rows``' chunks are numpy (results of rows that
    ``device`` moved come back), else as it is (CuPy rows give CuPy results)."""
    return on_host(out) if namespace(rows._meta) is None else out


def as_dask_array(X, chunk_rows="auto", device: str | None = None) -> da.Array:
    """A 2-D float dask array with one chunk along the features.

    Parameters
    ----------
    X : numpy array, dask array, array of another namespace (CuPy) or array-like
        Integer and boolean data become float64; float32 stays float32.  (The
        estimators open stores, zarr and xarray sources with ``daskgmm.io``
        first.)  Chunks of any namespace are kept as they are, never converted.
    chunk_rows : int or 'auto'
        Rows per chunk when ``X`` is not already a dask array.
    device : str, optional
        Move each chunk there as it is read ('cuda'; :func:`on_device`).

    Returns
    -------
    dask.array.Array
    """
    if is_device_array(X):
        X = _device_views_as_dask(X, chunk_rows)
    elif not isinstance(X, da.Array):
        X = check_numpy_data(X)
        if chunk_rows == "auto":
            chunk_rows = auto_chunk_rows(X.shape[0], X.shape[1], X.dtype.itemsize)
        X = _views_as_dask(X, chunk_rows)
    dtype = host_dtype(X.dtype)  # a namespace's own dtype (of its chunks) as numpy's
    check_data_shape(X.shape, X.dtype)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    target = _float_dtype(dtype)
    return on_device(X if dtype == target else X.astype(target), device)


def prepare_rows(
    X, sample_weight=None, chunk_rows="auto", n_components=None, device=None
) -> RowChunks:
    """Validate data (and weights) and split them into row chunks for repeated passes.

    Parameters
    ----------
    X : array-like or dask array of shape (N, D)
    sample_weight : array-like of shape (N,), optional
        Numpy weights are checked here; dask weights during the first pass.
    chunk_rows : int or 'auto'
    n_components : int, optional
        When fitting, the minimum number of rows.
    device : str, optional
        Move each chunk there as it is read ('cuda'); None leaves the chunks where
        they are (CuPy chunks on their GPU, numpy on the host).

    Returns
    -------
    RowChunks
    """
    if isinstance(X, da.Array) or is_device_array(X):
        check_data_shape(X.shape, X.dtype, n_components)
    else:
        X = check_numpy_data(X, n_components=n_components)  # scikit-learn's check_array
    array = as_dask_array(X, chunk_rows, device)
    blocks = list(array.to_delayed().ravel())
    weights = None
    if sample_weight is not None:
        if not isinstance(sample_weight, da.Array):
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            check_sample_weight_shape(sample_weight.shape, array.shape[0])
            check_sample_weight_values(sample_weight)
            sample_weight = da.from_array(sample_weight, chunks=(array.chunks[0],), name=False)
        else:
            check_sample_weight_shape(sample_weight.shape, array.shape[0])
            sample_weight = sample_weight.astype(np.float64).rechunk((array.chunks[0],))
        weights = list(sample_weight.to_delayed().ravel())
    return RowChunks(array, blocks, weights, sample_weight)


def gather_rows(rows: RowChunks, indices: np.ndarray, also=None):
    """Rows (and their weights) at sorted ``indices``, read in one pass.

    Parameters
    ----------
    rows : RowChunks
    indices : ndarray of int
    also : Delayed, optional
        A graph over the same chunks computed in the same pass (each chunk is
        read once for both), e.g. the moments of all rows.

    Returns
    -------
    X : ndarray of shape (len(indices), D)
    weights : ndarray of shape (len(indices),) or None
    also : object
        What ``also`` computed to (only when it was given).
    """
    picked = [on_host(rows.array)[indices]]
    if rows.weight_array is not None:
        picked.append(rows.weight_array[indices])
    out = compute(*picked, *([] if also is None else [also]))
    X, weights = out[0], (out[1] if rows.weight_array is not None else None)
    return (X, weights) if also is None else (X, weights, out[-1])
