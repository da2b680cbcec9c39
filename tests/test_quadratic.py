"""The quadratic-feature E-step kernel of 'full'/'tied' mixtures, in numpy.

It must give the statistics the whitening kernel gives (to rounding), hand blocks
it cannot do accurately back to the whitening kernel, and keep daskgmm equal to
scikit-learn on a problem where it is used (K=8, D=16).  These tests run the numpy
kernel (the reference of the compiled one, ``tests/test_compiled.py``).
"""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import daskgmm.kernels.blocks as blocks_module
import daskgmm.kernels.estep as stats_module
from daskgmm import GaussianMixture
from daskgmm.kernels.covariance import precision_cholesky
from daskgmm.kernels.density import LogDensity, Workspace
from daskgmm.kernels.estep import chunk_stats
from daskgmm.kernels.quadratic import TOLERANCE, QuadraticEStep, quadratic_block_rows, worthwhile
from daskgmm.kernels.responsibilities import EStep

K, D = 8, 16
BLOCK = quadratic_block_rows(D)


@pytest.fixture(autouse=True)
def numpy_kernel(monkeypatch):
    """The numpy quadratic kernel, not the compiled one."""
    monkeypatch.setattr(stats_module, "USE_COMPILED", False)


def _mixture(cov_type: str, seed: int = 0, spread: float = 0.2):
    rng = np.random.default_rng(seed)
    means = 3.0 * rng.standard_normal((K, D))
    factors = spread * rng.standard_normal((K, D, D))
    covariances = factors @ np.swapaxes(factors, 1, 2) + np.eye(D)
    if cov_type == "tied":
        covariances = covariances[0]
    weights = rng.dirichlet(np.ones(K))
    prec_chol = precision_cholesky(covariances, cov_type)
    return EStep(LogDensity(means, prec_chol, cov_type, weights)), means


def _general_only(monkeypatch):
    monkeypatch.setattr(stats_module, "QUADRATIC_TYPES", ())


class _QuadraticSpy:
    """Records what the quadratic kernel returned for each block it was given."""

    def __init__(self, monkeypatch):
        self.results = []
        real = blocks_module.quadratic_block

        def spy(*args, **kwargs):
            out = real(*args, **kwargs)
            self.results.append(out is not None)
            return out

        monkeypatch.setattr(blocks_module, "quadratic_block", spy)

    @property
    def accepted(self) -> int:
        return sum(self.results)


def _assert_same_stats(a, b, rtol=1e-11):
    np.testing.assert_allclose(a.nk, b.nk, rtol=rtol)
    np.testing.assert_allclose(a.means, b.means, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.m2, b.m2, rtol=rtol, atol=rtol * np.abs(b.m2).max())
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=rtol)
    assert (a.n_rows, a.n_bad, a.bad_chunks) == (b.n_rows, b.n_bad, b.bad_chunks)
    assert a.weight_sum == pytest.approx(b.weight_sum, rel=1e-13)


def test_used_where_it_pays():
    assert worthwhile(8, 16) and worthwhile(4, 24)
    assert not worthwhile(2, 16) and not worthwhile(8, 64)


