"""What every ``daskgmm`` command shares: exit codes, options, input, models, output.

Commands check everything they can before computing or writing anything: bad
options and bad input end with exit code 2 and a message saying what to change.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

logger = logging.getLogger("daskgmm.cli")

#: Exit codes of every command.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_CONVERGED = 3

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
PLOT_INSTALL_HINT = "pip install 'daskgmm[plot]'"


class UsageError(ValueError):
    """Bad usage or bad input; the message says what to change (exit code 2)."""


class NotConvergedExit(RuntimeError):
    """``--require-converged`` and the fit did not converge (exit code 3)."""


# --------------------------------------------------------------------------- #
# argument types: argparse turns their ArgumentTypeError into exit code 2
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
        default=1,
        metavar="T",
        help="threads per LocalCluster worker (default 1)",
    )
    group.add_argument(
        "--memory-limit",
        default="auto",
        metavar="M",
        help="per LocalCluster worker, e.g. 2GiB (default: the machine's memory / N)",
    )
    group.add_argument(
        "--report", metavar="HTML", help="write distributed's performance report here"
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--json``."""
    parser.add_argument("--quiet", action="store_true", help="no progress, only errors")
    parser.add_argument(
        "--json", action="store_true", help="print a machine-readable JSON summary last"
    )


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (default: when stderr is a terminal)."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal and not --quiet)",
    )


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw progress: ``--progress``/``--no-progress``, else when stderr
    is a terminal (so that logs of scheduled runs hold no progress lines); never with
    ``--quiet``."""
    if getattr(args, "quiet", False):
        return False
    chosen = getattr(args, "progress", None)
    return sys.stderr.isatty() if chosen is None else bool(chosen)


def local_progress_bar(args: argparse.Namespace, client=None):
    """dask's progress bar on stderr for work on a local scheduler (on a cluster
    the dashboard shows progress), when :func:`show_progress` says so."""
    if not show_progress(args) or client is not None:
        return nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=2.0, out=sys.stderr)


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
        choices=("raise", "omit"),
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
    """Options of the estimators (``GaussianMixture``; ``--online`` and its own)."""
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


_BATCH_ONLY = {
    "max_iter": "--max-iter",
    "tol": "--tol",
    "n_init": "--n-init",
}
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

    Raises
    ------
    UsageError
        For options of the other kind of EM, or invalid parameter values.
    """
    from .. import GaussianMixture, OnlineGaussianMixture

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
        progress=show_progress(args),
    )
    extra = {name: getattr(args, name) for name in mine}
    extra = {name: value for name, value in extra.items() if value is not None}
    cls = OnlineGaussianMixture if online else GaussianMixture
    model = cls(n_components, **common, **extra)
    try:
        _validate(model)
    except (TypeError, ValueError) as exc:
        raise UsageError(_cli_words(str(exc))) from None
    return model


def _validate(model) -> None:
    from .._validation import validate_parameters
    from ..online import ONLINE_CONSTRAINTS

    params = model.get_params()
    validate_parameters(params)
    for name, check in ONLINE_CONSTRAINTS.items():
        if name in params:
            check(name, params[name])


def _cli_words(message: str) -> str:
    """Python parameter names in a library message, as the options that set them."""
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
    for name in (
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
    ):
        message = re.sub(rf"\b{name}\b", "--" + name.replace("_", "-"), message)
    return message


