"""The options the commands share: argument types, option groups, and the wording
that turns library parameter names into the options that set them.

argparse turns the ``ArgumentTypeError`` of an argument type into exit code 2.
"""

from __future__ import annotations

import argparse
import math
import re

from ..kernels.params import COMPUTE_DTYPES, COVARIANCE_TYPES, INIT_PARAMS, NAN_POLICIES


# --------------------------------------------------------------------------- #
# argument types
# --------------------------------------------------------------------------- #
def _number(kind, low, strict: bool, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _number(int, 0, True, "an integer >= 1")
non_negative_int = _number(int, 0, False, "an integer >= 0")
positive_float = _number(float, 0.0, True, "a number > 0")
non_negative_float = _number(float, 0.0, False, "a number >= 0")


def fill_value(text: str):
    """``--fill-value``: 'auto', 'none' or a number."""
    if text.lower() in ("auto", "none"):
        return text.lower() if text.lower() == "auto" else None
    try:
        return float(text) if any(c in text.lower() for c in ".ein") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto', 'none' or a number, got {text!r}"
        ) from None


def warm_up(text: str):
    """``--warm-up``: 'auto' or a number of rows."""
    return "auto" if text == "auto" else positive_int(text)


def k_values(text: str) -> list[int]:
    """``--k``: '1..12', '2,4,8', '3' or combinations such as '1..4,8'."""
    values: set[int] = set()
    for part in text.replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:(?:\.\.|-)(\d+))?", part)
        if not match:
            raise argparse.ArgumentTypeError(
                f"expected a range such as 1..12 or a list such as 2,4,8, got {text!r}"
            )
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if low < 1 or high < low:
            raise argparse.ArgumentTypeError(
                f"component counts must be >= 1 and ranges increasing (1..12), got {part!r}"
            )
        values.update(range(low, high + 1))
    if len(values) > 200:
        raise argparse.ArgumentTypeError(f"{text!r} asks for {len(values)} fits; ask for fewer")
    return sorted(values)


