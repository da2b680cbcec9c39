"""``daskgmm score MODEL INPUT``: mean log-likelihood per sample, BIC and AIC."""

from __future__ import annotations

import argparse
import time

from ..kernels.covariance import information_criteria
from .inputs import check_feature_count, describe_input, load_model, open_input
from .options import add_cluster_options, add_input_options, add_output_options, add_progress_option
from .output import local_progress_bar, print_json, say
from .session import check_cluster_options, compute_session


def criteria(model, rows) -> dict:
    """Mean log-likelihood, rows scored, BIC and AIC of ``model`` on ``rows``: one pass.

    Equal to ``model.score``, ``model.bic`` and ``model.aic`` (which would make a
    pass each).  A Bayesian model scores with its variational density but takes
    BIC and AIC under its posterior-mean mixture, as its ``bic`` and ``aic`` do:
    both densities in the same pass.
    """
    bayesian = hasattr(model, "weight_concentration_")
    scores = model._mean_scores(rows, (False, True) if bayesian else (False,))
    mean, n = scores[0]
    n_parameters = model._n_parameters()
    total = mean * n
    plug_in = total
    if bayesian:
        plug_in_mean, _ = scores[1]
        plug_in = plug_in_mean * n
    return {
        "mean_log_likelihood": mean,
        "log_likelihood": total,
        "n_scored": n,
        "n_parameters": n_parameters,
        **dict(zip(("bic", "aic"), information_criteria(plug_in, n, n_parameters), strict=True)),
    }


def run(args: argparse.Namespace) -> int:
    """Print the mean log-likelihood, BIC and AIC of MODEL on INPUT; the exit code."""
    check_cluster_options(args)
    model = load_model(args.model)
    view = open_input(args, model)
    check_feature_count(model, view, args)
    if args.nan_policy is not None:
        model.nan_policy = args.nan_policy
    say(args, f"INPUT {args.input}: {describe_input(view)}")
    start = time.perf_counter()
    with compute_session(args) as client, local_progress_bar(args, client):
        result = criteria(model, view.data)
    seconds = time.perf_counter() - start
    omitted = view.n_samples - result["n_scored"]
    say(
        args,
        f"mean log-likelihood per sample {result['mean_log_likelihood']:.6f} over "
        f"{result['n_scored']:,} rows"
        + (f" ({omitted:,} rows with NaN/inf left out)" if omitted else ""),
    )
    say(
        args,
        f"BIC {result['bic']:.6g}  AIC {result['aic']:.6g}  "
        f"({result['n_parameters']} free parameters; lower is better)  [{seconds:.1f} s]",
    )
    print_json(
        args,
        {
            "command": "score",
            "model": args.model,
            "input": args.input,
            **result,
            "n_samples": view.n_samples,
            "seconds": round(seconds, 3),
        },
    )
    return 0


def register(sub) -> None:
    """Add ``score``."""
    parser = sub.add_parser(
        "score",
        help="mean log-likelihood per sample (and BIC, AIC) of a saved model on a store",
        description="Score a saved model on a store in one pass: the mean log-likelihood per "
        "sample (scikit-learn's score), the total, BIC and AIC.",
    )
    parser.add_argument("model", metavar="MODEL", help="a model directory (daskgmm fit --model)")
    add_input_options(parser)
    add_output_options(parser)
    add_progress_option(parser)
    add_cluster_options(parser)
    parser.set_defaults(func=run)
