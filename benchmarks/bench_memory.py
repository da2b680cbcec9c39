"""A fit from Zarr on workers with little memory: pauses, restarts, peak memory.

The case of issue 11: a float32 store of 32,000,000 x 16 rows in 64 MB chunks
(1,000,000 rows; 2 GB in all), fitted (K=8 'full', ``--iterations`` EM
iterations, ``tol=0``) on a ``distributed`` LocalCluster of 2 worker processes x
1 thread with ``memory_limit=500MB`` each (``--memory-limit``), started by
``daskgmm.cluster.start_local_cluster``.  A chunk is 64 MB as stored and 128 MB
once centred in float64, so a worker holds a few of them at most.

It reports, per run (``--runs``):

- seconds for the fit and per iteration;
- how many times a worker paused (distributed's "Pausing worker" in the worker
  logs; a paused worker runs no task until its memory falls), and how many
  workers the nanny restarted ("Restarting worker" in the nanny logs, and worker
  addresses that changed);
- the peak resident memory of the whole process tree (this process, the
  scheduler and nannies in it, the worker processes), sampled every 50 ms with
  psutil, and the peak of each worker process;
- the largest memory distributed itself saw on each worker (``memory`` in the
  scheduler's worker info, sampled with the tree);
- whether the fit ended, or failed (e.g. ``KilledWorker`` after restarts).

Each run is made with the compiled E-step on the workers and with the numpy one
(``DASKGMM_COMPILED=0``: numba is never loaded; ``--kernels``).

The store is written once into ``--data-dir`` (default /tmp/daskgmm-bench-memory)
and reused when complete.  Prints a table and writes JSON (default
benchmarks/results/bench_memory.json).  Run it alone on the machine::

    flock /tmp/daskgmm-bench.lock python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --rows 4000000 --runs 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_scaling
from bench_io import TreeMemory

from daskgmm import GaussianMixture
from daskgmm.cluster import start_local_cluster

ROWS = 32_000_000
FEATURES = 16
COMPONENTS = 8
CHUNK_ROWS = 1_000_000  # 64 MB of float32


def ensure_store(data_dir: Path, rows: int) -> Path:
    return bench_scaling.ensure_store(data_dir, rows, FEATURES, COMPONENTS, CHUNK_ROWS)[0]


def count_lines(logs: dict, needle: str) -> int:
    return sum(needle in line for entries in logs.values() for _, line in entries)


def worker_peaks(client, stop: threading.Event, interval: float = 0.05) -> tuple:
    """The largest ``memory`` the scheduler reported per worker, until ``stop``; in
    ``peaks["paused"]`` the times a worker was seen entering the paused state (the
    worker logs of restarted workers are lost), in ``peaks["addresses"]`` every
    worker address seen."""
    peaks: dict = {"paused": 0, "addresses": set()}
    was_paused: dict[str, bool] = {}

    def poll():
        while not stop.is_set():
            try:
                info = client.scheduler_info()["workers"]
            except Exception:  # the cluster may be going down
                break
            for address, worker in info.items():
                memory = worker.get("metrics", {}).get("memory", 0)
                peaks[address] = max(peaks.get(address, 0), memory)
                paused = worker.get("status") == "paused"
                peaks["paused"] += paused and not was_paused.get(address, False)
                was_paused[address] = paused
                peaks["addresses"].add(address)
            time.sleep(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return peaks, thread


def one_run(store: Path, start: dict, args) -> dict:
    with TreeMemory(interval=0.05) as tree:
        with start_local_cluster(2, 1, memory_limit=args.memory_limit) as client:
            workers_before = sorted(client.scheduler_info()["workers"])
            stop = threading.Event()
            peaks, poller = worker_peaks(client, stop)
            model = GaussianMixture(
                COMPONENTS, tol=0, max_iter=args.iterations, scheduler=client, **start
            )
            began = time.perf_counter()
            error = None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    model.fit(str(store))
                except Exception as exc:  # e.g. KilledWorker: recorded, not hidden
                    error = f"{type(exc).__name__}: {exc}"
                    print(f"  the fit failed: {error}", flush=True)
            seconds = time.perf_counter() - began
            stop.set()
            poller.join()
            workers_after = sorted(client.scheduler_info()["workers"])
            worker_logs = client.get_worker_logs()
            nanny_logs = client.get_worker_logs(nanny=True)
    workers = {
        pid: peak for pid, peak in tree.peak_by_pid.items() if "worker" in tree.names[pid].lower()
        or "spawn" in tree.names[pid] or "multiprocessing" in tree.names[pid]
    }  # fmt: skip
    return {
        "error": error,
        "seconds": seconds,
        "seconds_per_iteration": seconds / args.iterations,
        "n_iter": None if error else int(model.n_iter_),
        "lower_bound": None if error else float(model.lower_bound_),
        "pauses": max(count_lines(worker_logs, "Pausing worker"), peaks.pop("paused")),
        "restarts": max(
            count_lines(nanny_logs, "Restarting worker"),
            len(peaks.pop("addresses") | set(workers_before) | set(workers_after)) - 2,
        ),
        "peak_tree_mb": tree.peak / 1e6,
        "peak_worker_process_mb": sorted((p / 1e6 for p in workers.values()), reverse=True),
        "peak_worker_memory_seen_by_scheduler_mb": sorted(
            (p / 1e6 for p in peaks.values()), reverse=True
        ),
    }


def fixed_start(store: Path) -> dict:
    """A start fitted by scikit-learn on the store's first 50,000 rows."""
    import zarr
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    head = np.asarray(zarr.open_array(str(store), mode="r")[:50_000], dtype=np.float64)
    ref = SkGaussianMixture(COMPONENTS, max_iter=20, random_state=0).fit(head)
    return {
        "weights_init": ref.weights_,
        "means_init": ref.means_,
        "precisions_init": ref.precisions_,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-limit", default="500MB")
    parser.add_argument(
        "--kernels",
        nargs="+",
        choices=["compiled", "numpy"],
        default=["compiled", "numpy"],
        help="E-step kernels on the workers (numpy: DASKGMM_COMPILED=0, numba never loaded)",
    )
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/daskgmm-bench-memory"))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_memory.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    store = ensure_store(args.data_dir, args.rows)
    start = fixed_start(store)
    runs = []
    for kernels in args.kernels:
        # the worker processes take the environment at their start
        os.environ["DASKGMM_COMPILED"] = "1" if kernels == "compiled" else "0"
        for _ in range(args.runs):
            runs.append({"kernels": kernels, **one_run(store, start, args)})
    os.environ.pop("DASKGMM_COMPILED")

    print(f"{args.rows:,} x {FEATURES} float32, chunks of {CHUNK_ROWS:,} rows; "
          f"2 workers x 1 thread, memory_limit={args.memory_limit}")  # fmt: skip
    print(f"{'run':>3} {'kernels':>8} {'s/iter':>7} {'pauses':>6} {'restarts':>8} "
          f"{'peak tree MB':>12} {'peak worker MB':>16}")  # fmt: skip
    for i, run in enumerate(runs):
        workers = ", ".join(f"{p:.0f}" for p in run["peak_worker_process_mb"])
        print(f"{i:>3} {run['kernels']:>8} {run['seconds_per_iteration']:>7.2f} {run['pauses']:>6} "
              f"{run['restarts']:>8} {run['peak_tree_mb']:>12.0f} {workers:>16}")  # fmt: skip
    record = {
        "benchmark": "bench_memory",
        "machine": bench_scaling.machine(),
        "versions": bench_scaling.versions(),
        "case": {
            "rows": args.rows,
            "features": FEATURES,
            "components": COMPONENTS,
            "chunk_rows": CHUNK_ROWS,
            "dtype": "float32",
            "workers": 2,
            "threads_per_worker": 1,
            "memory_limit": args.memory_limit,
            "iterations": args.iterations,
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    raise SystemExit(main())
