"""Which distributed client dask computes with now, and how loudly distributed logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dask

if TYPE_CHECKING:
    from distributed import Client


def current_client() -> Client | None:
    """The ``distributed.Client`` dask computes with now, or None (local schedulers).

    Examples
    --------
    >>> from daskgmm.cluster import current_client
    >>> current_client() is None            # no distributed.Client active
    True
    """
    owner = getattr(dask.base.get_scheduler(), "__self__", None)
    if owner is not None and type(owner).__module__.startswith("distributed"):
        return owner
    return None


def scheduler_threads() -> int:
    """How many tasks the scheduler in use runs at once: the threads of a
    distributed cluster's workers, else dask's ``num_workers`` or the CPU count
    (1 for the synchronous scheduler).

    Examples
    --------
    >>> import dask
    >>> from daskgmm.cluster import scheduler_threads
    >>> with dask.config.set(scheduler="sync"):
    ...     scheduler_threads()
    1
    """
    client = current_client()
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    if dask.config.get("scheduler", None) in ("sync", "synchronous", "single-threaded"):
        return 1
    return max(1, int(dask.config.get("num_workers", None) or dask.system.CPU_COUNT))


@contextmanager
def scheduler_in_use(scheduler: str | Client | None) -> Iterator[None]:
    """Compute with ``scheduler`` inside the block: 'threads', 'sync', 'processes' or
    a ``distributed.Client``.

    A client is made current with ``Client.as_current()`` (a context variable;
    dask's configuration holds only the string ``"dask.distributed"``), never put
    into dask's configuration itself: a nanny of a LocalCluster in this process
    that restarts its worker (a worker lost, or over its memory limit) sends the
    configuration of the moment to the new process, and a client cannot be
    pickled, so the worker would never come back and the computation would wait
    for it forever.

    Examples
    --------
    >>> import dask, dask.array as da
    >>> from daskgmm.cluster import scheduler_in_use
    >>> with scheduler_in_use("sync"):
    ...     print(dask.config.get("scheduler"), int(da.ones(4, chunks=2).sum().compute()))
    sync 4
    """
    if type(scheduler).__module__.startswith("distributed"):
        with scheduler.as_current():
            yield
        return
    with dask.config.set(scheduler=scheduler):
        yield


def scheduler_address() -> str:
    """Address of the distributed scheduler dask would use now ('' if local).

    Examples
    --------
    >>> from daskgmm.cluster import scheduler_address
    >>> scheduler_address()                 # the threaded scheduler: no address
    ''
    """
    client = current_client()
    return str(getattr(getattr(client, "scheduler", None), "address", "") or "")


def quiet_logs() -> None:
    """distributed logs every scheduler and worker event at INFO: show them only
    with ``-v`` (the level the user chose for the root logger).  bokeh's warning
    about the dashboard's wildcard websocket origin (the dashboard listens on
    127.0.0.1 only) is shown from ``-v`` on too.

    Examples
    --------
    >>> import logging
    >>> from daskgmm.cluster import quiet_logs
    >>> quiet_logs()
    >>> logging.getLogger("distributed").getEffectiveLevel() >= logging.WARNING
    True
    """
    import distributed  # noqa: F401  (configures its loggers on import)

    level = max(logging.getLogger().getEffectiveLevel(), logging.INFO)
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("bokeh").setLevel(logging.ERROR if level > logging.INFO else level)
