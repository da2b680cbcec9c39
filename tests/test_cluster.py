"""Fits on real dask.distributed clusters: scheduler and worker processes on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from dask.callbacks import Callback
from distributed import Client

from daskgmm import GaussianMixture, OnlineGaussianMixture
from daskgmm.cluster import (
    ClusterConnectionError,
    cluster_from_options,
    connect,
    dashboard_link,
)
from daskgmm.datasets import make_mixture

N_ROWS, N_FEATURES, K = 60_000, 6, 4
CHUNK = 3_000


def _start(args, log, **env):
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
    )


def _wait_for_workers(client: Client, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(client.scheduler_info(n_workers=-1)["workers"]) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(client.scheduler_info()['workers'])} of {n} workers")
        time.sleep(0.2)


@pytest.fixture
def scheduler_and_workers(tmp_path):
    """A `dask scheduler` and two single-threaded `dask worker` processes (no nanny)."""
    scheduler_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "w")
    procs = [
        _start(
            [
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            log,
        )
    ]
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() or not scheduler_file.read_text().strip():
        assert time.monotonic() < deadline, "scheduler did not start"
        time.sleep(0.1)
    address = json.loads(scheduler_file.read_text())["address"]
    workers = [
        _start(
            [
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--memory-limit",
                "2GiB",
            ],
            log,
        )
        for _ in range(2)
    ]
    procs += workers
    try:
        yield {
            "address": address,
            "scheduler_file": str(scheduler_file),
            "scheduler": procs[0],
            "workers": workers,
        }
    finally:
        # Workers first: a worker told to stop while its scheduler closes can stall in
        # its own close (distributed logs a CancelledError) until killed.
        for p in [*workers, procs[0]]:
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


@pytest.fixture(scope="module")
def zarr_data(tmp_path_factory):
    """Mixture rows in a Zarr store on disk, and starting parameters."""
    X, truth = make_mixture(N_ROWS, N_FEATURES, K, chunk_rows=CHUNK, seed=3)
    path = str(tmp_path_factory.mktemp("store") / "x.zarr")
    X.to_zarr(path)
    start = {
        "weights_init": truth.weights,
        "means_init": truth.means + 0.5,
        "precisions_init": np.linalg.inv(truth.covariances),
    }
    return path, start


def _model(start, max_iter=15):
    return GaussianMixture(K, tol=0.0, max_iter=max_iter, **start)


def _fit_quietly(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=0: ConvergenceWarning by design
        return model.fit(X)


# A lambda, so that cloudpickle sends it by value: the scheduler cannot import tests.
_task_prefixes = lambda dask_scheduler: list(dask_scheduler.task_prefixes)  # noqa: E731


class _RowGate:
    """Holds row-chunk tasks on the workers while a file exists, so that a test can act
    while a computation is certainly in flight.

    ``rows(X)`` wraps X in a blockwise identity that, while ``hold()`` is on, waits in
    the task (up to ``limit`` seconds) and marks ``held-<pid>`` in ``directory``: the
    worker process with that pid is inside a task of the running pass.  The files are
    seen by the worker processes on this machine; the function is a closure, which
    cloudpickle sends by value (the workers cannot import the tests).
    """

    def __init__(self, directory, blocks=None, delay=0.0, limit=120.0):
        self.directory = str(directory)
        self.hold_file = os.path.join(self.directory, "hold")
        self.blocks = None if blocks is None else frozenset(blocks)
        self.delay = delay
        self.limit = limit

    def rows(self, X: da.Array) -> da.Array:
        directory, hold_file, blocks = self.directory, self.hold_file, self.blocks
        delay, limit = self.delay, self.limit

        def gate(block, block_id=None):
            if delay:
                time.sleep(delay)
            if os.path.exists(hold_file) and (blocks is None or block_id[0] in blocks):
                open(os.path.join(directory, f"held-{os.getpid()}"), "w").close()
                deadline = time.monotonic() + limit
                while os.path.exists(hold_file) and time.monotonic() < deadline:
                    time.sleep(0.01)
            return block

        return X.map_blocks(gate, dtype=X.dtype)

    def hold(self) -> None:
        open(self.hold_file, "w").close()

    def release(self) -> None:
        try:
            os.remove(self.hold_file)
        except FileNotFoundError:
            pass

    def held_in(self, pid: int) -> bool:
        return os.path.exists(os.path.join(self.directory, f"held-{pid}"))

    def held_anywhere(self) -> bool:
        return any(f.startswith("held-") for f in os.listdir(self.directory))


class _PassCounter:
    """Counts the fit's E-step passes (one per EM iteration) as they start and end, and
    calls ``on_start`` in the fitting thread when pass ``at_pass`` starts, before it is
    sent to the scheduler."""

    def __init__(self, monkeypatch, at_pass: int, on_start):
        import daskgmm.estimators.em

        self.lock = threading.Lock()
        self.started = self.finished = 0
        original = daskgmm.estimators.em.run_pass_many

        def counting(*args, **kwargs):
            with self.lock:
                self.started += 1
                number = self.started
            if number == at_pass:
                on_start()
            try:
                return original(*args, **kwargs)
            finally:
                with self.lock:
                    self.finished += 1

        monkeypatch.setattr(daskgmm.estimators.em, "run_pass_many", counting)


def _wait_until(condition, what: str, thread: threading.Thread, timeout: float = 120) -> None:
    """Wait for ``condition()`` while ``thread`` (the fit) runs; fail clearly otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if not thread.is_alive():
            raise AssertionError(f"the fit ended before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def _background(action) -> tuple[threading.Thread, dict]:
    """Run ``action()`` in a daemon thread; its result or exception land in the dict."""
    outcome = {}

    def run():
        try:
            outcome["result"] = action()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_fit_on_cluster_equals_threaded_fit(scheduler_and_workers, zarr_data):
    path, start = zarr_data
    X = da.from_zarr(path)
    local = _fit_quietly(_model(start, max_iter=5), X)
    with connect(scheduler_file=scheduler_and_workers["scheduler_file"]) as client:
        _wait_for_workers(client, 2)
        remote = _fit_quietly(_model(start, max_iter=5), X)
        prefixes = set(
            client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
        )
        labels = remote.predict(X).compute()
        prefixes_after_predict = set(
            client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
        )
    np.testing.assert_allclose(remote.means_, local.means_, rtol=1e-12)
    np.testing.assert_allclose(remote.covariances_, local.covariances_, rtol=1e-12)
    assert remote.lower_bounds_ == pytest.approx(local.lower_bounds_, rel=1e-12)
    # What the dashboard's task stream and progress panes show.
    assert {"daskgmm_estep", "daskgmm_reduce", "daskgmm_params"} <= prefixes
    assert "daskgmm_predict" in prefixes_after_predict
    np.testing.assert_array_equal(labels, local.predict(X).compute())


def test_fit_survives_a_killed_worker(scheduler_and_workers, zarr_data, tmp_path, monkeypatch):
    path, start = zarr_data
    gate = _RowGate(tmp_path)
    X = gate.rows(da.from_zarr(path))
    victim = scheduler_and_workers["workers"][0]
    with Client(scheduler_and_workers["address"], timeout=30) as client:
        _wait_for_workers(client, 2)
        undisturbed = _fit_quietly(_model(start), X)
        assert undisturbed.n_iter_ == 15

        # Iteration 3's pass holds its row tasks where they run; the victim is killed
        # inside one of them, so the scheduler must recover its tasks mid-computation.
        passes = _PassCounter(monkeypatch, at_pass=3, on_start=gate.hold)
        thread, outcome = _background(lambda: _fit_quietly(_model(start), X))
        try:
            _wait_until(lambda: gate.held_in(victim.pid), "the victim to run a pass-3 task", thread)
            with passes.lock:  # no pass can end meanwhile: its tasks are held
                at_kill = (passes.finished, passes.started)
                os.kill(victim.pid, signal.SIGKILL)
        finally:
            gate.release()
        thread.join(timeout=300)
        assert not thread.is_alive(), "the fit did not finish after the worker was killed"
        assert victim.wait(timeout=10) == -signal.SIGKILL
        remaining = client.scheduler_info(n_workers=-1)["workers"]
    assert "error" not in outcome, outcome.get("error")
    disturbed = outcome["result"]
    done, started = at_kill
    assert 1 <= done < 15 and started == done + 1  # killed mid-fit, inside a pass
    assert len(remaining) == 1
    assert disturbed.n_iter_ == undisturbed.n_iter_
    # The reduction tree merges chunks in a fixed order, whichever worker ran them.
    np.testing.assert_allclose(disturbed.means_, undisturbed.means_, rtol=1e-10, atol=0)
    np.testing.assert_allclose(disturbed.covariances_, undisturbed.covariances_, rtol=1e-10)
    np.testing.assert_allclose(disturbed.lower_bounds_, undisturbed.lower_bounds_, rtol=1e-10)


def test_connect_to_nothing_fails_fast_naming_the_address():
    # In a thread only to turn a hang (the timeout not applied) into a clear failure.
    thread, outcome = _background(lambda: connect("tcp://127.0.0.1:9", timeout=2))
    thread.join(timeout=120)
    assert not thread.is_alive(), "connect(timeout=2) to a closed port hangs"
    assert isinstance(outcome.get("error"), ClusterConnectionError), outcome
    assert re.search(r"tcp://127\.0\.0\.1:9 within 2 s", str(outcome["error"]))


def test_missing_scheduler_file_is_a_clear_error(tmp_path):
    with pytest.raises(ClusterConnectionError, match=r"does not exist; start the scheduler"):
        connect(scheduler_file=str(tmp_path / "nope.json"))


def test_local_cluster_from_options_listens_on_loopback(zarr_data):
    path, start = zarr_data
    with cluster_from_options(workers=1, threads=2, memory_limit="1GiB") as client:
        link = dashboard_link(client)
        assert link.startswith("http://127.0.0.1:")
        model = _fit_quietly(_model(start, max_iter=2), da.from_zarr(path))
        info = client.scheduler_info()
    assert model.n_iter_ == 2
    assert [w["nthreads"] for w in info["workers"].values()] == [2]
    assert client.status == "closed"


class _GraphSizes(Callback):
    """Task count and pickled size of every graph computed."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def _start(self, dsk):
        import cloudpickle

        graph = {k: v for k, v in dsk.items() if not str(k).startswith("daskgmm_rows")}
        self.sizes.append((len(dsk), len(cloudpickle.dumps(graph))))


def test_graph_and_bytes_per_iteration_stay_flat_over_20_iterations(zarr_data):
    path, start = zarr_data
    X = da.from_zarr(path)
    with dask.config.set(scheduler="sync"), _GraphSizes() as sizes:
        model = _fit_quietly(_model(start, max_iter=20), X)
    assert model.n_iter_ == 20
    assert len(sizes.sizes) == 20  # one compute per iteration
    tasks = {n for n, _ in sizes.sizes}
    assert len(tasks) == 1  # the same task count every iteration
    assert tasks.pop() <= 3 * (N_ROWS // CHUNK) + 10  # O(chunks)
    nbytes = [b for _, b in sizes.sizes]
    assert max(nbytes) <= 1.02 * min(nbytes)  # parameters enter once, graphs don't grow


def test_explicit_client_and_performance_report(scheduler_and_workers, zarr_data, tmp_path):
    path, start = zarr_data
    X = da.from_zarr(path)
    report = tmp_path / "report.html"
    with Client(scheduler_and_workers["address"], set_as_default=False, timeout=30) as client:
        _wait_for_workers(client, 2)
        model = GaussianMixture(K, tol=0.0, max_iter=3, scheduler=client, **start)
        _fit_quietly_with(model, X, performance_report=report)
        ran_there = set(client.run_on_scheduler(_task_prefixes))
        online = OnlineGaussianMixture(K, batch_size=N_ROWS // 2, max_passes=1, scheduler=client)
        _fit_quietly_with(online, X, performance_report=tmp_path / "online.html")
    assert "daskgmm_estep" in ran_there  # ran on the explicit client, not the default
    assert model.n_iter_ == 3
    html = report.read_text()
    assert "<html" in html.lower() and "daskgmm_estep" in html
    assert online.n_batches_seen_ == 2
    assert "daskgmm_estep" in (tmp_path / "online.html").read_text()


def _fit_quietly_with(model, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, **kwargs)


def test_losing_the_scheduler_is_a_clear_error_not_a_hang(
    scheduler_and_workers, zarr_data, tmp_path, monkeypatch
):
    from daskgmm.cluster import SchedulerConnectionError

    path, start = zarr_data
    gate = _RowGate(tmp_path)
    X = gate.rows(da.from_zarr(path))
    address = scheduler_and_workers["address"]
    with Client(address, timeout=30) as client:
        _wait_for_workers(client, 2)
        passes = _PassCounter(monkeypatch, at_pass=3, on_start=gate.hold)
        thread, outcome = _background(lambda: _fit_quietly(_model(start), X))
        try:
            _wait_until(gate.held_anywhere, "a worker to run a pass-3 task", thread)
            with passes.lock:
                at_kill = (passes.finished, passes.started)
                os.kill(scheduler_and_workers["scheduler"].pid, signal.SIGKILL)
        finally:
            gate.release()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the fit hangs after the scheduler died"
    done, started = at_kill
    assert 1 <= done < 15 and started == done + 1  # killed while a pass was in flight
    error = outcome.get("error")
    assert isinstance(error, SchedulerConnectionError), outcome
    assert address in str(error) and "Check that the scheduler is running" in str(error)


def test_progress_shows_the_share_of_a_pass_on_a_cluster(
    scheduler_and_workers, zarr_data, tmp_path
):
    from daskgmm.cluster import compute_with_progress

    path, start = zarr_data
    # The last chunk waits until a share strictly between 0 and 1 has been reported;
    # every chunk takes 0.05 s, so that a fit's pass (>= 0.5 s) is drawn while it runs.
    gate = _RowGate(tmp_path, blocks={N_ROWS // CHUNK - 1}, delay=0.05)
    X = gate.rows(da.from_zarr(path))
    fractions = []

    def on_fraction(fraction):
        fractions.append(fraction)
        if 0.0 < fraction < 1.0:
            gate.release()

    gate.hold()
    try:
        with Client(scheduler_and_workers["address"], set_as_default=False, timeout=30) as client:
            _wait_for_workers(client, 2)
            (total,) = compute_with_progress(client, [X.sum()], on_fraction)
            gate.release()
            model = GaussianMixture(
                K, tol=0.0, max_iter=2, progress=True, scheduler=client, **start
            )
            stderr = _capture_stderr(lambda: _fit_quietly(model, X))
    finally:
        gate.release()
    assert total == pytest.approx(float(da.from_zarr(path).sum().compute()))
    assert fractions and fractions == sorted(fractions) and 0.0 <= fractions[0] <= 1.0
    assert any(0.0 < f < 1.0 for f in fractions), fractions
    shares = [int(p) for p in re.findall(r"pass\s+(\d+)%", stderr)]
    assert shares and all(0 <= s <= 100 for s in shares)  # drawn during the passes


def _capture_stderr(action) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        action()
    return buffer.getvalue()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs for 2 BLAS threads")
def test_worker_tasks_run_with_single_threaded_blas(tmp_path, zarr_data):
    """A worker without a nanny (nothing sets OPENBLAS_NUM_THREADS=1) gets BLAS limited."""
    from daskgmm.cluster import BLAS_PLUGIN_NAME

    def _blas_threads() -> list:  # nested: sent by value to the worker
        from threadpoolctl import threadpool_info

        import daskgmm.kernels.estep  # noqa: F401  (loads the BLAS the E-step uses)

        return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})

    path, start = zarr_data
    log = open(tmp_path / "cluster.log", "w")
    scheduler_file = tmp_path / "scheduler.json"
    args = ["--host", "127.0.0.1", "--no-dashboard"]
    procs = [
        _start(
            [
                "distributed.cli.dask_scheduler",
                "--port",
                "0",
                *args,
                "--scheduler-file",
                str(scheduler_file),
            ],
            log,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert time.monotonic() < deadline, "scheduler did not start"
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        procs.append(
            _start(
                ["distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny", *args],
                log,
                OPENBLAS_NUM_THREADS="2",
                OMP_NUM_THREADS="2",
            )
        )
        with Client(address, timeout=30) as client:
            _wait_for_workers(client, 1)
            before = client.submit(_blas_threads, pure=False).result()
            model = _fit_quietly(_model(start, max_iter=2), da.from_zarr(path))
            during_fit = client.submit(_blas_threads, pure=False).result()
            client.unregister_worker_plugin(BLAS_PLUGIN_NAME)
            after = client.submit(_blas_threads, pure=False).result()
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        log.close()
    assert model.n_iter_ == 2
    # What the E-step would have run with: 2 threads as asked, or the BLAS's own
    # choice if it ignores these variables; more than 1 either way.
    assert before and max(before) > 1, before
    assert during_fit == [1]
    assert after == before  # unregistering the plugin restores the workers' BLAS


def _transparent_huge_pages() -> str | None:
    """The kernel's THP mode ('always', 'madvise', 'never'), or None if it has none."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return re.search(r"\[(\w+)\]", f.read())[1]
    except (OSError, TypeError):
        return None


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc settings")
@pytest.mark.skipif(
    _transparent_huge_pages() not in (None, "madvise", "never"),
    reason="transparent huge pages are 'always': fresh heap memory faults in per 2 MB, "
    "so page-fault counts no longer tell reused chunk buffers from fresh ones",
)
def test_local_cluster_workers_reuse_chunk_buffers(tmp_path, monkeypatch):
    """Workers of start_local_cluster read Zarr chunks without faulting in fresh pages."""
    from daskgmm.cluster import WORKER_MALLOC_ENV, close, start_local_cluster

    path = str(tmp_path / "x.zarr")
    da.random.default_rng(0).random((640_000, 16), chunks=(32_000, 16)).to_zarr(path)
    n_pages = 640_000 * 16 * 8 // 4096  # 20 chunks of 4 MB
    # What an earlier distributed nanny in this process leaves in its environment.
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")

    def minor_faults() -> int:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def faults_per_pass(client):
        X = da.from_zarr(path)
        for _ in range(2):  # warm: the heap grows to its working size
            X.sum().compute()
        before = sum(client.run(minor_faults).values())
        X.sum().compute()
        return sum(client.run(minor_faults).values()) - before

    results = {}
    for trim in (False, True):
        client = start_local_cluster(1, 2, memory_limit="2GiB", trim_worker_memory=trim)
        try:
            env = client.run(lambda: {k: os.environ.get(k) for k in WORKER_MALLOC_ENV})
            results[trim] = (faults_per_pass(client), next(iter(env.values())))
        finally:
            close(client)
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # restored
    (reused, env), (trimmed, trim_env) = results[False], results[True]
    assert env == WORKER_MALLOC_ENV
    assert trim_env["MALLOC_TRIM_THRESHOLD_"] == "65536"
    # Trimmed, every chunk buffer is mapped and faulted in afresh (about n_pages
    # faults); with the settings, buffers are reused: a small fraction of that.
    assert reused < trimmed / 4, (reused, trimmed, n_pages)


def test_leaving_the_with_block_closes_the_local_cluster():
    from daskgmm.cluster import start_local_cluster

    with start_local_cluster(1, 1, processes=False) as client:
        cluster = client.cluster
        assert client.submit(sum, [1, 2]).result() == 3
    assert client.status == "closed"
    assert cluster.status.name == "closed"


def _websocket_status(url: str, origin: str) -> int:
    """HTTP status of a websocket handshake with this Origin (101: accepted)."""
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.ioloop import IOLoop
    from tornado.websocket import websocket_connect

    async def handshake() -> int:
        try:
            connection = await websocket_connect(HTTPRequest(url, headers={"Origin": origin}))
        except HTTPClientError as exc:
            return exc.code
        connection.close()
        return 101

    return IOLoop().run_sync(handshake, timeout=30)


def test_loopback_dashboard_refuses_websockets_from_other_origins(caplog):
    from daskgmm.cluster import start_local_cluster

    with caplog.at_level(logging.WARNING), start_local_cluster(1, 1, processes=False) as client:
        port = int(re.match(r"http://127\.0\.0\.1:(\d+)/status", dashboard_link(client))[1])
        ws = f"ws://127.0.0.1:{port}/status/ws"
        assert _websocket_status(ws, "http://evil.example") == 403
        assert _websocket_status(ws, f"http://127.0.0.1:{port + 1}") == 403
        assert _websocket_status(ws, f"http://127.0.0.1:{port}") != 403
        assert _websocket_status(ws, f"http://localhost:{port}") != 403
    assert "wildcard" not in caplog.text  # bokeh's warning about any origin


def test_clone_shares_the_client_so_grid_search_runs_on_the_cluster():
    from distributed import get_task_stream
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    from daskgmm.cluster import start_local_cluster

    rng = np.random.default_rng(3)
    X = rng.permutation(np.concatenate([rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 5]))
    means = np.array([[0.5, 0.5], [4.5, 4.5]])
    with start_local_cluster(1, 1, processes=False) as client:
        model = GaussianMixture(2, means_init=means, random_state=0, scheduler=client)
        copy = clone(model)
        assert copy.scheduler is client  # shared: a client cannot be deep-copied
        assert copy.means_init is not means  # everything else is copied, as scikit-learn does
        np.testing.assert_array_equal(copy.means_init, means)
        assert {k: v for k, v in copy.get_params().items() if k != "means_init"} == {
            k: v for k, v in model.get_params().items() if k != "means_init"
        }
        search = GridSearchCV(
            GaussianMixture(random_state=0, scheduler=client), {"n_components": [1, 2]}, cv=2
        )
        with get_task_stream(client) as stream:
            search.fit(X)
    # 2 candidates x 2 folds + the refit, every one computed on the cluster
    prefixes = [
        task["key"][0] if isinstance(task["key"], tuple) else task["key"] for task in stream.data
    ]
    assert sum(str(p).startswith("daskgmm_estep") for p in prefixes) >= 5
    assert search.best_params_ == {"n_components": 2}
    assert search.best_estimator_.scheduler is client
    reference = GaussianMixture(2, random_state=0).fit(X)
    np.testing.assert_allclose(search.best_estimator_.means_, reference.means_, rtol=1e-10)
