"""The ``daskgmm`` command line, run as users run it: real subprocesses on real stores.

Results are checked against the library called directly with the same parameters.
A few argument checks run in-process through ``main()`` (same code, no interpreter
start-up) to keep the file fast.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import zarr
from _support import ComputeCounter, run_cli

import daskgmm
from daskgmm import GaussianMixture
from daskgmm.cli import main
from daskgmm.cli.options import k_values
from daskgmm.datasets import MixtureTruth, write_table
from daskgmm.io import open_rows
from daskgmm.plotting import available

N_ROWS, N_FEATURES, K = 6_000, 3, 3
FIT_OPTIONS = ["-k", str(K), "--random-state", "0", "--max-iter", "50"]
#: matplotlib is in the test extras (make test installs it); without it the plots are skipped.
PLOT = available()


def last_json(proc: subprocess.CompletedProcess) -> dict:
    """The ``--json`` summary: the last line of stdout."""
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A directory with a clear 3-component store made by ``daskgmm make-data``."""
    work = tmp_path_factory.mktemp("cli")
    proc = run_cli(
        "make-data",
        "data.zarr",
        "--n-samples",
        N_ROWS,
        "--n-features",
        N_FEATURES,
        "--n-components",
        K,
        "--chunks",
        1000,
        "--dtype",
        "float64",
        "--json",
        cwd=work,
    )
    summary = last_json(proc)
    assert summary["n_samples"] == N_ROWS and summary["layout"] == "table"
    assert "wrote 6,000 x 3 float64 samples" in proc.stderr  # --json: lines for people
    return work


@pytest.fixture(scope="module")
def fitted(work) -> dict:
    """``daskgmm fit`` of the store (with a plot); its JSON summary."""
    plot = ["--plot", "fit.png"] if PLOT else []
    proc = run_cli(
        "fit",
        "data.zarr",
        "--model",
        "model",
        *FIT_OPTIONS,
        *plot,
        "--progress",
        "--json",
        cwd=work,
    )
    assert "model saved to model" in proc.stderr  # --json: stdout holds only the JSON
    assert "lower bound" in proc.stderr  # the progress line (forced: stderr is a pipe here)
    return last_json(proc)


def test_make_data_writes_the_mixture_and_refuses_an_existing_store(work):
    array = zarr.open_array(work / "data.zarr", mode="r")
    assert array.shape == (N_ROWS, N_FEATURES) and array.chunks == (1000, N_FEATURES)
    truth = MixtureTruth.from_attrs(array.attrs)
    assert truth.means.shape == (K, N_FEATURES)
    before = sorted(p.name for p in (work / "data.zarr").iterdir())
    proc = run_cli("make-data", "data.zarr", "--n-samples", 100, cwd=work, code=2)
    assert "--overwrite" in proc.stderr and "An array exists" not in proc.stderr
    assert sorted(p.name for p in (work / "data.zarr").iterdir()) == before


def test_fit_equals_the_library_and_saves_the_fingerprint(work, fitted):
    direct = GaussianMixture(K, random_state=0, max_iter=50).fit(str(work / "data.zarr"))
    model = daskgmm.load(work / "model")
    np.testing.assert_allclose(model.means_, direct.means_, rtol=1e-12)
    np.testing.assert_allclose(model.covariances_, direct.covariances_, rtol=1e-12)
    assert fitted["converged"] is True and fitted["n_iter"] == direct.n_iter_
    assert fitted["lower_bound"] == pytest.approx(direct.lower_bound_, rel=1e-12)
    assert (fitted["n_samples"], fitted["n_features"]) == (N_ROWS, N_FEATURES)
    fp = model.training_data_
    assert fp["kind"] == "zarr"
    assert fp["location"] == str((work / "data.zarr").resolve())
    assert fp["arrays"][""] == {
        "shape": [N_ROWS, N_FEATURES],
        "chunks": [1000, 3],
        "dtype": "float64",
    }
    assert fp["files"]["n_files"] == 7  # zarr.json + 6 chunks
    assert fp["rows"] == {
        "n_samples": N_ROWS,
        "n_features": N_FEATURES,
        "sample_dims": ["sample"],
        "row_chunks": 6,
    }


