"""The scikit-learn estimator protocol, input validation with helpful messages, and
sample weights."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from dask import delayed
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from daskgmm import GaussianMixture
from daskgmm.errors import NotFittedError

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
N, D, K = 200, 3, 2


def _two_blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(N // 2, D)), rng.normal(size=(N // 2, D)) + 6.0])


X = _two_blobs()
# A complete user-supplied start: no k-means, so the first pass over the data is EM's.
GIVEN_INIT = {
    "weights_init": np.array([0.5, 0.5]),
    "means_init": np.array([[0.5, 0.5, 0.5], [5.0, 5.0, 5.0]]),
    "precisions_init": np.stack([np.eye(D)] * K),
}


class Poisoned(RuntimeError):
    """Raised if data that should never be read is computed."""


def _poisoned(shape, dtype=np.float64) -> da.Array:
    """A dask array that raises if computed: proves a check happened before any pass."""

    def boom():
        raise Poisoned("the data were read")

    return da.from_delayed(delayed(boom)(), shape=shape, dtype=dtype)


def _fitted(covariance_type: str = "full") -> GaussianMixture:
    return GaussianMixture(K, covariance_type=covariance_type, random_state=0).fit(X)


# --------------------------------------------------------------------------- #
# estimator protocol
# --------------------------------------------------------------------------- #
def test_get_params_contains_every_sklearn_parameter_with_same_defaults():
    ours = GaussianMixture().get_params()
    theirs = SkGaussianMixture().get_params()
    missing = set(theirs) - set(ours)
    assert not missing, f"parameters of sklearn's GaussianMixture missing: {missing}"
    for name, value in theirs.items():
        assert ours[name] == value, name


def test_constructor_stores_parameters_unvalidated():
    # scikit-learn convention: __init__ only stores; validation happens in fit.
    est = GaussianMixture(0, covariance_type="bogus", tol=-1)
    params = est.get_params()
    assert params["n_components"] == 0
    assert params["covariance_type"] == "bogus"
    assert params["tol"] == -1


def test_set_params_and_clone_round_trip():
    means = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    est = GaussianMixture(K, covariance_type="diag", tol=1e-4, means_init=means, random_state=3)
    assert est.set_params(n_init=2, reg_covar=1e-3, chunk_rows=50) is est
    params = est.get_params()
    assert params["n_init"] == 2
    assert params["reg_covar"] == 1e-3
    assert params["chunk_rows"] == 50
    assert params["covariance_type"] == "diag"

    est.fit(X)
    copy = clone(est)
    assert copy is not est
    assert type(copy) is GaussianMixture
    assert not hasattr(copy, "means_")  # clone is unfitted
    copied = copy.get_params()
    assert copied.keys() == params.keys()
    for name, value in params.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(copied[name], value)
        else:
            assert copied[name] == value, name
    # The clone fits to the same model.
    copy.fit(X)
    np.testing.assert_allclose(copy.means_, est.means_, rtol=1e-12)

    with pytest.raises(ValueError, match="bogus"):
        est.set_params(bogus=1)


_SHAPES = {
    "full": {"covariances_": (K, D, D)},
    "tied": {"covariances_": (D, D)},
    "diag": {"covariances_": (K, D)},
    "spherical": {"covariances_": (K,)},
}


@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fitted_attributes_are_numpy_with_documented_shapes(covariance_type, as_dask):
    data = da.from_array(X, chunks=(37, D)) if as_dask else X
    est = GaussianMixture(K, covariance_type=covariance_type, random_state=0).fit(data)
    cov_shape = _SHAPES[covariance_type]["covariances_"]
    expected = {
        "weights_": (K,),
        "means_": (K, D),
        "covariances_": cov_shape,
        "precisions_": cov_shape,
        "precisions_cholesky_": cov_shape,
    }
    for name, shape in expected.items():
        value = getattr(est, name)
        assert type(value) is np.ndarray, f"{name} is {type(value)}"
        assert value.dtype == np.float64, name
        assert value.shape == shape, name
    assert isinstance(est.converged_, bool) and est.converged_
    assert isinstance(est.n_iter_, int) and est.n_iter_ >= 1
    assert isinstance(est.lower_bound_, float)
    assert isinstance(est.lower_bounds_, list)
    assert len(est.lower_bounds_) == est.n_iter_
    assert est.lower_bounds_[-1] == est.lower_bound_
    assert est.n_features_in_ == D
    # Values, not only shapes: a proper mixture whose precisions invert covariances.
    np.testing.assert_allclose(est.weights_.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.sort(est.means_[:, 0]), [0.0, 6.0], atol=0.5)
    if covariance_type in ("full", "tied"):
        eye = np.broadcast_to(np.eye(D), est.covariances_.shape)
        np.testing.assert_allclose(est.precisions_ @ est.covariances_, eye, atol=1e-10)
        chol = est.precisions_cholesky_
        np.testing.assert_allclose(chol @ np.swapaxes(chol, -1, -2), est.precisions_, rtol=1e-12)
    else:
        np.testing.assert_allclose(est.precisions_ * est.covariances_, 1.0, rtol=1e-12)
        np.testing.assert_allclose(est.precisions_cholesky_**2, est.precisions_, rtol=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda est: est.predict(X),
        lambda est: est.predict_proba(X),
        lambda est: est.score(X),
        lambda est: est.score_samples(X),
        lambda est: est.bic(X),
        lambda est: est.aic(X),
        lambda est: est.sample(5),
        lambda est: est.predict(da.from_array(X)),
    ],
    ids=["predict", "predict_proba", "score", "score_samples", "bic", "aic", "sample", "dask"],
)
def test_unfitted_model_raises_not_fitted(call):
    # scikit-learn's message (its check_is_fitted), daskgmm's class
    match = r"This GaussianMixture instance is not fitted yet\. Call 'fit' with appropriate"
    with pytest.raises(NotFittedError, match=match):
        call(GaussianMixture(K))
    # A subclass of scikit-learn's NotFittedError, so of the same bases.
    assert issubclass(NotFittedError, SkNotFittedError)
    assert issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, AttributeError)


# --------------------------------------------------------------------------- #
# bad data at fit
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize(
    ("data", "match"),
    [
        (X[:3], r"n_samples >= n_components.*n_components = 5, n_samples = 3.*reduce n_components"),
        # numpy: scikit-learn's check_array ("Expected 2D array, got 1D array instead");
        # dask: the same from the metadata ("Expected a 2-D array ..., got 1-D")
        (X[:, 0], r"(?s)Expected (a )?2-?D array.*got 1-?D.*Reshape your data.*reshape\(-1, 1\)"),
        (X.reshape(20, 10, D), r"2-D array.*got 3-D.*reshape\(-1, X.shape\[-1\]\)"),
        (
            np.array([["a", "b"]] * 10),
            r"dtype <U1.*not a real number.*astype\('float64'\)"
            r"|not compatible with arrays of bytes/strings.*Convert your data to numeric",
        ),
        (X.astype(object), r"dtype object.*not a real number.*astype\('float64'\)"),
    ],
    ids=["fewer-samples-than-components", "1-D", "3-D", "strings", "object"],
)
def test_bad_data_shape_or_dtype_raises_before_reading(data, match, as_dask):
    if data.dtype == object and not as_dask:
        # an in-memory object array of numbers is converted, as scikit-learn does
        GaussianMixture(K, random_state=0).fit(data)
        return
    if as_dask:
        if data.dtype.kind in "OU":
            data = da.from_array(data, chunks=data.shape, asarray=True)
        else:
            data = _poisoned(data.shape)  # the check must not need the values
    est = GaussianMixture(5)
    with pytest.raises(ValueError, match=match):
        est.fit(data)
    assert not hasattr(est, "means_")


def test_unknown_dask_chunk_sizes_raise_with_hint():
    Xd = da.from_array(X, chunks=(50, D))
    unknown = Xd[Xd[:, 0] > 0]
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes\(\)"):
        GaussianMixture(K).fit(unknown)


def test_nan_and_inf_rows_in_numpy_data_are_counted():
    bad = X.copy()
    bad[[5, 7], 1] = np.nan
    bad[150, 0] = np.inf
    est = GaussianMixture(K, random_state=0)
    with pytest.raises(ValueError, match=r"X contains 3 rows with NaN or infinite values.*impute"):
        est.fit(bad)
    assert not hasattr(est, "means_")


@pytest.mark.parametrize("init", ["kmeans", "given"])
def test_nan_rows_in_one_dask_chunk_name_count_and_chunk(init):
    bad = X.copy()
    bad[[120, 130], 2] = np.nan  # both in chunk 2 of 4 chunks of 50 rows
    kwargs = GIVEN_INIT if init == "given" else {}
    est = GaussianMixture(K, random_state=0, **kwargs)
    with pytest.raises(
        ValueError,
        match=r"X contains 2 rows with NaN or infinite values, in row chunks 2 \(2 rows\)",
    ):
        est.fit(da.from_array(bad, chunks=(50, D)))
    assert not hasattr(est, "means_")


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score"])
def test_nan_rows_at_predict_raise(method):
    model = _fitted()
    bad = X[:10].copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="X contains 1 rows with NaN or infinite values; remove"):
        getattr(model, method)(bad)
    # Dask input: the chunk's task raises when computed (score computes at once).
    with pytest.raises(ValueError, match=r"1 rows with NaN or infinite values, in row chunks 0 "):
        np.asarray(getattr(model, method)(da.from_array(bad, chunks=(4, D))))


# --------------------------------------------------------------------------- #
# bad data at predict / score
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score", "bic"])
def test_wrong_feature_count_at_predict(method, as_dask):
    model = _fitted()
    narrow = X[:, :2]
    data = _poisoned(narrow.shape) if as_dask else narrow
    with pytest.raises(
        ValueError,
        match=r"X has 2 features, but GaussianMixture is expecting 3 features as input; pass",
    ):
        getattr(model, method)(data)


def test_one_dimensional_input_at_predict():
    match = r"(?s)Expected 2D array, got 1D array.*reshape\(1, -1\) if it contains a single sample"
    with pytest.raises(ValueError, match=match):
        _fitted().predict(X[0])


def test_sample_needs_at_least_one_sample():
    with pytest.raises(ValueError, match=r"Invalid value for 'n_samples': 0\..*n_samples >= 1"):
        _fitted().sample(0)


def test_warm_start_with_other_feature_count():
    est = GaussianMixture(K, warm_start=True, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        est.fit(X[:, :2])


# --------------------------------------------------------------------------- #
# sample weights
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("value", [-1.0, np.nan, np.inf], ids=["negative", "nan", "inf"])
def test_bad_numpy_sample_weight_raises_upfront(value):
    weights = np.ones(N)
    weights[17] = value
    est = GaussianMixture(K)
    with pytest.raises(
        ValueError, match=r"sample_weight has 1 negative or non-finite values; .*finite and >= 0"
    ):
        est.fit(_poisoned((N, D)), sample_weight=weights)  # before any pass over X
    assert not hasattr(est, "means_")


@pytest.mark.parametrize("value", [-1.0, np.nan], ids=["negative", "nan"])
@pytest.mark.parametrize("init", ["given", "random", "kmeans", "k-means++", "random_from_data"])
def test_bad_dask_sample_weight_raises_in_first_pass_naming_chunk(init, value):
    weights = np.ones(N)
    weights[120] = value  # chunk 2 of 4 chunks of 50 rows
    kwargs = GIVEN_INIT if init == "given" else {"init_params": init}
    est = GaussianMixture(K, random_state=0, **kwargs)
    with pytest.raises(
        ValueError, match=r"sample_weight has 1 negative or non-finite values in row chunk 2"
    ):
        est.fit(da.from_array(X, chunks=(50, D)), sample_weight=da.from_array(weights, chunks=50))
    assert not hasattr(est, "means_")


@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy", "dask"])
def test_sample_weight_of_wrong_length(as_dask):
    weights = da.ones(N - 1, chunks=50) if as_dask else np.ones(N - 1)
    with pytest.raises(
        ValueError, match=r"sample_weight must have shape \(200,\), one weight per row.*\(199,\)"
    ):
        GaussianMixture(K).fit(X, sample_weight=weights)


@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("init", ["given", "random", "kmeans", "k-means++", "random_from_data"])
def test_all_zero_sample_weights_raise(init, as_dask):
    kwargs = GIVEN_INIT if init == "given" else {"init_params": init}
    data = da.from_array(X, chunks=(50, D)) if as_dask else X
    weights = da.zeros(N, chunks=50) if as_dask else np.zeros(N)
    est = GaussianMixture(K, random_state=0, **kwargs)
    with pytest.raises(
        ValueError,
        match=r"sample weights (of the rows sampled for initialisation )?sum to zero; give",
    ):
        est.fit(data, sample_weight=weights)
    assert not hasattr(est, "means_")


@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type, as_dask):
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 4, size=N)
    counts[:3] = (2, 1, 1)  # includes zeros (row dropped) and repeats
    repeated = np.repeat(X, counts, axis=0)
    precisions = {
        "full": np.stack([np.eye(D)] * K),
        "tied": np.eye(D),
        "diag": np.ones((K, D)),
        "spherical": np.ones(K),
    }[covariance_type]
    kwargs = {
        "covariance_type": covariance_type,
        "tol": 1e-10,
        "weights_init": np.array([0.3, 0.7]),
        "means_init": np.array([[2.0, 2.0, 2.0], [3.0, 3.0, 3.0]]),
        "precisions_init": precisions,
    }
    if as_dask:
        data = da.from_array(X, chunks=(37, D))
        weights = da.from_array(counts.astype(float), chunks=64)  # other chunks than X
    else:
        data, weights = X, counts
    weighted = GaussianMixture(K, **kwargs).fit(data, sample_weight=weights)
    ref = GaussianMixture(K, **kwargs).fit(repeated)
    assert ref.n_iter_ > 2
    assert weighted.n_iter_ == ref.n_iter_
    for name in ("means_", "covariances_", "weights_", "lower_bound_"):
        np.testing.assert_allclose(
            getattr(weighted, name), getattr(ref, name), rtol=1e-7, err_msg=name
        )
    # lower_bound_ is the weighted mean log-likelihood, i.e. the repeated data's mean.
    np.testing.assert_allclose(weighted.lower_bound_, ref.score(repeated), rtol=1e-6)


@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("init", ["random", "kmeans", "k-means++", "random_from_data"])
def test_unit_sample_weights_equal_unweighted_fit(init, as_dask):
    kwargs = {"init_params": init, "random_state": 0}
    if as_dask:
        data, weights = da.from_array(X, chunks=(50, D)), da.ones(N, chunks=70)
    else:
        data, weights = X, np.ones(N)
    weighted = GaussianMixture(K, **kwargs).fit(data, sample_weight=weights)
    ref = GaussianMixture(K, **kwargs).fit(data)
    if init != "random":
        # A real two-component fit.  ('random' starts both components at the global mean
        # and stops there after 2 iterations at the default tol, as scikit-learn does.)
        np.testing.assert_allclose(np.sort(ref.means_[:, 0]), [0.0, 6.0], atol=0.5)
    np.testing.assert_allclose(weighted.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(weighted.lower_bound_, ref.lower_bound_, rtol=1e-10)
    assert weighted.n_iter_ == ref.n_iter_


# --------------------------------------------------------------------------- #
# constructor parameters
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"covariance_type": "bogus"}, ValueError, r"covariance_type must be one of .*'full'"),
        ({"n_components": 0}, ValueError, r"n_components must be >= 1, got 0"),
        ({"tol": -1}, ValueError, r"tol must be a finite number >= 0"),
        ({"tol": np.nan}, ValueError, r"tol must be a finite number >= 0"),
        ({"reg_covar": -1}, ValueError, r"reg_covar must be a finite number >= 0"),
        ({"max_iter": -1}, ValueError, r"max_iter must be >= 0, got -1"),
        ({"n_init": 0}, ValueError, r"n_init must be >= 1, got 0"),
        ({"init_params": "x"}, ValueError, r"init_params must be one of .*'kmeans'.*got 'x'"),
        ({"n_components": 2.5}, TypeError, r"n_components must be an integer, got 2.5"),
        ({"n_components": "3"}, TypeError, r"n_components must be an integer"),
        ({"max_iter": True}, TypeError, r"max_iter must be an integer"),
        ({"tol": "small"}, TypeError, r"tol must be a real number"),
        ({"random_state": "seed"}, TypeError, r"random_state must be None, an int"),
        ({"warm_start": 1}, TypeError, r"warm_start must be True or False, got 1"),
        ({"progress": "yes"}, TypeError, r"progress must be True or False"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_invalid_constructor_values_raise_before_reading(params, error, match):
    est = GaussianMixture(**{"n_components": K, **params})
    with pytest.raises(error, match=match):
        est.fit(_poisoned((N, D)))
    assert not hasattr(est, "means_")


# --------------------------------------------------------------------------- #
# user-supplied initial parameters
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"weights_init": [0.3, 0.3]},
            r"'weights' should be normalized, but got sum\(weights\) = 0\.60000; divide "
            "weights_init by its sum",
        ),
        (
            {"weights_init": [1.5, -0.5]},
            r"'weights' should be in the range \[0, 1\], but got min value -0\.50000, max",
        ),
        (
            {"weights_init": [0.2, 0.3, 0.5]},
            r"'weights' should have the shape of \(2,\), but got \(3,\); give weights_init",
        ),
        (
            {"means_init": np.zeros((K, D - 1))},
            r"'means' should have the shape of \(2, 3\), but got \(2, 2\); give means_init "
            r"the shape \(2, 3\), from n_components and the data's n_features",
        ),
        ({"means_init": np.zeros((K + 1, D))}, r"'means' should have the shape of \(2, 3\)"),
        ({"means_init": [[0, 0, np.nan], [1, 1, 1]]}, r"means_init contains NaN"),
        (
            {"precisions_init": np.stack([np.eye(D), np.diag([1.0, -1.0, 1.0])])},
            r"'full precision' should be symmetric, positive-definite; component 1 of "
            "precisions_init is not",
        ),
        (
            {"precisions_init": np.stack([np.eye(D), np.eye(D) + np.triu(np.ones((D, D)), 1)])},
            r"'full precision' should be symmetric.*component 1 of precisions_init",
        ),
        (
            {"covariance_type": "tied", "precisions_init": -np.eye(D)},
            r"'tied precision' should be symmetric, positive-definite; precisions_init is not",
        ),
        (
            {"covariance_type": "diag", "precisions_init": [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]},
            r"'diag precision' should be positive; precisions_init has 1 values <= 0",
        ),
        (
            {"covariance_type": "spherical", "precisions_init": [1.0, -2.0]},
            r"'spherical precision' should be positive",
        ),
        (
            {"covariance_type": "diag", "precisions_init": np.ones((K, D - 1))},
            r"'diag precision' should have the shape of \(2, 3\)",
        ),
    ],
    ids=[
        "weights-sum",
        "weights-range",
        "weights-shape",
        "means-features",
        "means-components",
        "means-nan",
        "full-not-pd",
        "full-not-symmetric",
        "tied-not-pd",
        "diag-zero",
        "spherical-negative",
        "diag-shape",
    ],
)
def test_bad_initial_parameters_raise_before_reading(params, match):
    est = GaussianMixture(K, **params)
    with pytest.raises(ValueError, match=match):
        est.fit(_poisoned((N, D)))
    assert not hasattr(est, "means_")


# --------------------------------------------------------------------------- #
# covariances that become singular
# --------------------------------------------------------------------------- #
def _duplicated_rows() -> np.ndarray:
    rng = np.random.default_rng(2)
    return np.vstack([np.tile([[1.0, 2.0, 3.0]], (50, 1)), rng.normal(size=(50, D)) + 10.0])


def _constant_column() -> np.ndarray:
    data = X.copy()
    data[:, 1] = 4.0
    return data


@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("init", ["kmeans", "given"])
@pytest.mark.parametrize(
    ("covariance_type", "make_data"),
    [
        ("full", _duplicated_rows),
        ("tied", _constant_column),
        ("diag", _constant_column),
        ("diag", _duplicated_rows),
    ],
    ids=[
        "full-duplicated-rows",
        "tied-constant-column",
        "diag-constant-column",
        "diag-duplicated-rows",
    ],
)
def test_singular_covariance_suggests_reg_covar(covariance_type, make_data, init, as_dask):
    data = make_data()
    kwargs = {"covariance_type": covariance_type, "reg_covar": 0.0, "random_state": 0}
    if init == "given":
        # Start with the identical rows near component 0: the first M-step collapses it.
        kwargs.update(
            weights_init=np.array([0.5, 0.5]),
            means_init=np.array([[1.0, 2.0, 3.0], [9.0, 9.0, 9.0]]),
            precisions_init={
                "full": np.stack([np.eye(D)] * K),
                "tied": np.eye(D),
                "diag": np.ones((K, D)),
                "spherical": np.ones(K),
            }[covariance_type],
        )
    values = data
    if as_dask:
        data = da.from_array(data, chunks=(30, D))
    est = GaussianMixture(K, **kwargs)
    with pytest.raises(ValueError, match=r"ill-defined empirical covariance.*increase reg_covar"):
        est.fit(data)
    assert not hasattr(est, "means_")
    # and the advice works: the fit then is scikit-learn's with that reg_covar
    est.set_params(reg_covar=1e-6).fit(data)
    assert np.all(np.isfinite(est.precisions_cholesky_))
    if init == "given":
        sk = SkGaussianMixture(K, **{**kwargs, "reg_covar": 1e-6}).fit(values)
        np.testing.assert_allclose(est.means_, sk.means_, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(est.covariances_, sk.covariances_, rtol=1e-6, atol=1e-9)


def test_sklearn_raises_for_collapsed_spherical_component():
    # The oracle's behaviour that the next test expects from daskgmm.
    kwargs = {"covariance_type": "spherical", "reg_covar": 0.0, "random_state": 0}
    with pytest.raises(ValueError, match=r"ill-defined empirical covariance.*reg_covar"):
        SkGaussianMixture(K, **kwargs).fit(_duplicated_rows())


@pytest.mark.parametrize("chunk_rows", [100, 30, 7])
def test_collapsed_spherical_component_raises_like_sklearn(chunk_rows):
    # The collapsed component is far from the chunks' centres: its variance is
    # recomputed about its own mean (kernels.moments.CANCELLATION_LIMIT), exactly 0.
    kwargs = {"covariance_type": "spherical", "reg_covar": 0.0, "random_state": 0}
    est = GaussianMixture(K, chunk_rows=chunk_rows, **kwargs)
    with pytest.raises(ValueError, match=r"ill-defined empirical covariance.*increase reg_covar"):
        est.fit(_duplicated_rows())
