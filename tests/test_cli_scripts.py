"""The command line as scripts use it: real subprocess runs of ``python -m daskgmm``.

``--json`` leaves one JSON object on stdout (the summary, or the error with its
kind and exit code) and puts the lines for people on stderr; ``--version``;
global flags after the command; progress lines that say which initialisation (or
which K) runs, the time elapsed and the time left; options that would do nothing
and outputs that cannot be written are refused (exit 2) before any work; a reader
that goes away (``| head -1``) ends the command quietly.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _support import REPO, cli_env, run_cli

from daskgmm._version import __version__

FIT = ["-k", "3", "--random-state", "0", "--max-iter", "50"]


def only_json(proc: subprocess.CompletedProcess) -> dict:
    """stdout is exactly one JSON object (nothing before or after it)."""
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON object:\n{proc.stdout}\nstderr:\n{proc.stderr}")


def no_traceback(stderr: str) -> None:
    for text in ("Traceback", "BrokenPipeError", "Exception ignored", "unexpected"):
        assert text not in stderr, stderr


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A small 3-component table written by ``make-data``, and a model fitted on it."""
    work = tmp_path_factory.mktemp("scripts")
    run_cli(
        "make-data", "data.zarr", "--n-samples", 3000, "--n-features", 2, "--n-components", 3,
        "--chunks", 500, "--dtype", "float64", "--quiet", cwd=work,
    )  # fmt: skip
    run_cli("fit", "data.zarr", "--model", "model", *FIT, "--quiet", cwd=work)
    return work


# ------------------------------------------------------------------ --json
@pytest.mark.parametrize(
    ("args", "human"),
    [
        (["make-data", "d.zarr", "--n-samples", "500", "--n-features", "2"], "wrote 500 x 2"),
        (["fit", "data.zarr", "--model", "m-json", *FIT], "model saved to m-json"),
        (["score", "model", "data.zarr"], "mean log-likelihood per sample"),
        (["predict", "model", "data.zarr", "--out", "p-json.zarr"], "rows per component"),
        (["select", "data.zarr", "--k", "2..3", "--random-state", "0"], "best K by BIC"),
        (["info", "model"], "the store is unchanged since the fit"),
    ],
    ids=["make-data", "fit", "score", "predict", "select", "info"],
)
def test_json_prints_only_json_on_stdout_and_the_lines_for_people_on_stderr(work, args, human):
    proc = run_cli(*args, "--json", cwd=work)
    summary = only_json(proc)
    assert summary["command"] == args[0]
    assert human in proc.stderr


def test_pipeline_run_json_prints_only_the_run_record(tmp_path):
    from daskgmm.datasets import write_table

    write_table(tmp_path / "data" / "sensors.zarr", 250, 2, 3, chunk_rows=100, seed=0)
    shutil.copy(REPO / "pipelines" / "example.toml", tmp_path / "pipeline.toml")
    proc = run_cli("pipeline", "run", "pipeline.toml", "--json", cwd=tmp_path)
    record = only_json(proc)
    assert (record["status"], record["version"]) == ("ok", 1)
    assert "published version 1" in proc.stderr


@pytest.mark.parametrize(
    ("args", "code", "kind", "category", "words"),
    [
        (["fit", "data.zarr", "--model", "m-e", "-k", "2", "--tol", "-1"], 2,
         "ArgumentError", "usage", "--tol"),
        (["fit", "missing.zarr", "--model", "m-e", "-k", "2"], 2,
         "UsageError", "usage", "no Zarr store there"),
        (["score", "nowhere", "data.zarr"], 2, "UsageError", "usage", "daskgmm fit --model"),
        (["fit", "data.zarr", "--model", "m-e", "-k", "3", "--max-iter", "1", "--tol", "0",
          "--require-converged"], 3, "NotConvergedExit", "not-converged", "--max-iter"),
    ],
    ids=["argparse", "usage", "missing-model", "not-converged"],
)  # fmt: skip
def test_json_error_is_a_json_object_with_message_kind_and_exit_code(
    work, args, code, kind, category, words
):
    proc = run_cli(*args, "--json", cwd=work, code=code)
    failure = only_json(proc)
    assert failure["exit_code"] == code == proc.returncode
    assert (failure["kind"], failure["category"]) == (kind, category)
    assert failure["command"] == args[0] and words in failure["error"]
    assert "daskgmm: error:" in proc.stderr or "error: argument" in proc.stderr
    assert not (work / "m-e").exists()


# --------------------------------------------------------- version, flags
def test_version_prints_the_version_and_exits_0(tmp_path):
    proc = run_cli("--version", cwd=tmp_path)
    assert proc.stdout == f"daskgmm {__version__}\n"


def test_global_flags_are_taken_after_the_command_too(work):
    verbose = run_cli("fit", "data.zarr", "--model", "m-v", *FIT, "--overwrite", "-v", cwd=work)
    assert "INFO daskgmm.mixture" in verbose.stderr
    # before the command, and not undone by the command's own default
    quiet_before = run_cli("--quiet", "info", "model", cwd=work)
    quiet_after = run_cli("info", "model", "-q", cwd=work)
    assert quiet_before.stdout == quiet_after.stdout == ""
    assert quiet_before.stderr == quiet_after.stderr == ""


