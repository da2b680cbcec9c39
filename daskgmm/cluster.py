"""The only door to ``dask.distributed``: connect to a cluster or start a local one.

The estimators never import distributed: they compute with dask's current
scheduler, which is the threaded scheduler by default and a ``distributed.Client``
once one is active (``Client(...)`` makes itself the default).  This module is for
the command line, pipelines and scripts that want a cluster set up for them::

    from daskgmm import GaussianMixture
    from daskgmm.cluster import connect, start_local_cluster

    with start_local_cluster(n_workers=2, threads_per_worker=1, memory_limit="2GiB") as client:
        print(dashboard_link(client))
        GaussianMixture(8).fit(X)          # runs on the cluster

    client = connect("tcp://10.0.0.5:8786")                 # an existing scheduler
    client = connect(scheduler_file="~/scheduler.json")     # dask-jobqueue / HPC jobs

Dashboards started here listen on 127.0.0.1 unless asked otherwise.  For remote
clusters use distributed's TLS security configuration
(``distributed.comm.tls.*`` or ``Client(address, security=Security(...))``).

Workers started here keep freed chunk-sized buffers for reuse (see
:data:`WORKER_MALLOC_ENV`); for workers started elsewhere, set those variables in
the environment ``dask worker`` starts in.
"""

from __future__ import annotations

import logging
import os
import weakref
from contextlib import contextmanager

from ._engine import SchedulerConnectionError

__all__ = [
    "BLAS_PLUGIN_NAME",
    "CONNECT_TIMEOUT",
    "WORKER_MALLOC_ENV",
    "ClusterConnectionError",
    "SchedulerConnectionError",
    "close",
    "cluster_from_options",
    "compute_with_progress",
    "connect",
    "dashboard_link",
    "limit_worker_blas",
    "performance_report",
    "start_local_cluster",
]

logger = logging.getLogger(__name__)

#: Seconds to wait for a scheduler before giving up with a clear error.
CONNECT_TIMEOUT = 10

#: glibc malloc settings for the worker processes :func:`start_local_cluster` starts.
#: distributed's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536``, which also pins glibc's
#: mmap threshold at 128 KiB: every buffer Zarr allocates for a chunk (the bytes read,
#: the decoded array) is then mapped afresh and faulted in page by page, about
#: 250,000 page faults per pass over 512 MB (the threaded scheduler: 5,000-10,000),
#: and a bare read pass takes twice as long as in the client process.  These values
#: are what glibc settles on by itself in a process that does not set them: buffers
#: below 32 MiB (glibc's ceiling) come from the heap and are reused, and up to
#: 64 MiB of free heap is kept rather than returned to the system.  Chunks above
#: 32 MiB are mapped afresh whatever the setting, with any scheduler.
WORKER_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(64 * 2**20),
}


class ClusterConnectionError(ConnectionError):
    """The scheduler could not be reached; the message names the address."""


def connect(
    address: str | None = None,
    *,
    scheduler_file: str | None = None,
    timeout: float = CONNECT_TIMEOUT,
    security=None,
):
    """Connect to a running scheduler, by address or scheduler file.

    Parameters
    ----------
    address : str, optional
        E.g. ``"tcp://127.0.0.1:8786"``.
    scheduler_file : str, optional
        A JSON file written by ``dask scheduler --scheduler-file`` (what
        dask-jobqueue and HPC batch scripts produce).
    timeout : float
        Seconds to wait for the scheduler.
    security : distributed.Security, optional
        TLS settings for remote clusters.

    Returns
    -------
    distributed.Client
        Set as dask's default scheduler until closed.

    Raises
    ------
    ClusterConnectionError
        If the scheduler cannot be reached in ``timeout`` seconds.
    ValueError
        If neither or both of ``address`` and ``scheduler_file`` are given.
    """
    from distributed import Client

    if (address is None) == (scheduler_file is None):
        raise ValueError("Give exactly one of a scheduler address and a scheduler_file.")
    target = address
    if scheduler_file is not None:
        scheduler_file = os.path.expanduser(scheduler_file)
        if not os.path.exists(scheduler_file):
            raise ClusterConnectionError(
                f"Scheduler file {scheduler_file!r} does not exist; start the scheduler "
                "with 'dask scheduler --scheduler-file PATH' or pass its address."
            )
        target = scheduler_file
    try:
        if scheduler_file is not None:
            client = Client(scheduler_file=scheduler_file, timeout=timeout, security=security)
        else:
            client = Client(address, timeout=timeout, security=security)
    except (OSError, TimeoutError) as exc:
        raise ClusterConnectionError(
            f"Could not reach a dask scheduler at {target} within {timeout:g} s; check "
            "that it is running and that the address (or scheduler file) is right."
        ) from exc
    logger.info("connected to %s; dashboard %s", client.scheduler.address, dashboard_link(client))
    return client


