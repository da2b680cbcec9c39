"""The one EM loop that every estimator runs, and the protocol it drives.

A model plugs into the loop through three methods (scikit-learn's
``BaseMixture`` has the same shape of hooks)::

    estep(params) -> responsibilities     what every chunk applies in a pass
    mstep(stats, params) -> params        new parameters from the merged statistics
    lower_bound(stats, params, new_params) -> float
                                          the figure that convergence watches

Each *step* of the loop is one pass over some row chunks (all of them for batch
EM, a mini-batch for stepwise EM: :func:`daskgmm.engine.passes.run_pass`), then
the M-step on the client.  Batch EM repeats the step until the lower bound
changes by less than ``tol``; stepwise EM walks a schedule of mini-batches and
blends statistics in its ``mstep``.  :func:`best_of_initialisations` runs the
loop once per initialisation and keeps the best run, as ``n_init`` asks.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..engine.passes import PassClock, held_rows, run_pass
from ..engine.rows import RowChunks
from .fit_events import fit_scope

logger = logging.getLogger("daskgmm.mixture")


class EMModel(Protocol):
    """What the EM loop needs of a model."""

    def estep(self, params: tuple):
        """What assigns rows to components under ``params`` (an ``EStep``)."""

    def mstep(self, stats, params: tuple) -> tuple:
        """New parameters from a pass's merged statistics."""

    def lower_bound(self, stats, params: tuple, new_params: tuple) -> float:
        """The objective after the step, which convergence compares: from the
        pass's statistics under ``params`` and the M-step's ``new_params`` (the
        variational bound needs both)."""


@dataclass
class EMRun:
    """One initialisation's EM run: where it is and how it got there.

    Attributes
    ----------
    params : tuple
        ``(weights, means, covariances, precisions_cholesky)``.
    lower_bound : float
        After the last step (``-inf`` before the first).
    n_iter : int
        Steps taken.
    converged : bool
    lower_bounds : list of float
        The lower bound after every step.
    """

    params: tuple
    lower_bound: float
    n_iter: int = 0
    converged: bool = False
    lower_bounds: list = field(default_factory=list)


@dataclass
class LoopSettings:
    """How the loop passes over the data and when it stops.

    Attributes
    ----------
    tol : float or None
        Converged when the lower bound changes by less; None never converges
        (stepwise EM runs its schedule).
    split_every : int or None
        Fan-in of the reduction tree.
    nan_policy : {'raise', 'omit'}
    verbose_interval : int or None
        Log a step every this many steps (at DEBUG); None: the model logs its
        steps itself.
    logger : logging.Logger
        Where the steps are logged (the estimator's logger).
    checkpoint : bool
        Whether ``after_step`` writes a checkpoint (its time goes into the records).
    n_steps : int or None
        Steps left in all, where ``steps`` cannot tell (a generator); for the
        records' time left.
    """

    tol: float | None = None
    split_every: int | None = None
    nan_policy: str = "raise"
    verbose_interval: int | None = 10
    logger: logging.Logger = field(default_factory=lambda: logger)
    checkpoint: bool = False
    n_steps: int | None = None


