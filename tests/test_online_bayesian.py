"""OnlineBayesianGaussianMixture: memoized online variational Bayes and SVI."""

import inspect
import warnings

import dask.array as da
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from daskgmm import (
    BayesianGaussianMixture,
    OnlineBayesianGaussianMixture,
    OnlineGaussianMixture,
)
from daskgmm.estimators import load
from daskgmm.estimators.stepwise import mini_batches, revisiting_order
from daskgmm.kernels.estep import chunk_stats
from daskgmm.kernels.stats import merge_all
from daskgmm.kernels.variational import variational_m_step

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
POSTERIOR = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_cholesky_",
    "mean_precision_",
    "degrees_of_freedom_",
)


def _blobs(rng, n=3000, d=3, k=3, scale=6.0):
    centres = rng.normal(scale=scale, size=(k, d))
    return centres[rng.integers(k, size=n)] + rng.normal(size=(n, d))


def _batch(X, n_components, max_iter, **kw):
    """Batch variational Bayes, ``max_iter`` iterations exactly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BayesianGaussianMixture(n_components, max_iter=max_iter, tol=0.0, **kw)
        return model.fit(X)


def _concentration(model):
    return np.asarray(model.weight_concentration_)


def _assert_same_posterior(a, b, rtol):
    for name in POSTERIOR:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, err_msg=name)
    np.testing.assert_allclose(_concentration(a), _concentration(b), rtol=rtol)


def _assert_identical(a, b):
    for name in POSTERIOR:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(_concentration(a), _concentration(b))
    assert a.lower_bounds_ == b.lower_bounds_
    assert a.log_likelihood_history_ == b.log_likelihood_history_


def _entries(model):
    return {k: (s.nk, s.means, s.m2, e) for k, (s, e) in model._memo.items()}


# --------------------------------------------------------------------------- #
# memoized VB
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior", PRIOR_TYPES)
def test_memoized_with_one_batch_is_batch_variational_bayes(rng, cov, prior):
    X = _blobs(rng)
    kw = {"covariance_type": cov, "weight_concentration_prior_type": prior, "random_state": 0}
    batch = _batch(X, 5, 6, **kw)
    online = OnlineBayesianGaussianMixture(
        5, batch_size=3000, chunk_rows=3000, max_passes=6, **kw
    ).fit(X)
    _assert_same_posterior(online, batch, rtol=1e-10)
    np.testing.assert_allclose(online.lower_bounds_, batch.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(online.mean_prior_, X.mean(axis=0), rtol=1e-12)
    assert online.n_batches_seen_ == 6 and len(online._memo) == 1


def test_memoized_over_several_batches_reaches_the_batch_fixed_point(rng):
    X = _blobs(rng)
    kw = {"random_state": 0, "chunk_rows": 250}
    batch = _batch(X, 3, 300, **kw)
    online = OnlineBayesianGaussianMixture(3, batch_size=500, max_passes=40, **kw).fit(X)
    assert online.n_batches_seen_ == 6 * 40 and len(online._memo) == 6
    order = np.argsort(online.means_[:, 0])
    expected = np.argsort(batch.means_[:, 0])
    np.testing.assert_allclose(online.means_[order], batch.means_[expected], rtol=1e-9)
    np.testing.assert_allclose(online.weights_[order], batch.weights_[expected], rtol=1e-9)
    np.testing.assert_allclose(online.lower_bound_, batch.lower_bound_, rtol=1e-11)
    # a fixed point of batch variational Bayes: one more batch step changes nothing
    online_then_batch = OnlineBayesianGaussianMixture(
        3, batch_size=500, max_passes=40, final_batch_pass=True, **kw
    ).fit(X)
    _assert_same_posterior(online_then_batch, online, rtol=1e-9)
    # the memo's entries are the statistics of a partition of the rows
    assert sum(s.n_rows for s, _ in online._memo.values()) == 3000
    groups = mini_batches(online._partition, (250,) * 12, 500)
    assert sorted(online._memo) == sorted(int(g.min()) for g in groups)


@pytest.mark.parametrize("cov", ("full", "diag"))
def test_memoized_lower_bound_never_decreases_after_the_first_pass(rng, cov):
    X = _blobs(rng, k=4)
    schedule = {"batch_size": 400, "chunk_rows": 200, "max_passes": 6, "final_batch_pass": True}
    online = OnlineBayesianGaussianMixture(8, covariance_type=cov, random_state=1, **schedule)
    online.fit(X)
    bounds = np.array(online.lower_bounds_)
    n_batches = 8  # 3000 rows in 15 chunks of 200: 7 batches of 2 chunks, 1 of 1
    assert len(bounds) == 6 * n_batches + 1
    after_first_pass = bounds[n_batches - 1 : -1]
    assert np.all(np.diff(after_first_pass) >= -1e-9 * np.abs(after_first_pass[1:]))
    assert after_first_pass[-1] > after_first_pass[0]
    # a batch step from the memoized posterior reaches at least the memo's bound
    assert bounds[-1] >= bounds[-2] - 1e-9 * abs(bounds[-2])


def test_revisiting_order_gives_the_same_mini_batches_every_pass():
    chunks = (10,) * 11
    partition = np.random.RandomState(0).permutation(11)
    groups = mini_batches(partition, chunks, 30)
    rng = np.random.RandomState(1)
    orders = [revisiting_order(partition, chunks, 30, rng) for _ in range(5)]
    seen = [sorted(map(tuple, mini_batches(order, chunks, 30))) for order in orders]
    assert all(s == sorted(map(tuple, groups)) for s in seen)
    assert len({tuple(o) for o in orders}) > 1  # visited in other orders
    assert all(tuple(mini_batches(o, chunks, 30)[-1]) == tuple(groups[-1]) for o in orders)


# --------------------------------------------------------------------------- #
# SVI
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_svi_step_of_size_one_on_all_the_data_is_a_batch_step(rng, cov):
    X = _blobs(rng)
    batch = _batch(X, 5, 1, covariance_type=cov, random_state=0)
    online = OnlineBayesianGaussianMixture(
        5,
        covariance_type=cov,
        method="svi",
        t0=0.0,  # step (1 + 0) ** -kappa = 1
        batch_size=3000,
        chunk_rows=3000,
        max_passes=1,
        random_state=0,
    ).fit(X)
    _assert_same_posterior(online, batch, rtol=1e-10)
    np.testing.assert_allclose(online.lower_bound_, batch.lower_bound_, rtol=1e-10)


def test_svi_step_blends_the_natural_parameters(rng):
    X = _blobs(rng, n=2000)
    online = OnlineBayesianGaussianMixture(
        4, method="svi", t0=1.0, kappa=0.7, batch_size=500, chunk_rows=500, random_state=0
    )
    online.partial_fit(X[:1000])
    before = online._get_parameters()
    prior = online.mean_precision_prior_
    stats = chunk_stats(X[1000:1500], online.estep(before))
    rho = (3 + 1.0) ** -0.7
    online.partial_fit(X[1000:1500])
    # natural parameters less the prior's, old ones rescaled from 1000 to the 1500 rows
    # seen, blended with the full step: the mini-batch's statistics scaled to 1500 rows
    target = variational_m_step(stats.scaled(1500 / 500), online._priors, online.reg_covar)

    def step(old, new, prior_part):
        return (1 - rho) * 1.5 * (old - prior_part) + rho * (new - prior_part) + prior_part

    np.testing.assert_allclose(
        online.mean_precision_, step(before[1], target[1], prior), rtol=1e-10
    )
    dof_prior = online.degrees_of_freedom_prior_
    np.testing.assert_allclose(
        online.degrees_of_freedom_, step(before[3], target[3], dof_prior), rtol=1e-10
    )
    first_moment = step(
        before[1][:, None] * before[2],
        target[1][:, None] * target[2],
        prior * online.mean_prior_,
    )
    np.testing.assert_allclose(
        online.mean_precision_[:, None] * online.means_, first_moment, rtol=1e-9
    )
    # the statistics are scaled to the 1500 rows seen: n_k sum to them
    np.testing.assert_allclose(online.mean_precision_.sum() - 4 * prior, 1500, rtol=1e-12)


# --------------------------------------------------------------------------- #
# partial_fit
# --------------------------------------------------------------------------- #
def test_memoized_partial_fit_adds_each_blocks_statistics(rng):
    X = _blobs(rng, n=3000)
    blocks = [X[:1000], X[1000:2000], X[2000:]]
    model = OnlineBayesianGaussianMixture(4, batch_size=1000, chunk_rows=1000, random_state=0)
    kept = []
    for i, block in enumerate(blocks):
        params = model._get_parameters() if i else None
        model.partial_fit(block)
        if i == 0:  # initialised, priors' data defaults too, from the first block
            np.testing.assert_allclose(model.mean_prior_, block.mean(axis=0), rtol=1e-12)
            np.testing.assert_allclose(model.covariance_prior_, np.cov(block.T), rtol=1e-10)
            kept.append(model._memo[0][0])
            continue
        kept.append(chunk_stats(block, model.estep(params)))
        expected = variational_m_step(merge_all(kept), model._priors, model.reg_covar)
        np.testing.assert_allclose(model.means_, expected[2], rtol=1e-10)
        np.testing.assert_allclose(model.mean_precision_, expected[1], rtol=1e-10)
        assert sorted(model._memo) == [0, 1]  # earlier blocks folded into one entry
    assert (model.n_batches_seen_, model.n_samples_seen_) == (3, 3000)
    np.testing.assert_allclose(model.mean_precision_.sum(), 4 * 1.0 + 3000, rtol=1e-12)


def test_partial_fit_splits_blocks_into_mini_batches_and_tracks_the_rows(rng):
    X = _blobs(rng, n=4000)
    dX = da.from_array(X, chunks=(250, 3))
    for method in ("memoized", "svi"):
        model = OnlineBayesianGaussianMixture(3, method=method, batch_size=500, random_state=0)
        model.partial_fit(dX[:2000]).partial_fit(dX[2000:])
        assert (model.n_batches_seen_, model.n_samples_seen_) == (8, 4000)
        assert model._data_rows == 4000
        np.testing.assert_allclose(model.mean_precision_.sum(), 3 + 4000, rtol=1e-10)
        assert model.n_effective_components_ == 3
        assert model.predict(X).shape == (4000,)


# --------------------------------------------------------------------------- #
# model files and checkpoints
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("method", "cov", "prior"),
    [("memoized", "full", "dirichlet_process"), ("svi", "tied", "dirichlet_distribution")],
)
def test_save_load_round_trip_and_continue(rng, tmp_path, method, cov, prior):
    X = _blobs(rng, n=3000)
    kw = {"covariance_type": cov, "weight_concentration_prior_type": prior}
    model = OnlineBayesianGaussianMixture(
        4, method=method, batch_size=500, chunk_rows=250, random_state=0, **kw
    ).fit(X[:2000])
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert type(loaded) is OnlineBayesianGaussianMixture
    _assert_identical(loaded, model)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    for name in ("kind", "weight_concentration", "mean_precision", "degrees_of_freedom"):
        assert getattr(loaded._priors, name) == getattr(model._priors, name)
    np.testing.assert_array_equal(loaded._priors.mean, model._priors.mean)
    np.testing.assert_array_equal(loaded._priors.covariance, model._priors.covariance)
    for key, entry in _entries(model).items():
        for got, want in zip(_entries(loaded)[key], entry, strict=True):
            np.testing.assert_array_equal(got, want)
    assert loaded._data_rows == model._data_rows
    np.testing.assert_array_equal(loaded._partition, model._partition)
    loaded.partial_fit(X[2000:])
    model.partial_fit(X[2000:])
    _assert_identical(loaded, model)


@pytest.mark.parametrize(("method", "stop_after"), [("memoized", 5), ("memoized", 12), ("svi", 7)])
def test_checkpoint_resumes_to_the_uninterrupted_result(
    rng, tmp_path, monkeypatch, method, stop_after
):
    X = _blobs(rng, n=3000)
    Xd = da.from_array(X, chunks=(250, 3))  # 12 chunks, 6 mini-batches a pass
    kw = {"method": method, "batch_size": 500, "max_passes": 3, "random_state": 7}
    whole = OnlineBayesianGaussianMixture(5, **kw).fit(Xd)
    real_step = OnlineBayesianGaussianMixture.mstep
    steps = []

    class Killed(Exception):
        pass

    def dying_step(self, stats, params):
        if len(steps) == stop_after:
            raise Killed
        steps.append(1)
        return real_step(self, stats, params)

    monkeypatch.setattr(OnlineBayesianGaussianMixture, "mstep", dying_step)
    with pytest.raises(Killed):
        OnlineBayesianGaussianMixture(5, **kw).fit(Xd, checkpoint=tmp_path / "c")
    monkeypatch.setattr(OnlineBayesianGaussianMixture, "mstep", real_step)
    resumed = OnlineBayesianGaussianMixture(5, **kw).fit(Xd, checkpoint=tmp_path / "c")
    _assert_identical(resumed, whole)
    assert resumed.lower_bound_ == whole.lower_bound_
    assert resumed.n_batches_seen_ == 18


# --------------------------------------------------------------------------- #
# bad input
# --------------------------------------------------------------------------- #
def _untouchable(n=400, d=3):
    """A dask array that raises if any chunk is computed."""

    def refuse(block):
        raise AssertionError("a pass over the data was made")

    return da.zeros((n, d), chunks=(100, d)).map_blocks(refuse, dtype=float)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"weight_concentration_prior": -1.0}, ValueError, "weight_concentration_prior"),
        ({"degrees_of_freedom_prior": 1.5}, ValueError, "should be greater than 2"),
        ({"covariance_prior": -np.eye(3)}, ValueError, "symmetric, positive-definite"),
        ({"mean_prior": np.zeros(4)}, ValueError, "should have the shape of"),
        ({"method": "sgd"}, ValueError, "method must be one of"),
        ({"kappa": 0.5}, ValueError, "kappa"),
        ({"weight_concentration_prior_type": "x"}, ValueError, "weight_concentration_prior_type"),
    ],
)
def test_bad_inputs_get_the_batch_models_errors_before_any_pass(params, error, match):
    X = _untouchable()
    with pytest.raises(error, match=match) as online_error:
        OnlineBayesianGaussianMixture(2, **params).fit(X)
    with pytest.raises(error, match=match):
        OnlineBayesianGaussianMixture(2, **params).partial_fit(X)
    batch_params = {k: v for k, v in params.items() if k not in ("method", "kappa")}
    if batch_params:
        with pytest.raises(error) as batch_error:
            BayesianGaussianMixture(2, **batch_params).fit(X)
        assert str(batch_error.value) == str(online_error.value)


def test_shared_parameters_have_the_parents_defaults():
    """The constructor lists its parameters explicitly; those it shares with
    BayesianGaussianMixture (the model, the priors) and OnlineGaussianMixture (the
    mini-batches) keep their defaults."""
    ours = inspect.signature(OnlineBayesianGaussianMixture).parameters
    for parent in (BayesianGaussianMixture, OnlineGaussianMixture):
        theirs = inspect.signature(parent).parameters
        for name in set(ours) & set(theirs):
            assert ours[name].default == theirs[name].default, (parent.__name__, name)
    priors = {
        name for name in inspect.signature(BayesianGaussianMixture).parameters if "prior" in name
    }
    assert priors <= set(ours)
    assert ours["method"].default == "memoized"
