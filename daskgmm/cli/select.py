"""``daskgmm select INPUT --k 1..12``: fit every K, tabulate BIC/AIC, pick the best.

Batch fits go through :func:`daskgmm.select_mixture`: every K and every restart
iterate together, one read of the data per iteration.  Online fits (``--online``)
are fitted one K after another.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import warnings
from pathlib import Path

from ..errors import NotConvergedExit, UsageError
from .estimator import make_estimator
from .inputs import (
    check_new_output,
    check_output_dir,
    check_output_file,
    check_plot_path,
    describe_input,
    open_input,
)
from .options import (
    add_cluster_options,
    add_estimator_options,
    add_input_options,
    add_output_options,
    add_progress_option,
    cli_words,
    k_values,
)
from .output import local_progress_bar, print_json, say, warn
from .score import criteria
from .session import check_cluster_options, compute_session, converged, fit_model

#: Columns of the curve written by ``--out`` (CSV header, JSON keys).
COLUMNS = (
    "k",
    "mean_log_likelihood",
    "log_likelihood",
    "bic",
    "aic",
    "n_parameters",
    "n_scored",
    "n_iter",
    "converged",
    "lower_bound",
    "seconds",
    "restart",
    "restarts_bic_min",
    "restarts_bic_max",
)
OUT_FORMATS = (".json", ".csv")


def best_row(table: list[dict], criterion: str) -> dict:
    """The row with the lowest criterion (the smallest K among equals)."""
    finite = [row for row in table if math.isfinite(row[criterion])]
    if not finite:
        raise UsageError(f"no fit gave a finite {criterion.upper()}; check the data.")
    return min(finite, key=lambda row: (row[criterion], row["k"]))


def format_table(table: list[dict], best_k: int) -> str:
    """The table printed to the user, the best K starred; with restarts, the range
    of each K's restarts' BIC."""
    spread = any(row.get("restarts_bic_min") != row.get("restarts_bic_max") for row in table)
    header = (
        f"{'K':>4}  {'log-lik/sample':>15}  {'BIC':>14}  {'AIC':>14}  {'iter':>5}  "
        f"{'converged':>9}  {'seconds':>7}"
    ) + (f"  {'BIC of the restarts':>29}" if spread else "")
    lines = [header]
    for row in table:
        state = {True: "yes", False: "NO", None: "-"}[row["converged"]]
        n_iter = "-" if row["n_iter"] is None else str(row["n_iter"])
        line = (
            f"{row['k']:>3}{'*' if row['k'] == best_k else ' '}  "
            f"{row['mean_log_likelihood']:>15.6f}  {row['bic']:>14.2f}  {row['aic']:>14.2f}  "
            f"{n_iter:>5}  {state:>9}  {row['seconds']:>7.1f}"
        )
        if spread:
            line += f"  {row['restarts_bic_min']:>14.2f}..{row['restarts_bic_max']:<13.2f}"
        lines.append(line)
    return "\n".join(lines)


def write_curve(path: str, table: list[dict], summary: dict) -> None:
    """The table as JSON (with the summary) or CSV, by the file name's ending."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        if path.lower().endswith(".csv"):
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            for row in table:
                writer.writerow({k: ("" if row[k] is None else row[k]) for k in COLUMNS})
        else:
            json.dump({**summary, "table": table}, f, indent=1)
            f.write("\n")
    os.replace(tmp, path)


def _check_out(path: str | None) -> None:
    if path is None:
        return
    if Path(path).suffix.lower() not in OUT_FORMATS:
        raise UsageError(f"--out {path!r}: give a file name ending in .json or .csv.")
    check_output_file(path, "--out")


