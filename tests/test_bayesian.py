"""``BayesianGaussianMixture``: scikit-learn's numbers, one pass per iteration, and
everything the batch model takes.

The oracle is scikit-learn's ``BayesianGaussianMixture`` started from the same
responsibilities: with ``init_params`` 'kmeans' (or 'random_from_data', whose start
scikit-learn computes right for every covariance type but 'tied') and no more rows
than ``init_sample_size``, both start from the same k-means labels of the same rows.
"""

from __future__ import annotations

import copy
import warnings

import dask.array as da
import numpy as np
import pytest
from _support import ComputeCounter, counted_dask_array
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SklearnBGM

import daskgmm
from daskgmm import BayesianGaussianMixture
from daskgmm.kernels.estep import chunk_stats
from daskgmm.kernels.responsibilities import EStep
from daskgmm.kernels.variational import responsibility_entropy, variational_log_density

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


def _blobs(n_per: int = 150, seed: int = 0, offset: float = 0.0) -> np.ndarray:
    """Three blobs of different spreads in 3-D (plus a common offset)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [0.0, 6.0, 5.0]])
    parts = [rng.normal(size=(n_per, 3)) * (i + 1) * 0.6 + c for i, c in enumerate(centres)]
    return np.vstack(parts) + offset


def _relative(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300))


def _assert_same_fit(ours, theirs, rtol: float = 1e-7) -> None:
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert _relative(getattr(ours, name), getattr(theirs, name)) < rtol, name
    for name in ("mean_precision_", "degrees_of_freedom_", "mean_prior_", "covariance_prior_"):
        assert _relative(getattr(ours, name), getattr(theirs, name)) < rtol, name
    concentration = np.asarray(theirs.weight_concentration_)
    assert _relative(np.asarray(ours.weight_concentration_), concentration) < rtol
    lower_bound = float(np.squeeze(theirs.lower_bound_))
    assert abs(ours.lower_bound_ - lower_bound) <= rtol * abs(lower_bound)
    theirs_bounds = [float(np.squeeze(b)) for b in theirs.lower_bounds_]
    np.testing.assert_allclose(ours.lower_bounds_, theirs_bounds, rtol=rtol)


# --------------------------------------------------------------------------- #
# scikit-learn's numbers
# --------------------------------------------------------------------------- #
CHUNKINGS = {
    "one-chunk": lambda X: X,
    "numpy-97-rows": lambda X: X,  # chunk_rows below
    "dask-uneven": lambda X: da.from_array(X, chunks=((200, 50, 120, 80), (3,))),
}


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_equals_sklearn(prior_type, covariance_type, chunking):
    X = _blobs()
    params = dict(
        n_components=5,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        max_iter=40,
        tol=1e-4,
        random_state=3,
    )
    theirs = SklearnBGM(**params).fit(X)
    chunk_rows = 97 if chunking == "numpy-97-rows" else "auto"
    ours = BayesianGaussianMixture(**params, chunk_rows=chunk_rows).fit(CHUNKINGS[chunking](X))
    _assert_same_fit(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-9)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-9)
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-9)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_equals_sklearn_from_random_data_points_and_with_user_priors(prior_type, covariance_type):
    X = _blobs(seed=1, offset=50.0)
    d = X.shape[1]
    covariance_prior = {
        "full": np.eye(d) * 2.0,
        "diag": np.full(d, 2.0),
        "spherical": 2.0,
    }[covariance_type]
    params = dict(
        n_components=6,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        weight_concentration_prior=0.05,
        mean_precision_prior=0.5,
        mean_prior=np.full(d, 50.0),
        degrees_of_freedom_prior=d + 1.5,
        covariance_prior=covariance_prior,
        init_params="random_from_data",
        max_iter=60,
        tol=1e-5,
        random_state=0,
    )
    theirs = SklearnBGM(**params).fit(X)
    ours = BayesianGaussianMixture(**params, chunk_rows=128).fit(X)
    _assert_same_fit(ours, theirs)


def test_tied_start_from_single_rows_is_the_exact_weighted_covariance():
    """scikit-learn's tied covariance is ``(X^T X - sum_k n_k m_k m_k^T) / sum n_k`` over
    ALL rows, right only when every row's responsibilities sum to 1. 'k-means++' and
    'random_from_data' start from one row per component, so its tied start counts the
    other rows' spread too. daskgmm's equals scikit-learn's own start computed on the
    rows that carry responsibility."""
    X = _blobs(seed=2)
    params = dict(
        n_components=4, covariance_type="tied", init_params="random_from_data", random_state=5
    )
    ours = BayesianGaussianMixture(**params, max_iter=0).fit(X)
    reference = SklearnBGM(**params)
    reference._check_parameters(X)  # the priors from all the data
    rows = np.random.RandomState(5).choice(X.shape[0], size=4, replace=False)
    resp = np.eye(4)
    reference._initialize(X[rows], resp)
    assert _relative(ours.covariances_, reference.covariances_) < 1e-12
    assert _relative(ours.means_, reference.means_) < 1e-12
    # and scikit-learn's own start, over all rows, is far from it
    sklearn_start = SklearnBGM(**params, max_iter=1)
    sklearn_start._check_parameters(X)
    sklearn_start._initialize_parameters(X, np.random.RandomState(5))
    assert _relative(sklearn_start.covariances_, ours.covariances_) > 0.5


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_covariance_types_agree_at_initialisation(prior_type):
    """scikit-learn's test_compare_covar_type on daskgmm's initial posteriors
    (``max_iter=0``): tied = mean of full, diag = diagonal of full, spherical = mean
    of diag, each times its degrees of freedom."""
    rng = np.random.RandomState(0)
    X = rng.randn(300, 3) * 7 + rng.randn(1, 3)
    common = dict(weight_concentration_prior_type=prior_type, n_components=4, max_iter=0)
    fitted = {
        t: BayesianGaussianMixture(covariance_type=t, random_state=0, **common).fit(X)
        for t in COVARIANCE_TYPES
    }
    full = fitted["full"].covariances_ * fitted["full"].degrees_of_freedom_[:, None, None]
    tied = fitted["tied"].covariances_ * fitted["tied"].degrees_of_freedom_
    diag = fitted["diag"].covariances_ * fitted["diag"].degrees_of_freedom_[:, None]
    spherical = fitted["spherical"].covariances_ * fitted["spherical"].degrees_of_freedom_
    np.testing.assert_allclose(tied, full.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(diag, np.array([np.diag(c) for c in full]), rtol=1e-10)
    np.testing.assert_allclose(spherical, diag.mean(axis=1), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_lower_bound_never_decreases(prior_type, covariance_type):
    """scikit-learn's test_monotonic_likelihood, on chunked data far from the origin."""
    X = _blobs(seed=4, offset=1e4)
    model = BayesianGaussianMixture(
        n_components=6,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        init_params="random",
        tol=1e-7,
        max_iter=150,
        random_state=1,
        chunk_rows=100,
    ).fit(da.from_array(X, chunks=100))
    bounds = np.array(model.lower_bounds_)
    assert len(bounds) > 5
    assert np.all(np.diff(bounds) >= -1e-10 * np.abs(bounds[1:])), np.diff(bounds).min()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_entropy_from_statistics_equals_the_sum_over_rows(covariance_type):
    """sum_i w_i sum_k r_ik log r_ik, read off the statistics, equals the sum over rows
    (sample weights and a far offset included)."""
    X = _blobs(seed=5, offset=1e6)
    weights = np.random.default_rng(0).uniform(0.1, 3.0, size=X.shape[0])
    model = SklearnBGM(n_components=4, covariance_type=covariance_type, max_iter=3).fit(X)
    params = model._get_parameters()
    log_density = variational_log_density(params, covariance_type, "dirichlet_process")
    stats = chunk_stats(X, EStep(log_density), weights)
    # the rows' responsibilities by daskgmm's centred numpy kernel (scikit-learn's
    # expanded 'diag' density loses digits 1e6 from the origin)
    shift = X.mean(axis=0)
    log_prob = log_density(X - shift, shift)
    log_resp = log_prob - logsumexp(log_prob, axis=1, keepdims=True)
    direct = np.sum(weights[:, None] * np.exp(log_resp) * log_resp)
    assert responsibility_entropy(stats, log_density) == pytest.approx(direct, rel=1e-9)


