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
a batch iteration; over some of them, a mini-batch.  :func:`run_pass_many` serves
several models in one pass (restarts, a grid of models): each chunk is read once
and its task returns every model's statistics, merged model by model.
"""

from __future__ import annotations

import dataclasses
import itertools
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

from ..cluster import current_client, scheduler_threads
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
            layer[key] = Task(key, merge_each, List(*map(TaskRef, leaves[i : i + split_every])))
            merged.append(key)
        leaves, level = merged, level + 1
    return leaves[0]


def _chunk_stats_of(block, shared, weight, position: int, first: int, stop: int) -> tuple:
    """Statistics of the chunk at ``position`` of a pass under the models
    ``first:stop`` of the pass, one model after another (so that the temporaries
    are one model's, however many models share the pass).  The chunk is named by
    its index in the array, which seeds random responsibilities and names bad
    rows' chunks; finite rows whose densities overflow raise
    (:func:`check_overflow_rows`)."""
    responsibilities, chunk_ids = shared
    chunk = int(chunk_ids[position])
    out = []
    for spec in responsibilities[first:stop]:
        stats = chunk_stats(block, spec, weight, chunk)
        check_overflow_rows(block, stats, chunk)
        out.append(stats)
    return tuple(out)


def merge_each(groups: list[tuple]) -> tuple:
    """Merge tuples of statistics model by model (one node of a reduction tree):
    each model's statistics are merged as :func:`merge_all` merges one model's."""
    return tuple(merge_all(list(column)) for column in zip(*groups, strict=True))


def _joined(*groups: tuple) -> tuple:
    return tuple(stats for group in groups for stats in group)


def _only(group: tuple) -> SufficientStats:
    (stats,) = group
    return stats


def model_groups(responsibilities: Sequence, n_features: int, n_tasks: int) -> list[range]:
    """The models of a pass in contiguous groups, one task per chunk and group.

    Models are processed one after another inside a task, so a task's
    temporaries are one model's whatever the group's size; groups exist for
    parallelism: when there are fewer chunks than ``n_tasks`` (about twice the
    threads), the models are split into groups of about equal arithmetic
    (components times the size of a covariance) so that every thread has work.
    """
    n = len(responsibilities)
    n_groups = max(1, min(n, n_tasks))
    if n_groups == 1:
        return [range(n)]
    cost = np.array([_model_cost(spec, n_features) for spec in responsibilities], float)
    bounds = np.searchsorted(np.cumsum(cost), cost.sum() * np.arange(1, n_groups) / n_groups)
    edges = sorted({0, n, *(int(b) + 1 for b in bounds)})
    return [range(a, b) for a, b in itertools.pairwise(edges) if b > a]


def _model_cost(spec, n_features: int) -> float:
    per_component = n_features**2 if spec.covariance_type in ("full", "tied") else n_features
    return float(spec.n_components * (per_component + n_features))


def pass_graph_many(
    rows: RowChunks,
    responsibilities: Sequence,
    chunk_ids: Sequence[int] | None = None,
    prefix: str = "daskgmm_estep",
    split_every: int | None = None,
    threads: int | None = None,
    *,
    one: bool = False,
) -> Delayed:
    """Graph of one pass for several models at once: each chunk is read once and
    reduced to every model's statistics.

    Parameters
    ----------
    rows : RowChunks
    responsibilities : sequence of EStep, RandomResponsibilities, GivenResponsibilities
        What assigns rows to components, one per model
        (:mod:`daskgmm.kernels.responsibilities`); placed in the graph once, under
        a ``daskgmm_params`` key.
    chunk_ids : sequence of int, optional
        The row chunks to visit, in this order (a mini-batch); default all.
    prefix : str
        Key prefix of the per-chunk tasks (what the dashboard shows).
    split_every : int, optional
        Fan-in of the reduction tree (default 8).
    threads : int, optional
        Threads that will compute the pass (default: of the scheduler in use):
        with fewer chunks than twice as many, the models are split into groups
        (:func:`model_groups`) computed by tasks of their own on the same block.
    one : bool
        For a single model: compute to its statistics rather than a tuple of one.

    Returns
    -------
    Delayed
        Computes to a tuple of merged :class:`SufficientStats`, one per model,
        in order.  Each model's are those a pass of that model alone gives: the
        same chunk kernels, merged by the same tree.
    """
    ids = tuple(range(rows.n_chunks)) if chunk_ids is None else tuple(int(i) for i in chunk_ids)
    token = uuid.uuid4().hex
    shared = delayed((tuple(responsibilities), ids), name=f"daskgmm_params-{token}", pure=True)
    weights = rows.weights or [None] * rows.n_chunks
    threads = threads or scheduler_threads()
    groups = model_groups(responsibilities, rows.n_features, -(-2 * threads // max(len(ids), 1)))
    # The tasks are written as one layer over the blocks' keys: ``delayed`` calls
    # merge their arguments' graphs one call at a time, which took most of the
    # client's time between two passes (see benchmarks/bench_events.py).
    layer, roots = {}, []
    for g, group in enumerate(groups):
        leaves = []
        for position, chunk in enumerate(ids):
            key = (
                (f"{prefix}-{token}", position)
                if len(groups) == 1
                else (f"{prefix}-{token}", g, position)
            )
            weight = None if weights[chunk] is None else TaskRef(weights[chunk].key)
            block, params = TaskRef(rows.blocks[chunk].key), TaskRef(shared.key)
            layer[key] = Task(
                key, _chunk_stats_of, block, params, weight, position, group.start, group.stop
            )
            leaves.append(key)
        name = f"daskgmm_reduce-{token}" if len(groups) == 1 else f"daskgmm_reduce-{token}-{g}"
        roots.append(_tree_reduce(layer, leaves, name, split_every or DEFAULT_SPLIT_EVERY))
    root = roots[0]
    if len(roots) > 1 or one:
        key = (f"daskgmm_reduce-{token}", "models")
        layer[key] = Task(key, _only if one else _joined, *map(TaskRef, roots))
        root = key
    # the blocks of an array share one graph: each distinct graph is merged once
    used = [rows.blocks[chunk] for chunk in ids]
    used += [weights[chunk] for chunk in ids if weights[chunk] is not None]
    sources = [shared, *{id(block.dask): block for block in used}.values()]
    name = f"daskgmm_pass-{token}"
    graph = HighLevelGraph.from_collections(name, layer, dependencies=sources)
    return Delayed(root, graph, layer=name)


def pass_graph(
    rows: RowChunks,
    responsibilities,
    chunk_ids: Sequence[int] | None = None,
    prefix: str = "daskgmm_estep",
    split_every: int | None = None,
) -> Delayed:
    """Graph of one pass: the chunk E-step on the chosen chunks, merged by a tree.

    :func:`pass_graph_many` for one model (``responsibilities``, not a sequence);
    computes to its merged :class:`SufficientStats`.
    """
    return pass_graph_many(rows, [responsibilities], chunk_ids, prefix, split_every, 1, one=True)


@dataclass
class PassClock:
    """When a pass was handed to the scheduler and when its results came back
    (``time.perf_counter`` seconds; NaN before): the client-side gap between two
    passes is the second pass's ``submitted`` less the first's ``returned``."""

    submitted: float = math.nan
    returned: float = math.nan


def run_pass_many(
    rows: RowChunks,
    responsibilities: Sequence,
    chunk_ids: Sequence[int] | None = None,
    *,
    prefix: str = "daskgmm_estep",
    split_every: int | None = None,
    nan_policy: str = "raise",
    clock: PassClock | None = None,
) -> tuple[SufficientStats, ...]:
    """One pass (one ``compute``) for several models: each model's merged
    statistics of the chosen chunks, each chunk read once.

    Parameters are as for :func:`pass_graph_many`; ``nan_policy`` decides what
    rows with NaN or inf do (:func:`daskgmm.kernels.nan_policy.check_bad_rows`);
    ``clock``, when given, is set to when the pass was submitted and returned.

    Raises
    ------
    ValueError
        If rows hold NaN or infinite values (under 'raise'), nothing is left
        (under 'omit'), or the sample weights sum to zero.
    """
    graph = pass_graph_many(rows, responsibilities, chunk_ids, prefix, split_every)
    if clock is not None:
        clock.submitted = time.perf_counter()
    stats = compute(graph)[0]
    if clock is not None:
        clock.returned = time.perf_counter()
    for one in stats:
        check_bad_rows(one, nan_policy)
    return stats


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
    """:func:`run_pass_many` for one model: its merged statistics."""
    (stats,) = run_pass_many(
        rows,
        [responsibilities],
        chunk_ids,
        prefix=prefix,
        split_every=split_every,
        nan_policy=nan_policy,
        clock=clock,
    )
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
