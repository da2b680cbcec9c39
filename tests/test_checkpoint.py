"""checkpoint=: atomic per-iteration state, resumed after the driver is killed."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from _support import ComputeCounter, record_task_threads

from daskgmm import GaussianMixture
from daskgmm.datasets import make_mixture
from daskgmm.errors import CheckpointMismatchError
from daskgmm.store.files import readable_directory

ROOT = Path(__file__).resolve().parents[1]
N_ROWS, N_FEATURES, K, CHUNK = 40_000, 5, 4, 4_000
MAX_ITER = 40

FIT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, warnings
    import dask.array as da
    import numpy as np
    from dask.callbacks import Callback
    from daskgmm import GaussianMixture

    store, checkpoint, params_file, delay = sys.argv[1:5]
    params = json.load(open(params_file))

    class Slow(Callback):  # stretch each iteration so the test can kill us mid-fit
        def _start(self, dsk):
            time.sleep(float(delay))

    warnings.simplefilter("ignore")
    model = GaussianMixture(
        params["k"], tol=0.0, max_iter=params["max_iter"], n_init=3, random_state=7,
        init_params="random",
    )
    with Slow():
        model.fit(da.from_zarr(store), checkpoint=checkpoint)
    print(json.dumps({"n_iter": model.n_iter_, "lower_bound": model.lower_bound_}))
    """
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    X, _ = make_mixture(N_ROWS, N_FEATURES, K, chunk_rows=CHUNK, seed=11)
    path = tmp_path_factory.mktemp("data") / "x.zarr"
    X.to_zarr(str(path))
    return str(path)


def _model(**kw):
    return GaussianMixture(
        K, tol=0.0, max_iter=MAX_ITER, n_init=3, random_state=7, init_params="random", **kw
    )


def _fit(model, X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, **kw)


def _state(checkpoint: Path) -> dict | None:
    """The checkpoint's state as a reader sees it, or None if none is readable yet.

    Read through :func:`readable_directory`, as the library reads it: a writer killed
    between the two renames of ``write_directory`` leaves only ``.NAME.old``, which
    holds the previous (complete) state.  None also covers a read racing a live
    writer's renames, which only the polling loop below can meet.
    """
    found = readable_directory(checkpoint)
    if found is None:
        return None
    try:
        return json.loads((found / "state.json").read_text())
    except (OSError, ValueError):
        return None


def _checkpoint_contents(path: Path) -> tuple[dict, dict]:
    with np.load(path / "arrays.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    return json.loads((path / "state.json").read_text()), arrays


def test_killed_driver_resumes_to_the_uninterrupted_result(store, tmp_path):
    reference = _fit(_model(), da.from_zarr(store), checkpoint=tmp_path / "reference")
    checkpoint = tmp_path / "ckpt"
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"k": K, "max_iter": MAX_ITER}))
    script = tmp_path / "fit.py"
    script.write_text(FIT_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, str(script), store, str(checkpoint), str(params), "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    # Kill it some iterations in (the three initialisations iterate together).
    while True:
        state = _state(checkpoint)
        if state and state.get("runs") == 3 and state["run0"]["n_iter"] >= 5:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the fit never reached the kill point"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    # The writer is dead, so the directory no longer changes: what a resumed fit reads
    # (the checkpoint, or the previous version left aside if the kill fell between the
    # two renames) must be there and whole.
    killed_at = _state(checkpoint)
    assert killed_at is not None, sorted(p.name for p in tmp_path.iterdir())
    done = killed_at["run0"]["n_iter"]
    assert killed_at["init"] == 0 and 5 <= done < MAX_ITER
    assert [killed_at[f"run{i}"]["n_iter"] for i in range(3)] == [done] * 3

    with ComputeCounter() as computes:
        resumed = _fit(_model(), da.from_zarr(store), checkpoint=checkpoint)
    # The rest of the iterations of all three runs, one pass each: nothing drawn again.
    assert computes.count == MAX_ITER - done
    assert resumed.n_iter_ == reference.n_iter_
    assert resumed.lower_bounds_ == reference.lower_bounds_
    np.testing.assert_array_equal(resumed.means_, reference.means_)
    np.testing.assert_array_equal(resumed.covariances_, reference.covariances_)
    np.testing.assert_array_equal(resumed.weights_, reference.weights_)
    # The whole final state, random state included, is the uninterrupted fit's.
    state, arrays = _checkpoint_contents(checkpoint)
    ref_state, ref_arrays = _checkpoint_contents(tmp_path / "reference")
    assert state == ref_state
    assert arrays.keys() == ref_arrays.keys()
    for name in arrays:
        np.testing.assert_array_equal(arrays[name], ref_arrays[name])


def test_finished_checkpoint_returns_the_result_without_computing(store, tmp_path):
    checkpoint = tmp_path / "ckpt"
    first = _fit(_model(), da.from_zarr(store), checkpoint=checkpoint)
    finished = _state(checkpoint)
    assert finished["runs"] == 3
    assert [finished[f"run{i}"]["n_iter"] for i in range(3)] == [MAX_ITER] * 3
    with ComputeCounter() as computes:
        again = _fit(_model(), da.from_zarr(store), checkpoint=checkpoint)
    assert computes.count == 0
    np.testing.assert_array_equal(again.means_, first.means_)
    assert again.lower_bound_ == first.lower_bound_ and again.n_iter_ == first.n_iter_


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"max_iter": MAX_ITER + 1}, "other estimator parameters"),
        ({"rows": N_ROWS // 2}, r"other data \(shape, dtype, chunks\)"),
    ],
)
def test_checkpoint_of_another_fit_is_refused(store, tmp_path, change, match):
    checkpoint = tmp_path / "ckpt"
    X = da.from_zarr(store)
    _fit(GaussianMixture(K, tol=0.0, max_iter=2, random_state=7), X, checkpoint=checkpoint)
    model = GaussianMixture(K, tol=0.0, max_iter=change.get("max_iter", 2), random_state=7)
    with pytest.raises(CheckpointMismatchError, match=match):
        _fit(model, X[: change.get("rows", N_ROWS)], checkpoint=checkpoint)