def start_local_cluster(
    n_workers: int = 2,
    threads_per_worker: int = 1,
    memory_limit: str | int | None = "auto",
    dashboard_address: str = "127.0.0.1:0",
    processes: bool = True,
    trim_worker_memory: bool = False,
):
    """Start a LocalCluster on this machine and return a Client connected to it.

    Closing the client (or leaving its ``with`` block) shuts the cluster down.
    Worker processes start with :data:`WORKER_MALLOC_ENV` (chunk buffers reused)
    unless ``trim_worker_memory``; their BLAS runs one thread (distributed's
    nanny sets ``OPENBLAS_NUM_THREADS=1`` and the like).

    Parameters
    ----------
    n_workers, threads_per_worker : int
    memory_limit : str or int or None
        Per worker, e.g. ``"2GiB"``.
    dashboard_address : str
        Where the dashboard listens; loopback by default, port chosen freely.  On
        loopback its live plots accept connections only from pages served by the
        dashboard itself (``127.0.0.1:PORT``, ``localhost:PORT``); any other
        address keeps distributed's setting (any origin).
    processes : bool
        Workers as separate processes (default) or threads of this one.
    trim_worker_memory : bool
        Keep distributed's ``MALLOC_TRIM_THRESHOLD_=65536``: workers return freed
        memory to the system at once (a lower resting memory between
        computations), and map and fault in every chunk buffer afresh (Zarr
        passes up to twice as slow for chunks below 32 MiB).

    Returns
    -------
    distributed.Client
    """
    from distributed import Client, LocalCluster

    env = {} if trim_worker_memory or not processes else WORKER_MALLOC_ENV
    dashboard_address, loopback_port = _loopback_dashboard(dashboard_address)
    with _worker_environ(env), _websocket_origins(loopback_port):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            memory_limit=memory_limit,
            dashboard_address=dashboard_address,
            # Workers in this process talk to the scheduler in memory (inproc://);
            # an inproc address with a host fails to start.
            host="127.0.0.1" if processes else None,
            processes=processes,
        )
    client = Client(cluster)
    port = cluster.scheduler.http_server.port
    if loopback_port is not None and port != loopback_port:
        logger.warning(
            "the dashboard took port %d instead of %d; browsers will be refused its "
            "live plots (websocket origin); pass dashboard_address='127.0.0.1:0'",
            port,
            loopback_port,
        )
    # The client owns the cluster as if it had started it itself: closing the client
    # (or leaving its ``with`` block) closes the cluster too.
    client._start_arg = None
    client._daskgmm_owns_cluster = cluster
    if loopback_port is not None:
        # distributed's link names the scheduler's host, which for workers in this
        # process (an inproc:// scheduler) is the machine's address, not loopback
        client._daskgmm_dashboard = f"http://{dashboard_address.rpartition(':')[0]}:{port}/status"
    logger.info(
        "started a LocalCluster: %d workers x %d threads; dashboard %s",
        n_workers,
        threads_per_worker,
        dashboard_link(client),
    )
    return client


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def _loopback_dashboard(address: str) -> tuple[str, int | None]:
    """A loopback dashboard's address with its port fixed, and that port (None
    for other addresses).

    distributed lets the dashboard's live plots (bokeh websockets) be opened from
    pages of any origin, so any web page in the user's browser could open them;
    bokeh logs a warning saying so.  A dashboard that listens on loopback only
    needs its own origins, ``127.0.0.1:PORT`` and ``localhost:PORT``, which need the
    port before the dashboard starts: port 0 is replaced by a free one.  Other
    addresses (asked for remote access) keep distributed's setting.
    """
    host, _, port = address.rpartition(":")
    if host not in _LOOPBACK_HOSTS or not port.isdigit():
        return address, None
    port = int(port)
    if port == 0:
        import socket

        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    return f"{host}:{port}", port