def test_empties_the_components_the_data_do_not_need():
    X = _blobs(n_per=300, seed=6)
    model = BayesianGaussianMixture(
        n_components=10, weight_concentration_prior=1e-3, random_state=0, max_iter=300
    ).fit(X)
    assert model.n_effective_components_ == 3
    assert np.sort(model.weights_)[:7].sum() < 1e-2


# --------------------------------------------------------------------------- #
# one pass per iteration; the priors' data defaults from the initialisation's pass
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_one_read_of_each_chunk_per_pass_priors_included(init_params, covariance_type):
    X = _blobs(n_per=400, seed=7, offset=3.0)
    counting, dX = counted_dask_array(X, 150)
    n_chunks = dX.numblocks[0]
    with ComputeCounter() as computes:
        model = BayesianGaussianMixture(
            n_components=4,
            covariance_type=covariance_type,
            init_params=init_params,
            init_sample_size=300,  # fewer than the rows: the sample is gathered
            max_iter=5,
            tol=0,
            random_state=0,
        ).fit(dX)
    assert model.n_iter_ == 5
    assert computes.count == 1 + 5
    assert len(counting.row_reads()) == n_chunks * (1 + 5)
    np.testing.assert_allclose(model.mean_prior_, X.mean(axis=0), rtol=1e-12)
    covariance = np.cov(X.T)
    expected = {
        "full": covariance,
        "tied": covariance,
        "diag": np.diag(covariance),
        "spherical": np.diag(covariance).mean(),
    }[covariance_type]
    np.testing.assert_allclose(model.covariance_prior_, expected, rtol=1e-12)