def test_fit_plot_is_a_png(work, fitted):
    pytest.importorskip("matplotlib")
    assert fitted["plot"] == "fit.png"
    assert (work / "fit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (work / "fit.png").stat().st_size > 20_000


def test_info_shows_metadata_and_whether_the_store_changed(work, fitted):
    proc = run_cli("info", "model", "--json", cwd=work)
    info = last_json(proc)
    assert info["class"] == "GaussianMixture" and info["schema_version"] == 2
    assert info["params"]["n_components"] == K and info["params"]["random_state"] == 0
    assert info["fitted"]["converged_"] is True
    assert info["training_data"]["location"] == str((work / "data.zarr").resolve())
    assert info["training_data_changed"] is False
    assert "store is unchanged since the fit" in proc.stderr  # --json: on stderr
    assert f"rows: {N_ROWS:,} x {N_FEATURES}" in proc.stderr


def test_score_equals_the_library(work, fitted):
    summary = last_json(run_cli("score", "model", "data.zarr", "--json", cwd=work))
    model = daskgmm.load(work / "model")
    store = str(work / "data.zarr")
    assert summary["mean_log_likelihood"] == pytest.approx(model.score(store), rel=1e-12)
    assert summary["bic"] == pytest.approx(model.bic(store), rel=1e-12)
    assert summary["aic"] == pytest.approx(model.aic(store), rel=1e-12)
    assert summary["n_scored"] == N_ROWS


def test_predict_writes_exactly_the_models_labels(work, fitted):
    summary = last_json(
        run_cli(
            "predict", "model", "data.zarr", "--out", "pred.zarr", "--proba", "--json", cwd=work
        )
    )
    model = daskgmm.load(work / "model")
    expected = np.asarray(model.predict(open_rows(str(work / "data.zarr"))))
    group = zarr.open_group(work / "pred.zarr", mode="r")
    np.testing.assert_array_equal(group["labels"][:], expected)
    np.testing.assert_allclose(
        group["proba"][:],
        model.predict_proba(np.asarray(open_rows(str(work / "data.zarr")).data)),
        rtol=1e-6,
        atol=1e-7,
    )
    assert group.attrs["daskgmm_complete"] is True
    assert summary["counts"] == np.bincount(expected, minlength=K).tolist()


def test_select_table_equals_direct_fits_and_finds_three_components(work):
    plot = ["--plot", "select.png"] if PLOT else []
    proc = run_cli(
        "select",
        "data.zarr",
        "--k",
        "1..4",
        "--random-state",
        0,
        "--max-iter",
        50,
        "--out",
        "curve.json",
        *plot,
        "--json",
        cwd=work,
    )
    summary = last_json(proc)
    assert "lower bound" not in proc.stderr  # no progress lines when stderr is not a terminal
    assert summary["best_k"] == K
    assert f"best K by BIC: {K}" in proc.stderr  # --json: the table is on stderr
    assert f"  {K}*" in proc.stderr  # the starred row of the table
    store = str(work / "data.zarr")
    for row in summary["table"]:
        direct = GaussianMixture(row["k"], random_state=0, max_iter=50).fit(store)
        assert row["bic"] == pytest.approx(direct.bic(store), rel=1e-12)
        assert row["aic"] == pytest.approx(direct.aic(store), rel=1e-12)
        assert row["mean_log_likelihood"] == pytest.approx(direct.score(store), rel=1e-12)
        assert (row["n_iter"], row["converged"]) == (direct.n_iter_, direct.converged_)
    written = json.loads((work / "curve.json").read_text())
    assert written["table"] == summary["table"] and written["best_k"] == K
    if PLOT:
        assert (work / "select.png").read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def other_store(work) -> str:
    """A store with 4 features (written in-process)."""
    write_table(work / "four.zarr", 2000, 4, 2, 500, seed=1)
    return "four.zarr"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "missing.zarr", "-k", "2", "--model", "m1"], "no Zarr store there"),
        (["fit", "data.zarr", "-k", "2", "--model", "m1", "--variable", "temp"], "--variable"),
        (["predict", "model", "four.zarr", "--out", "p1.zarr"], "fitted on 3"),
        (["fit", "data.zarr", "-k", "0", "--model", "m1"], "-k/--n-components"),
    ],
    ids=["missing-store", "bad-variable", "feature-mismatch", "bad-option"],
)
def test_bad_input_exits_2_naming_what_to_change_and_writes_nothing(
    work, fitted, other_store, args, message
):
    proc = run_cli(*args, cwd=work, code=2)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (work / "m1").exists() and not (work / "p1.zarr").exists()


