"""One BLAS thread per dask worker thread, on every worker of a cluster."""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger("daskgmm.cluster")

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
            import daskgmm.kernels.estep  # noqa: F401

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


def limit_worker_blas(client: Client) -> None:
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

    Examples
    --------
    Needs a cluster (not run as a doctest):

    >>> from daskgmm.cluster import BLAS_PLUGIN_NAME, limit_worker_blas, start_local_cluster
    >>> client = start_local_cluster(n_workers=2)  # doctest: +SKIP
    >>> limit_worker_blas(client)  # doctest: +SKIP
    >>> # give the workers their BLAS threads back:
    >>> client.unregister_worker_plugin(BLAS_PLUGIN_NAME)  # doctest: +SKIP
    """
    if client in _BLAS_LIMITED_CLIENTS:
        return
    try:
        client.register_plugin(_blas_plugin(), name=BLAS_PLUGIN_NAME)
    except Exception as exc:  # the computation itself will report a lost scheduler
        logger.warning("could not limit BLAS threads on the workers: %s", exc)
        return
    _BLAS_LIMITED_CLIENTS.add(client)