# --------------------------------------------------------------------------- #
# bad input: scikit-learn's errors, before any pass
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("params", "error", "text"),
    [
        ({"weight_concentration_prior": -1.0}, ValueError, "weight_concentration_prior must be"),
        ({"mean_precision_prior": 0.0}, ValueError, "mean_precision_prior must be"),
        ({"weight_concentration_prior_type": "pitman_yor"}, ValueError, "must be one of"),
        (
            {"degrees_of_freedom_prior": 1.5},
            ValueError,
            "The parameter 'degrees_of_freedom_prior' should be greater than 2, but got 1.500.",
        ),
        (
            {"covariance_prior": [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]},
            ValueError,
            "'full precision' should be symmetric, positive-definite",
        ),
        (
            {"covariance_prior": np.eye(2)},
            ValueError,
            "The parameter 'full covariance_prior' should have the shape of (3, 3), but got (2, 2)",
        ),
        (
            {"mean_prior": [0.0, 0.0]},
            ValueError,
            "The parameter 'means' should have the shape of (3,), but got (2,)",
        ),
        (
            {"covariance_type": "diag", "covariance_prior": [1.0, -1.0, 1.0]},
            ValueError,
            "'diag precision' should be positive",
        ),
        (
            {"covariance_type": "spherical", "covariance_prior": -2.0},
            ValueError,
            "covariance_prior must be a finite number > 0",
        ),
    ],
    ids=[
        "concentration",
        "mean-precision",
        "prior-type",
        "dof",
        "not-pd",
        "cov-shape",
        "mean-shape",
        "diag",
        "spherical",
    ],
)
def test_bad_priors_are_refused_before_any_pass(params, error, text):
    counting, dX = counted_dask_array(_blobs(n_per=50), 60)
    with ComputeCounter() as computes, pytest.raises(error) as info:
        BayesianGaussianMixture(n_components=3, **params).fit(dX)
    assert text in str(info.value)
    assert computes.count == 0
    assert counting.row_reads() == []


