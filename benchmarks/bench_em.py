"""Seconds per EM iteration: daskgmm against scikit-learn, side by side.

Both fit the same in-memory float64 data from the same initial parameters with
tol=0.  Seconds per iteration are ``(t(max_iter=n+1) - t(max_iter=1)) / n`` for each
library, so set-up and scikit-learn's final E-step cancel out; each is the best of
``--repeats`` timings (this shared 2-core machine varies by 10-20% run to run).  The FLOP floor is
the arithmetic of one iteration (E-step and statistics) at the machine's measured
dgemm rate on all cores.

Prints a table and writes JSON (default benchmarks/results/bench_em.json).

    python benchmarks/bench_em.py                 # the three cases of the issue
    python benchmarks/bench_em.py --quick         # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import psutil
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import daskgmm
from daskgmm import GaussianMixture
from daskgmm.datasets import make_mixture

CASES = [
    {"n_samples": 1_000_000, "n_features": 16, "n_components": 8, "covariance_type": "full"},
    {"n_samples": 1_000_000, "n_features": 16, "n_components": 8, "covariance_type": "diag"},
    {"n_samples": 250_000, "n_features": 64, "n_components": 16, "covariance_type": "full"},
]
QUICK_CASES = [
    {"n_samples": 100_000, "n_features": 16, "n_components": 8, "covariance_type": "full"},
    {"n_samples": 100_000, "n_features": 16, "n_components": 8, "covariance_type": "diag"},
]


class PeakRSS:
    """Peak resident memory of this process above the level at entry (sampled)."""

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.process = psutil.Process()

    def __enter__(self):
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def extra_mib(self) -> float:
        return (self.peak - self.base) / 2**20


def dgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Measured float64 matrix-multiply rate on all cores (GFLOP/s)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(size, size)), rng.normal(size=(size, size))
    a @ b
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def iteration_flops(n: int, d: int, k: int, covariance_type: str) -> float:
    """Multiply-adds of one iteration's two big products (E-step and moments), x2."""
    per_row = {"full": 4 * k * d * d, "tied": 4 * d * d + 4 * k * d}.get(covariance_type, 8 * k * d)
    return float(n) * per_row


def make_case(n, d, k, covariance_type, seed=0):
    """Mixture data and initial parameters from a short k-means-initialised sklearn run."""
    X, _ = make_mixture(n, d, k, chunk_rows=max(n // 4, 1), seed=seed)
    X = np.ascontiguousarray(X.compute())
    init = SkGaussianMixture(k, covariance_type=covariance_type, max_iter=1, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        init.fit(X[: min(n, 50_000)])
    return X, {
        "weights_init": init.weights_,
        "means_init": init.means_,
        "precisions_init": init.precisions_,
    }


def timed_fit(factory, X, max_iter) -> tuple[float, float, object]:
    model = factory(max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with PeakRSS() as mem:
            start = time.perf_counter()
            model.fit(X)
            seconds = time.perf_counter() - start
    return seconds, mem.extra_mib, model


def seconds_per_iteration(factory, X, n_iter, repeats):
    """Best of ``repeats`` of (t(max_iter=n+1) - t(max_iter=1)) / n; peak memory."""
    # max_iter=1 as the base: scikit-learn cannot fit with max_iter=0 when all
    # initial parameters are given (it never sets covariances_).
    best, peak = np.inf, 0.0
    for _ in range(repeats):
        t1, _, _ = timed_fit(factory, X, 1)
        tn, mem, model = timed_fit(factory, X, n_iter + 1)
        best, peak = min(best, (tn - t1) / n_iter), max(peak, mem)
    return best, peak, model


def run_case(case: dict, n_iter: int, gflops: float, repeats: int) -> dict:
    n, d, k, cov = (
        case[key] for key in ("n_samples", "n_features", "n_components", "covariance_type")
    )
    X, init = make_case(n, d, k, cov)

    def sk_factory(max_iter):
        return SkGaussianMixture(k, covariance_type=cov, tol=0.0, max_iter=max_iter, **init)

    def dg_factory(max_iter):
        return GaussianMixture(k, covariance_type=cov, tol=0.0, max_iter=max_iter, **init)

    dg_s, dg_mem, dg = seconds_per_iteration(dg_factory, X, n_iter, repeats)
    sk_s, sk_mem, sk = seconds_per_iteration(sk_factory, X, n_iter, repeats)
    floor = iteration_flops(n, d, k, cov) / (gflops * 1e9)
    agreement = float(np.max(np.abs(dg.means_ - sk.means_)) / np.max(np.abs(sk.means_)))
    return {
        **case,
        "iterations": n_iter,
        "repeats": repeats,
        "sklearn_s_per_iter": sk_s,
        "daskgmm_s_per_iter": dg_s,
        "speedup_sklearn_over_daskgmm": sk_s / dg_s,
        "flop_floor_s_per_iter": floor,
        "fraction_of_flop_floor": floor / dg_s,
        "sklearn_peak_extra_mib": sk_mem,
        "daskgmm_peak_extra_mib": dg_mem,
        "data_mib": X.nbytes / 2**20,
        "max_rel_diff_means": agreement,
        "lower_bound_diff": float(dg.lower_bound_ - sk.lower_bound_),
    }


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'case':<24} {'sklearn s/it':>12} {'daskgmm s/it':>12} {'speed-up':>9} "
        f"{'floor s/it':>10} {'of floor':>8} {'sk MiB':>8} {'dg MiB':>8} {'means diff':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        name = (
            f"N={r['n_samples']:,} D={r['n_features']} K={r['n_components']} {r['covariance_type']}"
        )
        print(
            f"{name:<24} {r['sklearn_s_per_iter']:>12.3f} {r['daskgmm_s_per_iter']:>12.3f} "
            f"{r['speedup_sklearn_over_daskgmm']:>8.1f}x {r['flop_floor_s_per_iter']:>10.3f} "
            f"{r['fraction_of_flop_floor']:>8.1%} {r['sklearn_peak_extra_mib']:>8.0f} "
            f"{r['daskgmm_peak_extra_mib']:>8.0f} {r['max_rel_diff_means']:>10.1e}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument(
        "--repeats", type=int, default=3, help="best of this many timings per library"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_em.json"))
    args = parser.parse_args(argv)
    gflops = dgemm_gflops()
    print(f"dgemm: {gflops:.1f} GFLOP/s float64 on {os.cpu_count()} cores")
    cases = QUICK_CASES if args.quick else CASES
    rows = [run_case(c, args.iterations, gflops, args.repeats) for c in cases]
    print_table(rows)
    result = {
        "benchmark": "bench_em",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "dgemm_gflops": gflops,
        },
        "versions": {
            "python": sys.version.split()[0],
            "daskgmm": daskgmm.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "cases": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
