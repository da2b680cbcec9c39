"""``daskgmm fit INPUT --model OUT``: fit a mixture to a store and save it."""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import NotConvergedExit, UsageError
from .estimator import add_bayesian_options, check_model_for_data, make_estimator
from .inputs import (
    check_new_output,
    check_output_dir,
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
)
from .output import print_json, say, warn
from .session import check_cluster_options, compute_session, converged, fit_model

#: Rows drawn for the plot.
PLOT_ROWS = 5_000
#: Row chunks read at most to draw them.
PLOT_CHUNKS = 16


def sample_rows(data, n_rows: int = PLOT_ROWS, seed: int = 0) -> np.ndarray:
    """Up to ``n_rows`` rows of a dask array, from a few randomly chosen row chunks.

    Reads whole chunks (at most :data:`PLOT_CHUNKS`, in one ``compute``) rather
    than scattered rows, so that a sample costs a few chunk reads, not a pass.
    """
    import dask

    rng = np.random.default_rng(seed)
    row_chunks = data.chunks[0]
    picked, total = [], 0
    for index in rng.permutation(len(row_chunks)):
        picked.append(int(index))
        total += row_chunks[index]
        if total >= n_rows or len(picked) >= PLOT_CHUNKS:
            break
    blocks = dask.compute(*(data.blocks[i] for i in sorted(picked)))
    rows = np.concatenate(blocks, axis=0)
    if len(rows) > n_rows:
        rows = rows[np.sort(rng.choice(len(rows), n_rows, replace=False))]
    return rows


def model_summary(model) -> dict:
    """The fitted scalars a summary reports."""
    out = {
        "class": type(model).__name__,
        "n_components": int(model.n_components),
        "covariance_type": model.covariance_type,
        "n_features": int(model.n_features_in_),
        "lower_bound": float(model.lower_bound_),
        "converged": converged(model),
        "weights": [round(float(w), 6) for w in model.weights_],
    }
    if hasattr(model, "n_iter_"):
        out["n_iter"] = int(model.n_iter_)
    if hasattr(model, "n_batches_seen_"):
        out["n_batches_seen"] = int(model.n_batches_seen_)
        out["n_samples_seen"] = int(model.n_samples_seen_)
    if hasattr(model, "n_effective_components_"):
        out.update(bayesian_summary(model))
    return out


def bayesian_summary(model) -> dict:
    """What a variational Bayesian fit adds to the summary: its priors, and the
    components whose weight reaches ``EFFECTIVE_WEIGHT``."""
    from ..estimators.bayesian_mixture import EFFECTIVE_WEIGHT

    return {
        "lower_bound_kind": "evidence lower bound (total over the rows)",
        "n_effective_components": int(model.n_effective_components_),
        "effective_weight": EFFECTIVE_WEIGHT,
        "effective_components": [
            int(k) for k in np.flatnonzero(np.asarray(model.weights_) >= EFFECTIVE_WEIGHT)
        ],
        "weight_concentration_prior_type": model.weight_concentration_prior_type,
        "weight_concentration_prior": float(model.weight_concentration_prior_),
        "mean_precision_prior": float(model.mean_precision_prior_),
        "degrees_of_freedom_prior": float(model.degrees_of_freedom_prior_),
    }


def describe_effective(model) -> str:
    """'3 of 8 components effective (weight >= 0.01)'."""
    from ..estimators.bayesian_mixture import EFFECTIVE_WEIGHT

    return (
        f"{model.n_effective_components_} of {model.n_components} components effective "
        f"(weight >= {EFFECTIVE_WEIGHT:g})"
    )