def test_sklearn_raises_the_same_errors():
    """The messages above are scikit-learn's (the first part of ours)."""
    X = _blobs(n_per=50)
    with pytest.raises(ValueError, match=r"should be greater than 2, but got 1\.500"):
        SklearnBGM(n_components=3, degrees_of_freedom_prior=1.5).fit(X)
    with pytest.raises(ValueError, match="'full precision' should be symmetric"):
        SklearnBGM(n_components=3, covariance_prior=-np.eye(3)).fit(X)


# --------------------------------------------------------------------------- #
# everything the batch model takes
# --------------------------------------------------------------------------- #
def test_warm_start_continues_as_sklearns():
    X = _blobs(seed=8)
    params = dict(n_components=4, warm_start=True, max_iter=4, random_state=0, tol=1e-12)
    ours, theirs = BayesianGaussianMixture(**params), SklearnBGM(**params)
    for _ in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours.fit(X)
            theirs.fit(X)
        _assert_same_fit(ours, theirs)


def test_sample_weight_of_two_equals_each_row_twice():
    """Frequency weights: from the same posterior (a warm start), weighting every row
    by 2 gives the fit to each row taken twice, priors (ddof included) and bound too."""
    X = _blobs(seed=9)
    start = BayesianGaussianMixture(n_components=3, random_state=0, max_iter=0).fit(X)
    start.set_params(warm_start=True, max_iter=6, tol=0)
    weighted, repeated = copy.deepcopy(start), copy.deepcopy(start)
    weighted.fit(X, sample_weight=np.full(len(X), 2.0))
    repeated.fit(np.vstack([X, X]))
    np.testing.assert_allclose(weighted.covariance_prior_, np.cov(np.vstack([X, X]).T))
    np.testing.assert_allclose(weighted.covariance_prior_, repeated.covariance_prior_, rtol=1e-12)
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-10)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-10)


def test_omitted_rows_equal_a_fit_without_them():
    X = _blobs(seed=10)
    dirty = X.copy()
    dirty[[5, 77, 301], 1] = np.nan
    clean = np.delete(X, [5, 77, 301], axis=0)
    params = dict(n_components=4, random_state=0, max_iter=30)
    ours = BayesianGaussianMixture(**params, nan_policy="omit").fit(dirty)
    reference = BayesianGaussianMixture(**params).fit(clean)
    assert ours.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(ours.means_, reference.means_, rtol=1e-10)
    np.testing.assert_allclose(ours.lower_bound_, reference.lower_bound_, rtol=1e-10)
    assert ours.predict(dirty)[77] == -1


def test_saved_model_round_trip_without_pickle(tmp_path):
    X = _blobs(seed=11)
    for prior_type in PRIOR_TYPES:
        model = BayesianGaussianMixture(
            n_components=4,
            covariance_type="tied",
            weight_concentration_prior_type=prior_type,
            mean_prior=[0.0, 1.0, 2.0],
            random_state=0,
        ).fit(X)
        path = model.save(tmp_path / prior_type)
        loaded = daskgmm.load(path)
        assert type(loaded) is BayesianGaussianMixture
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        np.testing.assert_array_equal(
            np.asarray(loaded.weight_concentration_), np.asarray(model.weight_concentration_)
        )
        assert isinstance(loaded.weight_concentration_, type(model.weight_concentration_))
        assert loaded.degrees_of_freedom_ == model.degrees_of_freedom_
        assert loaded.n_effective_components_ == model.n_effective_components_
        np.testing.assert_array_equal(loaded.covariance_prior_, model.covariance_prior_)
        np.testing.assert_array_equal(loaded.get_params()["mean_prior"], [0.0, 1.0, 2.0])
        with np.load(path / "arrays.npz", allow_pickle=False) as arrays:
            assert all(arrays[name].dtype != object for name in arrays.files)