def test_require_converged_exits_3_and_saves_nothing(work):
    proc = run_cli(
        "fit",
        "data.zarr",
        "-k",
        "3",
        "--model",
        "m3",
        "--max-iter",
        "1",
        "--tol",
        "0",
        "--require-converged",
        "--quiet",
        cwd=work,
        code=3,
    )
    assert "did not converge" in proc.stderr and "--max-iter" in proc.stderr
    assert proc.stdout == ""  # --quiet
    assert not (work / "m3").exists()


def test_tampered_model_is_refused(work, fitted, tmp_path, capsys):
    """In-process (the same main() the console script runs)."""
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(work / "model", copy)
    with np.load(copy / "arrays.npz") as npz:
        arrays = dict(npz)
    arrays["fitted__means_"] = arrays["fitted__means_"] + 1.0
    np.savez(copy / "arrays.npz", **arrays)
    assert main(["info", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "checksum" in err and "save the model again" in err
    assert main(["predict", str(copy), str(work / "data.zarr"), "--out", str(tmp_path / "p")]) == 2
    assert not (tmp_path / "p").exists()


def test_demo_on_a_local_cluster_with_report_and_plot(tmp_path):
    proc = run_cli(
        "demo",
        "--out-dir",
        "out",
        "--n-samples",
        20_000,
        "--n-features",
        4,
        "--n-components",
        3,
        "--chunk-rows",
        5000,
        "--separation",
        6,
        "--workers",
        1,
        "--report",
        "report.html",
        "--json",
        cwd=tmp_path,
    )
    assert "dashboard: http://127.0.0.1:" in proc.stderr  # --json: on stderr
    page = re.search(r"the EM, live: (http://127\.0\.0\.1:\d+/individual-daskgmm)", proc.stderr)
    assert page, proc.stderr  # the cluster daskgmm started served its page (test_dashboard)
    report = (tmp_path / "report.html").read_text()
    assert report.lstrip().lower().startswith("<!doctype html") or "<html" in report[:1000]
    summary = last_json(proc)
    assert summary["converged"] is True
    assert summary["max_mean_error"] < 0.2 and summary["max_weight_error"] < 0.02
    labels = zarr.open_group(tmp_path / "out" / "predictions.zarr", mode="r")["labels"][:]
    model = daskgmm.load(tmp_path / "out" / "model")
    expected = model.predict(np.asarray(zarr.open_array(tmp_path / "out" / "data.zarr")[:]))
    np.testing.assert_array_equal(labels, expected)
    if summary["plot_path"] is not None:
        assert (tmp_path / "out" / "fit.png").is_file()


# ------------------------------------------------------------------ in-process
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["select", "data.zarr", "--k", "3..1"], "--k"),
        (["select", "data.zarr", "--k", "two"], "--k"),
        (["fit", "data.zarr", "-k", "2", "--model", "m1", "--tol", "-1"], "--tol"),
        (["fit", "data.zarr", "-k", "2", "--model", "m1", "--online", "--kappa", "0.3"], "--kappa"),
        (
            ["fit", "data.zarr", "-k", "2", "--model", "m1", "--online", "--max-iter", "3"],
            "--max-iter applies to batch EM only",
        ),
        (["fit", "data.zarr", "-k", "2", "--model", "m1", "--report", "r.html"], "--workers N"),
        (["fit", "data.zarr", "-k", "2", "--model", "m1", "--plot", "fit.jpg"], ".png"),
        (["fit", "data.zarr", "-k", "2", "--model", "model"], "--overwrite"),
        (
            ["fit", "data.zarr", "-k", "2", "--model", "m1", "--feature-dim", "band"],
            "--feature-dim",
        ),
        (["select", "data.zarr", "--out", "curve.txt"], ".json or .csv"),
        (["predict", "model", "data.zarr", "--out", "data.zarr", "--overwrite"], "overlaps"),
        (["predict", "model", "data.zarr", "--out", "model"], "--overwrite"),
        (["predict", "model", "data.zarr", "--out", "model", "--overwrite"], "not a Zarr store"),
        (
            ["fit", "data.zarr", "-k", "2", "--model", "data.zarr", "--overwrite"],
            "not a saved model",
        ),
        (["score", "nowhere", "data.zarr"], "daskgmm fit --model"),
        (["make-data", "x.zarr", "--cube-shape", "2,3"], "--cube-shape"),
    ],
)
def test_argument_checks(work, fitted, monkeypatch, capsys, args, message):
    monkeypatch.chdir(work)
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own checks
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (work / "m1").exists() and not (work / "x.zarr").exists()


