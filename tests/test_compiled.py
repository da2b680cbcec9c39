"""The compiled (numba, nogil) E-step: 'full'/'tied' quadratic features, 'diag'/'spherical' squares.

Its statistics equal the numpy kernels' to 1e-12 (float32 and float64 rows,
weighted and not, with bad rows and with tiles the expansion must decline), it
leaves what it cannot do to the numpy kernels, and fits with it agree with
scikit-learn.
"""

from __future__ import annotations

import threading
import warnings

import dask.array as da
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import daskgmm.kernels.estep as estep_module
from daskgmm import GaussianMixture
from daskgmm.kernels import compiled
from daskgmm.kernels.covariance import precision_cholesky
from daskgmm.kernels.density import LogDensity
from daskgmm.kernels.estep import chunk_stats
from daskgmm.kernels.responsibilities import EStep

K, D = 8, 16
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _mixture(cov_type: str, seed: int = 0, far: float = 3.0, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    means = far * rng.standard_normal((K, D))
    factors = 0.2 * rng.standard_normal((K, D, D))
    covariances = spread * (factors @ np.swapaxes(factors, 1, 2) + np.eye(D))
    covariances = {
        "full": covariances,
        "tied": covariances[0],
        "diag": np.diagonal(covariances, axis1=1, axis2=2).copy(),
        "spherical": np.diagonal(covariances, axis1=1, axis2=2).mean(axis=1),
    }[cov_type]
    weights = rng.dirichlet(np.ones(K))
    return EStep(LogDensity(means, precision_cholesky(covariances, cov_type), cov_type, weights))


def _rows(estep, n, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    means = estep.log_density.means
    return (means[rng.integers(0, K, n)] + rng.standard_normal((n, D))).astype(dtype)


def _numpy_stats(monkeypatch, *args, **kwargs):
    with monkeypatch.context() as patch:
        patch.setattr(estep_module, "USE_COMPILED", False)
        return chunk_stats(*args, **kwargs)


class _TileSpy:
    """Counts the compiled kernel's calls and the tiles it left to numpy."""

    def __init__(self, monkeypatch):
        self.calls, self.skipped, self.dtypes = 0, 0, []
        real = compiled.quadratic_tiles

        def spy(*args):
            real(*args)
            if args[-1].shape[0] > 0:  # per-row log-densities, not statistics
                return
            self.calls += 1
            self.skipped += int(args[-2].sum())
            self.dtypes.append(args[3].dtype.name)  # the products' (WT's)

        monkeypatch.setattr(compiled, "quadratic_tiles", spy)


def _assert_equal_stats(a, b, rtol=1e-12):
    np.testing.assert_allclose(a.nk, b.nk, rtol=rtol)
    np.testing.assert_allclose(a.means, b.means, rtol=rtol, atol=rtol * np.abs(b.means).max())
    np.testing.assert_allclose(a.m2, b.m2, rtol=rtol, atol=rtol * np.abs(b.m2).max())
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=rtol)
    assert a.weight_sum == pytest.approx(b.weight_sum, rel=rtol)
    assert (a.n_rows, a.n_bad, a.bad_chunks) == (b.n_rows, b.n_bad, b.bad_chunks)


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_statistics_equal_the_numpy_kernels(cov_type, dtype, weighted, monkeypatch):
    estep = _mixture(cov_type)
    X = _rows(estep, 20_003, seed=1, dtype=dtype)  # a last tile of 35 rows
    w = np.random.default_rng(2).uniform(0.0, 2.0, X.shape[0]) if weighted else None
    spy = _TileSpy(monkeypatch)
    fast = chunk_stats(X, estep, w, chunk_index=3)
    assert spy.calls == 1 and spy.skipped == 0  # the whole chunk, compiled
    _assert_equal_stats(fast, _numpy_stats(monkeypatch, X, estep, w, chunk_index=3))


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
def test_bad_rows_are_left_to_numpy_and_counted(cov_type, monkeypatch):
    estep = _mixture(cov_type)
    X = _rows(estep, 30_000, seed=3)
    X[[5, 4000, 9999], [0, 3, 15]] = np.nan
    X[7000, 2] = np.inf
    w = np.random.default_rng(4).uniform(0.5, 1.5, X.shape[0])
    spy = _TileSpy(monkeypatch)
    fast = chunk_stats(X, estep, w, chunk_index=9)
    assert spy.skipped == 4  # the four tiles with a bad row (in four different tiles)
    assert fast.n_bad == 4 and fast.bad_chunks == {9: 4} and fast.n_rows == 30_000
    _assert_equal_stats(fast, _numpy_stats(monkeypatch, X, estep, w, chunk_index=9))


def test_rows_whose_density_overflows_are_bad_rows(monkeypatch):
    estep = _mixture("full")
    X = _rows(estep, 8000, seed=5)
    X[5000] = 1e200  # finite, but its squared distance overflows (after the first block)
    fast = chunk_stats(X, estep)
    assert fast.n_bad == 1
    _assert_equal_stats(fast, _numpy_stats(monkeypatch, X, estep))


def test_inaccurate_tiles_are_left_to_numpy(monkeypatch):
    # tight components (sd 1e-4) 1e3 apart: the expansion would lose the answer, so
    # every tile is declined and the whitening kernel computes it
    estep = _mixture("full", seed=6, far=1e3, spread=1e-8)
    rng = np.random.default_rng(7)
    labels = rng.integers(0, K, 1000)
    X = estep.log_density.means[labels] + 1e-4 * rng.standard_normal((1000, D))
    spy = _TileSpy(monkeypatch)
    fast = chunk_stats(X, estep)
    assert spy.skipped == -(-1000 // compiled.TILE)
    slow = _numpy_stats(monkeypatch, X, estep)
    np.testing.assert_allclose(fast.nk, slow.nk, rtol=1e-12)
    assert fast.log_likelihood == pytest.approx(slow.log_likelihood, rel=1e-12)
    # the tiles merge in another grouping than the numpy kernel's blocks, and merging
    # moments of components this tight and far changes their last digits: both are
    # held to the exact (long double, two-pass) moments instead
    for k in range(K):
        rows = X[labels == k].astype(np.longdouble)
        centred = rows - rows.mean(axis=0)
        exact = (centred.T @ centred).astype(np.float64)
        for got in (fast, slow):
            np.testing.assert_allclose(got.m2[k], exact, rtol=0, atol=1e-7 * np.abs(exact).max())


def test_a_chunk_without_finite_first_rows_goes_to_numpy(monkeypatch):
    estep = _mixture("tied")
    X = _rows(estep, 9000, seed=8)
    X[:5000] = np.nan  # the first block (the centring point's) is all bad
    spy = _TileSpy(monkeypatch)
    fast = chunk_stats(X, estep, chunk_index=1)
    assert spy.calls == 0
    assert fast.n_bad == 5000
    _assert_equal_stats(fast, _numpy_stats(monkeypatch, X, estep, chunk_index=1))


def test_runs_without_the_gil():
    """Control by timing-free evidence: while one thread is inside the compiled
    kernel, another thread runs Python code (a counter advances)."""
    estep = _mixture("full")
    X = _rows(estep, 400_000, seed=9)
    chunk_stats(X[:1000], estep)  # compiled (or loaded from the cache) beforehand
    inside = threading.Event()
    done = threading.Event()
    real = compiled.quadratic_tiles
    counts = []

    def run():
        inside.set()
        real(*args)
        done.set()

    def counter():
        inside.wait()
        n = 0
        while not done.is_set():
            n += 1
        counts.append(n)

    from daskgmm.kernels.quadratic import QuadraticEStep

    q = QuadraticEStep(estep.log_density, X[:100].mean(axis=0))
    args = (
        X, np.empty(0), q.shift, np.ascontiguousarray(q.weights.T),
        q.upper[0].astype(np.int64), q.upper[1].astype(np.int64), q.bound_terms(),
        q.tolerance, np.zeros((q.width, K)), np.zeros(3),
        np.zeros(-(-X.shape[0] // compiled.TILE), dtype=bool), np.empty((0, K)),
    )  # fmt: skip
    threads = [threading.Thread(target=run), threading.Thread(target=counter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # with the GIL held for the whole call the counter could only run after it
    assert counts[0] > 1000


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
def test_fits_agree_with_sklearn(cov_type, monkeypatch):
    precisions = {
        "full": np.tile(np.eye(D), (K, 1, 1)),
        "tied": np.eye(D),
        "diag": np.ones((K, D)),
        "spherical": np.ones(K),
    }[cov_type]
    rng = np.random.default_rng(10)
    centres = 4.0 * rng.standard_normal((K, D))
    X = centres[rng.integers(0, K, 12_000)] + rng.standard_normal((12_000, D))
    start = {
        "weights_init": np.full(K, 1.0 / K),
        "means_init": centres + 0.5 * rng.standard_normal((K, D)),
        "precisions_init": precisions,
    }
    common = {"covariance_type": cov_type, "tol": 1e-6, "max_iter": 30, **start}
    spy = _TileSpy(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkGaussianMixture(K, **common).fit(X)
        ours = GaussianMixture(K, **common).fit(da.from_array(X, chunks=3000))
    assert spy.calls == 4 * ours.n_iter_ and spy.skipped == 0
    assert ours.n_iter_ == ref.n_iter_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-7, atol=1e-12)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-7)


@pytest.mark.parametrize("cov_type", ["diag", "spherical"])
def test_diagonal_moments_that_would_cancel_are_left_to_numpy(cov_type, monkeypatch):
    # tight components (sd 1e-4) 1e3 from the chunk's centre: raw moments about the
    # centre minus the mean term would lose their digits, so the numpy kernels,
    # which centre on each component's own mean, do the chunk
    estep = _mixture(cov_type, seed=11, far=1e3, spread=1e-8)
    rng = np.random.default_rng(12)
    labels = rng.integers(0, K, 2000)
    X = estep.log_density.means[labels] + 1e-4 * rng.standard_normal((2000, D))
    spy = _TileSpy(monkeypatch)
    fast = chunk_stats(X, estep)
    assert spy.calls == 1
    slow = _numpy_stats(monkeypatch, X, estep)
    np.testing.assert_array_equal(fast.m2, slow.m2)
    np.testing.assert_array_equal(fast.means, slow.means)


# --------------------------------------------------------------------------- #
# compute_dtype='float32'
# --------------------------------------------------------------------------- #
def _float32(estep):
    return EStep(estep.log_density, "float32")


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_float32_products_keep_the_statistics_close(cov_type, offset, monkeypatch):
    estep = _mixture(cov_type)
    X = _rows(estep, 20_000, seed=13, dtype=np.float32)
    estep = EStep(
        LogDensity(
            estep.log_density.means + offset,
            estep.log_density.prec_chol,
            cov_type,
            np.exp(estep.log_density.offset - estep.log_density.offset.max()),
        )
    )
    X = (X.astype(np.float64) + offset).astype(np.float32)
    spy = _TileSpy(monkeypatch)
    fast = chunk_stats(X, _float32(estep))
    assert spy.calls == 1 and spy.skipped == 0  # every tile in float32
    exact = _numpy_stats(monkeypatch, X, estep)
    # products in float32 (eps 6e-8), sums in float64, the rows centred first;
    # centring the second moments may multiply float32's rounding by up to
    # FLOAT32_CANCELLATION_LIMIT (1e3), beyond which the chunk would be float64
    from daskgmm.kernels.tiles import FLOAT32_CANCELLATION_LIMIT

    m2_tolerance = FLOAT32_CANCELLATION_LIMIT * float(np.finfo(np.float32).eps) / 2
    np.testing.assert_allclose(fast.nk, exact.nk, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(fast.means, exact.means, rtol=0, atol=1e-5 * (1 + offset))
    np.testing.assert_allclose(
        fast.m2, exact.m2, rtol=0, atol=m2_tolerance * np.abs(exact.m2).max()
    )
    assert fast.log_likelihood == pytest.approx(exact.log_likelihood, rel=1e-6)
    assert fast.weight_sum == exact.weight_sum
    # and it is float32 that ran: the float64 kernel is closer still
    exact64 = chunk_stats(X, estep)
    assert np.abs(exact64.m2 - exact.m2).max() < np.abs(fast.m2 - exact.m2).max()


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_float32_leaves_tiles_beyond_its_bound_to_compiled_float64(cov_type, monkeypatch):
    # components at 30 standard deviations from one another: rows far from the
    # chunk's centre have float32 expansions too coarse, and go to float64
    estep = _mixture(cov_type, seed=14, far=30.0)
    X = _rows(estep, 4000, seed=15)
    spy = _TileSpy(monkeypatch)
    fast = chunk_stats(X, _float32(estep))
    # the tiles float32 declined are computed again, compiled, in float64
    assert spy.dtypes == ["float32", "float64"]
    assert 0 < spy.skipped <= -(-4000 // compiled.TILE)
    exact = _numpy_stats(monkeypatch, X, estep)
    np.testing.assert_allclose(fast.nk, exact.nk, rtol=1e-5, atol=1e-3)
    assert fast.log_likelihood == pytest.approx(exact.log_likelihood, rel=1e-6)


def test_float32_fit_agrees_with_float64_and_refuses_other_dtypes():
    estep = _mixture("full", seed=16)
    X = _rows(estep, 30_000, seed=17)
    start = {"weights_init": np.full(K, 1 / K), "means_init": estep.log_density.means}
    common = {"covariance_type": "full", "tol": 0.0, "max_iter": 8, "random_state": 0, **start}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        f64 = GaussianMixture(K, **common).fit(X)
        f32 = GaussianMixture(K, compute_dtype="float32", **common).fit(X)
    np.testing.assert_allclose(f32.weights_, f64.weights_, rtol=1e-5)
    np.testing.assert_allclose(f32.means_, f64.means_, rtol=0, atol=1e-5)
    np.testing.assert_allclose(f32.covariances_, f64.covariances_, rtol=0, atol=1e-5)
    assert f32.lower_bound_ == pytest.approx(f64.lower_bound_, abs=1e-5)
    assert not np.array_equal(f32.means_, f64.means_)  # float32 did run
    with pytest.raises(ValueError, match=r"compute_dtype must be one of \['float64', 'float32'\]"):
        GaussianMixture(K, compute_dtype="float16").fit(X)


@pytest.mark.parametrize("setting, compiled", [("0", False), ("off", False), ("1", True)])
def test_environment_turns_the_compiled_kernel_off(setting, compiled):
    """``DASKGMM_COMPILED=0`` (where workers start) runs the numpy kernels and never
    imports numba; the statistics are the same."""
    import json
    import os
    import subprocess
    import sys

    code = """
import json, sys
import numpy as np
from daskgmm.kernels.density import LogDensity
from daskgmm.kernels.estep import chunk_stats
from daskgmm.kernels.responsibilities import EStep
rng = np.random.default_rng(0)
k, d = 6, 5
a = rng.normal(size=(k, d, d))
cov = a @ a.transpose(0, 2, 1) + np.eye(d)
chol = np.linalg.cholesky(np.linalg.inv(cov))
log_density = LogDensity(rng.normal(size=(k, d)), chol, "full", np.full(k, 1 / k))
stats = chunk_stats(rng.normal(size=(5000, d)) * 2, EStep(log_density, "float64"))
print(json.dumps({"numba": "numba" in sys.modules, "m2": stats.m2.ravel().tolist()}))
"""
    env = {**os.environ, "DASKGMM_COMPILED": setting}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout)
    assert got["numba"] is compiled
    env["DASKGMM_COMPILED"] = "1" if setting != "1" else "0"
    other = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    np.testing.assert_allclose(got["m2"], json.loads(other.stdout)["m2"], rtol=1e-10)


# --------------------------------------------------------------------------- #
# per-row answers: predict, predict_proba, score_samples
# --------------------------------------------------------------------------- #
class _LogProbSpy:
    """Counts the compiled per-row kernel's calls, its tiles and those it declined."""

    def __init__(self, monkeypatch):
        self.calls, self.tiles, self.skipped = 0, 0, 0
        real = compiled.quadratic_tiles

        def spy(*args):
            real(*args)
            if args[-1].shape[0] == 0:  # statistics, not per-row log-densities
                return
            self.calls += 1
            self.tiles += len(args[-2])
            self.skipped += int(args[-2].sum())

        monkeypatch.setattr(compiled, "quadratic_tiles", spy)


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_log_prob_equals_the_numpy_kernel(cov_type, dtype, monkeypatch):
    """The compiled per-row log-densities are the numpy kernel's to its 1e-9 nats
    bound, also for rows far from every component (offset 1e4: tiles declined)."""
    from daskgmm.kernels import density, tiles

    log_density = _mixture(cov_type, seed=3).log_density
    X = _rows(_mixture(cov_type, seed=3), 3000, seed=4, dtype=dtype)
    X[1000:1100] += 1e4  # whole tiles far off
    X[2500] += 300.0  # one row in an otherwise near tile
    spy = _LogProbSpy(monkeypatch)
    got = tiles.weighted_log_prob(X, log_density)
    want = density.weighted_log_prob(X, log_density)
    assert spy.calls == 1 and 0 < spy.skipped < spy.tiles  # some tiles declined, not all
    assert np.all(np.abs(got - want) <= 1e-9 * (1 + np.abs(want)))
    far = slice(1024, 1088)  # inside declined tiles: the numpy kernel's own numbers
    np.testing.assert_array_equal(got[far], want[far])


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
def test_predictions_equal_with_and_without_the_compiled_kernel(cov_type, monkeypatch):
    X = np.random.default_rng(5).normal(size=(4000, 6)) + np.repeat(np.eye(6) * 6, 667, 0)[:4000]
    model = GaussianMixture(6, covariance_type=cov_type, random_state=0, max_iter=20).fit(X)
    with monkeypatch.context() as patch:
        patch.setattr(estep_module, "USE_COMPILED", False)
        want = (model.predict(X), model.predict_proba(X), model.score_samples(X))
    spy = _LogProbSpy(monkeypatch)
    got = (model.predict(X), model.predict_proba(X), model.score_samples(X))
    assert spy.calls == 3
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-10)


@pytest.mark.parametrize(
    "k, d, cov_type", [(8, 64, "full"), (8, 64, "tied"), (2, 32, "full"), (3, 20, "tied")]
)
def test_wide_and_few_component_mixtures_compile_with_equal_statistics(k, d, cov_type, monkeypatch):
    """'full'/'tied' up to D=64 (K >= 8) and D=32 (any K) run compiled; statistics and
    per-row log-densities equal the numpy kernels'."""
    from daskgmm.kernels import density, tiles

    rng = np.random.default_rng(7)
    factors = 0.2 * rng.standard_normal((k, d, d))
    covariances = factors @ np.swapaxes(factors, 1, 2) + np.eye(d)
    covariances = covariances if cov_type == "full" else covariances[0]
    means = 3.0 * rng.standard_normal((k, d))
    log_density = LogDensity(
        means, precision_cholesky(covariances, cov_type), cov_type, rng.dirichlet(np.ones(k))
    )
    estep = EStep(log_density)
    X = means[rng.integers(0, k, 3001)] + rng.standard_normal((3001, d))
    spy = _TileSpy(monkeypatch)
    fast = chunk_stats(X, estep, None, chunk_index=0)
    assert spy.calls == 1 and spy.skipped == 0
    _assert_equal_stats(fast, _numpy_stats(monkeypatch, X, estep, None, chunk_index=0))
    rows = _LogProbSpy(monkeypatch)
    got = tiles.weighted_log_prob(X, log_density)
    want = density.weighted_log_prob(X, log_density)
    assert rows.calls == 1
    assert np.all(np.abs(got - want) <= 1e-9 * (1 + np.abs(want)))


def test_which_full_mixtures_compile():
    from daskgmm.kernels.tiles import quadratic_compiles

    assert quadratic_compiles(2, 32) and quadratic_compiles(8, 64) and quadratic_compiles(4, 24)
    assert not quadratic_compiles(4, 64) and not quadratic_compiles(16, 96)
