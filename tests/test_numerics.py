"""Numerical accuracy of the centred statistics and of their merge.

* Data far from the origin (offset 1e6, unit variance): fitted covariances agree
  with the fit of the same data moved to the origin and with an extended-precision
  two-pass reference, while the textbook ``sum r x x^T - n m m^T`` does not.
* float32 data (offset 1e3): diagonal and spherical variances stay accurate.
* Chan's merge is associative: any grouping of chunk statistics, and dask's
  reduction trees with any fan-in and chunking, give the same statistics, which
  also equal those of the whole array in one chunk, and whose M-step equals
  scikit-learn's.
* The numpy layer (daskgmm.kernels) does not import dask.
"""

from __future__ import annotations

import functools
import itertools
import pathlib
import subprocess
import sys
import textwrap

import dask.array as da
import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.mixture._gaussian_mixture import (
    _compute_precision_cholesky,
    _estimate_gaussian_parameters,
    _estimate_log_gaussian_prob,
)

from daskgmm import GaussianMixture
from daskgmm.engine.compute import compute
from daskgmm.engine.passes import pass_graph
from daskgmm.engine.rows import prepare_rows
from daskgmm.kernels.covariance import precision_cholesky
from daskgmm.kernels.density import LogDensity
from daskgmm.kernels.estep import chunk_stats, stats_from_responsibilities
from daskgmm.kernels.mstep import m_step
from daskgmm.kernels.responsibilities import EStep
from daskgmm.kernels.stats import SufficientStats, merge_all

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

