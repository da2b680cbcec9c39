"""The estimator the model options describe: batch or online EM, validated, unfitted."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .options import cli_words
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
    GaussianMixture or OnlineGaussianMixture

    Raises
    ------
    UsageError
        For options of the other kind of EM, or invalid parameter values.
    """
    from ..estimators import GaussianMixture, OnlineGaussianMixture

    online = args.online
    mine, other = (_ONLINE_ONLY, _BATCH_ONLY) if online else (_BATCH_ONLY, _ONLINE_ONLY)
    misplaced = [flag for name, flag in other.items() if getattr(args, name, None) is not None]
    if getattr(args, "require_converged", False) and online:
        misplaced.append("--require-converged")
    if misplaced:
        them = "them" if len(misplaced) > 1 else "it"
        raise UsageError(
            f"{', '.join(misplaced)} {'apply' if len(misplaced) > 1 else 'applies'} to "
            f"{'batch' if online else 'online'} EM only; "
            + (f"drop {them} or drop --online." if online else f"drop {them} or add --online.")
        )
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
    extra = {name: getattr(args, name) for name in mine}
    extra = {name: value for name, value in extra.items() if value is not None}
    cls = OnlineGaussianMixture if online else GaussianMixture
    model = cls(n_components, **common, **extra)
    try:
        _validate(model)
    except (TypeError, ValueError) as exc:
        raise UsageError(cli_words(str(exc))) from None
    return model


def _validate(model) -> None:
    from ..kernels.params import validate_parameters

    validate_parameters(model.get_params())
