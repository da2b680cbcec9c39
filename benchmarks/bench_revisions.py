"""Seconds per EM iteration of two source trees of daskgmm, side by side in one run.

For a change that must not slow anything down (a re-layering, a refactor): the
cases of ``bench_em.py`` are timed with the daskgmm of ``--before`` (a tree, e.g.
a ``git worktree`` of the old commit) and of ``--after`` (default: this tree),
each timing in a fresh interpreter that imports daskgmm from that tree.  The two
trees take turns, round after round (the order alternating), so slow drifts of a
shared machine hit both; the report gives each tree's best and the median over
rounds of each round's after/before ratio.

    git worktree add /tmp/before <old-commit>
    python benchmarks/bench_revisions.py --before /tmp/before            # 3 cases
    python benchmarks/bench_revisions.py --before /tmp/before --quick    # smoke run

Prints a table and writes JSON (default benchmarks/results/bench_revisions.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _child(case_index: int, quick: bool, n_iter: int) -> None:
    """Time one case with the daskgmm this interpreter imports; print JSON."""
    sys.path.insert(0, str(HERE))
    import bench_em

    import daskgmm
    from daskgmm import GaussianMixture

    case = (bench_em.QUICK_CASES if quick else bench_em.CASES)[case_index]
    n, d, k, cov = (
        case[key] for key in ("n_samples", "n_features", "n_components", "covariance_type")
    )
    X, init = bench_em.make_case(n, d, k, cov)

    def factory(max_iter):
        return GaussianMixture(k, covariance_type=cov, tol=0.0, max_iter=max_iter, **init)

    seconds, _, model = bench_em.seconds_per_iteration(factory, X, n_iter, repeats=1)
    print(
        json.dumps(
            {
                "s_per_iter": seconds,
                "daskgmm_file": daskgmm.__file__,
                "lower_bound": float(model.lower_bound_),
            }
        )
    )


def _time_tree(tree: Path, case_index: int, quick: bool, n_iter: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [sys.executable, __file__, "--child", str(case_index), "--iterations", str(n_iter)]
    out = subprocess.run(
        args + (["--quick"] if quick else []), env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(result["daskgmm_file"]).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"imported {result['daskgmm_file']}, not the tree {tree}")
    return result


def _machine() -> dict:
    from threadpoolctl import threadpool_info

    blas = [
        {k: i.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
        for i in threadpool_info()
        if i["user_api"] == "blas"
    ]
    return {"cpus": os.cpu_count(), "processor": platform.machine(), "blas": blas}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="tree whose daskgmm/ is the old code")
    parser.add_argument("--after", type=Path, default=HERE.parent)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--cases", type=int, nargs="+", help="indices of the cases to run (default all)"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results" / "bench_revisions.json"))
    args = parser.parse_args(argv)
    if args.child is not None:
        _child(args.child, args.quick, args.iterations)
        return 0
    if args.before is None:
        parser.error("--before is required")
    sys.path.insert(0, str(HERE))
    import bench_em

    cases = bench_em.QUICK_CASES if args.quick else bench_em.CASES
    trees = {"before": args.before, "after": args.after}
    rows = []
    for index, case in enumerate(cases):
        if args.cases is not None and index not in args.cases:
            continue
        times = {"before": [], "after": []}
        for round_ in range(args.rounds):
            order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
            for name in order:
                result = _time_tree(trees[name], index, args.quick, args.iterations)
                times[name].append(result["s_per_iter"])
        ratios = [a / b for a, b in zip(times["after"], times["before"], strict=True)]
        rows.append(
            {
                **case,
                "before_s_per_iter": times["before"],
                "after_s_per_iter": times["after"],
                "best_before": min(times["before"]),
                "best_after": min(times["after"]),
                "paired_ratio_after_over_before": statistics.median(ratios),
            }
        )
    header = f"{'case':<30} {'before s/it':>11} {'after s/it':>11} {'after/before':>13}"
    print(header)
    print("-" * len(header))
    for r in rows:
        name = (
            f"N={r['n_samples']:,} D={r['n_features']} K={r['n_components']} {r['covariance_type']}"
        )
        print(
            f"{name:<30} {r['best_before']:>11.3f} {r['best_after']:>11.3f} "
            f"{r['paired_ratio_after_over_before']:>12.3f}x"
        )
    result = {
        "benchmark": "bench_revisions",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "before": str(args.before),
        "after": str(args.after),
        "rounds": args.rounds,
        "iterations": args.iterations,
        "machine": _machine(),
        "cases": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
