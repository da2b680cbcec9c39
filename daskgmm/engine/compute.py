"""Computing graphs: single-threaded BLAS, the chosen scheduler, a lost scheduler.

The one place where daskgmm calls ``dask.compute``.  On a distributed cluster it
goes through :mod:`daskgmm.cluster`, the only door to distributed.
"""

from __future__ import annotations

import concurrent.futures
from contextlib import contextmanager

import dask

from ..cluster import (
    compute_with_progress,
    current_client,
    limit_worker_blas,
    scheduler_address,
    scheduler_in_use,
)
from ..errors import SchedulerConnectionError
from .progress import active_pass_progress

_BLAS_CONTROLLER = None


@contextmanager
def single_threaded_blas():
    """Limit BLAS to one thread while dask's threads run chunk kernels.

    Dask already runs one task per core; BLAS threads on top of that oversubscribe
    the cores, and idle BLAS threads of one library slow the tiny M-step products
    of another.  This limits the client process (and the threaded scheduler);
    :func:`compute` limits distributed workers through
    :func:`daskgmm.cluster.limit_worker_blas`.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
        yield


def compute(*graphs):
    """Compute graphs in one call with single-threaded BLAS, here and on workers.

    Returns a tuple.

    Raises
    ------
    SchedulerConnectionError
        If the distributed scheduler is lost meanwhile (distributed cancels every
        pending result at once rather than hang).
    """
    with single_threaded_blas():
        try:
            client = current_client()
            if client is not None:
                limit_worker_blas(client)
            progress = active_pass_progress()
            if client is not None and progress is not None:
                return compute_with_progress(client, graphs, progress.chunk_fraction)
            return dask.compute(*graphs)
        except concurrent.futures.CancelledError as exc:
            address = scheduler_address() or "the scheduler in use"
            raise SchedulerConnectionError(
                f"Lost the connection to the dask scheduler at {address} during the "
                f"computation ({exc}). Check that the scheduler is running and reachable, "
                "then fit again (with checkpoint= a fit resumes where it stopped)."
            ) from exc


@contextmanager
def using_scheduler(scheduler):
    """Compute with ``scheduler`` inside the block (None: dask's current default).

    ``scheduler`` is anything ``dask.compute(scheduler=...)`` accepts: 'threads',
    'sync', 'processes', or a ``distributed.Client``.
    """
    if scheduler is None:
        yield
        return
    with scheduler_in_use(scheduler):
        yield


@contextmanager
def joinable_threads():
    """On dask's threaded scheduler, compute the block's graphs on a thread pool of
    its own, yielded, so that after a failure the tasks still running can be waited
    for (``pool.shutdown(wait=True)``): dask raises the first task's error while the
    tasks already started run on, and a write that cleans up after a failure must
    not have them write after it.  Yields None on other schedulers."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    scheduler = dask.config.get("scheduler", None)
    if current_client() is not None or scheduler not in (None, "threads", "threading"):
        yield None
        return
    workers = dask.config.get("num_workers", None) or os.cpu_count() or 1
    pool = ThreadPoolExecutor(workers, thread_name_prefix="daskgmm-write")
    try:
        with dask.config.set(pool=pool):
            yield pool
    finally:
        pool.shutdown(wait=True)