# --------------------------------------------------------------------------- #
# option groups
# --------------------------------------------------------------------------- #
def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--scheduler``, ``--scheduler-file``, ``--workers``/``--threads``/
    ``--memory-limit`` (a LocalCluster) and ``--report``."""
    group = parser.add_argument_group("cluster (default: dask's threaded scheduler)")
    group.add_argument("--scheduler", metavar="ADDRESS", help="address of a running scheduler")
    group.add_argument(
        "--scheduler-file", metavar="PATH", help="scheduler file (dask-jobqueue, HPC batch jobs)"
    )
    group.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="start a LocalCluster with N worker processes",
    )
    group.add_argument(
        "--threads",
        type=positive_int,
        metavar="T",
        help="threads per LocalCluster worker (default 1; needs --workers)",
    )
    group.add_argument(
        "--memory-limit",
        metavar="M",
        help="per LocalCluster worker, e.g. 2GiB (default: the machine's memory / N; "
        "needs --workers)",
    )
    group.add_argument(
        "--report", metavar="HTML", help="write distributed's performance report here"
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` (``-v`` and ``--quiet`` are global: :mod:`daskgmm.cli`)."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print only a JSON object on stdout: the summary, or the error with its kind "
        "and exit code (the lines for people go to stderr)",
    )


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (default: when stderr is a terminal)."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal and not --quiet)",
    )


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """``INPUT`` and how to read it: ``--variable``, ``--feature-dim``,
    ``--fill-value``, ``--nan-policy``, ``--chunk-rows``."""
    parser.add_argument("input", metavar="INPUT", help="Zarr store: a path or URL")
    group = parser.add_argument_group("input")
    group.add_argument(
        "--variable",
        action="append",
        metavar="NAME",
        help="array of a group / variable of a dataset; repeat to stack several as features",
    )
    group.add_argument(
        "--feature-dim",
        metavar="DIM",
        help="dimension holding the features (default: the last); the others are samples",
    )
    group.add_argument(
        "--fill-value",
        type=fill_value,
        default="auto",
        metavar="V",
        help="value read as missing: a number, 'none', or 'auto' (the store's "
        "_FillValue/missing_value and non-zero fill value; default)",
    )
    group.add_argument(
        "--nan-policy",
        choices=NAN_POLICIES,
        help="rows with NaN/inf: fail ('raise') or leave them out ('omit'; labels -1); "
        "default: 'raise' for fit, the model's own for predict and score",
    )
    group.add_argument(
        "--chunk-rows",
        type=positive_int,
        metavar="N",
        help="rows per chunk (tables only; best a multiple of the stored chunk rows); "
        "default: the storage chunks",
    )


def add_estimator_options(parser: argparse.ArgumentParser, n_components: bool = True) -> None:
    """Options of the estimators (``GaussianMixture``; ``--online`` and its own).

    ``fit`` adds ``--bayesian`` and the priors too
    (:func:`daskgmm.cli.estimator.add_bayesian_options`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser; three groups are added: model, batch EM, online EM.
    n_components : bool, default True
        Whether to add the required ``-k``/``--n-components`` (``select`` takes
        ``--k`` instead).
    """
    _add_model_options(parser, n_components)
    _add_batch_options(parser)
    _add_online_options(parser)


def _add_model_options(parser: argparse.ArgumentParser, n_components: bool) -> None:
    """The options both kinds of EM take."""
    group = parser.add_argument_group("model")
    if n_components:
        group.add_argument(
            "-k",
            "--n-components",
            type=positive_int,
            required=True,
            metavar="K",
            help="number of mixture components",
        )
    group.add_argument("--covariance-type", choices=COVARIANCE_TYPES, default="full")
    group.add_argument(
        "--reg-covar",
        type=non_negative_float,
        default=1e-6,
        metavar="X",
        help="added to every covariance's diagonal (default 1e-6)",
    )
    group.add_argument("--init-params", choices=INIT_PARAMS, default="kmeans")
    group.add_argument(
        "--init-sample-size",
        type=positive_int,
        default=100_000,
        metavar="N",
        help="rows sampled for the k-means start (default 100000)",
    )
    group.add_argument(
        "--compute-dtype",
        choices=COMPUTE_DTYPES,
        default="float64",
        help="precision of the E-step's products: float32 is faster, statistics still "
        "accumulate in float64 (default float64)",
    )
    group.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="write the fit's state here after every iteration (mini-batch with --online); "
        "run the same command again to resume",
    )
    group.add_argument(
        "--random-state",
        type=non_negative_int,
        metavar="SEED",
        help="seed of the initialisation (and of the online chunk order)",
    )


def _add_batch_options(parser: argparse.ArgumentParser) -> None:
    """The options of batch EM only (their defaults are the estimator's)."""
    batch = parser.add_argument_group("batch EM (the default)")
    batch.add_argument(
        "--max-iter", type=positive_int, metavar="N", help="EM iterations at most (default 100)"
    )
    batch.add_argument(
        "--tol",
        type=non_negative_float,
        metavar="X",
        help="stop when the mean log-likelihood changes by less (default 1e-3)",
    )
    batch.add_argument(
        "--n-init", type=positive_int, metavar="N", help="initialisations, best kept (default 1)"
    )
    batch.add_argument(
        "--require-converged",
        action="store_true",
        help="exit with code 3 (saving nothing) unless the fit converged",
    )


def _add_online_options(parser: argparse.ArgumentParser) -> None:
    """``--online`` and the options of stepwise EM only (their defaults are the estimator's)."""
    online = parser.add_argument_group("online (stepwise) EM")
    online.add_argument(
        "--online",
        action="store_true",
        help="fit by stepwise EM over mini-batches (OnlineGaussianMixture)",
    )
    online.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="ROWS",
        help="rows per mini-batch, rounded to whole chunks (default 20000)",
    )
    online.add_argument(
        "--max-passes", type=positive_int, metavar="N", help="passes over the data (default 2)"
    )
    online.add_argument(
        "--t0", type=non_negative_float, metavar="X", help="step size offset (default 1.0)"
    )
    online.add_argument(
        "--kappa",
        type=positive_float,
        metavar="X",
        help="step size decay in (0.5, 1] (default 0.6)",
    )
    online.add_argument(
        "--warm-up", type=warm_up, metavar="ROWS", help="rows averaged before the first M-step"
    )
    online.add_argument(
        "--final-batch-pass",
        action="store_true",
        default=None,
        help="end with one exact batch EM iteration",
    )


# --------------------------------------------------------------------------- #
# library words -> option words
# --------------------------------------------------------------------------- #
#: Estimator parameters whose name in a message becomes ``--the-option``.
_OPTION_PARAMETERS = (
    "n_components",
    "covariance_type",
    "reg_covar",
    "max_iter",
    "n_init",
    "init_params",
    "batch_size",
    "max_passes",
    "kappa",
    "warm_up",
    "nan_policy",
    "init_sample_size",
    "compute_dtype",
    "weight_concentration_prior_type",
    "weight_concentration_prior",
    "mean_precision_prior",
    "degrees_of_freedom_prior",
)


def cli_words(message: str) -> str:
    """Python parameter names in a library message, as the options that set them.

    Parameters
    ----------
    message : str
        A message of the library (a ``ValueError`` or ``TypeError``).

    Returns
    -------
    str
        The message, with ``variables=...``, ``feature_dim`` and the estimator
        parameters named as the command-line options that set them.
    """
    message = re.sub(
        r"variables='name' or variables=\['a', 'b'\]",
        "--variable NAME (repeat for several)",
        message,
    )
    message = re.sub(r"variables='name'", "--variable NAME", message)
    message = re.sub(
        r"(Variable\(s\) .* not found; .*)\.$", r"\1: choose with --variable.", message
    )
    message = re.sub(
        r"it has no variable (.*)\.$", r"it has no variable \1; drop --variable.", message
    )
    message = re.sub(r"\bfeature_dim\b", "--feature-dim", message)
    for name in _OPTION_PARAMETERS:
        message = re.sub(rf"\b{name}\b", "--" + name.replace("_", "-"), message)
    return message