COV_TYPES = ("full", "tied", "diag", "spherical")
OFFSET = 1e6
REG = 1e-6
EPS10 = 10 * np.finfo(np.float64).eps


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def rel_err(got, expected) -> float:
    """Normwise relative error ``max|got - expected| / max|expected|``."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape
    return float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))


def unit_precisions(covariance_type: str, k: int, d: int) -> np.ndarray:
    return {
        "full": np.stack([np.eye(d)] * k),
        "tied": np.eye(d),
        "diag": np.ones((k, d)),
        "spherical": np.ones(k),
    }[covariance_type]


def responsibilities(X, weights, means, prec_chol, covariance_type):
    """scikit-learn's E-step (independent of daskgmm's kernels)."""
    wlp = _estimate_log_gaussian_prob(X, means, prec_chol, covariance_type) + np.log(weights)
    return np.exp(wlp - logsumexp(wlp, axis=1)[:, None])


def _per_component_covariances(X, resp, dtype, centred: bool):
    """(K, D, D) covariances from responsibilities, two-pass (centred) or naive."""
    X = np.asarray(X, dtype=dtype)
    resp = np.asarray(resp, dtype=dtype)
    nk = resp.sum(axis=0) + dtype(EPS10)
    means = (resp.T @ X) / nk[:, None]
    out = []
    for k in range(resp.shape[1]):
        if centred:
            diff = X - means[k]
            out.append((resp[:, k, None] * diff).T @ diff / nk[k])
        else:
            out.append((resp[:, k, None] * X).T @ X / nk[k] - np.outer(means[k], means[k]))
    return np.stack(out), nk


def covariances_from_resp(X, resp, covariance_type, centred=True, dtype=np.longdouble):
    """Covariances as scikit-learn defines them per type (two-pass or naive)."""
    covs, nk = _per_component_covariances(X, resp, dtype, centred)
    d = covs.shape[-1]
    eye = np.eye(d, dtype=dtype)
    if covariance_type == "full":
        out = covs + dtype(REG) * eye
    elif covariance_type == "tied":
        out = (covs * nk[:, None, None]).sum(axis=0) / nk.sum() + dtype(REG) * eye
    elif covariance_type == "diag":
        out = np.diagonal(covs, axis1=1, axis2=2) + dtype(REG)
    else:
        out = np.diagonal(covs, axis1=1, axis2=2).mean(axis=1) + dtype(REG)
    return np.asarray(out, dtype=np.float64)


@functools.cache
def offset_data():
    """Two components around (0, 0, 0) and (20, 20, 20), moved to 1e6.

    Returns ``(X0, Xs)`` with ``Xs - OFFSET == X0`` and ``X0 + OFFSET == Xs`` exactly.
    """
    rng = np.random.default_rng(1)
    n, d = 2000, 3
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.0]])
    a = rng.standard_normal((n, d)) @ np.linalg.cholesky(cov).T
    b = rng.standard_normal((n, d)) * np.array([1.0, 0.8, 1.2]) + 20.0
    Xs = np.vstack([a, b]) + OFFSET
    X0 = Xs - OFFSET  # exact (Sterbenz)
    assert np.array_equal(X0 + OFFSET, Xs)
    return X0, Xs


MEANS_INIT = np.array([[0.5, 0.0, -0.5], [19.0, 20.0, 21.0]])


def fit_offset_pair(covariance_type, max_iter=8):
    X0, Xs = offset_data()
    kw = dict(
        covariance_type=covariance_type,
        max_iter=max_iter,
        tol=0.0,
        weights_init=[0.5, 0.5],
        precisions_init=unit_precisions(covariance_type, 2, 3),
        chunk_rows=512,
    )
    near = GaussianMixture(2, means_init=MEANS_INIT, **kw).fit(X0)
    far = GaussianMixture(2, means_init=MEANS_INIT + OFFSET, **kw).fit(Xs)
    return near, far


# --------------------------------------------------------------------------- #
# data far from the origin
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_offset_fit_matches_fit_at_origin(covariance_type):
    near, far = fit_offset_pair(covariance_type)
    assert far.n_iter_ == near.n_iter_ == 8
    assert rel_err(far.covariances_, near.covariances_) < 1e-9  # measured ~1e-12
    np.testing.assert_allclose(far.means_ - OFFSET, near.means_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(far.weights_, near.weights_, rtol=1e-9)
    # and the fit is the known truth (not a degenerate agreement)
    np.testing.assert_allclose(near.weights_, [0.5, 0.5], atol=1e-6)
    diag = {
        "full": lambda c: np.diagonal(c, axis1=1, axis2=2),
        "tied": lambda c: np.diagonal(c),
        "diag": lambda c: c,
        "spherical": lambda c: c,
    }[covariance_type](far.covariances_)
    assert np.all(diag > 0.5) and np.all(diag < 1.6)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_offset_fit_matches_extended_precision_two_pass(covariance_type):
    """The last M-step equals a long-double two-pass covariance of the same
    responsibilities (those of the previous iteration's parameters)."""
    X0, Xs = offset_data()
    _, previous = fit_offset_pair(covariance_type, max_iter=7)
    _, final = fit_offset_pair(covariance_type, max_iter=8)
    # responsibilities of the last E-step, computed by scikit-learn near the origin
    resp = responsibilities(
        X0,
        previous.weights_,
        previous.means_ - OFFSET,
        previous.precisions_cholesky_,
        covariance_type,
    )
    reference = covariances_from_resp(Xs, resp, covariance_type, centred=True)
    assert rel_err(final.covariances_, reference) < 1e-9

    # daskgmm's statistics of these responsibilities on the far data, directly
    stats = stats_from_responsibilities(Xs, resp, covariance_type)
    _, _, covariances, _ = m_step(stats, REG)
    assert rel_err(covariances, reference) < 1e-9

    # the naive formula loses the accuracy on the same data and responsibilities
    naive = covariances_from_resp(Xs, resp, covariance_type, centred=False, dtype=np.float64)
    assert rel_err(naive, reference) > 1e-5
    # ... while it is fine at the origin (so the loss is due to the offset)
    naive0 = covariances_from_resp(X0, resp, covariance_type, centred=False, dtype=np.float64)
    assert rel_err(naive0, reference) < 1e-9


# --------------------------------------------------------------------------- #
# float32 data
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_float32_offset_variances(covariance_type):
    rng = np.random.default_rng(7)
    n, d = 3000, 4
    X = np.vstack([rng.standard_normal((n, d)), rng.standard_normal((n, d)) + 10.0]) + 1e3
    X32 = X.astype(np.float32)
    kw = dict(
        covariance_type=covariance_type,
        max_iter=10,
        tol=0.0,
        weights_init=[0.5, 0.5],
        means_init=np.array([[999.5] * d, [1010.5] * d]),
        precisions_init=unit_precisions(covariance_type, 2, d),
    )
    dX32 = da.from_array(X32, chunks=(700, -1))
    assert dX32.dtype == np.float32
    got = GaussianMixture(2, **kw).fit(dX32)
    ref = GaussianMixture(2, **kw).fit(X32.astype(np.float64))
    assert np.all(got.covariances_ > 0)
    # float32 input is computed in float64: the same fit as its float64 copy (~1e-15)
    np.testing.assert_allclose(got.covariances_, ref.covariances_, rtol=1e-10)
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-12)
    # and scikit-learn's on the same values (given the float64 copy: scikit-learn
    # keeps float32 input in float32)
    sk = SkGaussianMixture(2, **kw).fit(X32.astype(np.float64))
    np.testing.assert_allclose(got.covariances_, sk.covariances_, rtol=1e-7)
    np.testing.assert_allclose(got.means_, sk.means_, rtol=1e-7)
    # unit variances are recovered (the float32 rounding of 1e3 is ~6e-5)
    np.testing.assert_allclose(got.covariances_, 1.0, atol=0.1)


