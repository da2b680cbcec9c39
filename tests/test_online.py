"""Online (stepwise) EM, partial_fit, and saving/loading models."""

import json
import os
import threading
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from _support import record_task_threads
from sklearn.base import clone

import daskgmm
from daskgmm import GaussianMixture, OnlineGaussianMixture
from daskgmm.datasets import _draw_chunk, make_mixture
from daskgmm.errors import ModelFileError
from daskgmm.estimators import load
from daskgmm.estimators.stepwise import mini_batches, step_size, warm_up_rows
from daskgmm.kernels.estep import stats_from_responsibilities
from daskgmm.kernels.stats import SufficientStats
from daskgmm.store import metadata_checksum

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _blobs(rng, n=6000, d=3, k=3, scale=6.0):
    centres = rng.normal(scale=scale, size=(k, d))
    labels = rng.integers(k, size=n)
    return centres[labels] + rng.normal(size=(n, d)), centres


def _init_kwargs(model):
    return {
        "weights_init": model.weights_,
        "means_init": model.means_,
        "precisions_init": model.precisions_,
    }


def _assert_one_em_iteration_from(start, X, model):
    """``model`` has the parameters of one batch EM iteration on X from ``start``'s."""
    expected = GaussianMixture(start.n_components, max_iter=1, **_init_kwargs(start))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected.fit(X)
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-9)
    np.testing.assert_allclose(model.covariances_, expected.covariances_, rtol=1e-8)


def _match(means, targets):
    """Distance of each target to its nearest fitted mean."""
    return np.array([np.linalg.norm(means - t, axis=1).min() for t in targets])


# --------------------------------------------------------------------------- #
# the statistics blend
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_scaled_merge_is_the_blend_of_raw_moments(rng, cov):
    x1, x2 = rng.normal(size=(50, 3)) + 100.0, rng.normal(size=(70, 3)) * 2 + 99.0
    r1, r2 = rng.dirichlet(np.ones(2), size=50), rng.dirichlet(np.ones(2), size=70)
    a = stats_from_responsibilities(x1, r1, cov).normalised()
    b = stats_from_responsibilities(x2, r2, cov).normalised()
    g = 0.3
    blended = a.scaled(1 - g).merge(b.scaled(g))
    # blend of raw moments S0, S1, S2 computed directly
    full = stats_from_responsibilities(
        np.vstack([x1, x2]),
        np.vstack([r1, r2]),
        cov,
        np.concatenate([np.full(50, (1 - g) / 50), np.full(70, g / 70)]),
    )
    np.testing.assert_allclose(blended.nk, full.nk, rtol=1e-12)
    np.testing.assert_allclose(blended.means, full.means, rtol=1e-12)
    np.testing.assert_allclose(blended.m2, full.m2, rtol=1e-9, atol=1e-12)
    assert blended.weight_sum == pytest.approx(1.0)


def test_scaled_leaves_the_original_alone(rng):
    s = stats_from_responsibilities(rng.normal(size=(10, 2)), np.ones((10, 1)), "full")
    before = s.nk.copy(), s.m2.copy()
    t = s.scaled(0.5)
    assert isinstance(t, SufficientStats)
    np.testing.assert_array_equal(s.nk, before[0])
    np.testing.assert_array_equal(s.m2, before[1])
    np.testing.assert_allclose(t.m2, 0.5 * s.m2)


def test_step_size_schedule_and_warm_up_length():
    assert step_size(4, 10.0, 0.7) == pytest.approx(14**-0.7)
    assert step_size(1, 0.0, 0.6) == 1.0
    assert step_size(2, 1.0, 0.6) == pytest.approx(3**-0.6)
    # 'auto': twice the free parameters (those bic counts)
    assert warm_up_rows("auto", 8, 16, "full") == 2 * 1223
    assert warm_up_rows("auto", 8, 16, "spherical") == 2 * 143
    assert warm_up_rows(500, 8, 16, "full") == 500


