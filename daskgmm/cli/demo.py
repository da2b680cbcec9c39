"""``daskgmm demo``: the whole path on a synthetic store, on a LocalCluster, in about a minute.

Writes a synthetic mixture to Zarr, starts a LocalCluster (dashboard link printed),
fits with progress, streams the predictions to Zarr, saves the model, draws the
plot and prints how well the true mixture was recovered.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..kernels.params import COVARIANCE_TYPES
from .fit import describe_fit, model_summary, sample_rows
from .inputs import check_new_output
from .options import (
    add_cluster_options,
    add_output_options,
    add_progress_option,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from .output import PLOT_INSTALL_HINT, print_json, say, show_progress, warn
from .session import check_cluster_options, compute_session, converged, fit_model

#: What the demo writes inside its output directory.
OUTPUTS = {
    "data": "data.zarr",
    "predictions": "predictions.zarr",
    "model": "model",
    "plot": "fit.png",
}


def recovery_errors(model, truth) -> dict:
    """Largest weight and mean errors against the true mixture, components matched
    by their means (Hungarian assignment), and the mean relative covariance error."""
    from scipy.optimize import linear_sum_assignment

    from ..plotting import component_covariances

    cost = np.linalg.norm(model.means_[:, None, :] - truth.means[None, :, :], axis=2)
    fitted, true = linear_sum_assignment(cost)
    covariances = component_covariances(model)[fitted]
    relative = np.linalg.norm(covariances - truth.covariances[true], axis=(1, 2)) / np.linalg.norm(
        truth.covariances[true], axis=(1, 2)
    )
    return {
        "max_weight_error": float(np.abs(model.weights_[fitted] - truth.weights[true]).max()),
        "max_mean_error": float(np.abs(model.means_[fitted] - truth.means[true]).max()),
        "mean_relative_covariance_error": float(relative.mean()),
    }


def _output_dir(args: argparse.Namespace) -> tuple[Path, str]:
    if args.tmp:
        return Path(tempfile.mkdtemp(prefix="daskgmm-demo-")), "a new temporary directory (kept)"
    out = Path(args.out_dir)
    foreign = out.exists() and (not out.is_dir())
    if foreign:
        raise UsageError(f"--out-dir {args.out_dir!r} is a file; choose a directory.")
    return out, "where every run replaces the demo's files (--out-dir, --tmp to change)"


def run(args: argparse.Namespace) -> int:
    """The demo, step by step; the exit code."""
    out, which, paths, plot = _prepare(args)
    start = time.perf_counter()
    say(args, f"writing to {out.resolve()}, {which}")
    X, truth = _write_data(args, paths)
    model, fit_seconds, sample = _fit_and_predict(args, paths, X, plot)
    _save_model_and_plot(args, model, paths, sample, plot)
    errors = recovery_errors(model, truth)
    seconds = time.perf_counter() - start
    say(
        args,
        f"recovered the true mixture: weights within {errors['max_weight_error']:.4f}, means "
        f"within {errors['max_mean_error']:.4f}, covariances within "
        f"{errors['mean_relative_covariance_error']:.1%} (mean relative error); "
        f"{seconds:.1f} s in all",
    )
    if converged(model) is False:
        warn(args, "the fit did not converge; try --max-iter or --tol")
    print_json(
        args,
        {
            "command": "demo",
            "out_dir": str(out),
            **{f"{name}_path": path for name, path in paths.items()},
            "n_samples": args.n_samples,
            **model_summary(model),
            **errors,
            "fit_seconds": round(fit_seconds, 3),
            "seconds": round(seconds, 3),
        },
    )
    return 0


def _prepare(args: argparse.Namespace) -> tuple[Path, str, dict, bool]:
    """Check the options and the output directory before anything is written.

    Returns (the output directory, words on where it is, the paths of the outputs,
    whether to draw the plot).
    """
    from ..plotting import available

    if args.scheduler is None and args.scheduler_file is None and args.workers is None:
        args.workers = 2
    check_cluster_options(args)
    if args.n_samples < args.n_components:
        raise UsageError("--n-samples must be at least --n-components.")
    out, which = _output_dir(args)
    paths = {name: str(out / file) for name, file in OUTPUTS.items()}
    plot = available() and not args.no_plot
    for name, kind in (("data", "store"), ("predictions", "store"), ("model", "model")):
        check_new_output(paths[name], True, f"--out-dir {args.out_dir!r}: {name}", kind)
    return out, which, paths, plot


def _write_data(args: argparse.Namespace, paths: dict):
    """Step 1: the synthetic table; returns its dask array and the true mixture."""
    from ..datasets import write_table

    tick = time.perf_counter()
    X, truth = write_table(
        paths["data"],
        args.n_samples,
        args.n_features,
        args.n_components,
        args.chunk_rows,
        separation=args.separation,
        seed=args.seed,
        overwrite=True,
    )
    say(
        args,
        f"1. synthetic data: {args.n_samples:,} x {args.n_features} float32 rows from "
        f"{args.n_components} Gaussians in {X.numblocks[0]} chunks "
        f"({X.nbytes / 2**20:,.0f} MiB) -> {paths['data']} [{time.perf_counter() - tick:.1f} s]",
    )
    return X, truth


def _fit_and_predict(args: argparse.Namespace, paths: dict, X, plot: bool):
    """Steps 2 to 4 on the cluster: fit, write the predictions, sample rows to plot.

    Returns (the fitted model, seconds of the fit, the rows to plot or None).
    """
    from ..estimators import GaussianMixture
    from ..io import write_predictions

    model = GaussianMixture(
        args.n_components,
        covariance_type=args.covariance_type,
        max_iter=args.max_iter,
        tol=args.tol,
        n_init=args.n_init,
        random_state=args.seed,
        progress=show_progress(args),
    )
    with compute_session(args) as client:
        n_workers = len(client.scheduler_info()["workers"]) if client is not None else 0
        say(args, f"2. cluster: {n_workers} workers (open the dashboard link to watch the fit)")
        say(args, "3. fitting by EM, one pass over the store per iteration:")
        fit_seconds, _ = fit_model(model, paths["data"])
        say(args, f"   {describe_fit(model)} [{fit_seconds:.1f} s]")
        tick = time.perf_counter()
        write_predictions(
            model, paths["data"], paths["predictions"], log_density=True, overwrite=True
        )
        say(
            args,
            f"4. labels and log-densities -> {paths['predictions']} "
            f"[{time.perf_counter() - tick:.1f} s]",
        )
        sample = sample_rows(X, seed=args.seed) if plot else None
    return model, fit_seconds, sample


def _save_model_and_plot(args: argparse.Namespace, model, paths: dict, sample, plot: bool) -> None:
    """Steps 5 and 6: save the model, draw the plot (``paths['plot']`` None without)."""
    model.set_params(progress=False)  # a display option of this run, not of the model
    model.save(paths["model"], overwrite=True)  # the demo replaces its own files
    say(args, f"5. model -> {paths['model']} (daskgmm info {paths['model']})")
    if plot:
        from ..plotting import plot_fit

        plot_fit(model, sample, paths["plot"], title="daskgmm demo")
        say(args, f"6. plot -> {paths['plot']}")
    else:
        paths["plot"] = None
        why = "--no-plot" if args.no_plot else "matplotlib is not installed: " + PLOT_INSTALL_HINT
        say(args, f"6. no plot ({why})")


def register(sub) -> None:
    """Add ``demo``."""
    demo = sub.add_parser(
        "demo",
        help="make a synthetic store, fit it on a LocalCluster, write predictions, model, plot",
        description="The whole path in about a minute: write a synthetic Gaussian mixture to "
        "Zarr, start a LocalCluster of 2 workers (the dashboard link is printed), fit with "
        "progress, stream labels and log-densities to Zarr, save the model, draw the fit "
        "(with matplotlib) and print how well the true mixture was recovered.",
    )
    where = demo.add_mutually_exclusive_group()
    where.add_argument(
        "--out-dir",
        default="demo-output",
        metavar="DIR",
        help="where to write (default ./demo-output; the demo's files there are replaced)",
    )
    where.add_argument("--tmp", action="store_true", help="write to a new temporary directory")
    demo.add_argument("--n-samples", type=positive_int, default=4_000_000, metavar="N")
    demo.add_argument("--n-features", type=positive_int, default=16, metavar="D")
    demo.add_argument("--n-components", type=positive_int, default=8, metavar="K")
    demo.add_argument("--chunk-rows", type=positive_int, default=250_000, metavar="N")
    demo.add_argument(
        "--separation",
        type=positive_float,
        default=1.5,
        metavar="S",
        help="spread of the true means against unit-ish covariances (default 1.5: "
        "overlapping components)",
    )
    demo.add_argument("--covariance-type", choices=COVARIANCE_TYPES, default="full")
    demo.add_argument("--max-iter", type=positive_int, default=100, metavar="N")
    demo.add_argument("--tol", type=non_negative_float, default=1e-3, metavar="X")
    demo.add_argument("--n-init", type=positive_int, default=1, metavar="N")
    demo.add_argument("--seed", type=non_negative_int, default=1)
    demo.add_argument("--no-plot", action="store_true", help="skip the plot")
    add_output_options(demo)
    add_progress_option(demo)
    add_cluster_options(demo)
    demo.set_defaults(func=run)