# --------------------------------------------------------------------------- #
# associativity of the merge
# --------------------------------------------------------------------------- #
K, D, N = 3, 3, 2400


@functools.cache
def assoc_data():
    rng = np.random.default_rng(3)
    centres = np.array([[5.0, 5.0, 5.0], [7.0, 4.0, 5.5], [4.0, 7.0, 3.0]])
    labels = rng.integers(0, K, size=N)
    X = centres[labels] + rng.standard_normal((N, D)) @ np.diag([1.0, 0.7, 1.3])
    # random chunk boundaries, sizes 1..60
    cuts = [0]
    while cuts[-1] < N:
        cuts.append(min(N, cuts[-1] + int(rng.integers(1, 61))))
    return X, tuple(cuts)


def assoc_params(covariance_type):
    rng = np.random.default_rng(11)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[5.2, 4.9, 5.0], [6.8, 4.2, 5.4], [4.1, 6.9, 3.2]])
    a = rng.normal(size=(K, D, D)) * 0.3
    full = a @ np.swapaxes(a, 1, 2) + np.eye(D)
    covariances = {
        "full": full,
        "tied": full[0],
        "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
        "spherical": np.array([0.9, 1.1, 1.3]),
    }[covariance_type]
    return weights, means, covariances, precision_cholesky(covariances, covariance_type)


def estep_for(covariance_type):
    weights, means, _, prec_chol = assoc_params(covariance_type)
    return EStep(LogDensity(means, prec_chol, covariance_type, weights))


def assert_stats_equal(got: SufficientStats, expected: SufficientStats, rtol=1e-12):
    for name in ("nk", "means", "m2"):
        err = rel_err(getattr(got, name), getattr(expected, name))
        assert err <= rtol, (name, err)
    assert abs(got.log_likelihood - expected.log_likelihood) <= rtol * abs(expected.log_likelihood)
    assert got.weight_sum == pytest.approx(expected.weight_sum, rel=rtol)
    assert got.n_rows == expected.n_rows
    assert got.n_bad == expected.n_bad


def left_fold(stats):
    out = stats[0]
    for s in stats[1:]:
        out = out.merge(s)
    return out


def right_fold(stats):
    out = stats[-1]
    for s in reversed(stats[:-1]):
        out = s.merge(out)
    return out


def balanced(stats):
    if len(stats) == 1:
        return stats[0]
    mid = len(stats) // 2
    return balanced(stats[:mid]).merge(balanced(stats[mid:]))


