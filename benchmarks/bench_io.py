"""Fit a Zarr store larger than the Dask workers' memory; compare with a bare read.

Starts a LocalCluster (default 2 workers x 1 thread x 1 GiB memory_limit), then

1. times one bare read pass of the store: ``da.from_zarr(store).sum().compute()``
   (the I/O floor of any out-of-core pass);
2. fits ``GaussianMixture`` (default K=8, full covariances, ``tol=0``) for
   ``--max-iter`` iterations straight from the store path, started from a fit on
   the store's first chunk (so no extra initialisation pass is timed), and
   reports seconds per EM iteration and the ratio to the bare read;
3. samples the resident memory of the whole process tree (this process, the
   nannies and the workers) every 0.1 s and reports its peak;
4. checks that no worker was paused, spilled, restarted or killed for memory
   (worker and nanny logs, worker count before and after).

Run it under the benchmark lock, on a store made by ``daskgmm make-data``::

    daskgmm make-data /work/bench_data/mix8g.zarr --n-samples 135000000 --chunks 1000000
    flock /tmp/daskgmm-bench.lock python benchmarks/bench_io.py /work/bench_data/mix8g.zarr

Results go to ``benchmarks/results/bench_io.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import subprocess
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import psutil
import zarr

from daskgmm import GaussianMixture

MEMORY_WORDS = ("paus", "spill", "restart", "kill", "exceeded", "memory limit", "oom")


class TreeMemory:
    """Peak summed RSS of this process and all its descendants, sampled in a thread
    (``peak``), with each process's own peak (``peak_by_pid``) and the tail of its
    command line (``names``)."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak = 0
        self.peak_by_pid: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        """Summed RSS now; updates the per-process peaks."""
        root = psutil.Process()
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                rss = proc.memory_info().rss
                if proc.pid not in self.names:
                    self.names[proc.pid] = " ".join(proc.cmdline()[-2:])[-60:]
            except psutil.Error:
                continue
            total += rss
            self.peak_by_pid[proc.pid] = max(self.peak_by_pid.get(proc.pid, 0), rss)
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def du_bytes(path: str) -> int:
    out = subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def memory_events(client) -> list[str]:
    """Log lines of workers and nannies that mention pausing, spilling or killing."""
    lines = []
    for nanny in (False, True):
        for address, logs in client.get_worker_logs(nanny=nanny).items():
            for _level, line in logs:
                if any(word in line.lower() for word in MEMORY_WORDS):
                    lines.append(f"{address}: {line}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="Zarr array of shape (n_samples, n_features)")
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--covariance-type", default="full")
    parser.add_argument("--max-iter", type=int, default=3)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument(
        "--scheduler",
        choices=["cluster", "threads"],
        default="cluster",
        help="LocalCluster (default) or dask's threaded scheduler in this process",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_io.json"))
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    arr = zarr.open_array(args.store, mode="r")
    n_samples, n_features = arr.shape
    data_bytes = int(np.prod(arr.shape)) * arr.dtype.itemsize
    disk_bytes = du_bytes(args.store)
    print(
        f"store {args.store}: {n_samples:,} x {n_features} {arr.dtype}, chunks {arr.chunks}; "
        f"{data_bytes / 2**30:.2f} GiB of data, {disk_bytes / 2**30:.2f} GiB on disk"
    )
    with contextlib.ExitStack() as stack:
        client = None
        if args.scheduler == "cluster":
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=args.n_workers,
                    threads_per_worker=args.threads_per_worker,
                    memory_limit=args.memory_limit,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
            workers = client.scheduler_info()["workers"]
            worker_memory = sum(w["memory_limit"] for w in workers.values())
            workers_before = set(workers)
            print(
                f"LocalCluster: {args.n_workers} workers x {args.threads_per_worker} threads, "
                f"{worker_memory / 2**30:.2f} GiB in all; data / worker memory = "
                f"{data_bytes / worker_memory:.2f}"
            )
            client.run(importlib.import_module, "daskgmm.estimators")  # imports are not timed
        else:
            stack.enter_context(dask.config.set(scheduler="threads"))
            worker_memory = psutil.virtual_memory().total
            workers_before = set()
            print(f"threaded scheduler; data / RAM = {data_bytes / worker_memory:.2f}")
        tree = stack.enter_context(TreeMemory())
        baseline = tree.current()

        start = time.perf_counter()
        total = da.from_zarr(args.store).sum(dtype=np.float64).compute()
        read_seconds = time.perf_counter() - start
        print(
            f"bare read pass: {read_seconds:.2f} s ({data_bytes / read_seconds / 2**30:.2f} GiB/s "
            f"of data); sum {float(total):.6g}"
        )

        first = np.asarray(arr[: arr.chunks[0]], dtype=np.float64)
        with dask.config.set(scheduler="threads"):  # in-memory start, on the client
            seed = GaussianMixture(
                args.n_components, covariance_type=args.covariance_type, random_state=0
            ).fit(first)
        model = GaussianMixture(
            args.n_components,
            covariance_type=args.covariance_type,
            max_iter=args.max_iter,
            tol=0,
            weights_init=seed.weights_,
            means_init=seed.means_,
            precisions_init=seed.precisions_,
        )
        start = time.perf_counter()
        model.fit(args.store)
        fit_seconds = time.perf_counter() - start
        per_iter = fit_seconds / model.n_iter_
        events = memory_events(client) if client is not None else []
        workers_after = set(client.scheduler_info()["workers"]) if client is not None else set()
    result = {
        "store": args.store,
        "n_samples": int(n_samples),
        "n_features": int(n_features),
        "dtype": str(arr.dtype),
        "chunks": list(arr.chunks),
        "data_gib": data_bytes / 2**30,
        "disk_gib": disk_bytes / 2**30,
        "n_components": args.n_components,
        "covariance_type": args.covariance_type,
        "scheduler": args.scheduler,
        "n_workers": args.n_workers,
        "threads_per_worker": args.threads_per_worker,
        "worker_memory_gib": worker_memory / 2**30,
        "data_over_worker_memory": data_bytes / worker_memory,
        "bare_read_seconds": read_seconds,
        "em_iterations": int(model.n_iter_),
        "em_seconds_per_iteration": per_iter,
        "ratio_iteration_over_read": per_iter / read_seconds,
        "lower_bounds": [float(x) for x in model.lower_bounds_],
        "peak_tree_rss_gib": tree.peak / 2**30,
        "tree_rss_at_start_gib": baseline / 2**30,
        "memory_events": events,
        "workers_lost": sorted(workers_before - workers_after),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "ram_gib": psutil.virtual_memory().total / 2**30,
    }
    print(
        f"EM: {model.n_iter_} iterations, {per_iter:.2f} s per iteration; "
        f"ratio to the bare read {per_iter / read_seconds:.2f}\n"
        f"peak RSS of the process tree {tree.peak / 2**30:.2f} GiB "
        f"(at start {baseline / 2**30:.2f} GiB); workers lost: "
        f"{len(result['workers_lost'])}; memory events in worker logs: {len(events)}"
    )
    for line in events[:20]:
        print("  " + line)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