@pytest.mark.parametrize("kind", ["numpy", "dask", "store"])
def test_checkpoint_of_other_values_of_the_same_shape_is_refused(tmp_path, kind):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2_000, 3))
    Y = 5 * X + 100  # same shape, dtype and chunks

    def as_input(values):
        if kind == "numpy":
            return values
        if kind == "dask":
            return da.from_array(values, chunks=500)
        path = str(tmp_path / "x.zarr")  # the store rewritten in place
        da.from_array(values, chunks=500).to_zarr(path, overwrite=True)
        return path

    checkpoint = tmp_path / "ckpt"
    first_input = as_input(X)
    first = _fit(GaussianMixture(2, max_iter=3, random_state=0), first_input, checkpoint=checkpoint)
    with ComputeCounter() as computes:  # the same data: the finished fit is returned
        same = _fit(
            GaussianMixture(2, max_iter=3, random_state=0), first_input, checkpoint=checkpoint
        )
    assert computes.count == 0
    np.testing.assert_array_equal(same.means_, first.means_)
    with pytest.raises(CheckpointMismatchError, match="the same shape, other values"):
        _fit(GaussianMixture(2, max_iter=3, random_state=0), as_input(Y), checkpoint=checkpoint)


class _Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the fit catches it."""


def test_checkpoint_is_never_half_written(store, tmp_path, monkeypatch):
    """A writer that dies inside np.savez while REWRITING a checkpoint leaves the
    previous iteration's checkpoint whole, and the fit resumes from it exactly."""
    from daskgmm.store import checkpoint as _checkpoint

    X = da.from_zarr(store)

    def model():
        return GaussianMixture(K, tol=0.0, max_iter=6, random_state=7, init_params="random")

    reference = _fit(model(), X, checkpoint=tmp_path / "reference")

    checkpoint = tmp_path / "ckpt"
    real_savez = np.savez
    saved = []  # the arrays of each completed save, one per iteration

    def dies_on_third(file, **arrays):
        if len(saved) == 2:  # iteration 3, rewriting the checkpoint of iteration 2
            whole = io.BytesIO()
            real_savez(whole, **arrays)
            Path(file).write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
            raise _Killed("killed halfway through writing the arrays")
        real_savez(file, **arrays)
        saved.append({name: np.array(value, copy=True) for name, value in arrays.items()})

    monkeypatch.setattr(_checkpoint.np, "savez", dies_on_third)
    with pytest.raises(_Killed):
        _fit(model(), X, checkpoint=checkpoint)
    monkeypatch.setattr(_checkpoint.np, "savez", real_savez)

    # Complete, and still the last good iteration's.
    state, arrays = _checkpoint_contents(checkpoint)
    assert state["init"] == 0 and state["runs"] == 1 and state["run0"]["n_iter"] == 2
    assert len(state["run0"]["lower_bounds"]) == 2
    assert state["run0"]["lower_bounds"] == reference.lower_bounds_[:2]
    assert arrays.keys() == saved[1].keys()
    for name in arrays:
        np.testing.assert_array_equal(arrays[name], saved[1][name])
    # No temporary directory, nothing set aside.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "reference"]

    with ComputeCounter() as computes:
        resumed = _fit(model(), X, checkpoint=checkpoint)
    assert computes.count == 6 - 2  # iterations 3..6 only; no initialisation
    assert resumed.n_iter_ == reference.n_iter_ == 6
    assert resumed.lower_bounds_ == reference.lower_bounds_
    np.testing.assert_array_equal(resumed.means_, reference.means_)
    np.testing.assert_array_equal(resumed.covariances_, reference.covariances_)
    np.testing.assert_array_equal(resumed.weights_, reference.weights_)