# --------------------------------------------------------------------------- #
# input and models
# --------------------------------------------------------------------------- #
def open_input(args: argparse.Namespace):
    """The rows of ``INPUT`` as a ``daskgmm.io.RowView`` (lazy; nothing read yet).

    Raises
    ------
    UsageError
        When the store is missing, or the variables / dimensions do not fit it.
    """
    from ..io import RowView, open_rows

    variables = args.variable
    if variables is not None and len(variables) == 1:
        variables = variables[0]
    try:
        view = open_rows(
            args.input, variables, feature_dim=args.feature_dim, fill_value=args.fill_value
        )
    except FileNotFoundError:
        raise UsageError(
            f"INPUT {args.input!r}: no Zarr store there; check the path or URL "
            "(daskgmm make-data writes one)."
        ) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"INPUT {args.input!r}: {_cli_words(str(exc))}") from None
    if view.n_samples == 0 or view.n_features == 0:
        raise UsageError(
            f"INPUT {args.input!r} gives {view.n_samples} rows of {view.n_features} features; "
            "choose a non-empty --variable (and --feature-dim)."
        )
    if args.chunk_rows is not None:
        if len(view.sample_dims) != 1:
            raise UsageError(
                f"--chunk-rows applies to tables; INPUT {args.input!r} has sample dimensions "
                f"{list(view.sample_dims)}: drop --chunk-rows (rows follow the storage chunks)."
            )
        data = view.data.rechunk({0: args.chunk_rows})
        view = RowView(
            data=data,
            sample_dims=view.sample_dims,
            sample_chunks=(data.chunks[0],),
            coords=view.coords,
            is_xarray=view.is_xarray,
            feature_names=view.feature_names,
            attrs=view.attrs,
            source=view.source,
        )
    return view


def describe_input(view) -> str:
    """'30,000 x 4 float32 rows in 6 chunks'."""
    return (
        f"{view.n_samples:,} x {view.n_features} {view.data.dtype} rows in "
        f"{len(view.data.chunks[0])} chunks"
    )


def load_model(path: str):
    """A saved model, checked whole.

    Raises
    ------
    UsageError
        If there is no model at ``path`` or it does not load.
    """
    from .. import load
    from ..model_store import MODEL_FILE, ModelFileError

    if not Path(path).exists() and not Path(path).with_name(f".{Path(path).name}.old").exists():
        raise UsageError(
            f"MODEL {path!r} does not exist; give a directory written by 'daskgmm fit --model DIR'."
        )
    if Path(path).is_dir() and not (Path(path) / MODEL_FILE).is_file():
        raise UsageError(
            f"MODEL {path!r} holds no {MODEL_FILE}; give a directory written by "
            "'daskgmm fit --model DIR'."
        )
    try:
        return load(path)
    except ModelFileError as exc:
        raise UsageError(f"MODEL {path!r} cannot be used: {exc}") from None


def check_feature_count(model, view, args: argparse.Namespace) -> None:
    """The input gives as many features as the model was fitted on."""
    if view.n_features != model.n_features_in_:
        chosen = f" (--variable {' --variable '.join(args.variable)})" if args.variable else ""
        raise UsageError(
            f"INPUT {args.input!r} gives {view.n_features} features per row{chosen}, but the "
            f"model was fitted on {model.n_features_in_}; choose the variables and "
            "--feature-dim it was fitted with (daskgmm info MODEL shows its training data)."
        )


#: Files that mark a directory as what an output option may replace.
_MARKERS = {"model": ("model.json",), "store": ("zarr.json", ".zgroup", ".zarray")}


def check_new_output(path: str, overwrite: bool, what: str, kind: str = "store") -> None:
    """Refuse to replace an existing output unless ``--overwrite``, and even then
    anything but an output of the same kind (a model directory, a Zarr store).

    Parameters
    ----------
    path : str
        The output path or URL (remote stores are left to their writer).
    overwrite : bool
    what : str
        The option naming the path, for messages.
    kind : {'store', 'model'}
    """
    if "://" in path and not path.startswith("file://"):
        return  # remote stores: the writer refuses an existing one itself
    target = Path(path.removeprefix("file://"))
    if not target.exists():
        return
    if not overwrite:
        raise UsageError(
            f"{what} {path!r} exists; pass --overwrite to replace it, or choose another path."
        )
    if not target.is_dir():
        raise UsageError(f"{what} {path!r} is a file; choose another path.")
    if any(target.iterdir()) and not any((target / m).is_file() for m in _MARKERS[kind]):
        name = "a saved model" if kind == "model" else "a Zarr store"
        raise UsageError(
            f"{what} {path!r} is a directory but not {name}; daskgmm does not replace it: "
            "choose another path."
        )