@contextmanager
def _websocket_origins(loopback_port: int | None):
    """distributed's dashboard allowlist of websocket origins, for the block: the
    loopback dashboard's own origins (distributed's setting when None)."""
    if loopback_port is None:
        yield
        return
    import dask

    key = "distributed.scheduler.dashboard.bokeh-application.allow_websocket_origin"
    origins = [f"{name}:{loopback_port}" for name in _LOOPBACK_HOSTS]
    with dask.config.set({key: origins}):
        yield


@contextmanager
def _worker_environ(env: dict[str, str]):
    """Environment variables for the worker processes nannies spawn in the block.

    They go into distributed's ``pre-spawn-environ`` configuration, so that a
    nanny restarting its worker later sets them again, and into this process's
    environment while the block runs: the nanny lets this process's environment
    override its configuration, and an earlier nanny in this process has left
    distributed's own values there (it sets them here before spawning).  The
    environment is restored afterwards.
    """
    if not env:
        yield
        return
    import dask

    saved = {name: os.environ.get(name) for name in env}
    config = {f"distributed.nanny.pre-spawn-environ.{name}": v for name, v in env.items()}
    os.environ.update(env)
    try:
        with dask.config.set(config):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    logger.debug("worker processes started with %s", env)


#: Name of the worker plugin that limits BLAS to one thread (see :func:`limit_worker_blas`).
BLAS_PLUGIN_NAME = "daskgmm-single-threaded-blas"

_BLAS_LIMITED_CLIENTS: weakref.WeakSet = weakref.WeakSet()


def _blas_plugin():
    """A distributed ``WorkerPlugin`` limiting the E-step's BLAS to one thread."""
    from distributed import WorkerPlugin

    # Defined here, as distributed is imported lazily: cloudpickle sends the class
    # by value, so its methods import what they use absolutely.
    class SingleThreadedBlas(WorkerPlugin):
        name = BLAS_PLUGIN_NAME
        idempotent = True  # registered already (by another client): left as it is

        def setup(self, worker):
            import logging

            from threadpoolctl import threadpool_info, threadpool_limits

            # Load the BLAS libraries the chunk tasks use (numpy's and scipy's)
            # before limiting them: threadpoolctl only sees loaded libraries.
            import daskgmm._stats  # noqa: F401

            before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
            self._limits = threadpool_limits(limits=1, user_api="blas")
            if any(n > 1 for n in before):
                logging.getLogger("daskgmm.cluster").info(
                    "worker %s: BLAS limited to 1 thread (was %s)", worker.name, before
                )

        def teardown(self, worker):
            limits = getattr(self, "_limits", None)
            if limits is not None:
                limits.restore_original_limits()

    return SingleThreadedBlas()


def limit_worker_blas(client) -> None:
    """Run BLAS with one thread in every worker of ``client``'s cluster, present and future.

    Dask runs one task per worker thread; BLAS threads on top oversubscribe the
    cores (two 1-thread workers with 2 BLAS threads each on 2 cores: an EM
    iteration 3x slower).  distributed's nanny sets ``OPENBLAS_NUM_THREADS=1``
    and the like, but workers started without a nanny (``dask worker
    --no-nanny``) or with other settings run BLAS on every core.  The estimators
    call this once per client before computing on it; it registers a worker
    plugin named :data:`BLAS_PLUGIN_NAME`, which stays on the cluster:
    ``client.unregister_worker_plugin(BLAS_PLUGIN_NAME)`` restores the workers'
    BLAS threads.

    Parameters
    ----------
    client : distributed.Client
    """
    if client in _BLAS_LIMITED_CLIENTS:
        return
    try:
        client.register_plugin(_blas_plugin(), name=BLAS_PLUGIN_NAME)
    except Exception as exc:  # the computation itself will report a lost scheduler
        logger.warning("could not limit BLAS threads on the workers: %s", exc)
        return
    _BLAS_LIMITED_CLIENTS.add(client)


