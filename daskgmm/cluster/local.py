"""A LocalCluster on this machine, with a loopback dashboard and reusable chunk buffers."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .dashboard import register as register_page

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger("daskgmm.cluster")

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


def start_local_cluster(
    n_workers: int = 2,
    threads_per_worker: int = 1,
    memory_limit: str | int | None = "auto",
    dashboard_address: str = "127.0.0.1:0",
    processes: bool = True,
    trim_worker_memory: bool = False,
) -> Client:
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

    Examples
    --------
    Starting worker processes takes seconds, so the example is not run as a
    doctest (``+SKIP``); the gallery's "LocalCluster run" example runs it.

    >>> from daskgmm import GaussianMixture, datasets
    >>> from daskgmm.cluster import dashboard_link, start_local_cluster
    >>> X, _ = datasets.make_mixture(100_000, chunk_rows=10_000)  # doctest: +SKIP
    >>> with start_local_cluster(n_workers=2, memory_limit="2GiB") as client:  # doctest: +SKIP
    ...     print(dashboard_link(client))      # http://127.0.0.1:PORT/status
    ...     gm = GaussianMixture(8, random_state=0).fit(X)
    """
    from distributed import Client, LocalCluster

    register_page()  # daskgmm's page on the dashboard, /individual-daskgmm
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


def dashboard_link(client: Client) -> str:
    """The dashboard URL of a client's cluster ('' when it has none).

    Examples
    --------
    Needs a cluster (not run as a doctest):

    >>> client = start_local_cluster(n_workers=1)  # doctest: +SKIP
    >>> dashboard_link(client)  # doctest: +SKIP
    'http://127.0.0.1:8787/status'
    >>> close(client)  # doctest: +SKIP
    """
    own = getattr(client, "_daskgmm_dashboard", None)
    if own:
        return own
    try:
        return client.dashboard_link or ""
    except (AttributeError, KeyError):
        return ""


def close(client: Client) -> None:
    """Close a client, and the LocalCluster if :func:`start_local_cluster` made it.

    Examples
    --------
    Needs a cluster (not run as a doctest):

    >>> client = start_local_cluster(n_workers=1)  # doctest: +SKIP
    >>> close(client)                  # the client and its LocalCluster  # doctest: +SKIP
    """
    cluster = getattr(client, "_daskgmm_owns_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
