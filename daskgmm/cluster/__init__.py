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

from ..errors import ClusterConnectionError, SchedulerConnectionError
from .blas import BLAS_PLUGIN_NAME, limit_worker_blas
from .client import (
    current_client,
    quiet_logs,
    scheduler_address,
    scheduler_in_use,
    scheduler_threads,
)
from .connect import CONNECT_TIMEOUT, cluster_from_options, connect
from .local import WORKER_MALLOC_ENV, close, dashboard_link, start_local_cluster
from .progress import compute_with_progress
from .report import performance_report

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
    "current_client",
    "dashboard_link",
    "limit_worker_blas",
    "performance_report",
    "quiet_logs",
    "scheduler_address",
    "scheduler_in_use",
    "scheduler_threads",
    "start_local_cluster",
]