def run_em(
    model: EMModel,
    rows: RowChunks,
    run: EMRun,
    steps: Iterable[Sequence[int] | None],
    settings: LoopSettings,
    after_step: Callable[[EMRun], None] | None = None,
    bar=None,
) -> EMRun:
    """EM steps from ``run`` until convergence or the end of ``steps``.

    Parameters
    ----------
    model : EMModel
    rows : RowChunks
    run : EMRun
        Updated in place; a resumed run continues after its last step.
    steps : iterable
        The chunks each step visits (None: all of them).
    settings : LoopSettings
    after_step : callable, optional
        Called with the run after every step (checkpoints).
    bar : FitProgress, optional

    Returns
    -------
    EMRun
        ``run``.

    Notes
    -----
    Every step's record (:mod:`daskgmm.estimators.fit_events`) is published to
    the cluster's event log, logged at DEBUG and shown on ``bar``.  On a
    distributed cluster, in-memory row chunks are sent to the workers once for
    the loop rather than with every pass (:func:`daskgmm.engine.passes.held_rows`).
    """
    start = time.perf_counter()
    left = settings.n_steps if settings.n_steps is not None else operator.length_hint(steps, -1)
    total = None if left < 0 else run.n_iter + left
    clock, returned = PassClock(), None
    with fit_scope(tol=settings.tol) as events, held_rows(rows) as pass_rows:
        events.tol = settings.tol
        for chunk_ids in steps:
            if run.converged:
                break
            tick = time.perf_counter()
            stats = run_pass(
                pass_rows,
                model.estep(run.params),
                chunk_ids,
                split_every=settings.split_every,
                nan_policy=settings.nan_policy,
                clock=clock,
            )
            gap = None if returned is None else clock.submitted - returned
            returned = clock.returned
            change = _step(model, run, stats, settings, after_step, events)
            record = events.record(
                model, run, stats, change, time.perf_counter() - tick, gap, total
            )
            events.send(record, settings.logger)
            if bar is not None:
                bar.step(run.lower_bound, change, record)
            _log_step(settings, run, tick, change)
        events.flush()
    if settings.tol is not None:
        settings.logger.info(
            "Initialization %s. time lapse %.5fs\t lower bound %.5f",
            "converged" if run.converged else "did not converge",
            time.perf_counter() - start,
            run.lower_bound,
        )
    return run


def _step(model: EMModel, run: EMRun, stats, settings: LoopSettings, after_step, events) -> float:
    """The M-step and the lower bound after a pass; ``run`` moves on.  Returns the
    change of the lower bound."""
    params = model.mstep(stats, run.params)
    lower_bound = model.lower_bound(stats, run.params, params)
    change = lower_bound - run.lower_bound
    run.params, run.lower_bound = params, lower_bound
    run.lower_bounds.append(lower_bound)
    run.n_iter += 1
    run.converged = settings.tol is not None and abs(change) < settings.tol
    if after_step is not None:
        after_step(run)
        if settings.checkpoint:
            events.checkpointed()
    return change


def _log_step(settings: LoopSettings, run: EMRun, tick: float, change: float) -> None:
    """scikit-learn's verbose line, every ``verbose_interval`` steps."""
    if settings.verbose_interval and run.n_iter % settings.verbose_interval == 0:
        settings.logger.debug(
            "  Iteration %d\t time lapse %.5fs\t ll change %.5f",
            run.n_iter,
            time.perf_counter() - tick,
            change,
        )


@dataclass
class Initialisations:
    """Where a best-of-``n_init`` fit starts (fresh, or from its checkpoint).

    Attributes
    ----------
    n_init : int
    first : int
        The first initialisation to run.
    resumed : EMRun or None
        The run to continue before drawing new ones.
    best : EMRun or None
        The best finished run so far.
    """

    n_init: int
    first: int = 0
    resumed: EMRun | None = None
    best: EMRun | None = None


def best_of_initialisations(
    start: Initialisations,
    new_run: Callable[[], EMRun],
    iterate: Callable[[EMRun, int, EMRun | None], None],
    max_iter: int,
    finished: Callable[[EMRun], None] | None = None,
) -> EMRun:
    """Run EM from each initialisation and keep the run with the highest lower bound.

    Parameters
    ----------
    start : Initialisations
    new_run : callable
        A fresh run from new initial parameters (consumes the random state).
    iterate : callable
        ``iterate(run, init, best)``: the EM steps of one run (:func:`run_em`).
    max_iter : int
        0: no iteration at all; the last initial parameters are the result.
    finished : callable, optional
        Called with the best run once all initialisations are done.

    Returns
    -------
    EMRun
    """
    best, resumed = start.best, start.resumed
    with fit_scope(start.n_init) as events:
        for init in range(start.first, start.n_init):
            logger.info("Initialization %d", init + 1)
            if resumed is not None:
                run, resumed = resumed, None
            else:
                run = new_run()
            if max_iter == 0:
                best = EMRun(run.params, -np.inf)
                continue
            events.start_init(init)
            iterate(run, init, best)
            events.finish_init(run.n_iter)
            if best is None or run.lower_bound > best.lower_bound or best.lower_bound == -np.inf:
                best = run
    if finished is not None:
        finished(best)
    return best
