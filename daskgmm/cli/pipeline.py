"""``daskgmm pipeline run SPEC`` and ``daskgmm pipeline status SPEC``.

The runner is :mod:`daskgmm.pipeline`; this module turns its outcomes into lines
for the user and exit codes: 0 a version was published or there was nothing new,
2 a bad spec or input (the message names the key), 3 not converged with
``--require-converged``, 75 another run of the spec holds its lock, 1 anything
unexpected.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys

from ..errors import NotConvergedExit
from .options import add_cluster_options, add_output_options
from .output import error, print_json, print_json_error, say
from .session import check_cluster_options, compute_session

_EPILOG = (
    "exit codes: 0 published a version or nothing new, 2 bad spec or input, 3 not "
    "converged (--require-converged), 75 another run of this spec is running, 1 "
    "unexpected error"
)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds (a number >= 0), got {text!r}"
        ) from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected seconds (a number >= 0), got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


class Terminated(KeyboardInterrupt):
    """SIGTERM (``systemctl stop``, a timeout): ends the run as an interruption.

    The command then exits with 143 (128 + SIGTERM), as a process killed by the
    signal reports it to shells and service managers.
    """

    exit_code = 128 + signal.SIGTERM


def _terminate(signum, frame):
    raise Terminated("terminated by SIGTERM")


def _summary(record, spec) -> str:
    if record.status == "nothing-new":
        kept = record.current_version
        return f"version {kept} stays published ({record.seconds:.1f} s)"
    unit = "update" if spec.mode == "online" else "iteration"
    fit = f"{record.iterations} {unit}{'' if record.iterations == 1 else 's'}"
    if record.converged is False:
        fit += ", NOT converged"
    current = spec.directory / "current"
    bound = "evidence lower bound" if spec.bayesian else "mean log-likelihood"
    return (
        f"published version {record.version} in {record.seconds:.1f} s: "
        f"{record.rows_processed:,} rows fitted ({spec.mode}, {fit}, {bound} "
        f"{record.log_likelihood:.6f}), {record.rows_predicted:,} rows predicted.\n"
        f"model: {current / 'model'}\npredictions: {current / 'predictions.zarr'}"
    )


def _run(args: argparse.Namespace) -> int:
    from ..pipeline import EXIT_BUSY, NotConvergedError, PipelineBusy, load_spec, run_pipeline

    check_cluster_options(args)
    spec = load_spec(args.spec)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        record = run_pipeline(
            spec,
            wait=args.wait,
            full=args.full,
            require_converged=True if args.require_converged else None,
            progress=not args.quiet and sys.stderr.isatty(),
            session=lambda: compute_session(args),
            notify=lambda message: say(args, message),
        )
    except PipelineBusy as busy:
        error(str(busy))
        record = busy.record.to_dict() if busy.record is not None else None
        print_json_error(args, str(busy), "PipelineBusy", "busy", EXIT_BUSY, record)
        return EXIT_BUSY
    except NotConvergedError as exc:
        not_converged = NotConvergedExit(str(exc))
        not_converged.summary = exc.record.to_dict()  # main puts it in --json's error object
        raise not_converged from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    say(args, _summary(record, spec))
    print_json(args, record.to_dict())
    return 0


def _cell(value, fmt: str = "") -> str:
    if value is None:
        return "-"
    return format(value, fmt)


def _status(args: argparse.Namespace) -> int:
    from ..pipeline import pipeline_status

    status = pipeline_status(args.spec, last=args.last)
    if args.json:
        print_json(args, status.to_dict())
        return 0
    spec = status.spec
    say(args, f"pipeline {spec.name!r} (mode {spec.mode}), state in {spec.directory}")
    _say_lines(args, _published_lines(status.published, spec))
    say(args, "versions kept: " + (", ".join(map(str, status.versions)) or "none"))
    _say_lines(args, _running_lines(status.running))
    if not status.runs:
        say(args, "no runs recorded")
        return 0
    say(args, f"last {len(status.runs)} runs:")
    _say_lines(args, _runs_table(status.runs))
    failed = [r for r in status.runs if r.message and r.status != "ok"]
    if failed:
        last = failed[-1]
        say(args, f"last message ({last.status}, {last.start}): {last.message}")
    return 0


def _say_lines(args: argparse.Namespace, lines: list[str]) -> None:
    for line in lines:
        say(args, line)


def _published_lines(published: dict | None, spec) -> list[str]:
    """What is published: its version, where it came from, its model and predictions."""
    if published is None:
        return ["published: nothing yet"]
    source = published["source"]
    return [
        f"published: version {published['version']}, created {published['created']} "
        f"({published['action']}: {published['reason']})",
        f"  {source['extent']:,} entries along {source['append_dim']!r}, {source['n_rows']:,} rows",
        f"  model:       {spec.directory / 'current' / 'model'}",
        f"  predictions: {spec.directory / 'current' / 'predictions.zarr'}",
    ]


def _running_lines(running: dict | None) -> list[str]:
    """The run going on now, or one that stopped without finishing."""
    if running is None:
        return []
    if running.get("alive") is False:
        return [
            f"a run (pid {running.get('pid')}, started {running.get('start')}) stopped "
            "without finishing; the next run records it and cleans up"
        ]
    return [
        f"running now: pid {running.get('pid')} on {running.get('host')}, "
        f"started {running.get('start')}"
    ]


def _runs_table(runs) -> list[str]:
    """The last runs as an aligned table, header first (text left, numbers right)."""
    header = ("start (UTC)", "status", "action", "rows", "iters", "log-lik", "version", "seconds")
    rows = [
        (
            (r.start or "-")[:19].replace("T", " "),
            r.status,
            r.action or "-",
            _cell(r.rows_processed, ","),
            _cell(r.iterations),
            _cell(r.log_likelihood, ".6f"),
            _cell(r.version),
            _cell(r.seconds, ".1f"),
        )
        for r in runs
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = []
    for line in (header, *rows):
        cells = [
            str(c).ljust(w) if i < 3 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def register(sub) -> None:
    """Add ``pipeline run`` and ``pipeline status``."""
    parser = sub.add_parser(
        "pipeline",
        help="run a scheduled pipeline (TOML spec) once, or show its runs",
        description="Scheduled pipelines: fit and predict again as data grow, safely "
        "re-runnable from cron or a systemd timer. See pipelines/example.toml.",
    )
    actions = parser.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run the pipeline once: process what is new, publish a new version",
        description="Run a pipeline once. With nothing new it computes nothing. A new "
        "version is published atomically; a run killed at any moment leaves the previous "
        "version published, and the next run cleans up. One JSON line per run goes to "
        "runs.jsonl in the state directory.",
        epilog=_EPILOG,
    )
    run.add_argument("spec", help="the pipeline's TOML spec")
    run.add_argument(
        "--wait",
        nargs="?",
        const=math.inf,
        type=_seconds,
        metavar="SECONDS",
        help="if another run of this spec is running, wait for it (at most SECONDS) "
        "instead of exiting with code 75",
    )
    run.add_argument(
        "--full",
        action="store_true",
        help="fit from scratch on all rows and predict all, whatever changed",
    )
    run.add_argument(
        "--require-converged",
        action="store_true",
        help="do not publish a batch fit that did not converge (exit code 3)",
    )
    add_cluster_options(run)
    add_output_options(run)
    run.set_defaults(func=_run)

    status = actions.add_parser(
        "status",
        help="show the published version and the last runs",
        description="Show what is published, the versions kept and the last runs (reads "
        "only; safe while a run is going on).",
    )
    status.add_argument("spec", help="the pipeline's TOML spec")
    status.add_argument("--last", type=_count, default=10, metavar="N", help="runs to show")
    status.add_argument("--json", action="store_true", help="print it all as JSON")
    status.set_defaults(func=_status)
