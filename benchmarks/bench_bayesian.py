"""Streaming variational Bayes against batch: passes over the data to batch VB's lower bound.

For each data set, batch variational Bayes (``BayesianGaussianMixture``) runs to
convergence (``tol`` = 1e-6 nats/sample, at most ``--max-iter`` iterations); its
final lower bound per sample, ``L*``, is the target.  Then
``OnlineBayesianGaussianMixture`` runs with each method ('memoized'; 'svi' with
each ``--svi`` step-size setting) from the same initialisation (same
``random_state``: k-means on all the rows, the same priors), for at most
``--budget`` (1.5) times the passes batch VB needed, and at least 10.

How a posterior's bound on the full data is evaluated
    ``E(q)``: from the posterior ``q``, one batch variational step over *all* the
    rows -- the E-step under ``q`` (``chunk_stats`` of the whole data under
    ``model.estep(q)``), the M-step (``variational_m_step``) -- and that step's
    lower bound (``variational_lower_bound`` with the step's ``sum r log r``),
    divided by the number of rows.  This is how batch VB's ``lower_bounds_[i]``
    arises from its posterior after ``i`` iterations (``lower_bounds_[i] / N ==
    E(q_i)``), so both are measured alike.
Passes to the target
    Batch: the least ``i`` with ``lower_bounds_[i] / N >= L* - 1e-3``.  Streaming:
    ``E`` is evaluated (untimed) every ``--every`` mini-batches, one pass by
    default; the passes are the mini-batches done at the first evaluation within
    1e-3 of ``L*``, over the mini-batches of one pass.  Neither counts the
    initialisation's pass nor the evaluations.  "-": not reached within the
    budget.  The gap after one pass is ``L* - E`` after the first pass.

Data sets
    synthetic     ``bench_online``'s mixture (``daskgmm.datasets.make_mixture``,
                  ``--separation`` 3): 20,000 x 16, 8 true components, fitted with
                  ``n_components=8`` ('full').
    overcomplete  the same kind of data (the next seed), ``n_components=20``: the
                  Dirichlet-process prior must empty 12.
    digits        ``sklearn.datasets.load_digits`` (1,797 x 64, shipped with
                  scikit-learn), standardised, ``n_components=10``, 'diag'.

Every data set is cut into 10 mini-batches a pass (``batch_size = N / 10``, 8
chunks each).  The effective components are those with weight >= 0.01, at the
end (batch) or when the threshold is reached or the budget spent (streaming).
Prints a table and writes ``benchmarks/results/bench_bayesian.json`` with the
machine (cores, BLAS from threadpoolctl, dgemm rate) and versions.  About 5
minutes on 2 cores::

    python benchmarks/bench_bayesian.py
    python benchmarks/bench_bayesian.py --svi 1:0.6,10:0.9   # two SVI settings
    python benchmarks/bench_bayesian.py --quick              # 5,000 rows, budget 1x
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import dask
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_online
import bench_scaling
from sklearn.exceptions import ConvergenceWarning

from daskgmm import BayesianGaussianMixture, OnlineBayesianGaussianMixture
from daskgmm.estimators.stepwise import CHUNKS_PER_BATCH, mini_batches
from daskgmm.kernels.estep import chunk_stats
from daskgmm.kernels.variational import (
    responsibility_entropy,
    variational_log_density,
    variational_lower_bound,
    variational_m_step,
)

THRESHOLD = 1e-3
#: Weights at least this count as effective components (``EFFECTIVE_WEIGHT``).
EFFECTIVE = 1e-2
BATCHES_PER_PASS = 10


class Reached(Exception):
    """The streaming posterior came within the threshold of batch VB's bound."""