def check_plot_path(path: str | None, flag: str = "--plot") -> None:
    """A PNG/SVG/PDF path, and matplotlib importable."""
    if path is None:
        return
    from .. import plotting

    if Path(path).suffix.lower() not in plotting.FORMATS:
        raise UsageError(
            f"{flag} {path!r}: give a file name ending in one of {', '.join(plotting.FORMATS)}."
        )
    if not plotting.available():
        raise UsageError(f"{flag} needs matplotlib: {PLOT_INSTALL_HINT}")


# --------------------------------------------------------------------------- #
# running
# --------------------------------------------------------------------------- #
@contextmanager
def compute_session(args: argparse.Namespace):
    """The cluster the options ask for (dashboard link printed), and the report.

    Yields the ``distributed.Client`` or None (dask's threaded scheduler).
    """
    wants_cluster = any(
        getattr(args, name, None) is not None for name in ("scheduler", "scheduler_file", "workers")
    )
    report = getattr(args, "report", None)
    if not wants_cluster:
        if report is not None:
            raise UsageError(
                "--report needs a distributed cluster; add --workers N, --scheduler or "
                "--scheduler-file."
            )
        yield None
        return
    if (
        sum(getattr(args, n, None) is not None for n in ("scheduler", "scheduler_file", "workers"))
        > 1
    ):
        raise UsageError("Choose one of --scheduler, --scheduler-file and --workers.")
    if report is not None and not Path(report).resolve().parent.is_dir():
        raise UsageError(f"--report {report!r}: its directory does not exist; create it first.")
    from ..cluster import cluster_from_options, dashboard_link, performance_report

    _quiet_distributed_logs()
    with cluster_from_options(
        scheduler=args.scheduler,
        scheduler_file=args.scheduler_file,
        workers=args.workers,
        threads=args.threads,
        memory_limit=args.memory_limit,
    ) as client:
        link = dashboard_link(client)
        if link:
            say(args, f"dashboard: {link}")
        with performance_report(report, client):
            yield client
    if report is not None:
        say(args, f"performance report: {report}")


def _quiet_distributed_logs() -> None:
    """distributed logs every scheduler and worker event at INFO: show them only
    with ``-v`` (the level the user chose for the root logger).  bokeh's warning
    about the dashboard's wildcard websocket origin (the dashboard listens on
    127.0.0.1 only) is shown from ``-v`` on too."""
    import distributed  # noqa: F401  (configures its loggers on import)

    level = max(logging.getLogger().getEffectiveLevel(), logging.INFO)
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("bokeh").setLevel(logging.ERROR if level > logging.INFO else level)


def fit_model(model, view, checkpoint: str | None = None) -> tuple[float, list[str]]:
    """Fit ``model`` to the rows, checkpointing to ``checkpoint`` if given.

    Returns (seconds, warnings other than non-convergence raised by the fit, which
    are shown as Python shows warnings).
    """
    from sklearn.exceptions import ConvergenceWarning

    kwargs = {} if checkpoint is None else {"checkpoint": checkpoint}
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            model.fit(view, **kwargs)
        except (ValueError, TypeError) as exc:
            raise UsageError(_cli_words(str(exc))) from exc
    seconds = time.perf_counter() - start
    messages = []
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            continue  # reported by the caller with the iteration count
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        messages.append(str(w.message))
    return seconds, messages


def converged(model) -> bool | None:
    """Whether a batch fit converged (None for online fits, which have no criterion)."""
    value = getattr(model, "converged_", None)
    return None if value is None else bool(value)


def say(args: argparse.Namespace, message: str) -> None:
    """A line for the user on stdout, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(message, flush=True)


def warn(args: argparse.Namespace, message: str) -> None:
    """A warning line on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(f"daskgmm: warning: {message}", file=sys.stderr, flush=True)


def print_json(args: argparse.Namespace, summary: dict) -> None:
    """The JSON summary as the last line of stdout, when ``--json``."""
    if getattr(args, "json", False):
        print(json.dumps(summary, default=_plain), flush=True)


def _plain(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def error(message: str) -> None:
    """An error line on stderr (``daskgmm: error: ...``)."""
    print(f"daskgmm: error: {message}", file=sys.stderr, flush=True)
