"""Pipelines with ``bayesian = true``: real runs on growing Zarr stores.

Modes 'refit' and 'warm_start' fit a ``BayesianGaussianMixture``; mode 'online' an
``OnlineBayesianGaussianMixture``, updated with the appended rows by ``partial_fit``.
Bad priors are refused before the state directory is touched, with the key named.
"""

from __future__ import annotations

import json
import shutil

import dask.array as da
import numpy as np
import pytest
from test_pipeline import (
    EXAMPLE,
    REPO,
    cli,
    labels,
    make_spec,
    make_store,
    manifest,
    out_dir,
    records,
    rows,
    version_dir,
)

import daskgmm
from daskgmm import BayesianGaussianMixture, GaussianMixture, OnlineBayesianGaussianMixture
from daskgmm.cli import main
from daskgmm.datasets import append_table
from daskgmm.pipeline import load_spec, run_pipeline
from daskgmm.pipeline.model_spec import (
    BATCH_MODEL_KEYS,
    BAYESIAN_MODEL_KEYS,
    ONLINE_BAYESIAN_MODEL_KEYS,
    ONLINE_MODEL_KEYS,
)

#: ``[model]`` of a Bayesian spec: up to 6 components for the store's 3.
BAYESIAN = "bayesian = true\nn_components = 6\nweight_concentration_prior = 0.01\nmax_iter = 300"
PARAMS = dict(random_state=0, max_iter=300, weight_concentration_prior=0.01)


def bayesian_spec(tmp, mode: str, extra: str = ""):
    return make_spec(tmp, mode, [("n_components = 3", BAYESIAN + extra)])