@pytest.mark.parametrize("cov_type", ["full", "tied"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_statistics_as_whitening(cov_type, dtype, weighted, monkeypatch):
    estep, means = _mixture(cov_type)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, K, 20_000)
    X = (means[labels] + rng.standard_normal((20_000, D))).astype(dtype)
    w = rng.uniform(0.0, 2.0, X.shape[0]) if weighted else None
    spy = _QuadraticSpy(monkeypatch)
    fast = chunk_stats(X, estep, w, chunk_index=3)
    assert len(spy.results) > 1 and all(spy.results)  # every block by the quadratic kernel
    _general_only(monkeypatch)
    slow = chunk_stats(X, estep, w, chunk_index=3)
    _assert_same_stats(fast, slow)


@pytest.mark.parametrize("cov_type", ["full", "tied"])
def test_bad_rows_counted_as_by_whitening(cov_type, monkeypatch):
    estep, means = _mixture(cov_type)
    rng = np.random.default_rng(2)
    X = means[rng.integers(0, K, 30_000)] + rng.standard_normal((30_000, D))
    X[[5, 4000, 9999], [0, 3, 15]] = np.nan
    X[7000, 2] = np.inf
    bad_blocks = {5 // BLOCK, 4000 // BLOCK, 9999 // BLOCK, 7000 // BLOCK}
    spy = _QuadraticSpy(monkeypatch)
    fast = chunk_stats(X, estep, chunk_index=9)
    assert fast.n_bad == 4 and fast.bad_chunks == {9: 4} and fast.n_rows == 30_000
    # blocks with a bad row go to the whitening kernel, which counts them; the rest not
    assert len(spy.results) == -(-30_000 // BLOCK)
    assert [not ok for ok in spy.results] == [b in bad_blocks for b in range(len(spy.results))]
    _general_only(monkeypatch)
    _assert_same_stats(fast, chunk_stats(X, estep, chunk_index=9))


def test_inaccurate_blocks_go_to_whitening(monkeypatch):
    # Components with spread 1e-4, 1e3 apart: expanding (x - a)^T L (x - a) would
    # add terms ~1e14 to get ~16, so the kernel must decline these blocks.
    rng = np.random.default_rng(3)
    means = 1e3 * rng.standard_normal((K, D))
    covariances = np.stack([1e-8 * np.eye(D)] * K)
    prec_chol = precision_cholesky(covariances, "full")
    estep = EStep(LogDensity(means, prec_chol, "full", np.full(K, 1.0 / K)))
    labels = rng.integers(0, K, 5000)
    X = means[labels] + 1e-4 * rng.standard_normal((5000, D))
    quadratic = QuadraticEStep(estep.log_density, X[:100].mean(axis=0))
    largest = float((np.square(X - quadratic.shift)).sum(axis=1).max())
    assert quadratic.error_bound(largest) > TOLERANCE
    assert quadratic.features(X, Workspace()) is None
    spy = _QuadraticSpy(monkeypatch)
    calls = []
    real = blocks_module.general_block
    monkeypatch.setattr(
        blocks_module, "general_block", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    got = chunk_stats(X, estep)
    assert spy.results == [False, False]  # the quadratic kernel declined both blocks
    assert len(calls) == 2  # ... and both went to the whitening kernel
    # and the second moments are right: against the exact, per-component ones
    for k in range(K):
        rows = X[labels == k].astype(np.longdouble)
        centred = rows - rows.mean(axis=0)
        exact = (centred.T @ centred).astype(np.float64)
        np.testing.assert_allclose(got.m2[k], exact, rtol=0, atol=1e-7 * np.abs(exact).max())


@pytest.mark.parametrize("cov_type", ["full", "tied"])
def test_agrees_with_sklearn_at_k8_d16(cov_type, monkeypatch):
    rng = np.random.default_rng(4)
    centres = 4.0 * rng.standard_normal((K, D))
    X = centres[rng.integers(0, K, 12_000)] + rng.standard_normal((12_000, D))
    start = {
        "weights_init": np.full(K, 1.0 / K),
        "means_init": centres + 0.5 * rng.standard_normal((K, D)),
        # pinned: without it scikit-learn starts the covariances from a KMeans
        # run with random_state=None, so its iteration count varied between runs
        "precisions_init": np.eye(D) if cov_type == "tied" else np.tile(np.eye(D), (K, 1, 1)),
    }
    common = {"covariance_type": cov_type, "tol": 1e-6, "max_iter": 30, **start}
    spy = _QuadraticSpy(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkGaussianMixture(K, **common).fit(X)
        ours = GaussianMixture(K, **common).fit(da.from_array(X, chunks=3000))
    # every E-step block of every iteration went through the quadratic kernel
    assert len(spy.results) >= 4 * ours.n_iter_ and all(spy.results)
    assert ours.n_iter_ == ref.n_iter_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-7, atol=1e-12)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-7)
