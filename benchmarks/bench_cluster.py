"""Seconds per EM iteration on one Zarr store: threaded scheduler vs dask.distributed.

Measured side by side in one run on the same store and starting parameters:

- the threaded scheduler (dask's default),
- a LocalCluster of 1 worker x 2 threads, and of 2 workers x 1 thread,

and the overhead ratio distributed / threaded (target <= 1.3 for chunks >= 32 MB).
Then the per-iteration scheduling overhead with 1,000 small chunks: seconds per
iteration minus the same fit's arithmetic done in one chunk, divided by the chunk
count.  Prints a table and writes JSON (default benchmarks/results/bench_cluster.json).

    python benchmarks/bench_cluster.py                 # 4,000,000 x 16 float64, 32 MB chunks
    python benchmarks/bench_cluster.py --quick         # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning

import daskgmm
from daskgmm import GaussianMixture
from daskgmm.datasets import make_mixture

K, D = 8, 16


def starting_parameters(truth) -> dict:
    return {
        "weights_init": truth.weights,
        "means_init": truth.means + 0.3,
        "precisions_init": np.linalg.inv(truth.covariances),
    }


def seconds_per_iteration(X, start, n_iter: int) -> float:
    """(t(max_iter=n+1) - t(max_iter=1)) / n with the current scheduler."""

    def fit(max_iter):
        model = GaussianMixture(K, tol=0.0, max_iter=max_iter, **start)
        begin = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X)
        return time.perf_counter() - begin

    fit(1)  # warm: imports, worker-side caches
    return (fit(n_iter + 1) - fit(1)) / n_iter


def on_cluster(n_workers: int, threads: int, X, start, n_iter: int) -> float:
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            memory_limit="4GiB",
        ) as cluster,
        Client(cluster),
    ):
        return seconds_per_iteration(X, start, n_iter)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "bench_cluster.json")
    )
    args = parser.parse_args(argv)
    n_rows, chunk_rows = (400_000, 100_000) if args.quick else (4_000_000, 250_000)
    small_rows = 100_000 if args.quick else 1_000_000
    results: dict = {"benchmark": "bench_cluster", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with tempfile.TemporaryDirectory(dir=os.environ.get("DASKGMM_BENCH_DIR")) as tmp:
        X, truth = make_mixture(n_rows, D, K, chunk_rows=chunk_rows, seed=0)
        store = os.path.join(tmp, "x.zarr")
        X.to_zarr(store)
        start = starting_parameters(truth)
        X = da.from_zarr(store)
        chunk_mb = chunk_rows * D * 8 / 1e6
        rows = []
        with dask.config.set(scheduler="threads"):
            threaded = seconds_per_iteration(X, start, args.iterations)
        rows.append(("threaded (2 threads)", threaded))
        rows.append(
            ("LocalCluster 1 worker x 2 threads", on_cluster(1, 2, X, start, args.iterations))
        )
        rows.append(
            ("LocalCluster 2 workers x 1 thread", on_cluster(2, 1, X, start, args.iterations))
        )

        # Scheduling overhead per chunk: 1,000 chunks vs one chunk of the same rows.
        small, small_truth = make_mixture(small_rows, D, K, chunk_rows=small_rows, seed=1)
        small = small.persist()
        small_start = starting_parameters(small_truth)
        one_chunk = small.rechunk((small_rows, D)).persist()
        many_chunks = small.rechunk((small_rows // 1000, D)).persist()
        overhead = {}
        for name, setup in (
            ("threaded", dask.config.set(scheduler="threads")),
            ("LocalCluster 2x1", None),
        ):
            if setup is not None:
                with setup:
                    t_one = seconds_per_iteration(one_chunk, small_start, args.iterations)
                    t_many = seconds_per_iteration(many_chunks, small_start, args.iterations)
            else:
                with (
                    LocalCluster(
                        n_workers=2,
                        threads_per_worker=1,
                        host="127.0.0.1",
                        dashboard_address="127.0.0.1:0",
                    ) as cluster,
                    Client(cluster) as client,
                ):
                    one = client.persist(one_chunk)
                    many = client.persist(many_chunks)
                    t_one = seconds_per_iteration(one, small_start, args.iterations)
                    t_many = seconds_per_iteration(many, small_start, args.iterations)
            overhead[name] = {
                "one_chunk_s_per_iter": t_one,
                "1000_chunks_s_per_iter": t_many,
                "overhead_ms_per_chunk": (t_many - t_one) / 1000 * 1e3,
            }

    print(f"store: {n_rows:,} x {D} float64 in {n_rows // chunk_rows} chunks of {chunk_mb:.0f} MB")
    print(f"{'scheduler':<36} {'s/iter':>8} {'vs threaded':>12}")
    for name, seconds in rows:
        print(f"{name:<36} {seconds:>8.3f} {seconds / threaded:>11.2f}x")
    print(f"\nscheduling overhead, {small_rows:,} rows in 1,000 chunks vs 1 chunk:")
    for name, o in overhead.items():
        print(
            f"{name:<20} 1 chunk {o['one_chunk_s_per_iter']:.3f} s/iter, 1000 chunks "
            f"{o['1000_chunks_s_per_iter']:.3f} s/iter: {o['overhead_ms_per_chunk']:.2f} ms/chunk"
        )
    results.update(
        {
            "store": {
                "rows": n_rows,
                "features": D,
                "chunk_rows": chunk_rows,
                "chunk_mb": chunk_mb,
            },
            "iterations": args.iterations,
            "seconds_per_iteration": dict(rows),
            "ratio_vs_threaded": {name: s / threaded for name, s in rows},
            "scheduling_overhead": overhead,
            "versions": {"daskgmm": daskgmm.__version__, "dask": dask.__version__},
        }
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