def test_refit_fits_the_bayesian_model_and_predicts_every_row(tmp_path):
    store = make_store(tmp_path, 400)
    spec = bayesian_spec(tmp_path, "refit")
    for number, added in enumerate([0, 200], 1):
        if added:
            append_table(store, added, seed=1)
        result = cli("run", spec)
        assert result.returncode == 0, result.stderr
        assert "variational Bayes, from scratch" in result.stdout
        assert "evidence lower bound" in result.stdout
        version = version_dir(tmp_path, number)
        model = daskgmm.load(version / "model")
        X = rows(store)
        direct = BayesianGaussianMixture(6, covariance_type="full", **PARAMS).fit(X)
        assert type(model) is BayesianGaussianMixture
        np.testing.assert_allclose(model.weights_, direct.weights_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(model.means_, direct.means_, rtol=1e-9)
        assert model.n_effective_components_ == direct.n_effective_components_ == 3
        np.testing.assert_array_equal(labels(version), model.predict(X))
        info = manifest(version)
        assert info["model"]["class"] == "BayesianGaussianMixture"
        assert info["settings"]["model.bayesian"] is True
        assert info["settings"]["model.weight_concentration_prior"] == 0.01
        assert info["model"]["log_likelihood"] == pytest.approx(direct.lower_bound_, rel=1e-9)
    runs = records(tmp_path)
    assert [(r["status"], r["action"]) for r in runs] == [("ok", "full")] * 2
    assert [r["rows_processed"] for r in runs] == [400, 600]
    assert all(r["converged"] is True for r in runs)


def test_warm_start_example_spec_starts_from_the_published_posterior(tmp_path):
    store = make_store(tmp_path, 400)
    shutil.copy(REPO / "pipelines" / "bayesian.toml", tmp_path / "bayesian.toml")
    spec = load_spec(tmp_path / "bayesian.toml")
    assert (spec.mode, spec.bayesian, spec.model["n_components"]) == ("warm_start", True, 8)
    first = run_pipeline(spec)
    append_table(store, 200, seed=1)
    second = run_pipeline(spec)
    assert second.action == "full" and second.rows_processed == 600
    assert "warm start from version 1" in second.reason
    assert second.iterations < first.iterations  # it started where version 1 ended
    base = spec.directory / "versions"
    model = daskgmm.load(base / "000002" / "model")
    assert type(model) is BayesianGaussianMixture and model.warm_start is False
    assert model.n_effective_components_ == 3
    np.testing.assert_array_equal(labels(base / "000002"), model.predict(rows(store)))


def test_switching_to_bayesian_refits_from_scratch(tmp_path, capsys):
    make_store(tmp_path, 400)
    plain = make_spec(tmp_path, "warm_start")
    assert main(["pipeline", "run", str(plain)]) == 0
    assert type(daskgmm.load(version_dir(tmp_path, 1) / "model")) is GaussianMixture
    bayes = bayesian_spec(tmp_path, "warm_start")  # same file, now bayesian = true
    assert main(["pipeline", "run", str(bayes)]) == 0
    out = capsys.readouterr().out
    assert "settings changed since version 1: model.bayesian None -> True" in out
    assert "cannot warm start from version 1 (it is a GaussianMixture, the spec asks for a " in out
    model = daskgmm.load(version_dir(tmp_path, 2) / "model")
    assert type(model) is BayesianGaussianMixture and model.n_components == 6


def test_plain_specs_keep_their_settings():
    """A spec without ``bayesian`` records the settings it recorded before the key
    existed, so that published pipelines do not refit on upgrade."""
    spec = load_spec(EXAMPLE, check_store=False)
    assert spec.bayesian is False
    assert not any("bayesian" in key for key in spec.settings())
    assert type(spec.estimator()).__name__ == "OnlineGaussianMixture"


def test_online_mode_updates_the_bayesian_model_with_the_appended_rows(tmp_path):
    store = make_store(tmp_path, 400)
    online = BAYESIAN.replace("\nmax_iter = 300", "\nmax_passes = 3\nbatch_size = 100")
    spec = make_spec(tmp_path, "online", [("n_components = 3", online)])
    first = cli("run", spec)
    assert first.returncode == 0, first.stderr
    assert "online variational Bayes, from scratch" in first.stdout
    v1 = daskgmm.load(version_dir(tmp_path, 1) / "model")
    assert type(v1) is OnlineBayesianGaussianMixture and v1.method == "memoized"
    assert v1.n_samples_seen_ == 3 * 400  # three passes
    append_table(store, 200, seed=1)
    second = cli("run", spec, "--json")
    assert second.returncode == 0, second.stderr
    assert "new rows (online variational Bayes)" in second.stderr  # --json: lines on stderr
    summary = json.loads(second.stdout.strip().splitlines()[-1])
    assert (summary["action"], summary["rows_processed"], summary["version"]) == ("append", 200, 2)
    v2 = daskgmm.load(version_dir(tmp_path, 2) / "model")
    X = rows(store)
    new_rows = da.from_array(X[400:], chunks=(100, 2))  # the store's chunks: 2 mini-batches
    expected = daskgmm.load(version_dir(tmp_path, 1) / "model").partial_fit(new_rows)
    np.testing.assert_array_equal(v2.weights_, expected.weights_)  # exactly partial_fit's
    np.testing.assert_array_equal(v2.means_, expected.means_)
    assert v2.n_samples_seen_ == v1.n_samples_seen_ + 200
    assert summary["iterations"] == v2.n_batches_seen_ - v1.n_batches_seen_ == 2
    predicted = labels(version_dir(tmp_path, 2))
    np.testing.assert_array_equal(predicted[:400], labels(version_dir(tmp_path, 1)))  # carried
    np.testing.assert_array_equal(predicted[400:], v2.predict(X[400:]))


@pytest.mark.parametrize("mode", ["refit", "online"])
@pytest.mark.parametrize("bayesian", [False, True])
def test_every_key_a_spec_takes_is_a_parameter_of_its_estimator(tmp_path, mode, bayesian):
    make_store(tmp_path, 250)
    spec = load_spec(
        make_spec(
            tmp_path,
            mode,
            [("n_components = 3", f"bayesian = {str(bayesian).lower()}\nn_components = 3")],
        )
    )
    keys = {
        (False, False): BATCH_MODEL_KEYS,
        (False, True): BATCH_MODEL_KEYS + BAYESIAN_MODEL_KEYS,
        (True, False): ONLINE_MODEL_KEYS,
        (True, True): ONLINE_BAYESIAN_MODEL_KEYS,
    }[mode == "online", bayesian]
    estimator = spec.estimator()
    assert type(estimator).__name__ == (
        ("Online" if mode == "online" else "")
        + ("Bayesian" if bayesian else "")
        + "GaussianMixture"
    )
    assert set(keys) <= set(estimator.get_params())


BAD = [
    pytest.param(
        "refit",
        [("random_state = 0", "random_state = 0\nweight_concentration_prior = 0.1")],
        "model.weight_concentration_prior: applies to the Bayesian model only; add bayesian = true",
        id="prior-without-bayesian",
    ),
    pytest.param(
        "refit",
        [("n_components = 3", 'bayesian = "yes"\nn_components = 3')],
        "model.bayesian: must be true or false",
        id="bayesian-not-boolean",
    ),
    pytest.param(
        "refit",
        [("n_components = 3", BAYESIAN.replace("= 0.01", "= -0.5"))],
        "model.weight_concentration_prior: must be a finite number > 0",
        id="negative-concentration",
    ),
    pytest.param(
        "refit",
        [("n_components = 3", BAYESIAN + '\nweight_concentration_prior_type = "dp"')],
        "model.weight_concentration_prior_type: must be one of",
        id="prior-type",
    ),
    pytest.param(
        "refit",
        [("n_components = 3", BAYESIAN + '\nmean_prior = ["a", "b"]')],
        "model.mean_prior: must be a number or an array of numbers",
        id="mean-prior-type",
    ),
    pytest.param(
        "refit",
        [("n_components = 3", BAYESIAN + "\nmax_passes = 2")],
        "model.max_passes: does not apply to mode 'refit' with bayesian = true",
        id="online-key",
    ),
    pytest.param(
        "refit",
        [("n_components = 3", BAYESIAN + '\nmethod = "svi"')],
        "model.method: does not apply to mode 'refit' with bayesian = true",
        id="method-in-refit",
    ),
    pytest.param(
        "online",
        [("random_state = 0", 'random_state = 0\nmethod = "svi"')],
        "model.method: applies to the Bayesian model only; add bayesian = true",
        id="method-without-bayesian",
    ),
    pytest.param(
        "online",
        [("n_components = 3", "bayesian = true\nn_components = 3\nwarm_up = 100")],
        "model.warm_up: does not apply to mode 'online' with bayesian = true",
        id="warm-up",
    ),
    pytest.param(
        "online",
        [("n_components = 3", 'bayesian = true\nn_components = 3\nmethod = "batch"')],
        "model.method: must be one of ['memoized', 'svi']",
        id="method-value",
    ),
    # checked against the data's 2 features once the store is open, before any write
    pytest.param(
        "warm_start",
        [("n_components = 3", BAYESIAN + "\ndegrees_of_freedom_prior = 0.5")],
        "model.degrees_of_freedom_prior: The parameter 'degrees_of_freedom_prior' should be "
        "greater than 1, but got 0.500. (the data have 2 features)",
        id="dof",
    ),
    pytest.param(
        "refit",
        [("n_components = 3", BAYESIAN + "\nmean_prior = [0.0, 0.0, 0.0]")],
        "model.mean_prior: The parameter 'means' should have the shape of (2,)",
        id="mean-prior-shape",
    ),
    pytest.param(
        "refit",
        [("n_components = 3", BAYESIAN + "\ncovariance_prior = [[1.0, 2.0], [2.0, 1.0]]")],
        "model.covariance_prior: 'full precision' should be symmetric, positive-definite",
        id="covariance-prior-not-pd",
    ),
]


@pytest.mark.parametrize(("mode", "replace", "message"), BAD)
def test_bad_bayesian_specs_exit_2_naming_the_key_and_write_nothing(
    tmp_path, capsys, mode, replace, message
):
    make_store(tmp_path, 250)
    spec = make_spec(tmp_path, mode, replace)
    assert main(["pipeline", "run", str(spec)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_good_array_priors_are_taken(tmp_path):
    store = make_store(tmp_path, 400)
    priors = "\nmean_prior = [0.0, 0.0]\ncovariance_prior = [[2.0, 0.0], [0.0, 2.0]]"
    spec = bayesian_spec(tmp_path, "refit", priors)
    record = run_pipeline(spec)
    assert record.status == "ok"
    model = daskgmm.load(version_dir(tmp_path, 1) / "model")
    np.testing.assert_array_equal(model.mean_prior_, [0.0, 0.0])
    np.testing.assert_array_equal(model.covariance_prior_, 2.0 * np.eye(2))
    direct = BayesianGaussianMixture(
        6, **PARAMS, mean_prior=[0.0, 0.0], covariance_prior=2.0 * np.eye(2)
    ).fit(rows(store))
    np.testing.assert_allclose(model.means_, direct.means_, rtol=1e-9)
    assert manifest(version_dir(tmp_path, 1))["settings"]["model.covariance_prior"] == [
        [2.0, 0.0],
        [0.0, 2.0],
    ]
    assert out_dir(tmp_path).is_dir()
