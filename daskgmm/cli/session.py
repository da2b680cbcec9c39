"""Running a command's computation: the cluster it asks for, and fitting a model."""

from __future__ import annotations

import argparse
import time
import warnings
from contextlib import contextmanager

from ..errors import UsageError
from .inputs import check_output_file
from .options import cli_words
from .output import say

#: The options that choose a cluster, and the flags that set them.
_CLUSTER_CHOICES = {
    "scheduler": "--scheduler",
    "scheduler_file": "--scheduler-file",
    "workers": "--workers",
}
#: Options of the LocalCluster that ``--workers`` starts.
_LOCAL_CLUSTER_ONLY = {"threads": "--threads", "memory_limit": "--memory-limit"}


def _given(args: argparse.Namespace, options: dict) -> list[str]:
    return [flag for name, flag in options.items() if getattr(args, name, None) is not None]


def check_cluster_options(args: argparse.Namespace) -> None:
    """What the cluster options get wrong, found before any work.

    Raises
    ------
    UsageError
        Two ways of choosing a cluster; ``--threads`` or ``--memory-limit``
        without ``--workers`` (they would do nothing: dask's threaded scheduler
        has no memory limit, a running cluster has its own workers);
        ``--report`` without a cluster, or into a missing directory.
    """
    chosen = _given(args, _CLUSTER_CHOICES)
    if len(chosen) > 1:
        raise UsageError("Choose one of --scheduler, --scheduler-file and --workers.")
    local = _given(args, _LOCAL_CLUSTER_ONLY)
    if local and getattr(args, "workers", None) is None:
        which = " and ".join(local)
        which_set = f"{which} {'set' if len(local) > 1 else 'sets'}"
        if chosen:
            raise UsageError(
                f"{which_set} the LocalCluster that --workers N starts; {chosen[0]} "
                f"connects to a running cluster, whose workers have their own: drop {which}."
            )
        raise UsageError(
            f"{which_set} the LocalCluster that --workers N starts; without it dask's "
            f"threaded scheduler runs (no memory limit): add --workers N, or drop {which}."
        )
    report = getattr(args, "report", None)
    if report is not None and not chosen:
        raise UsageError(
            "--report needs a distributed cluster; add --workers N, --scheduler or "
            "--scheduler-file."
        )
    if report is not None:
        check_output_file(report, "--report")


@contextmanager
def compute_session(args: argparse.Namespace):
    """The cluster the options ask for (dashboard link printed), and the report.

    Yields the ``distributed.Client`` or None (dask's threaded scheduler).
    """
    check_cluster_options(args)
    if not any(getattr(args, name, None) is not None for name in _CLUSTER_CHOICES):
        yield None
        return
    from ..cluster import cluster_from_options, dashboard_link, performance_report, quiet_logs

    report = getattr(args, "report", None)
    quiet_logs()
    with cluster_from_options(
        scheduler=args.scheduler,
        scheduler_file=args.scheduler_file,
        workers=args.workers,
        threads=args.threads or 1,
        memory_limit=args.memory_limit or "auto",
    ) as client:
        link = dashboard_link(client)
        if link:
            say(args, f"dashboard: {link}")
            if args.workers:  # a cluster daskgmm started serves its page
                from ..cluster.dashboard import ROUTE

                say(args, f"the EM, live: {link.rsplit('/', 1)[0]}{ROUTE}")
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
