"""The ``daskgmm`` command line.

Each command lives in its own module with a ``register(subparsers)`` function that
adds its parser and sets ``func``; :func:`main` maps failures to exit codes
(0 success, 2 bad usage or input, 3 not converged with ``--require-converged``,
1 a full disk (category ``disk-full``) or anything unexpected, 141 when the reader
of the output went away, as in ``daskgmm ... | head -1``).  With ``--json`` a failure
is also a JSON object on stdout.
The global options (``-v``, ``--quiet``) are taken before or after the command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .._version import __version__
from ..errors import DiskFullError, NotConvergedExit
from .output import (
    EXIT_ERROR,
    EXIT_NOT_CONVERGED,
    EXIT_USAGE,
    error,
    print_json_error,
    silence_broken_pipe,
)

#: Command modules, in the order ``--help`` lists them.
COMMANDS = ("make_data", "fit", "predict", "score", "select", "info", "demo", "pipeline")


class ArgumentError(SystemExit):
    """Options that do not parse (argparse's message; exit code 2)."""

    def __init__(self, message: str):
        super().__init__(EXIT_USAGE)
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors end as :class:`ArgumentError` (so that
    ``--json`` can report them) after the usual usage and message on stderr."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise ArgumentError(message)


def _add_global_options(parser: argparse.ArgumentParser, after_command: bool) -> None:
    """``-v`` and ``--quiet``; after the command they default to SUPPRESS so that
    a value given before the command stays."""
    suppress = argparse.SUPPRESS
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        dest="verbose_after" if after_command else "verbose",
        default=suppress if after_command else 0,
        help="log more (-vv for debug)",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=suppress if after_command else False,
        help="no progress or messages, only errors (and --json's JSON)",
    )


def _subparsers(parser: argparse.ArgumentParser):
    """Every parser below ``parser`` (commands, and actions such as ``pipeline run``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield child
                yield from _subparsers(child)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = _Parser(
        prog="daskgmm", description="Gaussian mixture models fitted by EM on Dask arrays."
    )
    parser.add_argument("--version", action="version", version=f"daskgmm {__version__}")
    _add_global_options(parser, after_command=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    for child in _subparsers(parser):
        _add_global_options(child, after_command=True)
    return parser


def _bad_input_types() -> tuple:
    from ..errors import ClusterConnectionError

    return (ValueError, TypeError, FileNotFoundError, FileExistsError, ClusterConnectionError)


def _asks_for_json(argv: list[str]) -> bool:
    """Whether ``--json`` is among the options (for errors found while parsing them)."""
    return "--json" in (argv[: argv.index("--")] if "--" in argv else argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return silence_broken_pipe()


def _main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except ArgumentError as exc:
        if _asks_for_json(argv):
            named = [word for word in argv if word.replace("-", "_") in COMMANDS][:1]
            summary = {"command": named[0]} if named else None
            print_json_error(None, exc.message, "ArgumentError", "usage", EXIT_USAGE, summary)
        return EXIT_USAGE
    verbose = args.verbose + getattr(args, "verbose_after", 0)
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        raise
    except NotConvergedExit as exc:
        return _failed(args, exc, str(exc), EXIT_NOT_CONVERGED, "not-converged")
    except KeyboardInterrupt as exc:
        code = getattr(exc, "exit_code", 130)
        return _failed(args, exc, str(exc) or "interrupted", code, "interrupted")
    except _bad_input_types() as exc:
        return _failed(args, exc, str(exc), EXIT_USAGE, "usage")
    except DiskFullError as exc:  # it says what to free; nothing unexpected about it
        return _failed(args, exc, str(exc), EXIT_ERROR, "disk-full")
    except Exception as exc:  # the last resort: say it, exit 1
        logging.getLogger("daskgmm.cli").debug("unexpected error", exc_info=True)
        message = f"unexpected {type(exc).__name__}: {exc} (run with -vv for the traceback)"
        return _failed(args, exc, message, EXIT_ERROR, "unexpected")


def _failed(args: argparse.Namespace, exc: BaseException, message: str, code: int, category):
    """The error line on stderr, with ``--json`` the error object on stdout; the code."""
    error(message)
    summary = getattr(exc, "summary", None)
    print_json_error(args, message, type(exc).__name__, category, code, summary)
    return code


if __name__ == "__main__":
    sys.exit(main())