def test_mini_batches_round_to_whole_chunks():
    order = np.array([3, 1, 4, 0, 2])
    chunks = (100, 100, 100, 100, 50)
    groups = mini_batches(order, chunks, 190)
    assert [list(g) for g in groups] == [[3, 1], [4, 0], [2]]
    assert [list(g) for g in mini_batches(order, chunks, 10)] == [[i] for i in order]


# --------------------------------------------------------------------------- #
# fitting
# --------------------------------------------------------------------------- #
def test_two_passes_reach_batch_em_on_200k_rows():
    """The issue's accuracy property at a smaller scale: within 0.02 nats/sample."""
    X, truth = make_mixture(
        200_000, 16, 8, chunk_rows=5_000, separation=1.5, seed=1, dtype="float32"
    )
    X = X.persist()
    held_out = _draw_chunk(truth, 50_000, (99, 0), np.float64)
    start = GaussianMixture(8, max_iter=0, random_state=0).fit(X)
    batch = GaussianMixture(8, tol=1e-4, max_iter=500, **_init_kwargs(start)).fit(X)
    online = OnlineGaussianMixture(
        8, max_passes=2, batch_size=5_000, random_state=0, **_init_kwargs(start)
    ).fit(X)
    gap = batch.score(held_out) - online.score(held_out)
    assert gap < 0.02
    assert online.n_batches_seen_ == 80
    assert online.n_samples_seen_ == 400_000
    assert len(online.log_likelihood_history_) == 80
    assert online.n_passes_ == 2


@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_every_covariance_type_fits_and_answers(rng, cov):
    X, centres = _blobs(rng)
    Xd = da.from_array(X, chunks=(500, 3))
    model = OnlineGaussianMixture(3, covariance_type=cov, batch_size=1000, random_state=0)
    model.fit(Xd)
    assert _match(model.means_, centres).max() < 0.2
    batch = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    assert model.score(X) == pytest.approx(batch.score(X), abs=0.01)
    labels = model.predict(Xd)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), model.predict(X))
    assert model.predict_proba(X).shape == (X.shape[0], 3)
    assert np.isfinite(model.bic(X)) and np.isfinite(model.aic(X))
    sample, comp = model.sample(10)
    assert sample.shape == (10, 3) and comp.shape == (10,)
    assert model.covariances_.shape == batch.covariances_.shape
    assert model.precisions_cholesky_.shape == batch.precisions_cholesky_.shape


def test_fit_is_reproducible_and_shuffles_chunks(rng):
    X, _ = _blobs(rng, n=4000)
    Xd = da.from_array(X, chunks=(250, 3))
    a = OnlineGaussianMixture(3, batch_size=500, random_state=7).fit(Xd)
    b = OnlineGaussianMixture(3, batch_size=500, random_state=7).fit(Xd)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.log_likelihood_history_ == b.log_likelihood_history_
    # same start, another shuffle: another sequence of batches
    kw = _init_kwargs(a)
    c = OnlineGaussianMixture(3, batch_size=500, random_state=1, **kw).fit(Xd)
    d = OnlineGaussianMixture(3, batch_size=500, random_state=2, **kw).fit(Xd)
    assert c.log_likelihood_history_ != d.log_likelihood_history_


def test_warm_up_keeps_initial_parameters_until_its_end(rng):
    X, _ = _blobs(rng, n=3000)
    start = GaussianMixture(3, max_iter=0, random_state=0).fit(X)
    model = OnlineGaussianMixture(3, batch_size=1000, warm_up=2500, **_init_kwargs(start))
    model.partial_fit(X[:2000])
    np.testing.assert_allclose(model.means_, start.means_, rtol=1e-12)
    assert model.warm_up_batches_ is None
    model.partial_fit(X[2000:])
    assert model.warm_up_batches_ == 3
    # after the third batch: one M-step from the plain average of three batches
    _assert_one_em_iteration_from(start, X, model)