def test_unexpected_errors_exit_1(monkeypatch, capsys, work, fitted):
    import daskgmm.cli.info as info

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(info, "data_changed", broken)
    assert main(["info", str(work / "model")]) == 1
    assert "unexpected RuntimeError: disk on fire" in capsys.readouterr().err


def test_k_values():
    assert k_values("1..12") == list(range(1, 13))
    assert k_values("2,4,8") == [2, 4, 8]
    assert k_values("1..3,8, 2") == [1, 2, 3, 8]
    assert k_values("5") == [5]


def test_nan_rows_are_refused_then_omitted_and_labelled_minus_one(tmp_path, monkeypatch, capsys):
    """In-process: --nan-policy raise says what to change; omit fits and writes -1."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2)) + 6.0])
    X[::100, 1] = np.nan
    zarr.create_array(tmp_path / "nan.zarr", data=X, chunks=(500, 2))
    monkeypatch.chdir(tmp_path)
    fit = ["fit", "nan.zarr", "-k", "2", "--model", "m", "--random-state", "0"]
    assert main(fit) == 2
    assert "--nan-policy" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert main([*fit, "--nan-policy", "omit", "--quiet"]) == 0
    assert main(["predict", "m", "nan.zarr", "--out", "p.zarr", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    labels = zarr.open_group(tmp_path / "p.zarr", mode="r")["labels"][:]
    np.testing.assert_array_equal(labels == -1, np.isnan(X).any(axis=1))
    assert summary["unlabelled"] == 20 and sum(summary["counts"]) == 1980


def test_cube_with_variable_and_feature_dim(tmp_path, monkeypatch, capsys):
    """In-process: an xarray cube store; predictions come back on (time, y, x)."""
    import xarray as xr

    from daskgmm.datasets import write_cube

    write_cube(tmp_path / "cube.zarr", (2, 30, 40), 3, 2, (1, 30, 40), seed=2)
    monkeypatch.chdir(tmp_path)
    common = ["--variable", "data", "--feature-dim", "band"]
    assert main(["fit", "cube.zarr", "-k", "2", "--model", "m", "--quiet", *common]) == 0
    assert main(["predict", "m", "cube.zarr", "--out", "p.zarr", "--quiet", *common]) == 0
    model = daskgmm.load(tmp_path / "m")
    assert model.training_data_["variables"] == "data"
    assert model.training_data_["rows"]["sample_dims"] == ["time", "y", "x"]
    cube = xr.open_zarr(tmp_path / "cube.zarr", consolidated=False)["data"]
    written = xr.open_zarr(tmp_path / "p.zarr", consolidated=False, mask_and_scale=False)
    assert written["labels"].dims == ("time", "y", "x")
    np.testing.assert_array_equal(written["labels"].values, model.predict(cube).values)
    assert (
        main(["fit", "cube.zarr", "-k", "2", "--model", "m2", "--chunk-rows", "100", *common]) == 2
    )
    assert "--chunk-rows applies to tables" in capsys.readouterr().err


def test_chunk_rows_rechunks_a_table(work, fitted, tmp_path, monkeypatch):
    monkeypatch.chdir(work)
    out = tmp_path / "m"
    assert (
        main(
            [
                "fit",
                "data.zarr",
                *FIT_OPTIONS,
                "--model",
                str(out),
                "--chunk-rows",
                "1500",
                "--quiet",
            ]
        )
        == 0
    )
    assert daskgmm.load(out).training_data_["rows"]["row_chunks"] == 4


class _Killed(BaseException):
    """Stands for the process dying: not an Exception, so ``main()`` does not catch it."""


def test_online_fit_with_checkpoint_resumes_to_the_same_model(work, fitted, tmp_path, monkeypatch):
    """In-process: a run killed mid-fit resumes from its checkpoint to the uninterrupted
    model, computing only the mini-batches left; a finished checkpoint returns the same
    model without computing."""
    from daskgmm.store import checkpoint as _checkpoint

    monkeypatch.chdir(work)

    def args(checkpoint, model):
        return [
            "fit",
            "data.zarr",
            "-k",
            "3",
            "--online",
            "--batch-size",
            "1000",
            "--max-passes",
            "1",
            "--random-state",
            "0",
            "--checkpoint",
            str(checkpoint),
            "--model",
            str(model),
            "--quiet",
        ]

    with ComputeCounter() as full:
        assert main(args(tmp_path / "ck-ref", tmp_path / "ref")) == 0
    reference = daskgmm.load(tmp_path / "ref")
    assert type(reference).__name__ == "OnlineGaussianMixture"
    assert reference.n_batches_seen_ == 6

    # The first run dies as it is about to checkpoint its 4th mini-batch.
    checkpoint = tmp_path / "ck"
    real_save = _checkpoint.Checkpoint.save
    saves = []

    def dies_on_fourth(self, state, arrays):
        if len(saves) == 3:
            raise _Killed("killed after the 4th mini-batch")
        real_save(self, state, arrays)
        saves.append(state["done"])

    monkeypatch.setattr(_checkpoint.Checkpoint, "save", dies_on_fourth)
    with ComputeCounter() as killed, pytest.raises(_Killed):
        main(args(checkpoint, tmp_path / "a"))
    monkeypatch.setattr(_checkpoint.Checkpoint, "save", real_save)
    assert saves == [1, 2, 3] and not (tmp_path / "a").exists()
    state = json.loads((checkpoint / "state.json").read_text())
    assert (state["pass"], state["done"], state["n_batches_seen"]) == (1, 3, 3)

    # The resumed run computes only what the killed one had not saved: from the 4th
    # mini-batch on (a run ignoring --checkpoint would compute as much as the full one).
    with ComputeCounter() as resumed:
        assert main(args(checkpoint, tmp_path / "a")) == 0
    assert resumed.count == full.count - killed.count + 1
    assert resumed.count < full.count
    state = json.loads((checkpoint / "state.json").read_text())
    assert (state["pass"], state["done"], state["n_batches_seen"]) == (1, 6, 6)

    # A finished checkpoint: the same model, no computation at all.
    with ComputeCounter() as again:
        assert main(args(checkpoint, tmp_path / "b")) == 0
    assert again.count == 0

    for other in (daskgmm.load(tmp_path / "a"), daskgmm.load(tmp_path / "b")):
        assert type(other).__name__ == "OnlineGaussianMixture" and other.n_batches_seen_ == 6
        np.testing.assert_array_equal(other.means_, reference.means_)
        np.testing.assert_array_equal(other.covariances_, reference.covariances_)
        np.testing.assert_array_equal(other.weights_, reference.weights_)
        assert other.log_likelihood_history_ == reference.log_likelihood_history_