# ---------------------------------------------------------------- progress
def progress_lines(stderr: str) -> list[str]:
    """The states a progress line went through (each ``\\r`` redraws it)."""
    return [line.strip() for line in re.split(r"[\r\n]", stderr) if line.strip()]


def test_fit_progress_shows_the_initialisations_their_iterations_and_the_time(work):
    proc = run_cli(
        "fit", "data.zarr", "--model", "m-p", *FIT, "--n-init", 3, "--tol", "1e-5",
        "--progress", cwd=work,
    )  # fmt: skip
    lines = progress_lines(proc.stderr)
    # the three initialisations iterate together, one pass each iteration, up to --max-iter
    together = [line for line in lines if line.startswith("EM, 3 initialisations together ")]
    assert any(re.match(r"EM, 3 initialisations together +1/50 ", line) for line in together)
    running = [line for line in together if " s/iter" in line and "elapsed" in line]
    assert any("left" in line for line in running), lines
    assert any(re.search(r"~\S+ left \(at most \S+\)", line) for line in running), lines
    assert "the best of 3 initialisations" in together[-1] and "left" not in together[-1]
    assert "(the best of 3 initialisations)" in proc.stdout


def test_select_score_and_predict_progress_in_the_same_style(work):
    select = run_cli(
        "select", "data.zarr", "--k", "2..3", "--random-state", 0, "--progress", cwd=work
    )
    lines = progress_lines(select.stderr)
    # both K iterate together, one pass each iteration, then one pass scores both
    assert any(line.startswith("select, 2 models together ") for line in lines), lines
    assert any(re.match(r"select, 2 models together +1/100 ", line) for line in lines), lines
    score = run_cli("score", "model", "data.zarr", "--progress", cwd=work)
    predict = run_cli("predict", "model", "data.zarr", "--out", "p-p.zarr", "--progress", cwd=work)
    for name, proc in (("score", score), ("predict", predict)):
        lines = progress_lines(proc.stderr)
        assert any(re.match(rf"{name} \[#+\] +100% of \d+ tasks +\S+ elapsed", x) for x in lines)


# ------------------------------------------------------- no silent no-ops
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["fit", "data.zarr", "--model", "m-x", *FIT, "--memory-limit", "1GiB"],
         "add --workers N"),
        (["fit", "data.zarr", "--model", "m-x", *FIT, "--threads", "2"], "add --workers N"),
        (["select", "data.zarr", "--k", "2", "--model", "m-x", "--threads", "2",
          "--memory-limit", "1GiB"], "add --workers N"),
        (["score", "model", "data.zarr", "--memory-limit", "1GiB"], "add --workers N"),
        (["fit", "data.zarr", "--model", "m-x", *FIT, "--plot", "no-dir/fit.png"],
         "does not exist"),
        (["select", "data.zarr", "--k", "2", "--model", "m-x", "--plot", "no-dir/k.png"],
         "does not exist"),
        (["select", "data.zarr", "--k", "2", "--model", "m-x", "--checkpoint", "a-file/ck"],
         "is a file"),
        (["fit", "data.zarr", "--model", "m-x", *FIT, "--checkpoint", "a-file/ck"],
         "is a file"),
        (["fit", "data.zarr", "--model", "a-file/m-x", *FIT], "is a file"),
        (["predict", "model", "data.zarr", "--out", "a-file/p.zarr"], "is a file"),
    ],
    ids=["fit-memory", "fit-threads", "select-both", "score-memory", "fit-plot", "select-plot",
         "select-checkpoint", "fit-checkpoint", "fit-model", "predict-out"],
)  # fmt: skip
def test_options_that_do_nothing_and_unwritable_outputs_exit_2_before_any_work(work, args, words):
    (work / "a-file").write_text("not a directory\n")
    shutil.rmtree(work / "m-x", ignore_errors=True)  # each case on its own
    proc = run_cli(*args, cwd=work, code=2)
    assert words in proc.stderr
    assert "INPUT" not in proc.stdout + proc.stderr  # refused before the input was read
    assert not (work / "m-x").exists() and not (work / "no-dir").exists()


# -------------------------------------------------------------------- pipes
def _piped(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """``bash -c 'set -o pipefail; COMMAND | head -1'``: the exit status is daskgmm's."""
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -1"],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("stderr_too", [False, True], ids=["stdout", "stdout-and-stderr"])
def test_a_reader_that_goes_away_ends_the_command_quietly(work, stderr_too):
    daskgmm = f"{shlex.quote(sys.executable)} -m daskgmm"
    # the first line comes before the fit, the next after it: by then head has gone
    fit = f"{daskgmm} fit data.zarr --model m-pipe --overwrite {' '.join(FIT)}"
    if stderr_too:
        command = f"{fit} --progress 2>&1"
    else:
        command = f"{fit} 2>pipe-stderr.txt"
    proc = _piped(command, work)
    assert proc.returncode in (0, 141), proc.stderr  # 141 = 128 + SIGPIPE
    assert proc.stdout.startswith("INPUT data.zarr"), proc.stdout
    no_traceback(proc.stderr)
    if not stderr_too:
        no_traceback((work / "pipe-stderr.txt").read_text())