def test_final_batch_pass_is_one_exact_em_iteration(rng):
    X, _ = _blobs(rng, n=4000)
    Xd = da.from_array(X, chunks=(500, 3))
    online = OnlineGaussianMixture(3, batch_size=1000, random_state=0).fit(Xd)
    ended = OnlineGaussianMixture(3, batch_size=1000, random_state=0, final_batch_pass=True)
    ended.fit(Xd)
    assert ended.n_passes_ == 3
    _assert_one_em_iteration_from(online, Xd, ended)


@pytest.mark.parametrize(
    ("stop_after", "final_batch_pass"),
    [(1, False), (6, False), (8, False), (16, False), (8, True), (None, True)],
)
def test_checkpoint_resumes_to_the_uninterrupted_result(
    rng, tmp_path, monkeypatch, stop_after, final_batch_pass
):
    # 8 mini-batches per pass, 2 passes: stop inside the first pass, at the end of a
    # pass, never (16: a completed checkpoint), or (None) in the final batch pass
    X, _ = _blobs(rng, n=4000)
    Xd = da.from_array(X, chunks=(250, 3))
    kw = {"batch_size": 500, "random_state": 7, "final_batch_pass": final_batch_pass}
    whole = OnlineGaussianMixture(3, **kw).fit(Xd)
    path = tmp_path / "ckpt"

    class Killed(Exception):
        pass

    # every mini-batch's update is one call of the EM protocol's mstep
    real_step, real_pass = OnlineGaussianMixture.mstep, OnlineGaussianMixture._batch_em_pass
    steps = []

    def dying_step(self, stats, params):
        if len(steps) == stop_after:
            raise Killed
        steps.append(1)
        return real_step(self, stats, params)

    def dying_pass(self, rows):
        raise Killed

    monkeypatch.setattr(OnlineGaussianMixture, "mstep", dying_step)
    if stop_after is None:
        monkeypatch.setattr(OnlineGaussianMixture, "_batch_em_pass", dying_pass)
    interrupted = OnlineGaussianMixture(3, **kw)
    if stop_after == 16:
        interrupted.fit(Xd, checkpoint=path)  # 16 steps: nothing left to interrupt
    else:
        with pytest.raises(Killed):
            interrupted.fit(Xd, checkpoint=path)
    monkeypatch.setattr(OnlineGaussianMixture, "mstep", real_step)
    monkeypatch.setattr(OnlineGaussianMixture, "_batch_em_pass", real_pass)
    steps.clear()
    counted = []
    monkeypatch.setattr(
        OnlineGaussianMixture,
        "mstep",
        lambda self, stats, params: counted.append(1) or real_step(self, stats, params),
    )
    resumed = OnlineGaussianMixture(3, **kw).fit(Xd, checkpoint=path)
    assert len(counted) == 16 - (16 if stop_after is None else stop_after)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name))
    assert resumed.log_likelihood_history_ == whole.log_likelihood_history_
    assert resumed.lower_bound_ == whole.lower_bound_
    assert (resumed.n_batches_seen_, resumed.n_samples_seen_) == (16, 8000)
    # a completed checkpoint gives the result again without computing
    counted.clear()
    again = OnlineGaussianMixture(3, **kw).fit(Xd, checkpoint=path)
    assert not counted
    np.testing.assert_array_equal(again.means_, whole.means_)


def test_checkpoint_of_another_fit_is_refused(rng, tmp_path):
    X, _ = _blobs(rng, n=2000)
    OnlineGaussianMixture(3, batch_size=500, random_state=0).fit(X, checkpoint=tmp_path / "c")
    with pytest.raises(ValueError, match="other estimator parameters"):
        OnlineGaussianMixture(3, batch_size=400, random_state=0).fit(X, checkpoint=tmp_path / "c")
    with pytest.raises(ValueError, match="other data"):
        OnlineGaussianMixture(3, batch_size=500, random_state=0).fit(
            X[:1500], checkpoint=tmp_path / "c"
        )


