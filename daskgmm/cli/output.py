"""What the user sees: exit codes, lines on stdout and stderr, the JSON summary, progress.

The command line owns the terminal: these helpers are the only places in
``daskgmm.cli`` that print.  With ``--json`` stdout holds one JSON object and
nothing else (the summary, or on failure the error); the lines for people go to
stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import nullcontext

logger = logging.getLogger("daskgmm.cli")

#: Exit codes of every command.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_CONVERGED = 3
#: 128 + SIGPIPE: what a shell reports for a writer whose reader went away (``| head``).
EXIT_BROKEN_PIPE = 141

PLOT_INSTALL_HINT = "pip install 'daskgmm[plot]'"


def say(args: argparse.Namespace, message: str) -> None:
    """A line for the user, unless ``--quiet``: on stdout, or on stderr with
    ``--json`` (stdout then holds the JSON only)."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr if getattr(args, "json", False) else sys.stdout, flush=True)


def warn(args: argparse.Namespace, message: str) -> None:
    """A warning line on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(f"daskgmm: warning: {message}", file=sys.stderr, flush=True)


def print_json(args: argparse.Namespace, summary: dict) -> None:
    """The JSON summary, on one line of stdout, when ``--json``."""
    if getattr(args, "json", False):
        print(json.dumps(summary, default=_plain), flush=True)


def print_json_error(
    args: argparse.Namespace | None,
    message: str,
    kind: str,
    category: str,
    exit_code: int,
    summary: dict | None = None,
) -> None:
    """The failure as the JSON object on stdout, when ``--json``.

    Parameters
    ----------
    args : argparse.Namespace or None
        None when the options did not parse (then ``--json`` was in them).
    message : str
        What the error line on stderr says.
    kind : str
        The exception's class name (``UsageError``, ``ArgumentError``, ...).
    category : str
        ``usage``, ``not-converged``, ``interrupted``, ``busy`` or ``unexpected``.
    exit_code : int
    summary : dict, optional
        What the command knows of its run (a pipeline's run record), kept in the object.
    """
    if args is not None and not getattr(args, "json", False):
        return
    command = None if args is None else " ".join(_command_words(args))
    error_fields = {"error": message, "kind": kind, "category": category, "exit_code": exit_code}
    out = {**(summary or {}), **({"command": command} if command else {}), **error_fields}
    print(json.dumps(out, default=_plain), flush=True)


def _command_words(args: argparse.Namespace) -> list[str]:
    words = [getattr(args, "command", None), getattr(args, "pipeline_command", None)]
    return [w for w in words if w]


def silence_broken_pipe() -> int:
    """After the reader of stdout (or stderr) went away: point both at /dev/null,
    so that nothing more (nor the interpreter's flush at exit) fails, and return
    :data:`EXIT_BROKEN_PIPE` (the recipe of the ``signal`` module's docs)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError, AttributeError):  # not a real file (captured)
            pass
    os.close(devnull)
    return EXIT_BROKEN_PIPE


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


def local_progress_bar(args: argparse.Namespace, client=None, label: str | None = None):
    """A progress line on stderr over the tasks of work on a local scheduler (on a
    cluster the dashboard shows progress), when :func:`show_progress` says so.

    Parameters
    ----------
    args : argparse.Namespace
    client : distributed.Client, optional
    label : str, optional
        What the line starts with (default: the command's name).
    """
    if not show_progress(args) or client is not None:
        return nullcontext()
    from ..engine.progress import TaskProgress

    return TaskProgress(label or getattr(args, "command", None) or "daskgmm", stream=sys.stderr)