def test_first_checkpoint_write_that_dies_leaves_nothing(store, tmp_path, monkeypatch):
    """With no previous checkpoint, a writer dying inside np.savez leaves no directory
    (a later fit starts afresh) and no temporary leftovers."""
    from daskgmm.store import checkpoint as _checkpoint

    def dies(*args, **kwargs):
        raise _Killed("killed while writing")

    monkeypatch.setattr(_checkpoint.np, "savez", dies)
    with pytest.raises(_Killed):
        _fit(
            GaussianMixture(K, tol=0.0, max_iter=2, random_state=8),
            da.from_zarr(store),
            checkpoint=tmp_path / "b",
        )
    assert list(tmp_path.iterdir()) == []


def test_verbose_progress_and_scheduler_options(store, capsys, monkeypatch):
    X = da.from_zarr(store)
    n_chunks = N_ROWS // CHUNK
    main_thread = threading.get_ident()
    # A dask Callback's _pretask runs in the calling thread under every local
    # scheduler, so the thread is recorded inside the tasks themselves.
    from daskgmm.engine import passes

    threads = record_task_threads(monkeypatch, passes)
    # Control: under the threaded scheduler the chunk tasks run in pool threads.
    with dask.config.set(scheduler="threads"):
        _fit(GaussianMixture(K, tol=0.0, max_iter=1, random_state=7), X)
    assert len(threads) == n_chunks and main_thread not in threads

    threads.clear()
    model = GaussianMixture(K, tol=0.0, max_iter=3, random_state=7, progress=True, scheduler="sync")
    with dask.config.set(scheduler="threads"):
        _fit(model, X)
    # scheduler="sync" won over the configured threads: every task ran in this thread.
    assert len(threads) == 3 * n_chunks
    assert set(threads) == {main_thread}
    err = capsys.readouterr().err
    assert "EM 3/3 [" in err
    assert f"lower bound {model.lower_bound_: .6f}" in err
    assert "not converged" in err


def test_directory_writer_killed_between_renames_keeps_the_previous_version(tmp_path, monkeypatch):
    from daskgmm.store import files as _files

    target = tmp_path / "model"
    _files.write_directory(target, lambda d: (d / "v").write_text("1"))
    real_replace = os.replace
    calls = []

    def dies_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed between the renames")
        real_replace(src, dst)

    monkeypatch.setattr(_files.os, "replace", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        _files.write_directory(target, lambda d: (d / "v").write_text("2"))
    monkeypatch.setattr(_files.os, "replace", real_replace)
    assert not target.exists()
    found = _files.readable_directory(target)
    assert found is not None and (found / "v").read_text() == "1"
    _files.write_directory(target, lambda d: (d / "v").write_text("3"))
    assert (target / "v").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_written_directories_get_the_umask_permissions_not_private_ones(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    path = (
        GaussianMixture(2, random_state=0)
        .fit(np.arange(40.0).reshape(20, 2))
        .save(tmp_path / "model")
    )
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o777 & ~mask
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
