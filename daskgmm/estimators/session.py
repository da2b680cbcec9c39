"""What surrounds a fit's computation: logging, BLAS threads, scheduler, progress, report."""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext

from ..cluster import performance_report
from ..engine.compute import single_threaded_blas, using_scheduler
from ..engine.progress import ChunkProgress, FitProgress


@contextmanager
def verbose_logging(logger: logging.Logger, verbose: int):
    """Show ``logger``'s lines on stderr during a verbose fit, unless the
    application has configured logging itself."""
    if not verbose or logger.hasHandlers():
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@contextmanager
def report_of(path, scheduler=None):
    """distributed's performance report of the block, when a path is given."""
    with performance_report(None if path is None else str(path), client=scheduler):
        yield


@contextmanager
def computing(scheduler, bar: FitProgress | None = None):
    """Single-threaded BLAS, the chosen scheduler and, with a bar, chunk progress."""
    with (
        single_threaded_blas(),
        using_scheduler(scheduler),
        ChunkProgress(bar) if bar is not None else nullcontext(),
    ):
        yield


@contextmanager
def stepwise_computing(model, n_batches: int):
    """:func:`computing` for ``n_batches`` mini-batches of a stepwise fit; with the
    model's ``progress``, its bar is ``model._bar`` meanwhile."""
    model._bar = FitProgress(n_batches, label="online EM") if model.progress else None
    try:
        with computing(model.scheduler, model._bar):
            yield
    finally:
        if model._bar is not None:
            model._bar.close(f"{model.n_batches_seen_} mini-batches seen")
        model._bar = None
