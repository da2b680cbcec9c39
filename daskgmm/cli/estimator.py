"""The estimator the model options describe, validated, unfitted: batch EM
(``GaussianMixture``), stepwise EM (``--online``), variational Bayes (``--bayesian``)
or both (``--bayesian --online``: ``OnlineBayesianGaussianMixture``)."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from ..kernels.params import ONLINE_VB_METHODS, PRIOR_TYPES
from .options import cli_words, positive_float
from .output import show_progress

#: Options of batch EM only: estimator parameter -> flag.
_BATCH_ONLY = {
    "max_iter": "--max-iter",
    "tol": "--tol",
    "n_init": "--n-init",
}
#: Options of online EM only: estimator parameter -> flag.
_ONLINE_ONLY = {
    "batch_size": "--batch-size",
    "max_passes": "--max-passes",
    "t0": "--t0",
    "kappa": "--kappa",
    "warm_up": "--warm-up",
    "final_batch_pass": "--final-batch-pass",
}
#: Options of variational Bayes only (``--bayesian``): estimator parameter -> flag.
_BAYESIAN_ONLY = {
    "weight_concentration_prior_type": "--weight-concentration-prior-type",
    "weight_concentration_prior": "--weight-concentration-prior",
    "mean_precision_prior": "--mean-precision-prior",
    "degrees_of_freedom_prior": "--degrees-of-freedom-prior",
}
#: Options of streaming variational Bayes only (``--bayesian --online``).
_ONLINE_BAYESIAN_ONLY = {"method": "--method"}


def add_bayesian_options(parser: argparse.ArgumentParser) -> None:
    """``--bayesian`` and the scalar priors (their defaults are the estimator's), for
    :func:`make_estimator`; ``fit`` takes them, ``select`` does not."""
    bayes = parser.add_argument_group(
        "variational Bayes",
        "The batch EM options apply too; --tol bounds the change of the lower bound (a total "
        "over the rows).",
    )
    bayes.add_argument(
        "--bayesian",
        action="store_true",
        help="fit a variational Bayesian mixture (BayesianGaussianMixture; with --online "
        "OnlineBayesianGaussianMixture): -k is an upper bound, the prior empties the "
        "components the data do not need",
    )
    bayes.add_argument(
        "--weight-concentration-prior-type", choices=PRIOR_TYPES, help="default dirichlet_process"
    )
    bayes.add_argument(
        "--weight-concentration-prior",
        type=positive_float,
        metavar="X",
        help="concentration of the weights' prior; smaller leaves more components empty "
        "(default 1/K)",
    )
    bayes.add_argument(
        "--mean-precision-prior",
        type=positive_float,
        metavar="X",
        help="precision of the means' prior (default 1)",
    )
    bayes.add_argument(
        "--degrees-of-freedom-prior",
        type=positive_float,
        metavar="X",
        help="degrees of freedom of the precisions' Wishart prior, > n_features - 1 "
        "(default n_features)",
    )
    bayes.add_argument(
        "--method",
        choices=ONLINE_VB_METHODS,
        help="with --online: memoized online variational Bayes or stochastic variational "
        "inference (default memoized)",
    )


def make_estimator(args: argparse.Namespace, n_components: int):
    """The estimator the options describe, its parameters validated (nothing fitted).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of :func:`daskgmm.cli.options.add_estimator_options`
        (and ``--nan-policy``, ``--progress``).
    n_components : int
        Components of the mixture.

    Returns
    -------
    GaussianMixture, OnlineGaussianMixture, BayesianGaussianMixture or
    OnlineBayesianGaussianMixture

    Raises
    ------
    UsageError
        For options of the other kind of EM, or invalid parameter values.
    """
    from ..estimators import (
        BayesianGaussianMixture,
        GaussianMixture,
        OnlineBayesianGaussianMixture,
        OnlineGaussianMixture,
    )

    bayesian, online = _check_bayesian(args), args.online
    mine = _check_misplaced(args, online, bayesian)
    common = dict(
        covariance_type=args.covariance_type,
        reg_covar=args.reg_covar,
        init_params=args.init_params,
        init_sample_size=args.init_sample_size,
        random_state=args.random_state,
        nan_policy=args.nan_policy or "raise",
        compute_dtype=args.compute_dtype,
        progress=show_progress(args),
    )
    extra = {name: getattr(args, name, None) for name in mine}
    extra = {name: value for name, value in extra.items() if value is not None}
    classes = {
        (False, False): GaussianMixture,
        (True, False): OnlineGaussianMixture,
        (False, True): BayesianGaussianMixture,
        (True, True): OnlineBayesianGaussianMixture,
    }
    model = classes[online, bayesian](n_components, **common, **extra)
    try:
        _validate(model)
    except (TypeError, ValueError) as exc:
        raise UsageError(cli_words(str(exc))) from None
    return model


def _check_misplaced(args: argparse.Namespace, online: bool, bayesian: bool) -> list[str]:
    """The estimator parameters the options may set; refuses options of the other
    kind of EM (and ``--warm-up`` with ``--bayesian``: its priors need none)."""
    mine, other = (_ONLINE_ONLY, _BATCH_ONLY) if online else (_BATCH_ONLY, _ONLINE_ONLY)
    misplaced = [flag for name, flag in other.items() if getattr(args, name, None) is not None]
    if getattr(args, "require_converged", False) and online:
        misplaced.append("--require-converged")
    if misplaced:
        them = "them" if len(misplaced) > 1 else "it"
        raise UsageError(
            f"{', '.join(misplaced)} {'apply' if len(misplaced) > 1 else 'applies'} to "
            f"{'batch' if online else 'online'} EM only; drop {them} or "
            f"{'drop' if online else 'add'} --online."
        )
    if bayesian and online and getattr(args, "warm_up", None) is not None:
        raise UsageError(
            "--warm-up applies to stepwise EM; with --bayesian the priors make every "
            "M-step well posed from the first mini-batch: drop --warm-up."
        )
    names = [name for name in mine if not (bayesian and name == "warm_up")]
    if bayesian:
        names += [*_BAYESIAN_ONLY, *(_ONLINE_BAYESIAN_ONLY if online else ())]
    return names


def _check_bayesian(args: argparse.Namespace) -> bool:
    """Whether ``--bayesian`` was given; refuses its options without it, and
    ``--method`` without ``--online``."""
    bayesian = bool(getattr(args, "bayesian", False))
    if getattr(args, "method", None) is not None and not (bayesian and args.online):
        raise UsageError(
            "--method chooses how --bayesian --online streams (memoized or svi); add "
            "--bayesian --online or drop --method."
        )
    given = [flag for name, flag in _BAYESIAN_ONLY.items() if getattr(args, name, None) is not None]
    if given and not bayesian:
        them = "them" if len(given) > 1 else "it"
        raise UsageError(
            f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to the Bayesian "
            f"model only; add --bayesian or drop {them}."
        )
    return bayesian


def check_model_for_data(model, n_features: int) -> None:
    """What the estimator's parameters get wrong for data of ``n_features`` (the priors
    of a Bayesian model), found from the input's metadata before any pass.

    Raises
    ------
    UsageError
        E.g. ``--degrees-of-freedom-prior`` not above ``n_features - 1``.
    """
    if not hasattr(model, "weight_concentration_prior_type"):
        return
    from ..kernels.priors import check_priors

    try:
        check_priors(model, n_features)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"{cli_words(str(exc))} (INPUT gives {n_features} features per row)"
        ) from None


def _validate(model) -> None:
    from ..kernels.params import validate_parameters

    validate_parameters(model.get_params())
