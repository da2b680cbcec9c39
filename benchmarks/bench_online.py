"""Online (stepwise) EM against batch EM on Zarr stores: accuracy and time to optimum.

Two measurements, each on a synthetic mixture written to a Zarr 3 store chunk by
chunk in a temporary directory (deleted afterwards unless ``--keep``):

accuracy
    2,000,000 x 16, K=8.  Batch EM runs to convergence (tol=1e-4); online EM runs
    1 and 2 passes.  Both start from the same initial parameters (k-means on a
    sample).  Reports the held-out mean log-likelihood gap in nats/sample.
speed
    A store of at least 2 GB (16,777,216 x 16 float64 by default).  Batch EM is run
    one timed iteration at a time to convergence (tol=1e-4); the held-out score is
    evaluated between iterations, untimed.  The batch optimum is its converged
    held-out score.  Reports the wall time each method needs to come within 0.01
    nats/sample of it, and the ratio.  The online time comes from the same
    stepwise EM driven one mini-batch at a time through ``partial_fit`` (shuffled
    chunk order, default parameters), with the held-out gap evaluated untimed
    about 20 times a pass.

Run it under the shared benchmark lock so that other work does not disturb it::

    flock /tmp/daskgmm-bench.lock python benchmarks/bench_online.py

Writes ``benchmarks/results/bench_online.json``.  ``--grid`` instead compares
step-size settings (t0, kappa, batch size, warm-up) on in-memory data and writes
``bench_online_grid_seed<seed>.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from daskgmm import GaussianMixture, OnlineGaussianMixture
from daskgmm.datasets import _draw_chunk, make_mixture
from daskgmm.estimators.stepwise import mini_batches

THRESHOLD = 0.01


def mixture(n_rows: int, args, store: Path | None = None):
    """The benchmark's synthetic mixture: lazy in memory, or written to a Zarr store
    chunk by chunk and opened lazily."""
    return make_mixture(
        n_rows,
        args.n_features,
        args.n_components,
        chunk_rows=args.chunk_rows,
        dtype="float64",
        separation=args.separation,
        seed=args.seed,
        store=None if store is None else str(store),
    )


def write_store(path: Path, n_rows: int, args) -> tuple[da.Array, object, float]:
    """Write the mixture to a Zarr store; open it lazily."""
    tick = time.perf_counter()
    X, truth = mixture(n_rows, args, path)
    return X, truth, time.perf_counter() - tick


def initial_kwargs(X, args) -> dict:
    start = GaussianMixture(args.n_components, max_iter=0, random_state=args.seed).fit(X)
    return {
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
    }


def batch_trajectory(X, held_out, init, args) -> dict:
    """Batch EM one timed iteration at a time, to convergence (tol=1e-4)."""
    model = GaussianMixture(args.n_components, tol=1e-4, max_iter=1, warm_start=True, **init)
    times, scores = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.max_batch_iter):
            tick = time.perf_counter()
            model.fit(X)
            times.append(time.perf_counter() - tick)
            scores.append(model.score(held_out))
            if model.converged_:
                break
    return {
        "iterations": len(times),
        "converged": bool(model.converged_),
        "seconds_per_iteration": float(np.mean(times)),
        "cumulative_seconds": np.cumsum(times).tolist(),
        "held_out_scores": scores,
        "optimum": scores[-1],
    }


def online_runs(X, held_out, init, args) -> list[dict]:
    runs = []
    for passes in (1, 2):
        model = OnlineGaussianMixture(
            args.n_components,
            max_passes=passes,
            random_state=args.seed,
            batch_size=args.batch_size,
            **init,
        )
        tick = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - tick
        runs.append(
            {
                "passes": passes,
                "seconds": seconds,
                "batches": model.n_batches_seen_,
                "held_out_score": model.score(held_out),
            }
        )
        print(f"  online {passes} pass(es): {seconds:.1f} s, {model.n_batches_seen_} batches")
    return runs


def online_trajectory(X, held_out, init, args, optimum: float) -> dict:
    """Stepwise EM driven batch by batch through ``partial_fit`` (timed), with the
    held-out gap evaluated (untimed) about 20 times a pass, until it is within
    the threshold or two passes are done."""
    model = OnlineGaussianMixture(args.n_components, batch_size=args.batch_size, **init)
    rng = np.random.RandomState(args.seed)
    elapsed, points = 0.0, []
    for _ in range(2):
        order = rng.permutation(X.numblocks[0])
        batches = mini_batches(order, X.chunks[0], args.batch_size)
        every = max(1, len(batches) // 20)
        for i, ids in enumerate(batches, 1):
            block = da.concatenate([X.blocks[int(j)] for j in ids])
            tick = time.perf_counter()
            model.partial_fit(block)
            elapsed += time.perf_counter() - tick
            if i % every == 0 or i == len(batches):
                gap = optimum - model.score(held_out)
                points.append({"batches": model.n_batches_seen_, "seconds": elapsed, "gap": gap})
                if gap <= THRESHOLD:
                    return {"points": points, "seconds_to_threshold": elapsed}
    return {"points": points, "seconds_to_threshold": None}


def measure(name: str, n_rows: int, workdir: Path, args) -> dict:
    path = workdir / f"{name}.zarr"
    X, truth, write_seconds = write_store(path, n_rows, args)
    gbytes = X.nbytes / 1e9
    print(f"{name}: {n_rows:,} x {args.n_features} ({gbytes:.2f} GB, {X.numblocks[0]} chunks)")
    held_out = _draw_chunk(truth, args.held_out, (args.seed, 10**9), np.float64)
    init = initial_kwargs(X, args)
    batch = batch_trajectory(X, held_out, init, args)
    optimum = batch["optimum"]
    print(
        f"  batch EM: {batch['iterations']} iterations, {batch['seconds_per_iteration']:.2f} "
        f"s/iteration, held-out optimum {optimum:.5f}"
    )
    online = online_runs(X, held_out, init, args)
    for run in online:
        run["gap"] = optimum - run["held_out_score"]
        print(f"  online {run['passes']} pass(es): gap {run['gap']:.5f} nats/sample")
    reached = [
        t
        for t, s in zip(batch["cumulative_seconds"], batch["held_out_scores"], strict=True)
        if optimum - s <= THRESHOLD
    ]
    batch_time = reached[0]
    trajectory = online_trajectory(X, held_out, init, args, optimum)
    online_time = trajectory["seconds_to_threshold"]
    ratio = batch_time / online_time if online_time else None
    last = trajectory["points"][-1]
    print(f"  online via partial_fit: gap {last['gap']:.5f} after {last['batches']} batches")
    print(
        f"  time to within {THRESHOLD} nats/sample: batch {batch_time:.1f} s, online "
        + (f"{online_time:.1f} s, ratio {ratio:.1f}x" if online_time else "not reached")
    )
    if not args.keep:
        shutil.rmtree(path)
    return {
        "rows": n_rows,
        "gbytes": gbytes,
        "chunks": X.numblocks[0],
        "write_seconds": write_seconds,
        "batch": batch,
        "online": online,
        "online_trajectory": trajectory,
        "batch_seconds_to_threshold": batch_time,
        "online_seconds_to_threshold": online_time,
        "speedup": ratio,
    }


#: Settings compared by ``--grid`` (the README's table of defaults).
GRID = [
    {"t0": 1.0, "kappa": 0.6},
    {"t0": 10.0, "kappa": 0.7},
    {"t0": 0.0, "kappa": 0.8},
    {"t0": 0.0, "kappa": 0.6, "batch_size": 50_000},
    {"t0": 1.0, "kappa": 0.6, "batch_size": 10_000},
    {"t0": 1.0, "kappa": 0.6, "warm_up": 80_000},
    {"t0": 1.0, "kappa": 0.6, "warm_up": 160_000},
]


def grid(args) -> list[dict]:
    """Held-out gap to converged batch EM after 1 and 2 passes, per setting, on
    in-memory data (``--accuracy-rows`` rows in chunks of ``--chunk-rows``)."""
    X, truth = mixture(args.accuracy_rows, args)
    X = X.persist()
    held_out = _draw_chunk(truth, args.held_out, (args.seed, 10**9), np.float64)
    init = initial_kwargs(X, args)
    optimum = GaussianMixture(args.n_components, tol=1e-4, max_iter=1000, **init).fit(X)
    optimum = optimum.score(held_out)
    rows = []
    for setting in GRID:
        kwargs = {"batch_size": args.batch_size, **setting}
        gaps = []
        for passes in (1, 2):
            model = OnlineGaussianMixture(
                args.n_components, max_passes=passes, random_state=args.seed, **init, **kwargs
            )
            gaps.append(optimum - model.fit(X).score(held_out))
        rows.append({**kwargs, "gap_1_pass": gaps[0], "gap_2_passes": gaps[1]})
        print(f"  {kwargs}: gap {gaps[0]:.4f} after 1 pass, {gaps[1]:.4f} after 2")
    return rows


def _machine() -> dict:
    """The machine, as the other benchmarks record it (``bench_scaling.machine``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_scaling

    return bench_scaling.machine()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accuracy-rows", type=int, default=2_000_000)
    parser.add_argument("--speed-rows", type=int, default=2**24, help="2**24 x 16 f64 = 2.1 GB")
    parser.add_argument("--n-features", type=int, default=16)
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the estimator's")
    parser.add_argument("--separation", type=float, default=1.5)
    parser.add_argument("--held-out", type=int, default=200_000)
    parser.add_argument("--max-batch-iter", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", choices=("accuracy", "speed"), default=None)
    parser.add_argument(
        "--grid", action="store_true", help="only compare step-size settings in memory"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the Zarr stores")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_online.json"
    )
    args = parser.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = OnlineGaussianMixture().batch_size
    workdir = Path(tempfile.mkdtemp(prefix="daskgmm-bench-", dir=args.workdir))
    results = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": _machine()}
    dask.config.set(scheduler="threads")
    if args.grid:
        args.out = args.out.with_name(f"bench_online_grid_seed{args.seed}.json")
        results["grid"] = grid(args)
        args.skip = "both"
    try:
        if args.skip not in ("accuracy", "both"):
            results["accuracy"] = measure("accuracy", args.accuracy_rows, workdir, args)
        if args.skip not in ("speed", "both"):
            results["speed"] = measure("speed", args.speed_rows, workdir, args)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
