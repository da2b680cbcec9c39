"""The dask layer: row chunks, one-pass reductions of statistics, predict graphs.

One EM iteration is one graph built afresh from small numpy parameters::

    daskgmm_params ─┐
    row chunk i ────┴─> daskgmm_estep (i) ──> daskgmm_reduce (level, j) ──> ... ──> stats

The parameters enter the graph once, as one key every E-step task depends on; each
E-step task reduces its chunk to :class:`~daskgmm._stats.SufficientStats`, and a
tree of ``split_every``-way merges in fixed chunk order combines them, so the
result does not depend on which worker finished first.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed, delayed
from dask.highlevelgraph import HighLevelGraph

from ._progress import active_pass_progress
from ._stats import merge_all
from ._validation import (
    check_data_shape,
    check_sample_weight_shape,
    check_sample_weight_values,
)

DEFAULT_SPLIT_EVERY = 8
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
    """

    array: da.Array
    blocks: list
    weights: list | None = None
    weight_array: da.Array | None = None
    init_sample: tuple | None = None

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


def is_external(X) -> bool:
    """Whether ``X`` is a store, a zarr/xarray object or an opened view (see ``daskgmm.io``)."""
    if isinstance(X, (str, os.PathLike)):
        return True
    module = type(X).__module__
    return module.startswith(("zarr", "xarray", "daskgmm.io"))


def open_external(X):
    """Open a store, zarr array or xarray object as a ``daskgmm.io.RowView``.

    ``io`` is imported here, lazily, so that this module (and everything below it)
    never imports zarr or xarray; ``io`` itself builds on this module.
    """
    from .io import open_rows

    return open_rows(X)


def flatten_samples(array: da.Array, feature_axis: int) -> da.Array:
    """Rows of feature values from an N-D array, lazily, one row chunk per block.

    Every axis but ``feature_axis`` is a sample axis.  Each block of the sample
    axes becomes one row chunk (its samples in C order), so chunks stay aligned
    with the storage chunks and nothing is rechunked but a chunked feature
    axis, which is merged once.  Rows are therefore in block order, which equals
    ``reshape(-1, D)`` order when only the first sample axis is chunked.

    Parameters
    ----------
    array : dask.array.Array of any shape with ndim >= 1
    feature_axis : int or None
        None: one feature, every axis is a sample axis.

    Returns
    -------
    dask.array.Array of shape (N, D)
    """
    if feature_axis is None:
        array = array[..., None]
    else:
        array = da.moveaxis(array, feature_axis, -1)
    if array.numblocks[-1] > 1:
        array = array.rechunk({array.ndim - 1: -1})
    if array.ndim == 2:
        return array
    n_features = array.shape[-1]
    sample_chunks = array.chunks[:-1]
    name = f"daskgmm_rows-{tokenize(array, 'flatten')}"
    layer, row_chunks = {}, []
    for i, index in enumerate(np.ndindex(*array.numblocks[:-1])):
        n = math.prod(sample_chunks[axis][j] for axis, j in enumerate(index))
        layer[(name, i, 0)] = (np.reshape, (array.name, *index, 0), (n, n_features))
        row_chunks.append(n)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[array])
    meta = np.empty((0, 0), dtype=array.dtype)
    return da.Array(graph, name, chunks=(tuple(row_chunks), (n_features,)), meta=meta)


def unflatten_samples(values: da.Array, sample_chunks: tuple) -> da.Array:
    """Inverse of :func:`flatten_samples` for per-row results.

    Parameters
    ----------
    values : dask.array.Array of shape (N,) or (N, K)
        Row chunks as made by :func:`flatten_samples`.
    sample_chunks : tuple of tuples
        Chunks of the sample axes of the source.

    Returns
    -------
    dask.array.Array of the sample shape (plus K)
    """
    if len(sample_chunks) == 1:
        return values
    extra = values.shape[1:]
    name = f"daskgmm_samples-{tokenize(values, sample_chunks)}"
    layer = {}
    numblocks = tuple(len(c) for c in sample_chunks)
    for i, index in enumerate(np.ndindex(*numblocks)):
        shape = tuple(sample_chunks[axis][j] for axis, j in enumerate(index)) + extra
        key = (values.name, i) + (0,) * len(extra)
        layer[(name, *index) + (0,) * len(extra)] = (np.reshape, key, shape)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[values])
    chunks = tuple(sample_chunks) + tuple((n,) for n in extra)
    meta = np.empty((0,) * len(chunks), dtype=values.dtype)
    return da.Array(graph, name, chunks=chunks, meta=meta)


