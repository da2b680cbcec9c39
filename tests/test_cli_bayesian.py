"""``daskgmm fit --bayesian`` and the commands that use its model, run as users run them:
real subprocesses on a real Zarr store, results checked against the library.

The store holds 3 well-separated components; the fits ask for up to 6, and the
Dirichlet-process prior must empty the 3 the data do not need.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import zarr
from _support import ComputeCounter, run_cli

import daskgmm
from daskgmm import BayesianGaussianMixture, OnlineBayesianGaussianMixture
from daskgmm.cli import main
from daskgmm.estimators.bayesian_mixture import EFFECTIVE_WEIGHT
from daskgmm.io import open_rows
from daskgmm.plotting import available

N_ROWS, N_FEATURES, K_TRUE, K_MAX = 6_000, 3, 3, 6
#: The library's parameters of the fit the command line makes.
PARAMS = dict(random_state=0, max_iter=500, weight_concentration_prior=0.01)
FIT = [
    "--bayesian",
    "-k",
    K_MAX,
    "--random-state",
    0,
    "--max-iter",
    500,
    "--weight-concentration-prior",
    0.01,
]
PLOT = available()


def last_json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A store of 3 clear components made by ``daskgmm make-data``."""
    work = tmp_path_factory.mktemp("cli-bayes")
    run_cli(
        "make-data",
        "data.zarr",
        "--n-samples",
        N_ROWS,
        "--n-features",
        N_FEATURES,
        "--n-components",
        K_TRUE,
        "--chunks",
        1000,
        "--dtype",
        "float64",
        cwd=work,
    )
    return work


@pytest.fixture(scope="module")
def fitted(work) -> subprocess.CompletedProcess:
    """``daskgmm fit --bayesian`` with progress, --json and (with matplotlib) a plot."""
    plot = ["--plot", "fit.png"] if PLOT else []
    return run_cli(
        "fit", "data.zarr", "--model", "bmodel", *FIT, *plot, "--progress", "--json", cwd=work
    )


