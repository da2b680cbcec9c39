"""Initialisation over chunked data: bounded samples, blockwise 'random', user inits."""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pytest
from _support import ComputeCounter
from scipy.optimize import linear_sum_assignment
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import daskgmm.engine.init as init_module
from daskgmm import GaussianMixture

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

COV_TYPES = ("full", "tied", "diag", "spherical")


class CountingArray:
    """Array-like over a numpy array that counts the rows of every read."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim
        self.n_reads = 0
        self.rows_read = 0
        self._lock = threading.Lock()  # dask reads chunks from several threads

    def __getitem__(self, key):
        out = self.array[key]
        if out.shape[0]:
            with self._lock:
                self.n_reads += 1
                self.rows_read += out.shape[0]
        return out


def counted_dask_array(X, chunk_rows):
    counting = CountingArray(X)
    dX = da.from_array(counting, chunks=(chunk_rows, -1), asarray=True, lock=False)
    counting.n_reads = counting.rows_read = 0
    return counting, dX


CENTRES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


def blobs(n_per, seed=0, centres=CENTRES):
    rng = np.random.default_rng(seed)
    X = np.vstack([c + rng.standard_normal((n_per, centres.shape[1])) for c in centres])
    return X[rng.permutation(len(X))]


def matched_error(means, truth):
    """Largest distance between fitted and true means after optimal matching."""
    cost = np.linalg.norm(means[:, None, :] - truth[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    return float(np.max(np.abs(means[rows] - truth[cols])))


@pytest.fixture
def gather_spy(monkeypatch):
    """Records every call of gather_rows made by the initialiser."""
    calls = []
    original = init_module.gather_rows

    def spy(rows, indices):
        X, weights = original(rows, indices)
        calls.append({"n_indices": len(indices), "n_rows": X.shape[0]})
        return X, weights

    monkeypatch.setattr(init_module, "gather_rows", spy)
    return calls


# --------------------------------------------------------------------------- #
# sample-based initialisers read a bounded sample
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data"])
def test_sample_initialisers_use_bounded_sample(init_params, gather_spy, monkeypatch):
    sample_size = 1000
    X = blobs(n_per=7000)  # 21000 rows
    counting, dX = counted_dask_array(X, chunk_rows=2100)
    n_chunks = dX.numblocks[0]
    assert n_chunks == 10

    seen = []
    original = init_module._SAMPLE_INITIALISERS[init_params]

    def initialiser(Xs, weights, k, random_state):
        seen.append(Xs.shape)
        reads_at_init.append(counting.n_reads)
        return original(Xs, weights, k, random_state)

    reads_at_init = []
    monkeypatch.setitem(init_module._SAMPLE_INITIALISERS, init_params, initialiser)

    gm = GaussianMixture(
        3, init_params=init_params, init_sample_size=sample_size, random_state=0, tol=1e-6
    )
    with ComputeCounter() as computes:
        gm.fit(dX)

    assert len(gather_spy) == 1
    assert gather_spy[0]["n_indices"] == sample_size
    assert gather_spy[0]["n_rows"] == sample_size
    assert seen == [(sample_size, 2)]
    # the sample is gathered in a single pass: at most one read per chunk
    assert len(reads_at_init) == 1
    assert reads_at_init[0] <= n_chunks
    # then one pass per EM iteration, one compute each
    assert counting.n_reads - reads_at_init[0] == n_chunks * gm.n_iter_
    assert computes.count == gm.n_iter_ + 1

    assert gm.converged_
    assert matched_error(gm.means_, CENTRES) < 0.1
    np.testing.assert_allclose(np.sort(gm.weights_), [1 / 3] * 3, atol=0.02)


def test_sample_is_all_rows_in_order_when_small(gather_spy):
    X = blobs(n_per=200)
    gm = GaussianMixture(3, init_sample_size=len(X), max_iter=1, random_state=0)
    gm.fit(da.from_array(X, chunks=(100, -1)))
    assert gather_spy == [{"n_indices": len(X), "n_rows": len(X)}]


# --------------------------------------------------------------------------- #
# init_params='random'
# --------------------------------------------------------------------------- #
def test_random_init_is_reproducible_and_blockwise(gather_spy):
    X = blobs(n_per=500)

    def fit(random_state, data):
        return GaussianMixture(
            3, init_params="random", max_iter=5, tol=0.0, random_state=random_state
        ).fit(data)

    # two distinct dask arrays with the same chunking
    a = fit(0, da.from_array(X, chunks=(300, -1)))
    b = fit(0, da.from_array(X.copy(), chunks=(300, -1)))
    c = fit(1, da.from_array(X, chunks=(300, -1)))
    assert np.array_equal(a.means_, b.means_)
    assert np.array_equal(a.covariances_, b.covariances_)
    assert np.array_equal(a.weights_, b.weights_)
    assert np.max(np.abs(a.means_ - c.means_)) > 1e-6
    assert gather_spy == []

    # the initial parameters themselves (max_iter=0 returns them)
    p0 = GaussianMixture(3, init_params="random", max_iter=0, random_state=0)
    p0.fit(da.from_array(X, chunks=(300, -1)))
    p1 = GaussianMixture(3, init_params="random", max_iter=0, random_state=0)
    p1.fit(da.from_array(X, chunks=(300, -1)))
    assert np.array_equal(p0.means_, p1.means_)
    # random responsibilities: every initial mean is near the overall mean
    assert np.max(np.abs(p0.means_ - X.mean(axis=0))) < 1.0
    assert gather_spy == []


def test_random_init_reads_one_pass():
    X = blobs(n_per=500)
    counting, dX = counted_dask_array(X, chunk_rows=300)
    n_chunks = dX.numblocks[0]
    gm = GaussianMixture(3, init_params="random", max_iter=0, random_state=0).fit(dX)
    assert gm.means_.shape == (3, 2)
    assert counting.n_reads == n_chunks


# --------------------------------------------------------------------------- #
# user-supplied initial parameters
# --------------------------------------------------------------------------- #
def user_inits(covariance_type, k=3, d=2):
    rng = np.random.default_rng(5)
    a = rng.normal(size=(k, d, d)) * 0.3
    full = a @ np.swapaxes(a, 1, 2) + np.eye(d)
    precisions = {
        "full": full,
        "tied": full[0],
        "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
        "spherical": np.array([0.8, 1.0, 1.2]),
    }[covariance_type]
    return dict(
        weights_init=np.array([0.2, 0.3, 0.5]),
        means_init=CENTRES + np.array([[1.0, -0.5], [-1.0, 0.7], [0.4, 1.2]]),
        precisions_init=precisions,
    )


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_complete_user_inits_read_nothing_and_drive_first_estep(
    covariance_type, gather_spy, monkeypatch
):
    def no_random_pass(*args, **kwargs):
        raise AssertionError("the 'random' init pass ran")

    monkeypatch.setattr(init_module, "random_responsibilities", no_random_pass)
    X = blobs(n_per=300)
    inits = user_inits(covariance_type)
    counting, dX = counted_dask_array(X, chunk_rows=250)
    n_chunks = dX.numblocks[0]

    for init_params in ("kmeans", "random"):
        counting.n_reads = 0
        gm = GaussianMixture(
            3,
            covariance_type=covariance_type,
            max_iter=1,
            init_params=init_params,
            random_state=0,
            **inits,
        )
        with ComputeCounter() as computes:
            gm.fit(dX)
        assert gather_spy == []
        assert counting.n_reads == n_chunks  # only the first E-step's pass
        assert computes.count == 1

        sk = SkGaussianMixture(
            3, covariance_type=covariance_type, max_iter=1, random_state=0, **inits
        ).fit(X)
        # the E-step's log-likelihood is that of the given parameters
        assert gm.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-7)
        np.testing.assert_allclose(gm.weights_, sk.weights_, rtol=1e-7)
        np.testing.assert_allclose(gm.means_, sk.means_, rtol=1e-7)
        np.testing.assert_allclose(gm.covariances_, sk.covariances_, rtol=1e-7)
        np.testing.assert_allclose(gm.precisions_, sk.precisions_, rtol=1e-7)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_kmeans_init_equals_sklearn_when_sample_is_everything(covariance_type):
    X = blobs(n_per=300, seed=4)
    dX = da.from_array(X, chunks=(170, -1))
    for max_iter in (0, 1):
        gm = GaussianMixture(
            3, covariance_type=covariance_type, max_iter=max_iter, random_state=3
        ).fit(dX)
        sk = SkGaussianMixture(
            3, covariance_type=covariance_type, max_iter=max_iter, random_state=3
        ).fit(X)
        np.testing.assert_allclose(gm.means_, sk.means_, rtol=1e-7)
        np.testing.assert_allclose(gm.weights_, sk.weights_, rtol=1e-7)
        np.testing.assert_allclose(gm.covariances_, sk.covariances_, rtol=1e-7)
    assert matched_error(gm.means_, CENTRES) < 0.2


# --------------------------------------------------------------------------- #
# sample weights in the k-means initialiser
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("init_sample_size", [100_000, 300], ids=["all-rows", "sampled"])
@pytest.mark.parametrize("weights_kind", ["numpy", "dask"])
def test_kmeans_init_uses_sample_weight(init_sample_size, weights_kind):
    rng = np.random.default_rng(2)
    truth = np.array([[0.0, 0.0], [6.0, 0.0]])
    X = np.vstack(
        [
            rng.normal(truth[0], 1.0, (400, 2)),
            rng.normal(truth[1], 1.0, (400, 2)),
            rng.normal(60.0, 0.5, (30, 2)),  # outliers
        ]
    )
    order = rng.permutation(len(X))
    X = X[order]
    weights = np.r_[np.ones(800), np.zeros(30)][order]
    dX = da.from_array(X, chunks=(100, -1))
    sample_weight = weights if weights_kind == "numpy" else da.from_array(weights, chunks=100)

    def initial(sw):
        return GaussianMixture(
            2, max_iter=0, random_state=0, init_sample_size=init_sample_size
        ).fit(dX, sample_weight=sw)

    unweighted = initial(None)
    # control: without weights the outliers take a component of their own
    assert np.min(np.linalg.norm(unweighted.means_ - 60.0, axis=1)) < 1.0

    weighted = initial(sample_weight)
    assert np.all(np.linalg.norm(weighted.means_ - 60.0, axis=1) > 50.0)
    assert matched_error(weighted.means_, truth) < 0.3
    np.testing.assert_allclose(weighted.weights_, [0.5, 0.5], atol=0.06)