def test_checkpoint_resumes_with_the_priors_it_took(tmp_path, monkeypatch):
    """Killed after its third pass (both initialisations iterate together), the fit
    resumes to the uninterrupted result; the priors' data defaults come from the
    checkpoint, not from a pass."""
    X = _blobs(seed=12)
    params = dict(n_components=4, n_init=2, max_iter=8, tol=0, random_state=0, init_params="random")
    reference = BayesianGaussianMixture(**params).fit(X, checkpoint=tmp_path / "reference")

    from daskgmm.estimators import joint

    real_save = joint._save
    calls = []

    def dies_after_three(fit):
        real_save(fit)
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed after the third pass")

    monkeypatch.setattr(joint, "_save", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        BayesianGaussianMixture(**params).fit(X, checkpoint=tmp_path / "ckpt")
    monkeypatch.setattr(joint, "_save", real_save)
    with ComputeCounter() as computes:
        resumed = BayesianGaussianMixture(**params).fit(X, checkpoint=tmp_path / "ckpt")
    assert computes.count == 8 - 3  # the rest of both runs, one pass per iteration
    # bit for bit: the priors came from the checkpoint (pooled from a later pass they
    # would differ in the last digits)
    assert resumed.lower_bounds_ == reference.lower_bounds_
    np.testing.assert_array_equal(resumed.means_, reference.means_)
    np.testing.assert_array_equal(resumed.covariance_prior_, reference.covariance_prior_)


def test_xarray_cube_equals_its_rows():
    xr = pytest.importorskip("xarray")
    X = _blobs(n_per=100, seed=13)
    cube = xr.DataArray(
        X.T.reshape(3, 15, 20), dims=("band", "y", "x"), coords={"band": ["r", "g", "b"]}
    ).chunk({"y": 5})
    params = dict(n_components=3, random_state=0, max_iter=20)
    from_cube = BayesianGaussianMixture(**params).fit(cube)
    from_rows = BayesianGaussianMixture(**params).fit(X.reshape(15, 20, 3).reshape(-1, 3))
    assert list(from_cube.feature_names_in_) == ["r", "g", "b"]
    assert from_cube.lower_bound_ == pytest.approx(from_rows.lower_bound_, rel=1e-10)
    labels = from_cube.predict(cube)
    assert labels.dims == ("y", "x")


def test_distributed_cluster_fit_equals_the_threaded_one():
    distributed = pytest.importorskip("distributed")
    X = _blobs(seed=14)
    params = dict(n_components=4, random_state=0, max_iter=15, chunk_rows=100)
    threaded = BayesianGaussianMixture(**params).fit(X)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        clustered = BayesianGaussianMixture(**params, scheduler=client).fit(X)
    assert clustered.lower_bounds_ == pytest.approx(threaded.lower_bounds_, rel=1e-12)
    np.testing.assert_allclose(clustered.means_, threaded.means_, rtol=1e-12)


def test_clone_and_get_params_are_sklearns():
    from sklearn.base import clone

    model = BayesianGaussianMixture(n_components=3, weight_concentration_prior=0.1)
    theirs = set(SklearnBGM().get_params())
    assert theirs <= set(model.get_params())
    copy_ = clone(model)
    assert copy_.get_params() == model.get_params()
    assert copy.deepcopy(model).weight_concentration_prior == 0.1


def test_the_score_commands_criteria_read_the_rows_once_for_both_densities():
    """``daskgmm score`` of a Bayesian model: the variational score and the plug-in
    BIC/AIC come from one pass over the chunks."""
    from daskgmm.cli.score import criteria

    X = _blobs(seed=14)
    model = BayesianGaussianMixture(n_components=4, random_state=0).fit(X)
    counting, dX = counted_dask_array(X, chunk_rows=150)
    with ComputeCounter() as computes:
        result = criteria(model, dX)
    assert computes.count == 1
    assert len(counting.row_reads()) == dX.numblocks[0]
    assert result["mean_log_likelihood"] == pytest.approx(model.score(X), rel=1e-12)
    assert result["bic"] == pytest.approx(model.bic(X), rel=1e-12)
    assert result["aic"] == pytest.approx(model.aic(X), rel=1e-12)
    assert result["bic"] != pytest.approx(
        -2 * model.score(X) * len(X) + model._n_parameters() * np.log(len(X)), rel=1e-9
    )  # the plug-in mixture's, not the variational density's