def test_fit_bayesian_equals_the_library_and_empties_the_extra_components(work, fitted):
    summary = last_json(fitted)
    direct = BayesianGaussianMixture(K_MAX, **PARAMS).fit(str(work / "data.zarr"))
    model = daskgmm.load(work / "bmodel")
    assert type(model) is BayesianGaussianMixture
    assert model.weight_concentration_prior == 0.01
    np.testing.assert_allclose(model.weights_, direct.weights_, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(model.means_, direct.means_, rtol=1e-10)
    np.testing.assert_allclose(
        model.weight_concentration_, direct.weight_concentration_, rtol=1e-10
    )
    assert summary["class"] == "BayesianGaussianMixture"
    assert summary["lower_bound"] == pytest.approx(direct.lower_bound_, rel=1e-12)
    assert (summary["n_iter"], summary["converged"]) == (direct.n_iter_, True)
    # the prior emptied the 3 components the data do not need
    effective = np.flatnonzero(direct.weights_ >= EFFECTIVE_WEIGHT).tolist()
    assert summary["n_effective_components"] == direct.n_effective_components_ == K_TRUE
    assert summary["effective_components"] == effective and len(effective) == K_TRUE
    assert summary["effective_weight"] == EFFECTIVE_WEIGHT == 0.01
    assert summary["weights"] == [round(float(w), 6) for w in direct.weights_]
    assert summary["weight_concentration_prior_type"] == "dirichlet_process"
    assert summary["degrees_of_freedom_prior"] == float(N_FEATURES)  # the default, D
    assert "lower bound" in fitted.stderr  # the progress line (forced with --progress)
    assert f"{K_TRUE} of {K_MAX} components effective (weight >= 0.01)" in fitted.stderr


def test_fit_bayesian_dirichlet_distribution_diag_equals_the_library(work):
    args = ["--weight-concentration-prior-type", "dirichlet_distribution"]
    args += ["--covariance-type", "diag", "--mean-precision-prior", "0.5"]
    proc = run_cli("fit", "data.zarr", "--model", "bdiag", *FIT, *args, "--json", cwd=work)
    summary = last_json(proc)
    direct = BayesianGaussianMixture(
        K_MAX,
        **PARAMS,
        weight_concentration_prior_type="dirichlet_distribution",
        covariance_type="diag",
        mean_precision_prior=0.5,
    ).fit(str(work / "data.zarr"))
    model = daskgmm.load(work / "bdiag")
    assert model.weight_concentration_.shape == (K_MAX,)  # a Dirichlet, not sticks
    np.testing.assert_allclose(
        model.weight_concentration_, direct.weight_concentration_, rtol=1e-10
    )
    np.testing.assert_allclose(model.covariances_, direct.covariances_, rtol=1e-10)
    assert summary["mean_precision_prior"] == 0.5
    assert summary["lower_bound"] == pytest.approx(direct.lower_bound_, rel=1e-12)


def test_fit_bayesian_online_equals_the_library(work):
    args = ["--bayesian", "--online", "-k", K_MAX, "--random-state", 0, "--method", "svi"]
    args += ["--batch-size", 2000, "--max-passes", 3, "--weight-concentration-prior", 0.01]
    proc = run_cli("fit", "data.zarr", "--model", "bonline", *args, "--json", cwd=work)
    summary = last_json(proc)
    direct = OnlineBayesianGaussianMixture(
        K_MAX,
        random_state=0,
        batch_size=2000,
        max_passes=3,
        method="svi",
        weight_concentration_prior=0.01,
    ).fit(str(work / "data.zarr"))
    model = daskgmm.load(work / "bonline")
    assert type(model) is OnlineBayesianGaussianMixture and model.method == "svi"
    np.testing.assert_array_equal(model.weights_, direct.weights_)
    np.testing.assert_array_equal(model.means_, direct.means_)
    assert summary["class"] == "OnlineBayesianGaussianMixture"
    assert (summary["n_batches_seen"], summary["n_samples_seen"]) == (9, 3 * N_ROWS)
    assert summary["converged"] is None  # no convergence criterion for streaming fits
    assert summary["n_effective_components"] == direct.n_effective_components_
    assert summary["lower_bound"] == direct.lower_bound_
    text = run_cli("info", "bonline", cwd=work).stdout
    assert "online fit: 9 mini-batches, 18,000 rows, evidence lower bound" in text


def test_fit_bayesian_plot_has_the_weights_panel(work, fitted):
    pytest.importorskip("matplotlib")
    png = (work / "fit.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert width == 17 * 110  # three panels (a GaussianMixture's plot is 12 inches wide)
    assert last_json(fitted)["plot"] == "fit.png"


def test_info_shows_the_effective_components_and_weights(work, fitted):
    model = daskgmm.load(work / "bmodel")
    info = last_json(run_cli("info", "bmodel", "--json", cwd=work))
    assert info["class"] == "BayesianGaussianMixture"
    np.testing.assert_array_equal(info["weights"], model.weights_)
    picked = np.flatnonzero(model.weights_ >= 0.01).tolist()
    assert info["effective_components"] == picked
    assert info["n_effective_components"] == len(picked) == K_TRUE
    assert info["effective_weight"] == 0.01
    assert info["fitted"]["n_effective_components_"] == K_TRUE
    text = run_cli("info", "bmodel", cwd=work).stdout
    assert "  weights " + " ".join(f"{w:.4f}" for w in model.weights_) in text
    listed = ", ".join(map(str, picked))
    assert f"effective components: {K_TRUE} of {K_MAX} (weight >= 0.01): {listed}" in text
    assert "evidence lower bound (total over the rows)" in text


def test_score_and_predict_take_the_bayesian_model(work, fitted):
    model = daskgmm.load(work / "bmodel")
    store = str(work / "data.zarr")
    score = last_json(run_cli("score", "bmodel", "data.zarr", "--json", cwd=work))
    assert score["mean_log_likelihood"] == pytest.approx(model.score(store), rel=1e-12)
    # BIC and AIC under the posterior-mean mixture, as the model's own bic/aic
    assert score["bic"] == pytest.approx(model.bic(store), rel=1e-12)
    assert score["aic"] == pytest.approx(model.aic(store), rel=1e-12)
    variational_bic = -2 * score["log_likelihood"] + score["n_parameters"] * np.log(N_ROWS)
    assert score["bic"] != pytest.approx(variational_bic, rel=1e-9)
    proc = run_cli(
        "predict", "bmodel", "data.zarr", "--out", "bpred.zarr", "--proba", "--json", cwd=work
    )
    summary = last_json(proc)
    X = np.asarray(open_rows(store).data)
    expected = model.predict(X)
    group = zarr.open_group(work / "bpred.zarr", mode="r")
    np.testing.assert_array_equal(group["labels"][:], expected)
    np.testing.assert_allclose(group["proba"][:], model.predict_proba(X), rtol=1e-6, atol=1e-7)
    assert summary["counts"] == np.bincount(expected, minlength=K_MAX).tolist()
    emptied = model.weights_ < EFFECTIVE_WEIGHT
    assert np.asarray(summary["counts"])[emptied].sum() == 0  # nobody in an emptied component


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bayesian", "--weight-concentration-prior", "-1"], "expected a number > 0"),
        (["--bayesian", "--mean-precision-prior", "0"], "expected a number > 0"),
        (
            ["--bayesian", "--degrees-of-freedom-prior", "1.5"],
            "'--degrees-of-freedom-prior' should be greater than 2, but got 1.500",
        ),
        (["--bayesian", "--weight-concentration-prior-type", "dirichlet"], "invalid choice"),
        (["--mean-precision-prior", "2"], "applies to the Bayesian model only; add --bayesian"),
        (["--bayesian", "--online", "--warm-up", "100"], "drop --warm-up"),
        (["--bayesian", "--method", "svi"], "add --bayesian --online or drop --method"),
        (
            ["--bayesian", "--batch-size", "100"],
            "applies to online EM only; drop it or add --online",
        ),
    ],
    ids=[
        "concentration",
        "mean-precision",
        "dof",
        "prior-type",
        "no-bayesian",
        "warm-up",
        "method",
        "batch",
    ],
)
def test_bad_prior_options_exit_2_and_write_nothing(work, args, message, monkeypatch, capsys):
    """In this process (the subprocess form of a usage error, its JSON object and exit
    code, is tested on the first case below and in tests/test_cli_scripts.py)."""
    monkeypatch.chdir(work)
    command = ["fit", "data.zarr", "--model", "bad", "-k", "3", *args, "--json"]
    assert main(command) == 2
    out, err = capsys.readouterr()
    assert message in err
    error = json.loads(out)
    assert (error["exit_code"], error["category"]) == (2, "usage")
    assert "Traceback" not in err
    assert not (work / "bad").exists()


def test_a_bad_prior_option_in_a_real_process(work):
    proc = run_cli(
        "fit", "data.zarr", "--model", "bad", "-k", "3", "--bayesian",
        "--weight-concentration-prior", "-1", "--json", cwd=work, code=2,
    )  # fmt: skip
    assert "expected a number > 0" in proc.stderr
    assert json.loads(proc.stdout)["category"] == "usage"
    assert not (work / "bad").exists()


def test_priors_that_do_not_fit_the_data_are_refused_before_any_pass(work, monkeypatch, capsys):
    monkeypatch.chdir(work)
    args = ["fit", "data.zarr", "--model", "bad", "-k", "3", "--bayesian"]
    with ComputeCounter() as computes:
        assert main([*args, "--degrees-of-freedom-prior", "2"]) == 2
    assert computes.count == 0  # only the store's metadata was read
    err = capsys.readouterr().err
    assert "'--degrees-of-freedom-prior' should be greater than 2, but got 2.000" in err
    assert "(INPUT gives 3 features per row)" in err
    assert not (work / "bad").exists()
