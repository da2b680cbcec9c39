"""Running a command's computation: the cluster it asks for, and fitting a model."""

from __future__ import annotations

import argparse
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from ..errors import UsageError
from .options import cli_words
from .output import say


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
    from ..cluster import cluster_from_options, dashboard_link, performance_report, quiet_logs

    quiet_logs()
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
            raise UsageError(cli_words(str(exc))) from exc
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
