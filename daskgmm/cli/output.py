"""What the user sees: exit codes, lines on stdout and stderr, the JSON summary, progress.

The command line owns the terminal: these helpers are the only places in
``daskgmm.cli`` that print.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import nullcontext

logger = logging.getLogger("daskgmm.cli")

#: Exit codes of every command.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_CONVERGED = 3

PLOT_INSTALL_HINT = "pip install 'daskgmm[plot]'"


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