def test_partial_fit_initialises_from_its_first_block_and_counts(rng):
    X, centres = _blobs(rng, n=9000)
    model = OnlineGaussianMixture(3, batch_size=1000, random_state=0)
    assert model.partial_fit(X[:3000]) is model
    assert model.n_batches_seen_ == 3 and model.n_samples_seen_ == 3000
    model.partial_fit(da.from_array(X[3000:], chunks=(2000, 3)))
    assert model.n_batches_seen_ == 6 and model.n_samples_seen_ == 9000
    assert len(model.log_likelihood_history_) == 6
    assert _match(model.means_, centres).max() < 0.2
    assert np.isfinite(model.lower_bound_)


def test_partial_fit_from_given_parameters(rng):
    X, centres = _blobs(rng, n=2000)
    model = OnlineGaussianMixture(
        3,
        means_init=centres,
        weights_init=np.full(3, 1 / 3),
        precisions_init=np.ones(3),
        covariance_type="spherical",
    )
    model.partial_fit(X)
    # one mini-batch with step size 1: one batch EM iteration from the given parameters
    expected = GaussianMixture(
        3,
        covariance_type="spherical",
        max_iter=1,
        means_init=centres,
        weights_init=np.full(3, 1 / 3),
        precisions_init=np.ones(3),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected.fit(X)
    assert model.n_batches_seen_ == 1
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-10)
    np.testing.assert_allclose(model.covariances_, expected.covariances_, rtol=1e-10)
    np.testing.assert_allclose(model.weights_, expected.weights_, rtol=1e-10)
    assert not np.allclose(model.means_, centres, rtol=0, atol=1e-3)  # it moved


def test_partial_fit_tracks_drifting_means(rng):
    """Means move by (2, -2) over 30 blocks, then stay: the model follows them to 0.1."""
    start = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    shift = np.array([2.0, -2.0])
    model = OnlineGaussianMixture(3, covariance_type="diag", random_state=0)
    for block in range(90):
        progress = np.clip((block - 20) / 30, 0.0, 1.0)
        labels = rng.integers(3, size=2000)
        X = start[labels] + progress * shift + rng.normal(size=(2000, 2))
        model.partial_fit(X)
        if block == 19:
            assert _match(model.means_, start).max() < 0.1
    assert _match(model.means_, start + shift).max() < 0.1


def test_bad_rows_name_their_chunk(rng):
    X, _ = _blobs(rng, n=3000)
    start = GaussianMixture(3, max_iter=0, random_state=0).fit(X)
    X[2100, 1] = np.nan
    model = OnlineGaussianMixture(3, batch_size=1000, random_state=0, **_init_kwargs(start))
    with pytest.raises(ValueError, match=r"1 rows with NaN.*row chunks 4 \(1 rows\)"):
        model.fit(da.from_array(X, chunks=(500, 3)))


def test_partial_fit_checks_the_number_of_features(rng):
    X, _ = _blobs(rng, n=1000)
    model = OnlineGaussianMixture(3).partial_fit(X)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :2])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"kappa": 0.5}, "kappa"),
        ({"kappa": 1.2}, "kappa"),
        ({"batch_size": 0}, "batch_size"),
        ({"warm_up": 0}, "warm_up"),
        ({"max_passes": 0}, "max_passes"),
        ({"t0": -1.0}, "t0"),
        ({"final_batch_pass": "yes"}, "final_batch_pass"),
        ({"covariance_type": "banded"}, "covariance_type"),
    ],
)
def test_invalid_parameters(rng, params, match):
    X, _ = _blobs(rng, n=300)
    with pytest.raises((ValueError, TypeError), match=match):
        OnlineGaussianMixture(3, **params).fit(X)


def test_clone_and_unfitted_errors():
    model = OnlineGaussianMixture(4, kappa=0.9, t0=3.0)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(ValueError, match="partial_fit"):
        model.predict(np.zeros((2, 2)))


# --------------------------------------------------------------------------- #
# model store
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_round_trip_preserves_predictions_exactly(rng, tmp_path, cov):
    X, _ = _blobs(rng, n=2000)
    for model in (
        GaussianMixture(3, covariance_type=cov, random_state=0).fit(X),
        OnlineGaussianMixture(3, covariance_type=cov, batch_size=500, random_state=0).fit(X),
    ):
        path = model.save(tmp_path / f"{type(model).__name__}-{cov}")
        loaded = daskgmm.load(path)
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        for name in ("weights_", "means_", "covariances_", "precisions_", "lower_bound_"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))