class Recording(OnlineBayesianGaussianMixture):
    """The streaming model, its full-data bound evaluated every ``every_`` mini-batches
    (untimed) into ``trajectory_``; it stops the fit at the threshold."""

    def mstep(self, stats, params):
        new_params = super().mstep(stats, params)
        if self.n_batches_seen_ % self.every_ == 0:
            tick = time.perf_counter()
            bound = full_data_bound(self, new_params, self.data_)
            self.trajectory_.append({"batches": self.n_batches_seen_, "bound": bound})
            self.evaluation_seconds_ += time.perf_counter() - tick
            if bound >= self.target_ - THRESHOLD:
                raise Reached
        return new_params


def full_data_bound(model, params: tuple, X: np.ndarray) -> float:
    """``E(q)``: the lower bound per row of one batch VB step over ``X`` from ``params``."""
    stats = chunk_stats(X, model.estep(params))
    kind = model.weight_concentration_prior_type
    density = variational_log_density(params, model.covariance_type, kind)
    entropy = responsibility_entropy(stats, density)
    new_params = variational_m_step(stats, model._priors, model.reg_covar)
    return variational_lower_bound(entropy, new_params, model.covariance_type, kind) / len(X)


def effective(weights) -> int:
    return int(np.count_nonzero(np.asarray(weights) >= EFFECTIVE))


def synthetic(n_rows: int, args, offset: int = 0) -> np.ndarray:
    """bench_online's synthetic mixture (D=16, 8 true components), in memory."""
    spec = SimpleNamespace(
        n_features=16,
        n_components=8,
        chunk_rows=10_000,
        separation=args.separation,
        seed=args.seed + offset,
    )
    X, _ = bench_online.mixture(n_rows, spec)
    return X.compute()


def digits() -> np.ndarray:
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(load_digits().data)


def batch_run(X, case: dict, args) -> dict:
    n = len(X)
    model = BayesianGaussianMixture(
        case["n_components"],
        covariance_type=case["covariance_type"],
        tol=1e-6 * n,
        max_iter=args.max_iter,
        random_state=args.seed,
    )
    tick = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    seconds = time.perf_counter() - tick
    bounds = np.asarray(model.lower_bounds_) / n
    target = bounds[-1]
    reached = np.flatnonzero(bounds >= target - THRESHOLD)
    return {
        "iterations": int(model.n_iter_),
        "converged": bool(model.converged_),
        "seconds": seconds,
        "target": float(target),
        "passes_to_threshold": int(reached[0]),
        "gap_after_one_pass": float(target - bounds[1]),
        "bounds": bounds.tolist(),
        "effective_components": effective(model.weights_),
    }


def batches_per_pass(n: int, chunk_rows: int, batch_size: int) -> int:
    """Mini-batches in one pass over ``n`` rows cut into chunks of ``chunk_rows``."""
    row_chunks = tuple(min(chunk_rows, n - i) for i in range(0, n, chunk_rows))
    return len(mini_batches(np.arange(len(row_chunks)), row_chunks, batch_size))