def as_dask_array(X, chunk_rows="auto") -> da.Array:
    """A 2-D float dask array with one chunk along the features.

    Parameters
    ----------
    X : numpy array, dask array, array-like, or a source ``daskgmm.io`` opens
        (a Zarr store path or URL, a ``zarr.Array``, an xarray object with the
        features on its last dimension, a ``RowView``).  Integer and boolean
        data become float64; float32 stays float32.
    chunk_rows : int or 'auto'
        Rows per chunk when ``X`` is not already a dask array.

    Returns
    -------
    dask.array.Array
    """
    if is_external(X):
        X = open_external(X).data
    if not isinstance(X, da.Array):
        X = np.asarray(X)
        check_data_shape(X.shape, X.dtype)
        if chunk_rows == "auto":
            chunk_rows = auto_chunk_rows(X.shape[0], X.shape[1], X.dtype.itemsize)
        X = _views_as_dask(X, chunk_rows)
    check_data_shape(X.shape, X.dtype)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    target = _float_dtype(X.dtype)
    return X if X.dtype == target else X.astype(target)


def prepare_rows(X, sample_weight=None, chunk_rows="auto", n_components=None) -> RowChunks:
    """Validate data (and weights) and split them into row chunks for repeated passes.

    Parameters
    ----------
    X : array-like of shape (N, D), or a source ``daskgmm.io`` opens
    sample_weight : array-like of shape (N,), optional
        Numpy weights are checked here; dask weights during the first pass.
    chunk_rows : int or 'auto'
    n_components : int, optional
        When fitting, the minimum number of rows.

    Returns
    -------
    RowChunks
    """
    if is_external(X):
        X = open_external(X).data
    if not isinstance(X, da.Array):
        X = np.asarray(X)
    check_data_shape(X.shape, X.dtype, n_components)
    array = as_dask_array(X, chunk_rows)
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


def _tree_reduce(leaves: list, name: str, split_every: int) -> Delayed:
    """Merge leaves in a tree of ``split_every``-way merges, in fixed order."""
    level = 0
    while len(leaves) > 1:
        leaves = [
            delayed(merge_all, pure=True)(
                leaves[i : i + split_every], dask_key_name=(name, level, j)
            )
            for j, i in enumerate(range(0, len(leaves), split_every))
        ]
        level += 1
    return leaves[0]


def reduce_chunks(
    rows: RowChunks,
    chunk_func: Callable,
    shared,
    prefix: str = "daskgmm_estep",
    split_every: int | None = None,
) -> Delayed:
    """Graph of ``chunk_func`` on every row chunk, merged by a reduction tree.

    Parameters
    ----------
    rows : RowChunks
    chunk_func : callable
        ``chunk_func(block, shared, weights_or_None, chunk_index) -> SufficientStats``.
    shared : object
        Small parameters; placed in the graph once, under a ``daskgmm_params`` key.
    prefix : str
        Key prefix of the per-chunk tasks (what the dashboard shows).
    split_every : int, optional
        Fan-in of the reduction tree (default 8).

    Returns
    -------
    Delayed
        Computes to the merged statistics.
    """
    token = uuid.uuid4().hex
    params = delayed(shared, name=f"daskgmm_params-{token}", pure=True)
    weights = rows.weights or [None] * rows.n_chunks
    leaves = [
        delayed(chunk_func, pure=True)(
            block, params, weight, i, dask_key_name=(f"{prefix}-{token}", i)
        )
        for i, (block, weight) in enumerate(zip(rows.blocks, weights, strict=True))
    ]
    return _tree_reduce(leaves, f"daskgmm_reduce-{token}", split_every or DEFAULT_SPLIT_EVERY)


_BLAS_CONTROLLER = None