def describe_fit(model) -> str:
    """'converged after 12 iterations (the best of 3 initialisations); mean
    log-likelihood -6.123456'."""
    bayesian = hasattr(model, "n_effective_components_")
    if hasattr(model, "n_batches_seen_"):
        seen = f"{model.n_batches_seen_} mini-batches ({model.n_samples_seen_:,} rows)"
        if bayesian:
            return (
                f"{seen}; evidence lower bound {model.lower_bound_:.6f} (total over the "
                f"rows); {describe_effective(model)}"
            )
        return f"{seen}; running mean log-likelihood {model.lower_bound_:.6f}"
    state = "converged" if model.converged_ else "did NOT converge"
    n_init = getattr(model, "n_init", 1)
    best_of = f" (the best of {n_init} initialisations)" if n_init > 1 else ""
    done = f"{state} after {model.n_iter_} iteration{'s' * (model.n_iter_ != 1)}{best_of}"
    if bayesian:
        return (
            f"{done}; evidence lower bound {model.lower_bound_:.6f} (total over the rows); "
            + describe_effective(model)
        )
    return f"{done}; mean log-likelihood {model.lower_bound_:.6f}"


def not_converged_message(model) -> str:
    """What to change when a batch fit did not converge."""
    return (
        f"the fit did not converge in {model.n_iter_} iteration{'s' * (model.n_iter_ != 1)} "
        f"(tol {model.tol:g}); "
        "increase --max-iter or --tol, or try --n-init/--init-params"
    )


def run(args: argparse.Namespace) -> int:
    """Fit, check convergence, save the model (and the plot); the exit code."""
    check_cluster_options(args)
    check_new_output(args.model, args.overwrite, "--model", kind="model")
    check_plot_path(args.plot)
    check_output_dir(args.checkpoint, "--checkpoint")
    view = open_input(args)
    model = make_estimator(args, args.n_components)
    check_model_for_data(model, view.n_features)
    if view.n_samples < args.n_components:
        raise UsageError(
            f"INPUT {args.input!r} has {view.n_samples} rows, fewer than --n-components "
            f"{args.n_components}; lower -k."
        )
    say(args, f"INPUT {args.input}: {describe_input(view)}")
    sample = None
    with compute_session(args):
        seconds, _ = fit_model(model, view, args.checkpoint)
        if args.plot:
            sample = sample_rows(view.data, seed=args.random_state or 0)
    is_converged = converged(model)
    say(
        args,
        f"fitted {type(model).__name__} (K={model.n_components}, {model.covariance_type}) "
        f"in {seconds:.1f} s: {describe_fit(model)}",
    )
    if is_converged is False:
        if args.require_converged:
            raise NotConvergedExit(
                not_converged_message(model) + "; the model was not saved (--require-converged)."
            )
        warn(args, not_converged_message(model))
    model.set_params(progress=False)  # a display option of this run, not of the model
    model.save(args.model, overwrite=args.overwrite)
    say(args, f"model saved to {args.model}")
    if args.plot:
        from ..plotting import plot_fit

        plot_fit(model, sample, args.plot, title=f"daskgmm fit {args.input}")
        say(args, f"plot written to {args.plot}")
    print_json(
        args,
        {
            "command": "fit",
            "input": args.input,
            "model": args.model,
            "n_samples": view.n_samples,
            **model_summary(model),
            "seconds": round(seconds, 3),
            "plot": args.plot,
        },
    )
    return 0


def register(sub) -> None:
    """Add ``fit``."""
    parser = sub.add_parser(
        "fit",
        help="fit a Gaussian mixture to a Zarr store and save the model",
        description="Fit a Gaussian mixture by EM (one pass over the data per iteration; "
        "--online for stepwise EM in one or two passes; --bayesian for variational Bayes, "
        "whose prior empties the components the data do not need) and save it as a model "
        "directory (JSON + arrays, with the training data's fingerprint).",
    )
    add_input_options(parser)
    parser.add_argument(
        "--model", required=True, metavar="OUT", help="directory to save the fitted model in"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model")
    parser.add_argument(
        "--plot",
        metavar="PNG",
        help="write the convergence curve and the components over a data sample (with "
        "--bayesian also the weights, the emptied components greyed; needs matplotlib)",
    )
    add_estimator_options(parser)
    add_bayesian_options(parser)
    add_output_options(parser)
    add_progress_option(parser)
    add_cluster_options(parser)
    parser.set_defaults(func=run)