def streaming_run(X, case: dict, method: str, step: dict, batch: dict, args) -> dict:
    n, target = len(X), batch["target"]
    passes = max(10, math.ceil(args.budget * batch["passes_to_threshold"]))
    batch_size = -(-n // BATCHES_PER_PASS)
    chunk_rows = -(-batch_size // CHUNKS_PER_BATCH)
    model = Recording(
        case["n_components"],
        covariance_type=case["covariance_type"],
        method=method,
        batch_size=batch_size,
        chunk_rows=chunk_rows,
        max_passes=passes,
        random_state=args.seed,
        **step,
    )
    model.data_, model.target_, model.every_ = X, target, args.every
    model.trajectory_, model.evaluation_seconds_ = [], 0.0
    tick = time.perf_counter()
    try:
        model.fit(X)
        reached = None
    except Reached:
        reached = model.n_batches_seen_
    seconds = time.perf_counter() - tick - model.evaluation_seconds_
    per_pass = batches_per_pass(n, chunk_rows, batch_size)
    trajectory = [{"passes": p["batches"] / per_pass, **p} for p in model.trajectory_]
    after_one = [p["bound"] for p in trajectory if p["passes"] >= 1.0]
    return {
        "method": method,
        **step,
        "batch_size": batch_size,
        "batches_per_pass": per_pass,
        "max_passes": passes,
        "seconds_without_evaluations": seconds,
        "passes_to_threshold": None if reached is None else reached / per_pass,
        "gap_after_one_pass": target - after_one[0] if after_one else None,
        "final_gap": target - trajectory[-1]["bound"],
        "trajectory": trajectory,
        "effective_components": effective(model.weights_),
    }


def measure(name: str, X: np.ndarray, case: dict, args) -> dict:
    print(f"{name}: {X.shape[0]:,} x {X.shape[1]}, {case}", flush=True)
    batch = batch_run(X, case, args)
    print(
        f"  batch VB: {batch['iterations']} iterations ({batch['seconds']:.1f} s), "
        f"L* = {batch['target']:.5f} nats/sample, {batch['effective_components']} effective",
        flush=True,
    )
    runs = []
    settings = [("memoized", {})] + [("svi", step) for step in args.svi]
    for method, step in settings:
        run = streaming_run(X, case, method, step, batch, args)
        runs.append(run)
        print(
            f"  {method} {step or ''}: {run['passes_to_threshold']} passes to the threshold, "
            f"gap {run['final_gap']:.2e} at the end, {run['effective_components']} effective "
            f"({run['seconds_without_evaluations']:.1f} s)",
            flush=True,
        )
    return {
        "name": name,
        "rows": X.shape[0],
        "features": X.shape[1],
        **case,
        "batch": batch,
        "streaming": runs,
    }


def _passes(value) -> str:
    return "-" if value is None else f"{value:g}"


def print_table(results: list[dict]) -> None:
    head = f"{'data set':<13} {'K':>3} {'method':<20} {'passes to 1e-3':>14} "
    head += f"{'gap after 1 pass':>16} {'effective K':>11}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in results:
        rows = [("batch VB", r["batch"])]
        for s in r["streaming"]:
            svi = f"svi t0={s.get('t0', 1):g} kappa={s.get('kappa', 0.6):g}"
            rows.append((s["method"] if s["method"] == "memoized" else svi, s))
        for i, (label, run) in enumerate(rows):
            name, k = (r["name"], r["n_components"]) if i == 0 else ("", "")
            gap = run["gap_after_one_pass"]
            gap = "-" if gap is None else f"{gap:.2e}"
            print(
                f"{name:<13} {k:>3} {label:<20} {_passes(run['passes_to_threshold']):>14} "
                f"{gap:>16} {run['effective_components']:>11}"
            )


def parse_steps(text: str) -> list[dict]:
    steps = []
    for item in text.split(","):
        t0, kappa = item.split(":")
        steps.append({"t0": float(t0), "kappa": float(kappa)})
    return steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--overcomplete-rows", type=int, default=20_000)
    parser.add_argument("--separation", type=float, default=3.0)
    parser.add_argument(
        "--budget",
        type=float,
        default=1.5,
        help="streaming passes at most, relative to batch VB's passes to the threshold",
    )
    parser.add_argument("--every", type=int, default=10, help="evaluate every N mini-batches")
    parser.add_argument("--max-iter", type=int, default=500)
    parser.add_argument(
        "--svi",
        type=parse_steps,
        default=parse_steps("1:0.6"),
        help="SVI step settings t0:kappa,...",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_bayesian.json"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.overcomplete_rows, args.budget = 5_000, 5_000, 1.0
    dask.config.set(scheduler="threads")
    cases = [
        ("synthetic", lambda: synthetic(args.rows, args), 8, "full"),
        ("overcomplete", lambda: synthetic(args.overcomplete_rows, args, 1), 20, "full"),
        ("digits", digits, 10, "diag"),
    ]
    results = []
    for name, data, k, cov in cases:
        case = {"n_components": k, "covariance_type": cov}
        results.append(measure(name, data(), case, args))
    print_table(results)
    out = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "threshold_nats_per_sample": THRESHOLD,
        "machine": bench_scaling.machine(),
        "versions": bench_scaling.versions(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