def test_loaded_online_model_continues_partial_fit_exactly(rng, tmp_path):
    X, _ = _blobs(rng, n=8000)
    model = OnlineGaussianMixture(3, batch_size=1000, warm_up=4000, random_state=0)
    model.partial_fit(X[:3000])
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    for block in (X[3000:5000], da.from_array(X[5000:], chunks=(1000, 3))):
        model.partial_fit(block)
        loaded.partial_fit(block)
    np.testing.assert_array_equal(loaded.means_, model.means_)
    np.testing.assert_array_equal(loaded.covariances_, model.covariances_)
    assert loaded.log_likelihood_history_ == model.log_likelihood_history_
    assert (loaded.n_batches_seen_, loaded.n_samples_seen_) == (8, 8000)


def test_saved_model_holds_json_and_arrays_only(rng, tmp_path):
    X, _ = _blobs(rng, n=1000)
    means_init = GaussianMixture(3, random_state=0).fit(X).means_
    model = OnlineGaussianMixture(3, means_init=means_init, random_state=np.random.RandomState(0))
    path = model.partial_fit(X).save(tmp_path / "m")
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "model.json"]
    meta = json.loads((path / "model.json").read_text())
    assert meta["class"] == "OnlineGaussianMixture"
    assert meta["schema_version"] == 2
    assert meta["daskgmm_version"] == daskgmm.__version__
    assert meta["fitted"]["n_batches_seen_"] == 1
    assert meta["params_not_saved"] == ["random_state"]
    loaded = load(path)
    np.testing.assert_array_equal(loaded.means_init, means_init)
    assert loaded.random_state is None
    # saving again over a model directory replaces it when asked; no temporary leftovers
    model.save(path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def _edit_json(path, edit):
    """Edit model.json and sign it again, to reach the checks behind the checksum."""
    meta = json.loads((path / "model.json").read_text())
    edit(meta)
    meta["metadata_sha256"] = metadata_checksum(meta)
    (path / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        (lambda p: _edit_json(p, lambda m: m.update(schema_version=99)), "schema version"),
        (lambda p: _edit_json(p, lambda m: m.update({"class": "Pickle"})), "class 'Pickle'"),
        (lambda p: (p / "model.json").write_text("{"), "not valid JSON"),
        (lambda p: (p / "model.json").unlink(), "holds no model.json"),
        (lambda p: (p / "arrays.npz").write_bytes(b"PK" + b"0" * 50), "checksum"),
        (lambda p: _edit_json(p, lambda m: m["params"].update(n_components=4)), "n_components"),
        (
            lambda p: _edit_json(p, lambda m: m["params"].update(colour="red")),
            "parameters do not fit",
        ),
        (
            lambda p: _edit_json(p, lambda m: m["fitted"].update(n_batches_seen_=-1)),
            "counters",
        ),
    ],
)
def test_load_refuses_tampered_or_incompatible_files(rng, tmp_path, tamper, match):
    X, _ = _blobs(rng, n=1000)
    path = OnlineGaussianMixture(3, random_state=0).partial_fit(X).save(tmp_path / "m")
    tamper(path)
    with pytest.raises(ModelFileError, match=match):
        load(path)


def test_load_refuses_arrays_of_the_wrong_shape(rng, tmp_path):
    """A consistent manifest and checksum still do not make wrong shapes loadable."""
    import hashlib

    X, _ = _blobs(rng, n=1000)
    path = GaussianMixture(3, random_state=0).fit(X).save(tmp_path / "m")
    with np.load(path / "arrays.npz") as npz:
        arrays = dict(npz)
    arrays["fitted__means_"] = arrays["fitted__means_"][:2]
    np.savez(path / "arrays.npz", **arrays)

    def fix(meta):
        meta["arrays"]["fitted__means_"]["shape"] = [2, 3]
        meta["arrays_sha256"] = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()

    _edit_json(path, fix)
    with pytest.raises(ModelFileError, match="means_"):
        load(path)


