"""One pass over the data per EM iteration, observed from outside.

The data sit behind an array-like that counts every ``__getitem__`` (every chunk
read); dask callbacks count computes and record every task's key and result.
"""

from __future__ import annotations

import collections
import os

import dask.array as da
import numpy as np
import pytest
from _support import INPUT_NAME, counted_dask_array
from dask.callbacks import Callback
from dask.utils import key_split

from daskgmm import GaussianMixture
from daskgmm.engine.passes import pass_graph
from daskgmm.engine.rows import prepare_rows
from daskgmm.kernels.density import LogDensity
from daskgmm.kernels.responsibilities import EStep
from daskgmm.kernels.stats import SufficientStats

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class Recorder(Callback):
    """Counts computes; records graph keys and every executed task's result."""

    def __init__(self):
        super().__init__()
        self.graphs: list[dict] = []
        self.tasks: list[tuple] = []

    def _start(self, dsk):
        self.graphs.append(dict(dsk))

    def _posttask(self, key, result, dsk, state, id):
        self.tasks.append((key, result))

    @property
    def n_computes(self) -> int:
        return len(self.graphs)

    def executed_prefixes(self) -> set:
        return {key_split(key) for key, _ in self.tasks}

    def graph_prefixes(self) -> set:
        return {key_split(key) for graph in self.graphs for key in graph}


