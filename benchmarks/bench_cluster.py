"""Seconds per EM iteration on one Zarr store: threaded scheduler vs dask.distributed.

Measured side by side in one run on the same store and starting parameters:

- the threaded scheduler (dask's default),
- LocalClusters from ``daskgmm.cluster.start_local_cluster`` of 1 worker x 2 threads
  and of 2 workers x 1 thread,
- for reference, the 1 x 2 LocalCluster with distributed's own worker malloc setting
  (``MALLOC_TRIM_THRESHOLD_=65536``, ``trim_worker_memory=True``),

and the overhead ratio distributed / threaded (target <= 1.3 for chunks >= 32 MB).
Each configuration also times a bare read pass of the store with no daskgmm code
(``da.from_zarr(store).sum().compute()``) and counts the minor page faults of the
processes that read it.  The configurations take turns, one read pass and two fits
each per round (each cluster started for its turn and closed after it); timings
are the best of ``--repeats`` rounds, and the paired ratio is the median over rounds
of each round's cluster time over the same round's threaded time.

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
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
from sklearn.exceptions import ConvergenceWarning

import daskgmm
from daskgmm import GaussianMixture
from daskgmm.cluster import close, start_local_cluster
from daskgmm.datasets import make_mixture

K, D = 8, 16


def starting_parameters(truth) -> dict:
    return {
        "weights_init": truth.weights,
        "means_init": truth.means + 0.3,
        "precisions_init": np.linalg.inv(truth.covariances),
    }


def _fit_seconds(X, start, max_iter: int) -> float:
    model = GaussianMixture(K, tol=0.0, max_iter=max_iter, **start)
    begin = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return time.perf_counter() - begin


def seconds_per_iteration(X, start, n_iter: int, repeats: int = 1) -> float:
    """(t(max_iter=n+1) - t(max_iter=1)) / n with the current scheduler, best of repeats."""
    _fit_seconds(X, start, 1)  # warm: imports, worker-side caches
    one = min(_fit_seconds(X, start, 1) for _ in range(repeats))
    more = min(_fit_seconds(X, start, n_iter + 1) for _ in range(repeats))
    return (more - one) / n_iter


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class Setup:
    """One scheduler under test: its read passes, fits and page faults, round by round."""

    def __init__(self, name: str, store: str, start: dict):
        self.name, self.store, self.start = name, store, start
        self.client = None
        self.reads: list[float] = []
        self.fits: dict[int, list[float]] = {}
        self.faults: list[float] = []

    def scheduler(self):
        return dask.config.set(scheduler=self.client or "threads")

    def _faults(self) -> int:
        if self.client is None:
            return _minor_faults()
        return sum(self.client.run(_minor_faults).values())

    def warm(self) -> None:
        with self.scheduler():
            da.from_zarr(self.store).sum().compute()
            _fit_seconds(da.from_zarr(self.store), self.start, 1)

    def round(self, n_iter: int) -> None:
        """One bare read pass (and its page faults), one 1-iteration and one n+1 fit."""
        with self.scheduler():
            X = da.from_zarr(self.store)
            before = self._faults()
            begin = time.perf_counter()
            X.sum().compute()
            self.reads.append(time.perf_counter() - begin)
            self.faults.append(self._faults() - before)
            for max_iter in (1, n_iter + 1):
                self.fits.setdefault(max_iter, []).append(_fit_seconds(X, self.start, max_iter))

    def per_round(self, n_iter: int) -> list[float]:
        """Seconds per iteration in each round (that round's two fits)."""
        pairs = zip(self.fits[1], self.fits[n_iter + 1], strict=True)
        return [(more - one) / n_iter for one, more in pairs]

    def result(self, n_iter: int) -> dict:
        s_iter = (min(self.fits[n_iter + 1]) - min(self.fits[1])) / n_iter
        return {
            "s_per_iter": s_iter,
            "s_per_iter_by_round": self.per_round(n_iter),
            "read_pass_s": min(self.reads),
            "minor_faults_per_read_pass": float(np.median(self.faults)),
            "rounds": {
                "read_pass_s": self.reads,
                "fit_1_iteration_s": self.fits[1],
                f"fit_{n_iter + 1}_iterations_s": self.fits[n_iter + 1],
                "minor_faults_per_read_pass": self.faults,
            },
        }


def _machine() -> dict:
    """The machine, as the other benchmarks record it (``bench_scaling.machine``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_scaling

    return bench_scaling.machine()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=6, help="rounds; timings: best of these")
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "bench_cluster.json")
    )
    args = parser.parse_args(argv)
    n_rows, chunk_rows = (400_000, 100_000) if args.quick else (4_000_000, args.chunk_rows)
    small_rows = 100_000 if args.quick else 1_000_000
    results: dict = {"benchmark": "bench_cluster", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    configs = [
        ("threaded (2 threads)", None),
        ("LocalCluster 1 worker x 2 threads", {"n_workers": 1, "threads_per_worker": 2}),
        ("LocalCluster 2 workers x 1 thread", {"n_workers": 2, "threads_per_worker": 1}),
        (
            "LocalCluster 1 worker x 2 threads, distributed's malloc trim (reference)",
            {"n_workers": 1, "threads_per_worker": 2, "trim_worker_memory": True},
        ),
    ]
    with tempfile.TemporaryDirectory(dir=os.environ.get("DASKGMM_BENCH_DIR")) as tmp:
        X, truth = make_mixture(n_rows, D, K, chunk_rows=chunk_rows, seed=0)
        store = os.path.join(tmp, "x.zarr")
        X.to_zarr(store)
        start = starting_parameters(truth)
        chunk_mb = chunk_rows * D * 8 / 1e6
        # The configurations take turns, round after round, so that load from other
        # processes on a shared machine falls on all of them alike.  Each cluster is
        # started afresh for its turn and closed after it: idle schedulers and nannies
        # live in this process and would slow the threaded scheduler's turns.
        setups = [Setup(name, store, start) for name, _ in configs]
        for r in range(args.repeats):
            for setup, (_, cluster) in zip(setups, configs, strict=True):
                if cluster is None:
                    setup.warm()
                    setup.round(args.iterations)
                    continue
                setup.client = start_local_cluster(memory_limit="4GiB", **cluster)
                try:
                    setup.warm()
                    setup.round(args.iterations)
                finally:
                    close(setup.client)
                    setup.client = None
            print(f"  round {r + 1} of {args.repeats} done", file=sys.stderr)
        rows = {setup.name: setup.result(args.iterations) for setup in setups}

        # Scheduling overhead per chunk: 1,000 chunks vs one chunk of the same rows.
        small, small_truth = make_mixture(small_rows, D, K, chunk_rows=small_rows, seed=1)
        small_start = starting_parameters(small_truth)
        # lazy until persisted where they are used: in this process or on the workers
        one_chunk = small.rechunk((small_rows, D))
        many_chunks = small.rechunk((small_rows // 1000, D))
        overhead = {}
        for name in ("threaded", "LocalCluster 2x1"):
            if name == "threaded":
                with dask.config.set(scheduler="threads"):
                    one, many = dask.persist(one_chunk, many_chunks)
                    t_one = seconds_per_iteration(one, small_start, args.iterations)
                    t_many = seconds_per_iteration(many, small_start, args.iterations)
            else:
                client = start_local_cluster(2, 1)
                try:
                    one, many = client.persist([one_chunk, many_chunks])  # one graph
                    t_one = seconds_per_iteration(one, small_start, args.iterations)
                    t_many = seconds_per_iteration(many, small_start, args.iterations)
                finally:
                    close(client)
            overhead[name] = {
                "one_chunk_s_per_iter": t_one,
                "1000_chunks_s_per_iter": t_many,
                "overhead_ms_per_chunk": (t_many - t_one) / 1000 * 1e3,
            }

    threaded = rows[configs[0][0]]
    # Paired ratios: each round's cluster turn against the same round's threaded turn,
    # which ran moments before it; their median is robust to the host's slow drifts
    # (CPU time for the same work varies by 20-30% on this shared machine).
    for r in rows.values():
        paired = np.divide(r["s_per_iter_by_round"], threaded["s_per_iter_by_round"])
        r["paired_ratio_median"] = float(np.median(paired))
        r["paired_ratios"] = paired.tolist()
    print(f"store: {n_rows:,} x {D} float64 in {n_rows // chunk_rows} chunks of {chunk_mb:.0f} MB")
    print(
        f"{'scheduler':<74} {'s/iter':>7} {'ratio':>6} {'paired':>7}"
        f" {'read s':>7} {'ratio':>6} {'faults':>8}"
    )
    for name, r in rows.items():
        print(
            f"{name:<74} {r['s_per_iter']:>7.3f} {r['s_per_iter'] / threaded['s_per_iter']:>5.2f}x"
            f" {r['paired_ratio_median']:>6.2f}x"
            f" {r['read_pass_s']:>7.3f} {r['read_pass_s'] / threaded['read_pass_s']:>5.2f}x"
            f" {r['minor_faults_per_read_pass']:>8.0f}"
        )
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
            "repeats": args.repeats,
            "load_average_after": os.getloadavg(),
            "seconds_per_iteration": {name: r["s_per_iter"] for name, r in rows.items()},
            "ratio_vs_threaded": {
                name: r["s_per_iter"] / threaded["s_per_iter"] for name, r in rows.items()
            },
            "paired_ratio_median_vs_threaded": {
                name: r["paired_ratio_median"] for name, r in rows.items()
            },
            "paired_ratios_vs_threaded_by_round": {
                name: r["paired_ratios"] for name, r in rows.items()
            },
            "read_pass_seconds": {name: r["read_pass_s"] for name, r in rows.items()},
            "read_pass_ratio_vs_threaded": {
                name: r["read_pass_s"] / threaded["read_pass_s"] for name, r in rows.items()
            },
            "minor_page_faults_per_read_pass": {
                name: r["minor_faults_per_read_pass"] for name, r in rows.items()
            },
            "rounds": {name: r["rounds"] for name, r in rows.items()},
            "scheduling_overhead": overhead,
            "versions": {"daskgmm": daskgmm.__version__, "dask": dask.__version__},
            "machine": _machine(),
        }
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
