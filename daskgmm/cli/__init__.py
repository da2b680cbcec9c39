"""The ``daskgmm`` command line.

Each command lives in its own module with a ``register(subparsers)`` function that
adds its parser and sets ``func``; :func:`main` maps failures to exit codes
(0 success, 2 bad usage or input, 3 not converged with ``--require-converged``,
1 anything unexpected).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import NotConvergedExit
from .output import EXIT_ERROR, EXIT_NOT_CONVERGED, EXIT_USAGE, error

#: Command modules, in the order ``--help`` lists them.
COMMANDS = ("make_data", "fit", "predict", "score", "select", "info", "demo", "pipeline")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="daskgmm", description="Gaussian mixture models fitted by EM on Dask arrays."
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _bad_input_types() -> tuple:
    from ..errors import ClusterConnectionError

    return (ValueError, TypeError, FileNotFoundError, FileExistsError, ClusterConnectionError)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except NotConvergedExit as exc:
        error(str(exc))
        return EXIT_NOT_CONVERGED
    except KeyboardInterrupt as exc:
        error(str(exc) or "interrupted")
        return getattr(exc, "exit_code", 130)
    except _bad_input_types() as exc:
        error(str(exc))
        return EXIT_USAGE
    except Exception as exc:  # the last resort: say it, exit 1
        logging.getLogger("daskgmm.cli").debug("unexpected error", exc_info=True)
        error(f"unexpected {type(exc).__name__}: {exc} (run with -vv for the traceback)")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
