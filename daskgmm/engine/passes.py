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

import uuid
from collections.abc import Callable, Sequence

import dask.array as da
import numpy as np
from dask.delayed import Delayed, delayed

from ..kernels.estep import chunk_stats
from ..kernels.nan_policy import check_bad_rows
from ..kernels.scale import check_overflow_rows
from ..kernels.stats import SufficientStats, merge_all
from .compute import compute
from .rows import RowChunks

DEFAULT_SPLIT_EVERY = 8


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
    leaves = [
        delayed(_chunk_stats_at, pure=True)(
            rows.blocks[chunk],
            shared,
            weights[chunk],
            position,
            dask_key_name=(f"{prefix}-{token}", position),
        )
        for position, chunk in enumerate(ids)
    ]
    return _tree_reduce(leaves, f"daskgmm_reduce-{token}", split_every or DEFAULT_SPLIT_EVERY)


def run_pass(
    rows: RowChunks,
    responsibilities,
    chunk_ids: Sequence[int] | None = None,
    *,
    prefix: str = "daskgmm_estep",
    split_every: int | None = None,
    nan_policy: str = "raise",
) -> SufficientStats:
    """One pass (one ``compute``): merged statistics of the chosen chunks.

    Parameters are as for :func:`pass_graph`; ``nan_policy`` decides what rows
    with NaN or inf do (:func:`daskgmm.kernels.nan_policy.check_bad_rows`).

    Raises
    ------
    ValueError
        If rows hold NaN or infinite values (under 'raise'), nothing is left
        (under 'omit'), or the sample weights sum to zero.
    """
    graph = pass_graph(rows, responsibilities, chunk_ids, prefix, split_every)
    stats = compute(graph)[0]
    check_bad_rows(stats, nan_policy)
    return stats


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
