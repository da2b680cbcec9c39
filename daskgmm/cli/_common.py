"""What every ``daskgmm`` command shares: exit codes, cluster and output options."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager

logger = logging.getLogger("daskgmm.cli")

#: Exit codes of every command.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_CONVERGED = 3


class UsageError(ValueError):
    """Bad usage or bad input; the message says what to change (exit code 2)."""


class NotConvergedExit(RuntimeError):
    """``--require-converged`` and the fit did not converge (exit code 3)."""


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--scheduler``, ``--scheduler-file``, ``--workers``/``--threads``/
    ``--memory-limit`` (a LocalCluster) and ``--report``."""
    group = parser.add_argument_group("cluster (default: dask's threaded scheduler)")
    group.add_argument("--scheduler", metavar="ADDRESS", help="address of a running scheduler")
    group.add_argument(
        "--scheduler-file", metavar="PATH", help="scheduler file (dask-jobqueue, HPC batch jobs)"
    )
    group.add_argument(
        "--workers", type=int, metavar="N", help="start a LocalCluster with N worker processes"
    )
    group.add_argument(
        "--threads", type=int, default=1, metavar="T", help="threads per LocalCluster worker"
    )
    group.add_argument(
        "--memory-limit", default="auto", metavar="M", help="per LocalCluster worker, e.g. 2GiB"
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
    from ..cluster import cluster_from_options, dashboard_link, performance_report

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


def say(args: argparse.Namespace, message: str) -> None:
    """A line for the user on stdout, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(message, flush=True)


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
    print(f"daskgmm: error: {message}", file=sys.stderr, flush=True)