def blobs(n_per=600, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    X = np.vstack([c + rng.standard_normal((n_per, 2)) for c in centres])
    return X[rng.permutation(len(X))], centres


def given_inits(covariance_type, centres):
    k, d = centres.shape
    precisions = {
        "full": np.stack([np.eye(d)] * k),
        "tied": np.eye(d),
        "diag": np.ones((k, d)),
        "spherical": np.ones(k),
    }[covariance_type]
    return dict(
        weights_init=np.full(k, 1.0 / k),
        means_init=centres + 0.3,
        precisions_init=precisions,
    )


# --------------------------------------------------------------------------- #
# reads and computes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_one_read_per_chunk_and_one_compute_per_iteration(covariance_type):
    X, centres = blobs()
    counting, dX = counted_dask_array(X, chunk_rows=250)  # 7 full chunks + 1 of 50
    n_chunks = dX.numblocks[0]
    assert n_chunks == 8
    gm = GaussianMixture(
        3,
        covariance_type=covariance_type,
        max_iter=5,
        tol=0.0,
        **given_inits(covariance_type, centres),
    )
    with Recorder() as rec:
        gm.fit(dX)
    assert gm.n_iter_ == 5
    reads = counting.row_reads()
    assert len(counting.reads) == len(reads)  # no other kind of access
    assert len(reads) == n_chunks * gm.n_iter_
    # each chunk read whole, exactly n_iter_ times
    per_chunk = collections.Counter(key[0].start for key, _ in reads)
    assert per_chunk == {start: gm.n_iter_ for start in range(0, len(X), 250)}
    assert rec.n_computes == gm.n_iter_


def test_kmeans_init_adds_at_most_one_pass():
    X, _ = blobs()
    counting, dX = counted_dask_array(X, chunk_rows=250)
    n_chunks = dX.numblocks[0]
    gm = GaussianMixture(3, max_iter=4, tol=0.0, init_params="kmeans", random_state=0)
    with Recorder() as rec:
        gm.fit(dX)
    assert gm.n_iter_ == 4
    n_reads = len(counting.row_reads())
    assert n_chunks * gm.n_iter_ <= n_reads <= n_chunks * (gm.n_iter_ + 1)
    assert rec.n_computes == gm.n_iter_ + 1


def test_random_init_is_one_pass():
    X, _ = blobs()
    counting, dX = counted_dask_array(X, chunk_rows=250)
    n_chunks = dX.numblocks[0]
    gm = GaussianMixture(3, max_iter=3, tol=0.0, init_params="random", random_state=0)
    with Recorder() as rec:
        gm.fit(dX)
    assert gm.n_iter_ == 3
    assert len(counting.row_reads()) == n_chunks * (gm.n_iter_ + 1)
    assert rec.n_computes == gm.n_iter_ + 1


# --------------------------------------------------------------------------- #
# nothing of size N x K
# --------------------------------------------------------------------------- #
def _is_stats(result) -> bool:
    """A pass task's result: statistics, or a tuple of them (one per model)."""
    if isinstance(result, tuple):
        return bool(result) and all(isinstance(s, SufficientStats) for s in result)
    return isinstance(result, SufficientStats)


def _large_results(rec: Recorder, limit: int):
    """Executed non-input tasks whose result holds an array of >= limit elements."""
    large = []
    for key, result in rec.tasks:
        if key_split(key) == INPUT_NAME:
            continue
        if _is_stats(result):
            stats = result if isinstance(result, tuple) else (result,)
            arrays = [a for s in stats for a in (s.nk, s.means, s.m2)]
        else:
            arrays = [np.asarray(result)]
        for arr in arrays:
            if arr.size >= limit:
                large.append((key, type(result).__name__, arr.shape))
    return large


def test_no_rows_by_components_array_during_fit():
    X, centres = blobs(n_per=1000)
    n_components, chunk_rows = 3, 500
    _, dX = counted_dask_array(X, chunk_rows=chunk_rows)
    gm = GaussianMixture(
        n_components, covariance_type="full", max_iter=3, tol=0.0, **given_inits("full", centres)
    )
    with Recorder() as rec:
        gm.fit(dX)
    assert rec.tasks
    inputs = [r for k, r in rec.tasks if key_split(k) == INPUT_NAME]
    others = [r for k, r in rec.tasks if key_split(k) != INPUT_NAME]
    assert len(inputs) == dX.numblocks[0] * gm.n_iter_
    assert all(isinstance(r, np.ndarray) and r.shape == (chunk_rows, 2) for r in inputs)
    assert others and all(_is_stats(r) for r in others)
    # no task result, nor any array inside one, has as many elements as a chunk's rows
    assert _large_results(rec, limit=chunk_rows) == []

    # control: the detector does see the (rows, K) arrays of predict_proba
    with Recorder() as rec_proba:
        gm.predict_proba(dX).compute()
    shapes = [shape for _, _, shape in _large_results(rec_proba, limit=chunk_rows)]
    assert (chunk_rows, n_components) in shapes


# --------------------------------------------------------------------------- #
# task names
# --------------------------------------------------------------------------- #
def test_task_key_prefixes_of_fit_and_predict():
    X, centres = blobs()
    _, dX = counted_dask_array(X, chunk_rows=300)
    gm = GaussianMixture(3, max_iter=2, tol=0.0, **given_inits("full", centres))
    with Recorder() as rec:
        gm.fit(dX)
    executed = rec.executed_prefixes()
    assert {"daskgmm_estep", "daskgmm_reduce"} <= executed
    # the parameters are a graph node (data, not a task callback sees run) ...
    assert "daskgmm_params" in rec.graph_prefixes()
    for graph in rec.graphs:
        params = [k for k in graph if key_split(k) == "daskgmm_params"]
        estep = [k for k in graph if key_split(k) == "daskgmm_estep"]
        # ... entering every iteration's graph exactly once, shared by all E-step tasks
        assert len(params) == 1
        assert len(estep) == dX.numblocks[0]
        assert all(params[0] in graph[k].dependencies for k in estep)
    assert "daskgmm_predict" not in executed

    with Recorder() as rec_predict:
        labels = gm.predict(dX).compute()
    assert "daskgmm_predict" in rec_predict.executed_prefixes()
    assert "daskgmm_estep" not in rec_predict.executed_prefixes()
    assert labels.shape == (len(X),)


# --------------------------------------------------------------------------- #
# graph size
# --------------------------------------------------------------------------- #
def _reduce_graph_size(n_chunks, seed, split_every=None):
    rng = np.random.default_rng(seed)
    X = da.from_array(rng.normal(size=(10 * n_chunks, 2)), chunks=(10, -1))
    rows = prepare_rows(X)
    assert rows.n_chunks == n_chunks
    means = rng.normal(size=(3, 2))
    prec_chol = rng.uniform(0.5, 2.0, size=(3, 2))
    estep = EStep(LogDensity(means, prec_chol, "diag", np.full(3, 1.0 / 3)))
    graph = pass_graph(rows, estep, split_every=split_every)
    return len(dict(graph.__dask_graph__()))


@pytest.mark.parametrize("split_every", [None, 2])
def test_reduce_graph_is_linear_in_chunks(split_every):
    sizes = {n: _reduce_graph_size(n, seed=0, split_every=split_every) for n in (10, 100, 400)}
    for n, size in sizes.items():
        # one read and one E-step per chunk, plus a reduction tree of < n nodes
        assert 2 * n <= size <= 3 * n + 5, (n, size)
    # linear growth: the cost per extra chunk is constant (within the tree's rounding)
    slope_a = (sizes[100] - sizes[10]) / 90
    slope_b = (sizes[400] - sizes[100]) / 300
    assert slope_a == pytest.approx(slope_b, abs=0.05)
    # the graph does not depend on the parameters' values
    for n in (10, 100):
        assert _reduce_graph_size(n, seed=1, split_every=split_every) == sizes[n]


def test_iteration_graphs_do_not_grow():
    X, centres = blobs()
    _, dX = counted_dask_array(X, chunk_rows=100)
    gm = GaussianMixture(3, max_iter=6, tol=0.0, **given_inits("full", centres))
    with Recorder() as rec:
        gm.fit(dX)
    sizes = [len(graph) for graph in rec.graphs]
    assert len(sizes) == 6
    assert len(set(sizes)) == 1
    assert sizes[0] <= 3 * dX.numblocks[0] + 5


# --------------------------------------------------------------------------- #
# non-finite rows
# --------------------------------------------------------------------------- #
def test_nan_row_reported_from_the_first_pass():
    X, centres = blobs()
    X[3 * 200 + 17, 1] = np.nan  # one row in chunk 3 (0-based) of 200-row chunks
    counting, dX = counted_dask_array(X, chunk_rows=200)
    n_chunks = dX.numblocks[0]
    gm = GaussianMixture(3, max_iter=5, **given_inits("full", centres))
    with Recorder() as rec, pytest.raises(ValueError) as excinfo:
        gm.fit(dX)
    message = str(excinfo.value)
    assert "X contains 1 rows" in message
    assert "row chunks 3 (1 rows)" in message
    assert len(counting.row_reads()) <= n_chunks
    assert rec.n_computes == 1


def test_nan_row_reported_from_the_first_pass_random_init():
    X, _ = blobs()
    X[3 * 200 + 17, 1] = np.nan
    counting, dX = counted_dask_array(X, chunk_rows=200)
    n_chunks = dX.numblocks[0]
    gm = GaussianMixture(3, max_iter=5, init_params="random", random_state=0)
    with pytest.raises(ValueError, match=r"row chunks 3 \(1 rows\)"):
        gm.fit(dX)
    assert len(counting.row_reads()) <= n_chunks


@pytest.mark.parametrize("cores", [1, 3, 64])
def test_numpy_input_gives_the_same_fit_on_every_machine(monkeypatch, cores):
    # chunk_rows='auto' follows the data, not the core count: the chunks fix the
    # merge order and the 'random' start (drawn chunk by chunk)
    rng = np.random.default_rng(9)
    X = np.concatenate([rng.normal(size=(40_000, 3)), rng.normal(size=(40_000, 3)) + 4])
    common = {"init_params": "random", "random_state": 0, "max_iter": 5, "tol": 0.0}
    here = GaussianMixture(2, **common).fit(X)
    assert prepare_rows(X).n_chunks == 8  # 80,000 rows: chunks of 10,000
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert prepare_rows(X).n_chunks == 8
    there = GaussianMixture(2, **common).fit(X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(there, name), getattr(here, name))
    assert there.lower_bounds_ == here.lower_bounds_
