"""Passes over the row chunks: the ONE statistics pass, and lazy per-row maps.

One EM iteration (or mini-batch, or ``init_params='random'``) is one graph built
afresh from small numpy parameters::

    daskgmm_params ─┐
    row chunk i ────┴─> daskgmm_estep (i) ──> daskgmm_reduce (level, j) ──> ... ──> stats

The parameters enter the graph once, as one key every E-step task depends on;
each E-step task reduces its chunk to
:class:`~daskgmm.kernels.stats.SufficientStats`, and a tree of
``split_every``-way merges in fixed chunk order combines them, so the result does
not depend on which worker finished first.  :func:`run_pass` over all chunks is
a batch iteration; over some of them, a mini-batch.
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dask.array as da
import numpy as np
from dask.delayed import Delayed, delayed
from dask.highlevelgraph import HighLevelGraph
from dask.task_spec import DataNode, List, Task, TaskRef

from ..cluster import current_client
from ..cluster.hold import hold_on_workers
from ..kernels.devices import empty_like_chunks
from ..kernels.estep import chunk_stats
from ..kernels.nan_policy import check_bad_rows
from ..kernels.scale import check_overflow_rows
from ..kernels.stats import SufficientStats, merge_all
from .compute import compute
from .rows import RowChunks

DEFAULT_SPLIT_EVERY = 8


def _tree_reduce(layer: dict, leaves: list, name: str, split_every: int):
    """Add to ``layer`` a tree of ``split_every``-way merges of ``leaves`` (keys), in
    fixed order; returns the key of the root."""
    level = 0
    while len(leaves) > 1:
        merged = []
        for j, i in enumerate(range(0, len(leaves), split_every)):
            key = (name, level, j)
            layer[key] = Task(key, merge_all, List(*map(TaskRef, leaves[i : i + split_every])))
            merged.append(key)
        leaves, level = merged, level + 1
    return leaves[0]


def _chunk_stats_at(block, shared, weight, position: int) -> SufficientStats:
    """``chunk_stats`` of the chunk at ``position`` of a pass, named by its index in
    the array (which seeds random responsibilities and names bad rows' chunks).
    Finite rows whose densities overflow raise (:func:`check_overflow_rows`)."""
    responsibilities, chunk_ids = shared
    stats = chunk_stats(block, responsibilities, weight, int(chunk_ids[position]))
    check_overflow_rows(block, stats, int(chunk_ids[position]))
    return stats


def pass_graph(
    rows: RowChunks,
    responsibilities,
    chunk_ids: Sequence[int] | None = None,
    prefix: str = "daskgmm_estep",
    split_every: int | None = None,
) -> Delayed:
    """Graph of one pass: the chunk E-step on the chosen chunks, merged by a tree.

    Parameters
    ----------
    rows : RowChunks
    responsibilities : EStep, RandomResponsibilities or GivenResponsibilities
        What assigns rows to components (:mod:`daskgmm.kernels.responsibilities`);
        placed in the graph once, under a ``daskgmm_params`` key.
    chunk_ids : sequence of int, optional
        The row chunks to visit, in this order (a mini-batch); default all.
    prefix : str
        Key prefix of the per-chunk tasks (what the dashboard shows).
    split_every : int, optional
        Fan-in of the reduction tree (default 8).

    Returns
    -------
    Delayed
        Computes to the merged :class:`SufficientStats`.
    """
    ids = tuple(range(rows.n_chunks)) if chunk_ids is None else tuple(int(i) for i in chunk_ids)
    token = uuid.uuid4().hex
    shared = delayed((responsibilities, ids), name=f"daskgmm_params-{token}", pure=True)
    weights = rows.weights or [None] * rows.n_chunks
    # The tasks are written as one layer over the blocks' keys: ``delayed`` calls
    # merge their arguments' graphs one call at a time, which took most of the
    # client's time between two passes (see benchmarks/bench_events.py).
    layer = {}
    for position, chunk in enumerate(ids):
        key = (f"{prefix}-{token}", position)
        weight = None if weights[chunk] is None else TaskRef(weights[chunk].key)
        block, params = TaskRef(rows.blocks[chunk].key), TaskRef(shared.key)
        layer[key] = Task(key, _chunk_stats_at, block, params, weight, position)
    root = _tree_reduce(
        layer, list(layer), f"daskgmm_reduce-{token}", split_every or DEFAULT_SPLIT_EVERY
    )
    # the blocks of an array share one graph: each distinct graph is merged once
    used = [rows.blocks[chunk] for chunk in ids]
    used += [weights[chunk] for chunk in ids if weights[chunk] is not None]
    sources = [shared, *{id(block.dask): block for block in used}.values()]
    name = f"daskgmm_pass-{token}"
    graph = HighLevelGraph.from_collections(name, layer, dependencies=sources)
    return Delayed(root, graph, layer=name)


@dataclass
class PassClock:
    """When a pass was handed to the scheduler and when its results came back
    (``time.perf_counter`` seconds; NaN before): the client-side gap between two
    passes is the second pass's ``submitted`` less the first's ``returned``."""

    submitted: float = math.nan
    returned: float = math.nan


def run_pass(
    rows: RowChunks,
    responsibilities,
    chunk_ids: Sequence[int] | None = None,
    *,
    prefix: str = "daskgmm_estep",
    split_every: int | None = None,
    nan_policy: str = "raise",
    clock: PassClock | None = None,
) -> SufficientStats:
    """One pass (one ``compute``): merged statistics of the chosen chunks.

    Parameters are as for :func:`pass_graph`; ``nan_policy`` decides what rows
    with NaN or inf do (:func:`daskgmm.kernels.nan_policy.check_bad_rows`);
    ``clock``, when given, is set to when the pass was submitted and returned.

    Raises
    ------
    ValueError
        If rows hold NaN or infinite values (under 'raise'), nothing is left
        (under 'omit'), or the sample weights sum to zero.
    """
    graph = pass_graph(rows, responsibilities, chunk_ids, prefix, split_every)
    if clock is not None:
        clock.submitted = time.perf_counter()
    stats = compute(graph)[0]
    if clock is not None:
        clock.returned = time.perf_counter()
    check_bad_rows(stats, nan_policy)
    return stats


def _literal_bytes(collections: list) -> int:
    """Bytes of the numpy arrays written into the graphs of ``collections`` (the
    data of in-memory input; 0 for data read by tasks)."""
    graphs = {id(c.dask): c.dask for c in collections}
    total = 0
    for graph in graphs.values():
        for value in dict(graph).values():
            value = value.value if isinstance(value, DataNode) else value
            total += value.nbytes if isinstance(value, np.ndarray) else 0
    return total


@contextmanager
def held_rows(rows: RowChunks):
    """``rows``, or on a distributed cluster, for in-memory data, the same rows
    kept on the workers for the block (:func:`daskgmm.cluster.hold.hold_on_workers`):
    each pass then sends the workers the parameters, not the data."""
    client = current_client()
    blocks = rows.blocks + (rows.weights or [])
    nbytes = _literal_bytes(blocks) if client is not None else 0
    held = hold_on_workers(client, blocks, nbytes) if nbytes else None
    if held is None:
        yield rows
        return
    n = rows.n_chunks
    yield dataclasses.replace(rows, blocks=held[:n], weights=held[n:] or None)
    del held  # the futures go, and the workers forget the rows


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
        ``row_func(block, shared) -> ndarray`` of shape (n,) or (n, n_columns), in
        the block's namespace (CuPy blocks give CuPy results).
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
            name=name,
            meta=empty_like_chunks(X._meta, (0,), dtype),  # gives the dtype
        )
    return X.map_blocks(
        row_func,
        params,
        chunks=(X.chunks[0], (n_columns,)),
        name=name,
        meta=empty_like_chunks(X._meta, (0, 0), dtype),
    )