def test_save_refuses_unfitted_models_and_foreign_directories(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        OnlineGaussianMixture(2).save(tmp_path / "m")
    model = GaussianMixture(1).fit(np.arange(20.0).reshape(10, 2))
    (tmp_path / "data").mkdir()
    with pytest.raises(FileExistsError, match="not a model directory"):
        model.save(tmp_path / "data")


@pytest.mark.parametrize("cores", [1, 2, 3, 32])
def test_numpy_input_is_cut_alike_on_every_machine(rng, monkeypatch, cores):
    X, _ = _blobs(rng, n=4000)
    common = {"batch_size": 1000, "max_passes": 2, "random_state": 0, "final_batch_pass": True}
    here = OnlineGaussianMixture(3, **common).fit(X)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    there = OnlineGaussianMixture(3, **common).fit(X)
    assert there.n_batches_seen_ == here.n_batches_seen_ == 8
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(there, name), getattr(here, name))
    assert there.log_likelihood_history_ == here.log_likelihood_history_


def test_numpy_input_is_cut_to_the_batch_size_and_large_chunks_are_reported(rng, caplog):
    X, _ = _blobs(rng, n=4000)
    model = OnlineGaussianMixture(3, batch_size=1000, max_passes=1, random_state=0).fit(X)
    assert model.n_batches_seen_ == 4
    with caplog.at_level("WARNING", logger="daskgmm.online"):
        model.fit(da.from_array(X, chunks=(4000, 3)))
    assert model.n_batches_seen_ == 1
    assert "larger than batch_size=1000" in caplog.text


def test_nan_policy_omit_progress_and_scheduler_options(capsys, monkeypatch):
    """nan_policy='omit' leaves bad rows out (same fit as without them); progress draws."""
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3)) + 6.0])
    rng.shuffle(X)
    bad = X.copy()
    bad[::97, 1] = np.nan
    kept = bad[np.isfinite(bad).all(axis=1)]
    common = dict(batch_size=1000, max_passes=2, random_state=0, chunk_rows=500)
    with pytest.raises(ValueError, match="NaN or infinite values"):
        OnlineGaussianMixture(2, **common).fit(bad)
    # every E-step task records its thread (a Callback's _pretask would not tell:
    # it runs in the calling thread under every local scheduler)
    from daskgmm.engine import passes

    threads = record_task_threads(monkeypatch, passes)
    with dask.config.set(scheduler="threads"):
        OnlineGaussianMixture(2, nan_policy="omit", **common).fit(bad)
    assert threads and threading.get_ident() not in threads  # control: pool threads
    threads.clear()
    with dask.config.set(scheduler="threads"):  # scheduler="sync" wins over it
        omit = OnlineGaussianMixture(
            2, nan_policy="omit", progress=True, scheduler="sync", **common
        ).fit(bad)
    assert threads and set(threads) == {threading.get_ident()}
    err = capsys.readouterr().err
    assert f"online EM {omit.n_batches_seen_}/{omit.n_batches_seen_} [" in err
    assert "mini-batches seen" in err
    assert omit.n_samples_seen_ == 2 * bad.shape[0]  # rows seen, bad ones included
    labels = omit.predict(bad)
    assert (labels[~np.isfinite(bad).all(axis=1)] == -1).all()
    np.testing.assert_allclose(np.sort(omit.means_[:, 0]), [0.0, 6.0], atol=0.15)
    assert omit.score(kept) == pytest.approx(omit.score(bad), rel=1e-12)
    # the same fit as giving the bad rows weight 0 (same chunks, same batches)
    finite = np.isfinite(bad).all(axis=1)
    weighted = OnlineGaussianMixture(2, **common).fit(
        np.where(finite[:, None], bad, 0.0), sample_weight=finite.astype(float)
    )
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(omit, name), getattr(weighted, name), rtol=1e-10)