def run(args: argparse.Namespace) -> int:
    """Fit every K, print and write the table, plot it, save the best; the exit code."""
    view, models = _check_and_open(args)
    say(args, f"INPUT {args.input}: {describe_input(view)}")
    with compute_session(args) as client:
        if args.online:
            table = _fit_each(args, view, models, client)
        else:
            table = _fit_together(args, view, models)
    best = best_row(table, args.criterion)
    best_model = models[best["k"]]
    say(args, format_table(table, best["k"]))
    say(args, f"best K by {args.criterion.upper()}: {best['k']} (starred)")
    _check_converged(args, table)
    summary = {
        "command": "select",
        "input": args.input,
        "n_samples": view.n_samples,
        "criterion": args.criterion,
        "best_k": best["k"],
        "covariance_type": args.covariance_type,
        "online": bool(args.online),
    }
    _write_outputs(args, table, summary, best_model, best["k"])
    print_json(
        args,
        {**summary, "out": args.out, "plot": args.plot, "model": args.model, "table": table},
    )
    return 0


def _check_and_open(args: argparse.Namespace) -> tuple:
    """Check the options and outputs, open INPUT; returns (its rows, K -> estimator)."""
    check_cluster_options(args)
    _check_out(args.out)
    check_plot_path(args.plot)
    if args.model is not None:
        check_new_output(args.model, args.overwrite, "--model", kind="model")
    check_output_dir(args.checkpoint, "--checkpoint")
    view = open_input(args)
    models = {k: make_estimator(args, k) for k in args.k}
    too_many = [k for k in args.k if k > view.n_samples]
    if too_many:
        raise UsageError(
            f"INPUT {args.input!r} has {view.n_samples} rows; --k asks for up to "
            f"{max(too_many)} components: lower it."
        )
    return view, models


def _fit_each(args: argparse.Namespace, view, models: dict, client=None) -> list[dict]:
    """Fit and score the estimator of every K, a line each; the table's rows.

    Progress lines start with ``K=3 (2/4)``: the K and which of the fits it is.
    """
    from ..engine.progress import progress_label

    table = []
    for j, (k, model) in enumerate(models.items(), start=1):
        checkpoint = None if args.checkpoint is None else os.path.join(args.checkpoint, f"k{k}")
        with progress_label(f"K={k} ({j}/{len(models)})"):
            seconds, _ = fit_model(model, view, checkpoint)
            with local_progress_bar(args, client, label="score"):
                scores = criteria(model, view.data)
        row = {
            "k": k,
            **scores,
            "n_iter": getattr(model, "n_iter_", None),
            "converged": converged(model),
            "lower_bound": float(model.lower_bound_),
            "seconds": round(seconds, 3),
            "restart": None,
            "restarts_bic_min": scores["bic"],
            "restarts_bic_max": scores["bic"],
        }
        table.append({name: row[name] for name in COLUMNS})
        say(
            args,
            f"K={k}: mean log-likelihood {row['mean_log_likelihood']:.6f}, "
            f"BIC {row['bic']:.6g}, AIC {row['aic']:.6g}",
        )
        models[k] = model
    return table