def random_pairings(stats, seed=0):
    rng = np.random.default_rng(seed)
    pool = list(stats)
    while len(pool) > 1:
        i, j = sorted(rng.choice(len(pool), size=2, replace=False))
        b = pool.pop(j)
        a = pool.pop(i)
        pool.append(a.merge(b) if rng.random() < 0.5 else b.merge(a))
    return pool[0]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_merge_groupings_agree(covariance_type):
    X, cuts = assoc_data()
    estep = estep_for(covariance_type)
    pieces = [
        chunk_stats(X[a:b], estep, None, i) for i, (a, b) in enumerate(itertools.pairwise(cuts))
    ]
    assert len(pieces) > 60
    whole = chunk_stats(X, estep)
    assert whole.n_rows == N and whole.nk.sum() == pytest.approx(N, rel=1e-12)
    # every component holds a substantial share, so the comparison is meaningful
    assert np.all(whole.nk > 0.1 * N)
    merged = {
        "left": left_fold(pieces),
        "right": right_fold(pieces),
        "balanced": balanced(pieces),
        "merge_all": merge_all(pieces),
        "random0": random_pairings(pieces, 0),
        "random1": random_pairings(pieces, 1),
    }
    for name, stats in merged.items():
        assert stats.covariance_type == covariance_type, name
        assert_stats_equal(stats, whole)
    # the statistics are those of the data (independent check of the whole-array
    # statistics): weighted means and centred second moments from responsibilities
    weights, means, covariances, _ = assoc_params(covariance_type)
    sk_prec_chol = _compute_precision_cholesky(covariances, covariance_type)
    resp = responsibilities(X, weights, means, sk_prec_chol, covariance_type)
    np.testing.assert_allclose(whole.nk, resp.sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(whole.means, resp.T @ X / resp.sum(axis=0)[:, None], rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("split_every", [2, 3, 8])
@pytest.mark.parametrize(
    "chunks",
    [
        (1000, 1000, 400),
        (24,) * 100,
        (1, 2, 3, 500, 97, 1, 1200, 596),
    ],
    ids=["few", "many", "ragged"],
)
def test_reduce_chunks_agrees_with_one_chunk(covariance_type, split_every, chunks):
    X, _ = assoc_data()
    assert sum(chunks) == N
    estep = estep_for(covariance_type)
    rows = prepare_rows(da.from_array(X, chunks=(chunks, D)))
    assert rows.n_chunks == len(chunks)
    got = compute(pass_graph(rows, estep, split_every=split_every))[0]
    assert_stats_equal(got, chunk_stats(X, estep))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("weights_kind", ["numpy", "dask"])
def test_reduce_chunks_with_sample_weight(covariance_type, weights_kind):
    X, cuts = assoc_data()
    weights = np.random.default_rng(5).uniform(0.0, 3.0, size=N)
    weights[::7] = 0.0
    estep = estep_for(covariance_type)
    chunks = (np.diff(cuts).tolist(), D)
    sample_weight = weights if weights_kind == "numpy" else da.from_array(weights, chunks=250)
    rows = prepare_rows(da.from_array(X, chunks=chunks), sample_weight)
    got = compute(pass_graph(rows, estep, split_every=3))[0]
    expected = chunk_stats(X, estep, weights)
    assert_stats_equal(got, expected)
    assert got.weight_sum == pytest.approx(weights.sum(), rel=1e-12)
    assert got.nk.sum() == pytest.approx(weights.sum(), rel=1e-12)
    # rows of weight zero contribute nothing: same as dropping them
    keep = weights > 0
    dropped = chunk_stats(X[keep], estep, weights[keep])
    for name in ("nk", "means", "m2"):
        assert rel_err(getattr(got, name), getattr(dropped, name)) < 1e-11
    assert got.log_likelihood == pytest.approx(dropped.log_likelihood, rel=1e-11)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_m_step_of_merged_stats_equals_sklearn(covariance_type):
    X, cuts = assoc_data()
    weights, means, _, prec_chol = assoc_params(covariance_type)
    estep = EStep(LogDensity(means, prec_chol, covariance_type, weights))
    rows = prepare_rows(da.from_array(X, chunks=(np.diff(cuts).tolist(), D)))
    stats = compute(pass_graph(rows, estep, split_every=3))[0]
    got_w, got_m, got_c, got_p = m_step(stats, REG)

    # scikit-learn on the full data with resp from the same parameters
    sk_prec_chol = _compute_precision_cholesky(assoc_params(covariance_type)[2], covariance_type)
    np.testing.assert_allclose(sk_prec_chol, prec_chol, rtol=1e-12)
    resp = responsibilities(X, weights, means, sk_prec_chol, covariance_type)
    nk, exp_m, exp_c = _estimate_gaussian_parameters(X, resp, REG, covariance_type)
    exp_p = _compute_precision_cholesky(exp_c, covariance_type)

    np.testing.assert_allclose(got_w, nk / nk.sum(), rtol=1e-10)
    np.testing.assert_allclose(got_m, exp_m, rtol=1e-10)
    np.testing.assert_allclose(got_c, exp_c, rtol=1e-10, atol=1e-10 * np.abs(exp_c).max())
    np.testing.assert_allclose(got_p, exp_p, rtol=1e-10, atol=1e-10 * np.abs(exp_p).max())
    # the log-likelihood too
    wlp = _estimate_log_gaussian_prob(X, means, sk_prec_chol, covariance_type) + np.log(weights)
    assert stats.log_likelihood == pytest.approx(logsumexp(wlp, axis=1).sum(), rel=1e-10)


# --------------------------------------------------------------------------- #
# the numpy layer does not import dask
# --------------------------------------------------------------------------- #
PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1] / "daskgmm"

_STUB_IMPORT = textwrap.dedent(
    """
    import importlib, json, sys, types
    pkg = types.ModuleType("daskgmm")
    pkg.__path__ = [{path!r}]
    sys.modules["daskgmm"] = pkg
    loaded = {{}}
    for name in {modules!r}:
        mod = importlib.import_module(name)
        loaded[name] = mod.__file__
    print(json.dumps({{
        "files": loaded,
        "dask": sorted(m for m in sys.modules if m == "dask" or m.startswith("dask.")),
        "estimator_loaded": "daskgmm.estimators" in sys.modules,
    }}))
    """
)


def _import_in_subprocess(modules):
    import json

    code = _STUB_IMPORT.format(path=str(PACKAGE_DIR), modules=list(modules))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_numpy_layer_does_not_import_dask():
    names = sorted(p.stem for p in (PACKAGE_DIR / "kernels").glob("*.py") if p.stem != "__init__")
    assert {"estep", "stats", "mstep", "params", "checks", "nan_policy"} <= set(names)
    modules = [f"daskgmm.kernels.{name}" for name in names]
    out = _import_in_subprocess(modules)
    for name in names:
        expected = PACKAGE_DIR / "kernels" / f"{name}.py"
        assert pathlib.Path(out["files"][f"daskgmm.kernels.{name}"]).resolve() == expected
    assert not out["estimator_loaded"]
    assert out["dask"] == []


def test_dask_import_check_can_fail():
    """Control: the same stub import of the dask layer does show dask."""
    out = _import_in_subprocess(["daskgmm.engine.passes"])
    assert "dask" in out["dask"]


# --------------------------------------------------------------------------- #
# tight components far from the chunk's centre
# --------------------------------------------------------------------------- #
def _tight_far_data():
    """A wide component at the origin and two tight ones (sd 1e-4) at -+1e4, shuffled."""
    rng = np.random.default_rng(11)
    d = 4
    parts = [
        rng.standard_normal((3000, d)),
        1e4 + 1e-4 * rng.standard_normal((300, d)),
        -1e4 + 1e-4 * rng.standard_normal((300, d)),
    ]
    X = np.vstack(parts)
    labels = np.repeat(np.arange(3), [len(p) for p in parts])
    order = rng.permutation(len(X))
    return X[order], np.eye(3)[labels[order]]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_moments_of_tight_components_far_from_the_chunk_centre(covariance_type):
    X, resp = _tight_far_data()
    stats = stats_from_responsibilities(X, resp, covariance_type)
    scatter = []
    for k in range(resp.shape[1]):
        rows = X[resp[:, k] > 0].astype(np.longdouble)
        centred = rows - rows.mean(axis=0)
        scatter.append(centred.T @ centred)
    scatter = np.array(scatter)
    exact = {
        "full": scatter,
        "tied": scatter.sum(axis=0)[None],
        "diag": np.diagonal(scatter, axis1=1, axis2=2),
        "spherical": np.diagonal(scatter, axis1=1, axis2=2),
    }[covariance_type].astype(np.float64)
    got = stats.m2 if covariance_type != "tied" else stats.m2[None]
    for mine, truth in zip(got, exact, strict=True):  # each component to its own scale
        assert rel_err(mine, truth) < 1e-9
    # the variances of the tight components are 1e-8 (not a degenerate agreement) ...
    variances = np.diagonal(scatter, axis1=1, axis2=2) / resp.sum(axis=0)[:, None]
    np.testing.assert_allclose(variances[1:].astype(np.float64), 1e-8, rtol=0.2)
    # ... which the one-product formula about the chunk's centre loses
    xc = X - X[:1000].mean(axis=0)
    one_product = resp.T @ xc**2 - (resp.T @ xc) ** 2 / resp.sum(axis=0)[:, None]
    tight_scatter = np.diagonal(scatter[1]).astype(np.float64)
    assert rel_err(one_product[1], tight_scatter) > 1e-3