def dashboard_link(client) -> str:
    """The dashboard URL of a client's cluster ('' when it has none)."""
    own = getattr(client, "_daskgmm_dashboard", None)
    if own:
        return own
    try:
        return client.dashboard_link or ""
    except (AttributeError, KeyError):
        return ""


def close(client) -> None:
    """Close a client, and the LocalCluster if :func:`start_local_cluster` made it."""
    cluster = getattr(client, "_daskgmm_owns_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


@contextmanager
def cluster_from_options(
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    memory_limit: str | None = "auto",
):
    """The cluster a command asked for, closed afterwards; None means dask's default.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler.
    scheduler_file : str, optional
    workers : int, optional
        Start a LocalCluster with this many workers.
    threads : int
        Threads per LocalCluster worker.
    memory_limit : str, optional
        Per LocalCluster worker.

    Yields
    ------
    distributed.Client or None
    """
    if sum(x is not None for x in (scheduler, scheduler_file, workers)) > 1:
        raise ValueError("Choose one of a scheduler address, a scheduler file, or --workers.")
    if scheduler is None and scheduler_file is None and workers is None:
        yield None
        return
    if workers is not None:
        client = start_local_cluster(workers, threads, memory_limit)
    else:
        client = connect(scheduler, scheduler_file=scheduler_file)
    try:
        yield client
    finally:
        close(client)


@contextmanager
def performance_report(path: str | None, client=None):
    """Write distributed's HTML performance report of the block to ``path`` (if given).

    Parameters
    ----------
    path : str or None
    client : distributed.Client, optional
        The client whose work to report; default: the current one.  Anything
        else (None, a scheduler name) means the current client.
    """
    if path is None:
        yield
        return
    from distributed import Client
    from distributed import performance_report as report

    if isinstance(client, Client):
        with client.as_current(), report(filename=path):
            yield
        return
    with report(filename=path):
        yield


class _PassProgress:
    """Relays the scheduler's count of a computation's finished tasks to a callback."""

    def __init__(self, futures, client, on_fraction):
        from distributed.diagnostics.progressbar import ProgressBar

        outer = self

        class _Bar(ProgressBar):
            def _draw_bar(self, remaining, all, **kwargs):
                if all:
                    on_fraction((all - remaining) / all)
                outer.finished = kwargs.get("status") in ("finished", "error")

        self.finished = False
        self.bar = _Bar(futures, scheduler=client.scheduler.address, interval="200ms")

    async def listen(self):
        try:
            await self.bar.listen()
        except Exception:  # progress is a nicety: never fail the computation for it
            logger.debug("progress stream from the scheduler ended", exc_info=True)


def compute_with_progress(client, graphs, on_fraction) -> tuple:
    """Compute dask collections on ``client``, reporting the share of tasks finished.

    Parameters
    ----------
    client : distributed.Client
    graphs : sequence of dask collections
    on_fraction : callable
        Called with the fraction (0..1) of the computation's tasks finished, from
        the client's event-loop thread, about every 0.2 s.

    Returns
    -------
    tuple
        The results, as ``dask.compute(*graphs)`` gives them.
    """
    futures = client.compute(list(graphs))
    watcher = _PassProgress(futures, client, on_fraction)
    client.loop.add_callback(watcher.listen)
    try:
        return tuple(client.gather(futures))
    finally:
        comm = getattr(watcher.bar, "comm", None)
        if comm is not None and not watcher.finished:
            comm.abort()
