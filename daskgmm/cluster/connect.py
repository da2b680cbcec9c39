"""Connecting to a dask scheduler, and closing what was started here."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import ClusterConnectionError
from .local import close, dashboard_link, start_local_cluster

if TYPE_CHECKING:
    from distributed import Client, Security

logger = logging.getLogger("daskgmm.cluster")

#: Seconds to wait for a scheduler before giving up with a clear error.
CONNECT_TIMEOUT = 10


def connect(
    address: str | None = None,
    *,
    scheduler_file: str | None = None,
    timeout: float = CONNECT_TIMEOUT,
    security: Security | None = None,
) -> Client:
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

    Examples
    --------
    Needs a running scheduler (not run as a doctest):

    >>> from daskgmm.cluster import connect
    >>> client = connect("tcp://10.0.0.5:8786")  # doctest: +SKIP
    >>> client = connect(scheduler_file="~/scheduler.json")  # doctest: +SKIP
    >>> connect()
    Traceback (most recent call last):
        ...
    ValueError: Give exactly one of a scheduler address and a scheduler_file.
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


@contextmanager
def cluster_from_options(
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    memory_limit: str | None = "auto",
) -> Iterator[Client | None]:
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

    Examples
    --------
    Nothing asked for: dask's default scheduler (``--workers 2`` would start a
    LocalCluster for the block).

    >>> from daskgmm.cluster import cluster_from_options
    >>> with cluster_from_options() as client:
    ...     print(client)
    None
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