def _fit_together(args: argparse.Namespace, view, models: dict) -> list[dict]:
    """Fit every K (and its restarts) together by :func:`daskgmm.select_mixture`;
    the table's rows (each K's kept restart, with the spread of its restarts'
    BIC), and ``models`` replaced by the fitted estimators."""
    from sklearn.exceptions import ConvergenceWarning

    from ..estimators import select_mixture

    template = next(iter(models.values()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported with the table
        try:
            result = select_mixture(
                view,
                n_components=list(models),
                covariance_type=template.covariance_type,
                n_init=template.n_init,
                criterion=args.criterion,
                estimator=template,
                random_state=template.random_state,
                checkpoint=args.checkpoint,
            )
        except (ValueError, TypeError) as exc:
            raise UsageError(cli_words(str(exc))) from exc
    if template.random_state is None:
        say(args, f"random state {result.random_state} (give --random-state to repeat)")
    say(
        args,
        f"{len(result.table)} models fitted together, each pass reading the data once; "
        f"a chunk's statistics for all of them: {result.memory['statistics_bytes']:,} bytes",
    )
    table = []
    for k in models:
        runs = [row for row in result.table if row["n_components"] == k]
        kept = next((row for row in runs if row["kept"]), None)
        if kept is None:  # every restart stopped on a singular covariance
            warn(args, f"K={k}: {runs[0]['error']}")
            kept = {**runs[0], "converged": False}
        models[k] = result.estimators[(k, template.covariance_type)]
        bics = [row["bic"] for row in runs]
        row = {
            "k": k,
            **{name: kept[name] for name in ("mean_log_likelihood", "log_likelihood", "bic")},
            **{name: kept[name] for name in ("aic", "n_parameters", "n_scored", "n_iter")},
            "converged": kept["converged"],
            "lower_bound": kept["lower_bound"],
            "seconds": kept["seconds"],
            "restart": kept["restart"],
            "restarts_bic_min": min(bics),
            "restarts_bic_max": max(bics),
            "restarts_bic": bics,
        }
        table.append(row)
        say(
            args,
            f"K={k}: mean log-likelihood {row['mean_log_likelihood']:.6f}, "
            f"BIC {row['bic']:.6g}, AIC {row['aic']:.6g}",
        )
    return table


def _check_converged(args: argparse.Namespace, table: list[dict]) -> None:
    """Warn about fits that did not converge; stop with ``--require-converged``."""
    not_converged = [row["k"] for row in table if row["converged"] is False]
    if not_converged:
        message = (
            f"the fits for K = {', '.join(map(str, not_converged))} did not converge; "
            "increase --max-iter or --tol"
        )
        if args.require_converged:
            raise NotConvergedExit(message + "; nothing was written (--require-converged).")
        warn(args, message)


def _write_outputs(
    args: argparse.Namespace, table: list[dict], summary: dict, best_model, best_k: int
) -> None:
    """The curve (``--out``), its plot (``--plot``) and the best model (``--model``)."""
    if args.out:
        write_curve(args.out, table, summary)
        say(args, f"curve written to {args.out}")
    if args.plot:
        from ..plotting import plot_selection

        plot_selection(table, args.plot, args.criterion)
        say(args, f"plot written to {args.plot}")
    if args.model:
        best_model.set_params(progress=False)  # a display option of this run
        best_model.save(args.model, overwrite=args.overwrite)
        say(args, f"model with K={best_k} saved to {args.model}")


def register(sub) -> None:
    """Add ``select``."""
    parser = sub.add_parser(
        "select",
        help="fit each number of components, tabulate BIC/AIC and pick the best",
        description="Fit a mixture for each K with the same options, score each fit on the "
        "data (one more pass) and print K, the mean log-likelihood per sample, BIC, AIC, "
        "iterations and convergence; the K with the lowest criterion is starred.  Every K "
        "and every restart (--n-init) iterate together: each iteration reads the data once "
        "for all of them, and the table shows the spread of each K's restarts.  It fits "
        "GaussianMixture (or with --online OnlineGaussianMixture, one K after another) "
        "only: a variational "
        "Bayesian mixture chooses its own number of components, so fit one with "
        "'daskgmm fit --bayesian -k KMAX' instead.",
    )
    add_input_options(parser)
    parser.add_argument(
        "--k",
        type=k_values,
        default=k_values("1..8"),
        metavar="KS",
        help="component counts: a range 1..12, a list 2,4,8, or both 1..4,8 (default 1..8)",
    )
    parser.add_argument("--criterion", choices=("bic", "aic"), default="bic")
    parser.add_argument(
        "--out", metavar="FILE", help="write the table as .json (with the best K) or .csv"
    )
    parser.add_argument("--plot", metavar="PNG", help="plot BIC and AIC against K")
    parser.add_argument("--model", metavar="OUT", help="save the best model in this directory")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --model")
    add_estimator_options(parser, n_components=False)
    add_output_options(parser)
    add_progress_option(parser)
    add_cluster_options(parser)
    parser.set_defaults(func=run)
