"""The machine a benchmark ran on (cores, processor, BLAS, load), for its JSON."""

from __future__ import annotations

import os
import platform

import dask
from threadpoolctl import threadpool_info


def machine() -> dict:
    """Cores, processor, BLAS libraries, dask's threads and the load, for the record."""
    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "blas": [
            {k: lib.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer")}
            for lib in threadpool_info()
            if lib.get("user_api") == "blas"
        ],
        "dask_threads": dask.system.CPU_COUNT,
        "load_average_after": os.getloadavg(),
    }
