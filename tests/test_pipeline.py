"""Scheduled pipelines: real runs of ``python -m daskgmm pipeline`` on growing stores.

Subprocess runs cover what only a separate process shows (exit codes, SIGKILL,
two runs at once); the rest calls the same code in-process to keep the file fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

import daskgmm
from daskgmm.cli import main
from daskgmm.datasets import append_table, write_cube, write_table
from daskgmm.pipeline import (
    EXIT_BUSY,
    TEST_PAUSE_ENV,
    NotConvergedError,
    PipelineBusy,
    SourceChangedError,
    load_spec,
    read_records,
    run_pipeline,
)
from daskgmm.pipeline.lock import PipelineLock

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "pipelines" / "example.toml"
TIMEOUT = 180


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def make_spec(tmp: Path, mode: str = "online", replace=(), name: str = "pipeline.toml") -> Path:
    """pipelines/example.toml in ``tmp`` with ``mode`` and textual replacements."""
    text = EXAMPLE.read_text().replace('mode = "online"', f'mode = "{mode}"')
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp / name
    path.write_text(text)
    return path


def make_store(tmp: Path, n_rows: int = 250) -> Path:
    store = tmp / "data" / "sensors.zarr"
    write_table(store, n_rows, 2, 3, chunk_rows=100, seed=0)
    return store


def out_dir(tmp: Path) -> Path:
    return tmp / "out" / "sensors"


def version_dir(tmp: Path, number: int) -> Path:
    return out_dir(tmp) / "versions" / f"{number:06d}"


def rows(store: Path) -> np.ndarray:
    return zarr.open_array(store, mode="r")[:]


def labels(version: Path) -> np.ndarray:
    group = zarr.open_group(version / "predictions.zarr", mode="r")
    assert group.attrs["daskgmm_complete"] is True
    return group["labels"][:]


def records(tmp: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir(tmp) / "runs.jsonl").read_text().splitlines()]


def manifest(version: Path) -> dict:
    return json.loads((version / "manifest.json").read_text())


def tree_digest(path: Path) -> dict:
    """relative path -> SHA-256 of every file under ``path``."""
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != TEST_PAUSE_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def cli(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "daskgmm", "pipeline", *map(str, args)],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


class Spawned:
    """A CLI run in the background whose stdout and stderr lines are watched."""

    def __init__(self, *args, **env):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daskgmm", "pipeline", *map(str, args)],
            env=_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, needle: str, timeout: float = TIMEOUT) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"no {needle!r} in {self.seen}") from None
            self.seen.append(line)
            if needle in line:
                return line

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code, "".join(self.seen)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- #
# scheduled runs
# --------------------------------------------------------------------------- #
def proba(version: Path) -> np.ndarray:
    return zarr.open_group(version / "predictions.zarr", mode="r")["proba"][:]


def test_online_runs_learn_from_appended_rows_only(tmp_path, capsys):
    store = make_store(tmp_path, 250)
    spec = make_spec(
        tmp_path, "online", [("keep = 2", "keep = 1"), ("proba = false", "proba = true")]
    )

    first = cli("run", spec)
    assert_ok(first)
    assert "published version 1" in first.stdout
    v1 = version_dir(tmp_path, 1)
    assert os.readlink(out_dir(tmp_path) / "current") == "versions/000001"
    model1 = daskgmm.load(out_dir(tmp_path) / "current" / "model")
    assert type(model1).__name__ == "OnlineGaussianMixture"
    np.testing.assert_array_equal(labels(v1), model1.predict(rows(store)))

    assert main(["pipeline", "run", str(spec)]) == 0  # the same command, in-process
    assert "nothing new" in capsys.readouterr().out
    assert sorted(p.name for p in (out_dir(tmp_path) / "versions").iterdir()) == ["000001"]

    before = tree_digest(v1)
    append_table(store, 120, seed=1)
    second = cli("run", spec, "--json")
    assert_ok(second)
    summary = json.loads(second.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["action"], summary["version"]) == ("ok", "append", 2)
    assert summary["rows_processed"] == summary["rows_predicted"] == 120
    v2 = version_dir(tmp_path, 2)
    model2 = daskgmm.load(v2 / "model")
    X = rows(store)
    assert model2.n_samples_seen_ == model1.n_samples_seen_ + 120
    assert not np.array_equal(model2.means_, model1.means_)
    labels2 = labels(v2)
    np.testing.assert_array_equal(labels2[:250], labels(v1))  # carried over
    np.testing.assert_array_equal(labels2[250:], model2.predict(X[250:]))
    proba2 = proba(v2)
    np.testing.assert_array_equal(proba2[:250], proba(v1))  # carried, not recomputed:
    assert not np.allclose(proba2[:250], model2.predict_proba(X[:250]), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(proba2[250:], model2.predict_proba(X[250:]).astype(np.float32))
    assert tree_digest(v1) == before  # writing version 2 did not touch version 1
    assert manifest(v2)["predictions"]["segments"] == [
        {"version": 1, "start": 0, "stop": 250},
        {"version": 2, "start": 250, "stop": 370},
    ]

    append_table(store, 130, seed=2)
    third = cli("run", spec)
    assert_ok(third)
    assert "deleted old versions [1]" in third.stdout  # keep = 1
    v3 = version_dir(tmp_path, 3)
    assert sorted(p.name for p in (out_dir(tmp_path) / "versions").iterdir()) == [
        "000002",
        "000003",
    ]
    X = rows(store)
    model3 = daskgmm.load(out_dir(tmp_path) / "current" / "model")
    labels3 = labels(v3)  # chunks shared with the deleted version 1 are still there
    np.testing.assert_array_equal(labels3[:370], labels2)
    np.testing.assert_array_equal(labels3[370:], model3.predict(X[370:]))
    assert labels3.shape == (500,)

    runs = records(tmp_path)
    assert [r["status"] for r in runs] == ["ok", "nothing-new", "ok", "ok"]
    assert [r["rows_processed"] for r in runs] == [250, 0, 120, 130]
    assert [r["version"] for r in runs] == [1, None, 2, 3]
    assert [r["extent"] for r in runs] == [250, 250, 370, 500]
    assert all(r["seconds"] >= 0 and r["start"] <= r["end"] for r in runs)
    assert all(r["iterations"] >= 1 for r in runs if r["status"] == "ok")
    assert all(np.isfinite(r["log_likelihood"]) for r in runs if r["status"] == "ok")

    assert main(["pipeline", "status", str(spec)]) == 0
    status = capsys.readouterr().out
    assert "published: version 3" in status
    assert "versions kept: 2, 3" in status
    assert status.count("\n  20") == 4  # one table line per run
    assert "nothing-new" in status


def test_refit_runs_refit_and_repredict_every_row(tmp_path):
    store = make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "refit", [("random_state = 0", "random_state = 0\nmax_iter = 30")])
    for number, (added, seed) in enumerate([(0, 0), (120, 1), (130, 2)], 1):
        if added:
            append_table(store, added, seed=seed)
        result = cli("run", spec)
        assert_ok(result)
        assert f"published version {number}" in result.stdout
        version = version_dir(tmp_path, number)
        X = rows(store)
        model = daskgmm.load(version / "model")
        assert type(model).__name__ == "GaussianMixture"
        np.testing.assert_array_equal(labels(version), model.predict(X))
        assert manifest(version)["source"]["extent"] == len(X)
    runs = records(tmp_path)
    assert [r["status"] for r in runs] == ["ok"] * 3
    assert [r["action"] for r in runs] == ["full"] * 3
    assert [r["rows_processed"] for r in runs] == [250, 370, 500]
    assert [r["rows_predicted"] for r in runs] == [250, 370, 500]
    assert "120 new entries along 'sample'" in runs[1]["reason"]
    assert all(isinstance(r["converged"], bool) and r["iterations"] >= 1 for r in runs)
    assert sorted(p.name for p in (out_dir(tmp_path) / "versions").iterdir()) == [
        "000001",
        "000002",
        "000003",
    ]


def test_warm_start_starts_from_the_published_model(tmp_path):
    store = make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "warm_start", [("random_state = 0", "random_state = 0\ntol = 1e-6")])
    first = run_pipeline(spec)
    append_table(store, 120, seed=1)
    second = run_pipeline(spec)
    assert second.action == "full" and second.rows_processed == 370
    assert "warm start from version 1" in second.reason
    model = daskgmm.load(version_dir(tmp_path, 2) / "model")
    assert model.warm_start is False  # saved as a plain model
    np.testing.assert_array_equal(labels(version_dir(tmp_path, 2)), model.predict(rows(store)))
    # started where version 1 ended: far fewer iterations than from scratch
    assert second.iterations < first.iterations


# --------------------------------------------------------------------------- #
# killed runs, concurrent runs
# --------------------------------------------------------------------------- #
def test_run_killed_while_writing_leaves_the_published_version_whole(tmp_path):
    store = make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "online")
    run_pipeline(spec)
    v1 = version_dir(tmp_path, 1)
    before = tree_digest(v1)
    append_table(store, 120, seed=1)

    victim = Spawned("run", spec, **{TEST_PAUSE_ENV: "before-publish"})
    victim.wait_for("paused at before-publish")
    partial = out_dir(tmp_path) / "versions" / "000002.partial"
    assert (partial / "manifest.json").is_file()  # the new version was written...
    assert zarr.open_group(partial / "predictions.zarr")["labels"].shape == (370,)
    victim.proc.send_signal(signal.SIGKILL)
    assert victim.finish()[0] == -signal.SIGKILL

    # ... and the published one is as it was: readable, complete, unchanged
    assert os.readlink(out_dir(tmp_path) / "current") == "versions/000001"
    assert tree_digest(v1) == before
    model1 = daskgmm.load(out_dir(tmp_path) / "current" / "model")
    np.testing.assert_array_equal(
        labels(out_dir(tmp_path) / "current"), model1.predict(rows(store)[:250])
    )

    after = cli("run", spec)
    assert_ok(after)
    assert "was interrupted" in after.stdout
    assert not partial.exists()
    assert os.readlink(out_dir(tmp_path) / "current") == "versions/000002"
    model2 = daskgmm.load(version_dir(tmp_path, 2) / "model")
    np.testing.assert_array_equal(
        labels(version_dir(tmp_path, 2))[250:], model2.predict(rows(store)[250:])
    )
    runs = records(tmp_path)
    assert [r["status"] for r in runs] == ["ok", "interrupted", "ok"]
    assert runs[1]["pid"] == victim.proc.pid
    assert runs[1]["version"] is None
    assert "unpublished version 2 was removed" in runs[1]["message"]
    assert runs[2]["version"] == 2 and runs[2]["action"] == "append"
    assert not (out_dir(tmp_path) / "running.json").exists()


def test_sigterm_ends_a_run_with_143_recorded_failed_and_nothing_published(tmp_path):
    store = make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "online")
    run_pipeline(spec)
    before = tree_digest(version_dir(tmp_path, 1))
    append_table(store, 120, seed=1)

    stopped = Spawned("run", spec, **{TEST_PAUSE_ENV: "before-publish"})
    stopped.wait_for("paused at before-publish")
    stopped.proc.send_signal(signal.SIGTERM)  # what systemctl stop sends
    code, output = stopped.finish()
    assert code == 143, output
    assert "terminated by SIGTERM" in output
    assert os.readlink(out_dir(tmp_path) / "current") == "versions/000001"
    assert tree_digest(version_dir(tmp_path, 1)) == before
    assert not (out_dir(tmp_path) / "versions" / "000002.partial").exists()
    runs = records(tmp_path)
    assert [r["status"] for r in runs] == ["ok", "failed"]
    assert runs[1]["pid"] == stopped.proc.pid and runs[1]["version"] is None


def test_second_run_is_refused_while_one_runs_and_waits_with_wait(tmp_path):
    store = make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "online")
    run_pipeline(spec)
    append_table(store, 120, seed=1)

    holder = Spawned("run", spec, **{TEST_PAUSE_ENV: "before-publish:120"})
    holder.wait_for("paused at before-publish")
    refused = cli("run", spec, "--json")
    assert refused.returncode == EXIT_BUSY == 75, refused.stderr
    assert "already running" in refused.stderr
    assert f"pid {holder.proc.pid}" in refused.stderr
    assert json.loads(refused.stdout.strip().splitlines()[-1])["status"] == "busy"

    waiter = Spawned("run", spec, "--wait")
    waiter.wait_for("waiting for the lock")
    holder.proc.send_signal(signal.SIGUSR1)  # end the pause
    code, output = holder.finish()
    assert code == 0, output
    code, output = waiter.finish()
    assert code == 0, output
    assert "nothing new" in output  # it saw what the holder published
    runs = records(tmp_path)
    assert [r["status"] for r in runs] == ["ok", "busy", "ok", "nothing-new"]
    assert runs[2]["version"] == 2 and runs[2]["pid"] == holder.proc.pid


def test_lock_wait_gives_up_after_its_timeout(tmp_path):
    first = PipelineLock(tmp_path / "lock", "p")
    first.acquire({"pid": 1, "host": "h", "run_id": "r1", "start": "s"})
    try:
        with pytest.raises(PipelineBusy, match=r"pid 1 on h, run r1.*after waiting 0.2 s"):
            PipelineLock(tmp_path / "lock", "p", wait=0.2).acquire({})
    finally:
        first.release()
    second = PipelineLock(tmp_path / "lock", "p", wait=0.2)
    second.acquire({"pid": 2})
    second.release()


def test_recovery_records_a_run_killed_after_publishing_and_removes_orphans(tmp_path):
    make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "online")
    run_pipeline(spec)
    out = out_dir(tmp_path)
    # What a SIGKILL between publishing and recording leaves: current -> 1, the
    # marker with its planned version, no record line.
    (line,) = (out / "runs.jsonl").read_text().splitlines()
    (out / "runs.jsonl").unlink()
    (out / "running.json").write_text(json.dumps({**json.loads(line), "planned_version": 1}))
    # and what one killed between renaming and publishing leaves: a complete,
    # unpublished version 2 (plus a stray partial 3)
    orphan = out / "versions" / "000002"
    orphan.mkdir()
    (orphan / "manifest.json").write_text("{}")
    (out / "versions" / "000003.partial").mkdir()

    record = run_pipeline(spec)
    assert record.status == "nothing-new" and record.current_version == 1
    assert sorted(p.name for p in (out / "versions").iterdir()) == ["000001"]
    runs = read_records(out / "runs.jsonl")
    assert [r.status for r in runs] == ["interrupted", "nothing-new"]
    assert runs[0].version == 1 and "had published version 1" in runs[0].message


def test_mirror_links_only_chunks_an_append_cannot_reach(tmp_path):
    from daskgmm.pipeline.carry import mirror_store

    old = tmp_path / "old.zarr"
    array = zarr.create_array(
        old, shape=(250, 3), chunks=(100, 3), dtype="f4", dimension_names=["sample", "c"]
    )
    array[:] = 1.0
    new = tmp_path / "new.zarr"
    assert mirror_store(old, new, "sample", 250) == {"linked": 2, "copied": 1 + 1}
    inode = {p.relative_to(new).as_posix(): p.stat().st_ino for p in new.rglob("*")}
    for key, shared in [("c/0/0", True), ("c/1/0", True), ("c/2/0", False), ("zarr.json", False)]:
        assert (inode[key] == (old / key).stat().st_ino) is shared, key
    # an extent on a chunk boundary shares every chunk; metadata is still copied
    assert mirror_store(old, tmp_path / "aligned.zarr", "sample", 200)["linked"] == 2


# --------------------------------------------------------------------------- #
# sources that change, cubes, convergence
# --------------------------------------------------------------------------- #
def _rewrite_first_chunk(store: Path) -> None:
    array = zarr.open_array(store, mode="r+")
    array[:10] = array[:10] * 1.5


def test_online_refuses_a_rewritten_source_until_told_to_refit(tmp_path):
    store = make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "online")
    run_pipeline(spec)
    _rewrite_first_chunk(store)
    with pytest.raises(SourceChangedError, match=r"rewritten.*--full.*on_change"):
        run_pipeline(spec)
    assert read_records(out_dir(tmp_path) / "runs.jsonl")[-1].status == "failed"
    assert os.readlink(out_dir(tmp_path) / "current") == "versions/000001"
    # appended rows do not hide a rewrite of old ones
    append_table(store, 120, seed=1)
    with pytest.raises(SourceChangedError, match="chunks before entry 250 were rewritten"):
        run_pipeline(spec)
    record = run_pipeline(spec, full=True)
    assert (record.action, record.version, record.rows_processed) == ("full", 2, 370)


def test_refit_refits_a_rewritten_source_and_changed_settings(tmp_path):
    store = make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "refit")
    run_pipeline(spec)
    zarr.open_array(store, mode="r+").attrs["note"] = "metadata only"
    assert run_pipeline(spec).status == "nothing-new"
    _rewrite_first_chunk(store)
    record = run_pipeline(spec)
    assert record.version == 2 and "rewritten" in record.reason
    changed = make_spec(tmp_path, "refit", [("n_components = 3", "n_components = 2")])
    record = run_pipeline(changed)
    assert record.version == 3
    assert "model.n_components 3 -> 2" in record.reason
    assert daskgmm.load(version_dir(tmp_path, 3) / "model").n_components == 2


def test_online_cube_grows_along_time(tmp_path):
    import xarray as xr

    store = tmp_path / "data" / "cube.zarr"
    write_cube(store, (3, 6, 8), 3, 2, chunks=(1, 3, 8), seed=0)
    spec = make_spec(
        tmp_path,
        "online",
        [
            ('store = "data/sensors.zarr"', 'store = "data/cube.zarr"'),
            ('# variable = "data"', 'variable = "data"'),
            ('feature_dim = "feature"', 'feature_dim = "band"'),
            ('append_dim = "sample"', 'append_dim = "time"'),
            ("proba = false", "proba = true"),
        ],
    )
    run_pipeline(spec)
    source = xr.open_zarr(store, consolidated=False)
    more = source.isel(time=[0, 1]).load()
    more = more.assign_coords(time=source.time.values[-1] + np.array([1, 2], "timedelta64[D]"))
    more.to_zarr(store, append_dim="time", consolidated=False)
    record = run_pipeline(spec)
    assert (record.action, record.extent, record.rows_processed) == ("append", 5, 2 * 6 * 8)

    source = xr.open_zarr(store, consolidated=False)
    model = daskgmm.load(version_dir(tmp_path, 2) / "model")
    old = xr.open_zarr(version_dir(tmp_path, 1) / "predictions.zarr", consolidated=False)
    new = xr.open_zarr(version_dir(tmp_path, 2) / "predictions.zarr", consolidated=False)
    np.testing.assert_array_equal(new.time.values, source.time.values)
    np.testing.assert_array_equal(new.labels.values[:3], old.labels.values)
    expected = model.predict(source["data"].isel(time=slice(3, 5))).values
    np.testing.assert_array_equal(new.labels.values[3:], expected)
    assert new.proba.shape == (5, 6, 8, 3)
    np.testing.assert_array_equal(new.proba.values[:3], old.proba.values)


def test_require_converged_publishes_nothing_and_exits_3(tmp_path, capsys):
    make_store(tmp_path, 250)
    spec = make_spec(
        tmp_path, "refit", [("random_state = 0", "random_state = 0\nmax_iter = 1\ntol = 0.0")]
    )
    with pytest.raises(NotConvergedError) as caught:
        run_pipeline(spec, require_converged=True)
    assert caught.value.record.status == "not-converged"
    assert not (out_dir(tmp_path) / "current").exists()
    assert main(["pipeline", "run", str(spec), "--require-converged"]) == 3
    assert "did not converge" in capsys.readouterr().err
    assert [r.status for r in read_records(out_dir(tmp_path) / "runs.jsonl")] == [
        "not-converged",
        "not-converged",
    ]
    assert list((out_dir(tmp_path) / "versions").iterdir()) == []


# --------------------------------------------------------------------------- #
# bad specs
# --------------------------------------------------------------------------- #
BAD_SPECS = [
    pytest.param(
        [('feature_dim = "feature"', 'feature_dim = "feature"\nstor = "x"')],
        "input.stor: unknown key. Did you mean 'store'?",
        id="unknown-key",
    ),
    pytest.param([("[output]", "[outputs]")], "outputs: unknown table", id="unknown-table"),
    pytest.param(
        [('store = "data/sensors.zarr"', 'store = "data/missing.zarr"')],
        "input.store: no Zarr store at",
        id="missing-store",
    ),
    pytest.param(
        [("n_components = 3", 'n_components = "three"')],
        "model.n_components: must be an integer",
        id="wrong-type-model",
    ),
    pytest.param(
        [("proba = false", 'proba = "no"')], "output.proba: must be true or false", id="wrong-type"
    ),
    pytest.param(
        [('mode = "online"', 'mode = "nightly"')], "pipeline.mode: must be one of", id="mode"
    ),
    pytest.param(
        [("n_components = 3", "n_components = 3\nmax_iter = 5")],
        "model.max_iter: does not apply to mode 'online'",
        id="key-of-other-mode",
    ),
    pytest.param(
        [('directory = "out/sensors"', "")], "output.directory: is required", id="missing-key"
    ),
    pytest.param(
        [('# variable = "data"', 'variable = "data"')],
        "input.variable: ",
        id="variable-of-single-array",
    ),
    pytest.param(
        [('append_dim = "sample"', 'append_dim = "time"')],
        "input.append_dim: 'time' is not a sample dimension",
        id="append-dim",
    ),
    pytest.param(
        [('feature_dim = "feature"', 'feature_dim = "band"')],
        "input.feature_dim: 'band' is not a dimension",
        id="feature-dim",
    ),
    pytest.param([("keep = 2", "keep = -1")], "pipeline.keep: must be an integer >= 0", id="keep"),
]


@pytest.mark.parametrize(("replace", "message"), BAD_SPECS)
def test_bad_specs_exit_2_naming_the_key_and_write_nothing(tmp_path, capsys, replace, message):
    make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "online", replace)
    assert main(["pipeline", "run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_bad_spec_exits_2_from_the_command_line(tmp_path):
    make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "refit", [("random_state = 0", "random_state = 0\nkappa = 0.7")])
    result = cli("run", spec)
    assert result.returncode == 2, result.stderr
    assert "model.kappa: does not apply to mode 'refit'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_status_reads_without_the_input_store(tmp_path, capsys):
    store = make_store(tmp_path, 250)
    spec = make_spec(tmp_path, "online")
    run_pipeline(spec)
    store.rename(tmp_path / "elsewhere.zarr")
    assert main(["pipeline", "status", str(spec), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["published"]["version"] == 1 and status["versions"] == [1]
    assert [r["status"] for r in status["runs"]] == ["ok"]
    assert main(["pipeline", "run", str(spec)]) == 2  # running needs the store
    assert "input.store: no Zarr store" in capsys.readouterr().err


def test_example_spec_loads_and_resolves_paths_against_its_directory(tmp_path):
    make_store(tmp_path, 250)
    spec = load_spec(make_spec(tmp_path))
    assert spec.store == str(tmp_path / "data" / "sensors.zarr")
    assert spec.directory == tmp_path / "out" / "sensors"
    assert (spec.name, spec.mode, spec.keep, spec.on_change) == ("sensors", "online", 2, "error")


# --------------------------------------------------------------------------- #
# schedule files
# --------------------------------------------------------------------------- #
def test_schedule_files_run_the_cli():
    timer = (REPO / "pipelines" / "daskgmm-pipeline.timer").read_text()
    service = (REPO / "pipelines" / "daskgmm-pipeline.service").read_text()
    assert "Persistent=true" in timer.splitlines()
    assert "Unit=daskgmm-pipeline.service" in timer.splitlines()
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert "daskgmm pipeline run" in exec_start
    assert "SuccessExitStatus=75" in service.splitlines()
    (cron,) = [
        line
        for line in (REPO / "pipelines" / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    fields = cron.split(maxsplit=5)
    assert len(fields) == 6 and "daskgmm pipeline run" in fields[5]


PREFECT_PROBE = """
import importlib.util, json, sys

def prefect_loaded():
    return sorted(m for m in sys.modules if m == "prefect" or m.startswith("prefect."))

spec = importlib.util.spec_from_file_location("prefect_flow", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
out = {"installed": importlib.util.find_spec("prefect") is not None,
       "loaded_after_import": prefect_loaded()}
try:
    flow = module.build_flow()
except ImportError as exc:
    out["error"] = str(exc)
else:
    out["flow_name"] = flow.name
    out["loaded_after_build"] = bool(prefect_loaded())
print(json.dumps(out))
"""


def test_prefect_flow_imports_prefect_only_when_built():
    """Importing pipelines/prefect_flow.py (in a fresh interpreter, so that nothing
    imported prefect before) leaves prefect out; build_flow() imports it, or says how
    to install it."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-c", PREFECT_PROBE, str(REPO / "pipelines" / "prefect_flow.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded_after_import"] == []
    if out["installed"]:
        assert out.get("error") is None
        assert out["flow_name"] == "daskgmm-pipeline"
        assert out["loaded_after_build"]
    else:
        assert "flow_name" not in out
        assert out["error"] == "The Prefect flow needs Prefect: pip install 'daskgmm[prefect]'."