@contextmanager
def single_threaded_blas():
    """Limit BLAS to one thread while dask's threads run chunk kernels.

    Dask already runs one task per core; BLAS threads on top of that oversubscribe
    the cores, and idle BLAS threads of one library slow the tiny M-step products
    of another.  This limits the client process (and the threaded scheduler);
    :func:`compute` limits distributed workers through
    :func:`daskgmm.cluster.limit_worker_blas`.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
        yield


class SchedulerConnectionError(ConnectionError):
    """The dask scheduler went away during a computation; names its address."""


def _scheduler_address() -> str:
    """Address of the distributed scheduler dask would use now ('' if local)."""
    get = dask.base.get_scheduler()
    client = getattr(get, "__self__", None)
    return str(getattr(getattr(client, "scheduler", None), "address", "") or "")


def compute(*graphs):
    """Compute graphs in one call with single-threaded BLAS, here and on workers.

    Returns a tuple.

    Raises
    ------
    SchedulerConnectionError
        If the distributed scheduler is lost meanwhile (distributed cancels every
        pending result at once rather than hang).
    """
    with single_threaded_blas():
        try:
            client = _distributed_client()
            if client is not None:
                from .cluster import limit_worker_blas

                limit_worker_blas(client)
            progress = active_pass_progress()
            if client is not None and progress is not None:
                from .cluster import compute_with_progress

                return compute_with_progress(client, graphs, progress.chunk_fraction)
            return dask.compute(*graphs)
        except concurrent.futures.CancelledError as exc:
            address = _scheduler_address() or "the scheduler in use"
            raise SchedulerConnectionError(
                f"Lost the connection to the dask scheduler at {address} during the "
                f"computation ({exc}). Check that the scheduler is running and reachable, "
                "then fit again (with checkpoint= a fit resumes where it stopped)."
            ) from exc


def _distributed_client():
    """The ``distributed.Client`` dask computes with now, or None (local schedulers)."""
    owner = getattr(dask.base.get_scheduler(), "__self__", None)
    if owner is not None and type(owner).__module__.startswith("distributed"):
        return owner
    return None


@contextmanager
def using_scheduler(scheduler):
    """Compute with ``scheduler`` inside the block (None: dask's current default).

    ``scheduler`` is anything ``dask.compute(scheduler=...)`` accepts: 'threads',
    'sync', 'processes', or a ``distributed.Client``.
    """
    if scheduler is None:
        yield
        return
    with dask.config.set(scheduler=scheduler):
        yield


def map_rows(
    X: da.Array,
    row_func: Callable,
    shared,
    n_columns: int | None,
    dtype,
    prefix: str = "daskgmm_predict",
) -> da.Array:
    """Lazy blockwise ``row_func(block, shared)`` over row chunks.

    Parameters
    ----------
    X : dask.array.Array of shape (N, D), one chunk along the features
    row_func : callable
        ``row_func(block, shared) -> ndarray`` of shape (n,) or (n, n_columns).
    shared : object
        Small parameters; placed in the graph once.
    n_columns : int or None
        None for one value per row.
    dtype : numpy dtype of the result

    Returns
    -------
    dask.array.Array
    """
    token = uuid.uuid4().hex
    params = delayed(shared, name=f"daskgmm_params-{token}", pure=True)
    name = f"{prefix}-{token}"
    if n_columns is None:
        return X.map_blocks(
            row_func,
            params,
            drop_axis=1,
            dtype=dtype,
            name=name,
            meta=np.empty((0,), dtype),
        )
    return X.map_blocks(
        row_func,
        params,
        chunks=(X.chunks[0], (n_columns,)),
        dtype=dtype,
        name=name,
        meta=np.empty((0, 0), dtype),
    )


def gather_rows(rows: RowChunks, indices: np.ndarray):
    """Rows (and their weights) at sorted ``indices``, read in one pass.

    Returns
    -------
    X : ndarray of shape (len(indices), D)
    weights : ndarray of shape (len(indices),) or None
    """
    picked = [rows.array[indices]]
    if rows.weight_array is not None:
        picked.append(rows.weight_array[indices])
    out = compute(*picked)
    return out[0], (out[1] if len(out) > 1 else None)
