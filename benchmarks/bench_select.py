"""A grid of models fitted together against one fit and against one after another.

The grid is ``--n-init`` restarts x K in ``--k`` (default 10 x K=2..9, 80 models)
of ``GaussianMixture``, fitted by :func:`daskgmm.select_mixture` from a Zarr store
on disk, read two ways:

- **throttled**: every chunk read sleeps ``--delay`` seconds first (a real delay
  in the reading task, standing in for object storage or a busy network disk);
- **page cache**: the same store read straight from the local disk (hot cache).

For each way it times, side by side in one run:

1. **one fit**: ``GaussianMixture(K=--one-k)`` alone (its own initialisation
   pass, its EM passes; no scoring);
2. **the grid together**: ``select_mixture`` (one initialisation pass for all, one
   pass per EM iteration for the models still iterating, one scoring pass);
3. **one after another**: every model of the grid fitted alone,
   ``GaussianMixture(K, n_init=1, random_state=seed + restart)`` for each K and
   restart, then scored (``bic``): what fitting the grid without shared passes
   reads.  Throttled, this is slow: ``--sequential-models`` fits that many of the
   models (spread over the K values) and reports their time and reads, and the
   time per model; ``all`` fits them all.

Every chunk read is counted by the reader.  The target: throttled, the grid takes
at most 3x one fit's time.  Results go to ``benchmarks/results/bench_select.json``
with the machine (cores, BLAS)::

    python benchmarks/bench_select.py                 # about 10 minutes on 2 cores
    python benchmarks/bench_select.py --quick         # a small grid, a minute
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import zarr
from _machine import machine  # benchmarks/_machine.py (run as a script from here)
from sklearn.exceptions import ConvergenceWarning

from daskgmm import GaussianMixture, select_mixture
from daskgmm.datasets import make_mixture

logger = logging.getLogger("bench_select")
RESULTS = Path(__file__).resolve().parent / "results"


class ThrottledReader:
    """Array-like over a Zarr array: every read sleeps ``delay`` seconds, then
    reads, and is counted."""

    def __init__(self, array, delay: float):
        self.array = array
        self.delay = delay
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.reads = 0
        self._lock = threading.Lock()

    def __getitem__(self, key):
        out = self.array[key]
        if out.size:  # dask's metadata probe reads nothing
            time.sleep(self.delay)
            with self._lock:
                self.reads += 1
        return out


def open_store(path: str, delay: float) -> tuple[ThrottledReader, da.Array]:
    z = zarr.open_array(path, mode="r")
    reader = ThrottledReader(z, delay)
    X = da.from_array(reader, chunks=z.chunks, lock=False, asarray=True, inline_array=False)
    return reader, X


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run_case(path: str, delay: float, args) -> dict:
    """One fit, the grid together, and (some of) the grid one after another."""
    ks = list(range(args.k[0], args.k[1] + 1))
    common = dict(tol=args.tol, max_iter=args.max_iter, init_params=args.init_params)

    reader, X = open_store(path, delay)
    one_seconds, one = timed(lambda: GaussianMixture(args.one_k, random_state=0, **common).fit(X))
    one_reads = reader.reads

    reader, X = open_store(path, delay)
    grid_seconds, result = timed(
        lambda: select_mixture(
            X, ks, n_init=args.n_init, estimator=GaussianMixture(**common), random_state=0
        )
    )
    grid_reads = reader.reads
    n_iter = [row["n_iter"] for row in result.table]

    models = [(k, r) for r in range(args.n_init) for k in ks]  # spread over the K values
    n_seq = len(models) if args.sequential_models == "all" else int(args.sequential_models)
    if delay == 0:
        n_seq = len(models)
    reader, X = open_store(path, delay)
    seq_start, seq_iter = time.perf_counter(), []
    for k, restart in models[:n_seq]:
        gm = GaussianMixture(k, random_state=1000 + restart, **common).fit(X)
        gm.bic(X)
        seq_iter.append(int(gm.n_iter_))
    seq_seconds, seq_reads = time.perf_counter() - seq_start, reader.reads
    per_model = seq_seconds / n_seq
    n_chunks = X.numblocks[0]
    case = {
        "delay_per_read_s": delay,
        "n_chunks": n_chunks,
        "one_fit": {"k": args.one_k, "seconds": one_seconds, "reads": one_reads,
                    "n_iter": int(one.n_iter_)},
        "grid": {
            "models": len(result.table),
            "seconds": grid_seconds,
            "reads": grid_reads,
            "passes": grid_reads / n_chunks,
            "n_iter_max": max(n_iter),
            "n_iter_median": float(np.median(n_iter)),
            "n_iter_sum": int(sum(n_iter)),
            "best_k": int(result.best_["n_components"]),
            "statistics_bytes_per_chunk": result.memory["statistics_bytes"],
        },
        "one_after_another": {
            "models_fitted": n_seq,
            "seconds": seq_seconds,
            "reads": seq_reads,
            "seconds_per_model": per_model,
            "seconds_all_models": seq_seconds if n_seq == len(models) else None,
            "seconds_all_models_at_this_rate": per_model * len(models),
            "n_iter_sum": int(sum(seq_iter)),
        },
    }  # fmt: skip
    case["grid_over_one_fit"] = grid_seconds / one_seconds
    case["one_after_another_over_grid"] = per_model * len(models) / grid_seconds
    case["reads_one_after_another_per_model_over_grid"] = (
        (seq_reads / n_seq) * len(models) / max(grid_reads, 1)
    )
    return case


def print_table(cases: dict) -> None:
    print(
        f"{'reading':<12} {'one fit s':>9} {'grid s':>8} {'grid/one':>8} "
        f"{'seq s (all, at rate)':>20} {'seq/grid':>8} {'grid reads':>10} {'seq reads/model':>15}"
    )
    for name, c in cases.items():
        seq = c["one_after_another"]
        print(
            f"{name:<12} {c['one_fit']['seconds']:>9.1f} {c['grid']['seconds']:>8.1f} "
            f"{c['grid_over_one_fit']:>8.2f} {seq['seconds_all_models_at_this_rate']:>20.1f} "
            f"{c['one_after_another_over_grid']:>8.1f} {c['grid']['reads']:>10d} "
            f"{seq['reads'] / seq['models_fitted']:>15.1f}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--true-k", type=int, default=5)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--k", type=int, nargs=2, default=(2, 9), metavar=("KMIN", "KMAX"))
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--one-k", type=int, default=5)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--init-params", default="kmeans")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds per throttled read")
    parser.add_argument("--sequential-models", default="8", help="throttled: how many, or all")
    parser.add_argument("--quick", action="store_true", help="a small grid")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_select.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.k, args.n_init, args.delay = 40_000, (2, 4), 3, 0.05
        args.chunk_rows, args.sequential_models = 10_000, "3"
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("daskgmm").setLevel(logging.WARNING)
    warnings.simplefilter("ignore", ConvergenceWarning)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.zarr")
        X, _ = make_mixture(
            args.rows, args.features, args.true_k, chunk_rows=args.chunk_rows, seed=3
        )
        X.to_zarr(path)
        _, X = open_store(path, 0.0)
        GaussianMixture(args.one_k, max_iter=2, random_state=0).fit(X)  # compile the kernels
        cases = {}
        for name, delay in (("page cache", 0.0), ("throttled", args.delay)):
            logger.info("%s ...", name)
            cases[name] = run_case(path, delay, args)
    results = {
        "benchmark": "bench_select",
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "data": {"rows": args.rows, "features": args.features, "true_k": args.true_k,
                 "chunk_rows": args.chunk_rows},
        "grid": {"k": list(range(args.k[0], args.k[1] + 1)), "n_init": args.n_init,
                 "tol": args.tol, "max_iter": args.max_iter, "init_params": args.init_params},
        "cases": cases,
        "target_grid_over_one_fit_throttled": 3.0,
        "machine": machine(),
    }  # fmt: skip
    print_table(cases)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
