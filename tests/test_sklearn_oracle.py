"""daskgmm against scikit-learn, the oracle.

Both estimators get the same ``weights_init``, ``means_init``, ``precisions_init``,
``tol`` and ``max_iter``; every fitted attribute and every prediction must then agree
to ``rtol=1e-7`` for every covariance type and for numpy input as well as dask input
chunked in one, seven uneven or 64 row chunks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import dask.array as da
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from daskgmm import GaussianMixture

RTOL = 1e-7
# Posterior probabilities of far-away components are ~1e-300; their relative error
# is meaningless, so these get an absolute floor far below any probability that
# matters.
PROBA_ATOL = 1e-12
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# Row chunkings: "numpy" passes the numpy array itself, the others a dask array.
CHUNKINGS = {
    "iris": {
        "numpy": None,
        "dask-1-chunk": (150,),
        "dask-7-uneven": (20, 1, 37, 50, 2, 33, 7),
        "dask-64-chunks": (3,) * 22 + (2,) * 42,
    },
    "synthetic": {
        "numpy": None,
        "dask-1-chunk": (20_000,),
        "dask-7-uneven": (3000, 1, 5000, 2999, 4000, 3000, 2000),
        "dask-64-chunks": (313,) * 63 + (20_000 - 63 * 313,),
    },
}
CHUNKING_NAMES = tuple(CHUNKINGS["iris"])


# --------------------------------------------------------------------------- #
# data and initial parameters
# --------------------------------------------------------------------------- #
SYNTHETIC_CENTRES = np.array(
    [
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [8.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 8.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 8.0, 8.0, 0.0],
    ]
)


def _synthetic() -> np.ndarray:
    """20,000 x 5 float64 rows from 4 well separated, correlated Gaussians, shuffled."""
    rng = np.random.default_rng(0)
    parts = []
    for centre, n in zip(SYNTHETIC_CENTRES, (6000, 5000, 5000, 4000), strict=True):
        mixing = np.eye(5) + 0.3 * rng.normal(size=(5, 5))
        parts.append(rng.normal(size=(n, 5)) @ mixing + centre)
    X = np.vstack(parts)
    return X[rng.permutation(X.shape[0])]


DATA = {"iris": load_iris().data.astype(np.float64), "synthetic": _synthetic()}
N_COMPONENTS = {"iris": 3, "synthetic": 4}
# Starting means away from the optimum, so that EM needs several iterations.
MEANS_INIT = {"iris": DATA["iris"][[0, 60, 120]], "synthetic": SYNTHETIC_CENTRES + 1.0}


def _precisions_init(X: np.ndarray, k: int, covariance_type: str) -> np.ndarray:
    """Precisions of the global covariance of X, shaped for the covariance type."""
    cov = np.cov(X.T)
    precision = np.linalg.inv(cov)
    precision = (precision + precision.T) / 2.0
    var = np.diag(cov)
    return {
        "full": np.stack([precision] * k),
        "tied": precision,
        "diag": np.tile(1.0 / var, (k, 1)),
        "spherical": np.full(k, 1.0 / var.mean()),
    }[covariance_type]


def _estimator_kwargs(dataset: str, covariance_type: str, **extra) -> dict:
    X, k = DATA[dataset], N_COMPONENTS[dataset]
    kwargs = {
        "n_components": k,
        "covariance_type": covariance_type,
        "tol": 1e-6,
        "max_iter": 500,
        "weights_init": np.full(k, 1.0 / k),
        "means_init": MEANS_INIT[dataset].copy(),
        "precisions_init": _precisions_init(X, k, covariance_type),
        "random_state": 0,
    }
    kwargs.update(extra)
    return kwargs


def _copy_kwargs(kwargs: dict) -> dict:
    """Fresh arrays per estimator (scikit-learn replaces its *_init attributes)."""
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}


def _as_input(dataset: str, chunking: str):
    """The dataset as numpy (chunking 'numpy') or as a dask array with those row chunks."""
    X = DATA[dataset]
    rows = CHUNKINGS[dataset][chunking]
    if rows is None:
        return X
    assert sum(rows) == X.shape[0]
    Xd = da.from_array(X, chunks=(rows, X.shape[1]))
    assert Xd.numblocks[0] == len(rows)
    return Xd


def _values(result, X):
    """Compute ``result``; for dask input it must be a lazy dask array."""
    if isinstance(X, da.Array):
        assert isinstance(result, da.Array), f"expected a lazy dask array, got {type(result)}"
        return result.compute()
    assert isinstance(result, np.ndarray)
    return result


def _assert_same_fit(model, ref, rtol=RTOL):
    np.testing.assert_allclose(model.weights_, ref.weights_, rtol=rtol, atol=0)
    np.testing.assert_allclose(model.means_, ref.means_, rtol=rtol, atol=0)
    np.testing.assert_allclose(model.covariances_, ref.covariances_, rtol=rtol, atol=0)
    np.testing.assert_allclose(
        model.precisions_cholesky_, ref.precisions_cholesky_, rtol=rtol, atol=0
    )
    np.testing.assert_allclose(model.lower_bound_, ref.lower_bound_, rtol=rtol, atol=0)
    np.testing.assert_allclose(model.lower_bounds_, ref.lower_bounds_, rtol=rtol, atol=0)
    assert model.n_iter_ == ref.n_iter_
    assert model.converged_ == ref.converged_


# --------------------------------------------------------------------------- #
# fixtures: scikit-learn fitted once per (dataset, covariance type), daskgmm once
# per (dataset, covariance type, chunking)
# --------------------------------------------------------------------------- #
@dataclass
class Oracle:
    dataset: str
    covariance_type: str
    kwargs: dict
    sk: SkGaussianMixture
    predict: np.ndarray
    predict_proba: np.ndarray
    score_samples: np.ndarray
    score: float
    bic: float
    aic: float


ORACLE_CASES = [(d, c) for d in DATA for c in COVARIANCE_TYPES]


@pytest.fixture(scope="module", params=ORACLE_CASES, ids=[f"{d}-{c}" for d, c in ORACLE_CASES])
def oracle(request) -> Oracle:
    dataset, covariance_type = request.param
    X = DATA[dataset]
    kwargs = _estimator_kwargs(dataset, covariance_type)
    sk = SkGaussianMixture(**_copy_kwargs(kwargs)).fit(X)
    # The comparison is only meaningful if EM actually iterated to convergence.
    assert sk.converged_
    assert sk.n_iter_ > 2
    return Oracle(
        dataset,
        covariance_type,
        kwargs,
        sk,
        sk.predict(X),
        sk.predict_proba(X),
        sk.score_samples(X),
        sk.score(X),
        sk.bic(X),
        sk.aic(X),
    )


@pytest.fixture(scope="module", params=CHUNKING_NAMES)
def fitted(oracle, request):
    X = _as_input(oracle.dataset, request.param)
    model = GaussianMixture(**_copy_kwargs(oracle.kwargs)).fit(X)
    return X, model


# --------------------------------------------------------------------------- #
# explicit initial parameters: fit and every method
# --------------------------------------------------------------------------- #
def test_fitted_parameters_match_sklearn(oracle, fitted):
    _, model = fitted
    assert model.n_iter_ > 2
    _assert_same_fit(model, oracle.sk)
    np.testing.assert_allclose(model.precisions_, oracle.sk.precisions_, rtol=RTOL, atol=0)


def test_predictions_match_sklearn(oracle, fitted):
    X, model = fitted
    np.testing.assert_array_equal(_values(model.predict(X), X), oracle.predict)
    np.testing.assert_allclose(
        _values(model.predict_proba(X), X), oracle.predict_proba, rtol=RTOL, atol=PROBA_ATOL
    )
    np.testing.assert_allclose(
        _values(model.score_samples(X), X), oracle.score_samples, rtol=RTOL, atol=0
    )
    score = model.score(X)
    assert isinstance(score, float)
    np.testing.assert_allclose(score, oracle.score, rtol=RTOL, atol=0)
    np.testing.assert_allclose(model.bic(X), oracle.bic, rtol=RTOL, atol=0)
    np.testing.assert_allclose(model.aic(X), oracle.aic, rtol=RTOL, atol=0)

    if isinstance(X, da.Array):
        # Lazy results keep the input's row chunks and compute to what the same model
        # gives for the numpy array.
        Xn = DATA[oracle.dataset]
        labels, proba, scores = model.predict(X), model.predict_proba(X), model.score_samples(X)
        for lazy in (labels, proba, scores):
            assert isinstance(lazy, da.Array)
            assert lazy.chunks[0] == X.chunks[0]
        np.testing.assert_array_equal(labels.compute(), model.predict(Xn))
        np.testing.assert_allclose(proba.compute(), model.predict_proba(Xn), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(scores.compute(), model.score_samples(Xn), rtol=1e-12, atol=0)
        np.testing.assert_allclose(model.score(X), model.score(Xn), rtol=1e-12, atol=0)


def test_sample_matches_sklearn_with_same_parameters(oracle):
    sk = oracle.sk
    model = GaussianMixture(
        oracle.sk.n_components,
        covariance_type=oracle.covariance_type,
        random_state=sk.random_state,
    )
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        setattr(model, name, getattr(sk, name).copy())
    model.n_features_in_ = sk.n_features_in_
    X, y = model.sample(1000)
    X_ref, y_ref = sk.sample(1000)
    assert X.shape == (1000, DATA[oracle.dataset].shape[1])
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    # More than one component was drawn from, so labels are a real comparison.
    assert len(np.unique(y)) > 1


# --------------------------------------------------------------------------- #
# default initialisation (k-means on all rows, in order, when they are few)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("chunking", ["numpy", "dask-7-uneven"])
@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
@pytest.mark.parametrize("dataset", ["iris", "synthetic"])
def test_default_kmeans_init_matches_sklearn(dataset, covariance_type, chunking):
    X = DATA[dataset]
    kwargs = {
        "n_components": N_COMPONENTS[dataset],
        "covariance_type": covariance_type,
        "random_state": 0,
        "tol": 1e-6,
    }
    model = GaussianMixture(**kwargs)
    assert X.shape[0] < model.init_sample_size
    model.fit(_as_input(dataset, chunking))
    sk = SkGaussianMixture(**kwargs).fit(X)
    assert sk.n_iter_ >= 2
    _assert_same_fit(model, sk)
    np.testing.assert_array_equal(model.predict(X), sk.predict(X))


# --------------------------------------------------------------------------- #
# fit_predict, warm start, n_init, max_iter
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("chunking", ["numpy", "dask-7-uneven"])
@pytest.mark.parametrize(
    ("dataset", "covariance_type"), [("iris", "full"), ("iris", "spherical"), ("synthetic", "diag")]
)
def test_fit_predict_matches_sklearn(dataset, covariance_type, chunking):
    kwargs = _estimator_kwargs(dataset, covariance_type)
    X = _as_input(dataset, chunking)
    labels = _values(GaussianMixture(**_copy_kwargs(kwargs)).fit_predict(X), X)
    ref = SkGaussianMixture(**_copy_kwargs(kwargs)).fit_predict(DATA[dataset])
    assert labels.shape == (DATA[dataset].shape[0],)
    assert len(np.unique(ref)) == N_COMPONENTS[dataset]
    np.testing.assert_array_equal(labels, ref)


@pytest.mark.parametrize("chunking", ["numpy", "dask-7-uneven"])
@pytest.mark.parametrize(("dataset", "covariance_type"), [("iris", "full"), ("synthetic", "tied")])
def test_warm_start_matches_sklearn(dataset, covariance_type, chunking):
    # tol=0 can never be met, so each fit runs exactly max_iter iterations.
    kwargs = _estimator_kwargs(dataset, covariance_type, warm_start=True, max_iter=2, tol=0.0)
    model = GaussianMixture(**_copy_kwargs(kwargs))
    sk = SkGaussianMixture(**_copy_kwargs(kwargs))
    X = _as_input(dataset, chunking)
    lower_bounds = []
    for _ in range(2):
        with pytest.warns(ConvergenceWarning):
            model.fit(X)
        with pytest.warns(ConvergenceWarning):
            sk.fit(DATA[dataset])
        assert model.n_iter_ == sk.n_iter_ == 2
        assert model.converged_ is False
        np.testing.assert_allclose(model.lower_bound_, sk.lower_bound_, rtol=RTOL, atol=0)
        np.testing.assert_allclose(model.lower_bounds_, sk.lower_bounds_, rtol=RTOL, atol=0)
        np.testing.assert_allclose(model.means_, sk.means_, rtol=RTOL, atol=0)
        np.testing.assert_allclose(model.covariances_, sk.covariances_, rtol=RTOL, atol=0)
        lower_bounds.append(model.lower_bound_)
    # The second fit continued from the first instead of restarting.
    assert lower_bounds[1] > lower_bounds[0]


@pytest.mark.parametrize("chunking", ["numpy", "dask-7-uneven"])
def test_n_init_picks_same_best_as_sklearn(chunking):
    kwargs = {"n_components": 5, "covariance_type": "full", "random_state": 0, "n_init": 3}
    X = DATA["iris"]
    sk = SkGaussianMixture(**kwargs).fit(X)
    first_only = SkGaussianMixture(**{**kwargs, "n_init": 1}).fit(X)
    # Not trivial: the best of the three initialisations is not the first.
    assert sk.lower_bound_ > first_only.lower_bound_ + 1e-3
    model = GaussianMixture(**kwargs).fit(_as_input("iris", chunking))
    _assert_same_fit(model, sk)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_max_iter_reached_warns_like_sklearn(covariance_type):
    kwargs = _estimator_kwargs("synthetic", covariance_type, max_iter=2)
    X = DATA["synthetic"]
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        sk = SkGaussianMixture(**_copy_kwargs(kwargs)).fit(X)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = GaussianMixture(**_copy_kwargs(kwargs)).fit(_as_input("synthetic", "dask-7-uneven"))
    assert sk.converged_ is False
    assert model.converged_ is False
    assert model.n_iter_ == sk.n_iter_ == 2
    _assert_same_fit(model, sk)


def test_converged_fit_does_not_warn():
    kwargs = _estimator_kwargs("iris", "diag")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GaussianMixture(**_copy_kwargs(kwargs)).fit(DATA["iris"])
    assert model.converged_ is True
