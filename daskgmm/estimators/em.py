"""The one EM loop that every estimator runs, and the protocol it drives.

A model plugs into the loop through three methods (scikit-learn's
``BaseMixture`` has the same shape of hooks)::

    estep(params) -> responsibilities     what every chunk applies in a pass
    mstep(stats, params) -> params        new parameters from the merged statistics
    lower_bound(stats, params, new_params) -> float
                                          the figure that convergence watches

Each *step* of the loop is one pass over some row chunks (all of them for batch
EM, a mini-batch for stepwise EM: :func:`daskgmm.engine.passes.run_pass_many`),
then the M-step on the client.  Batch EM repeats the step until the lower bound
changes by less than ``tol``; stepwise EM walks a schedule of mini-batches and
blends statistics in its ``mstep``.  :func:`run_em_many` iterates several runs
together, one pass for all (the ``n_init`` restarts of a batch fit, a grid of
models: :mod:`daskgmm.estimators.joint`); :func:`run_em` is the loop of one run.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..engine.passes import PassClock, held_rows, run_pass_many
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
    isolate : tuple of exception types
        Errors of a run's M-step that stop that run only (its ``error``), the
        others going on: a grid of models fitted together; empty: they raise.
    """

    tol: float | None = None
    split_every: int | None = None
    nan_policy: str = "raise"
    verbose_interval: int | None = 10
    logger: logging.Logger = field(default_factory=lambda: logger)
    checkpoint: bool = False
    n_steps: int | None = None
    isolate: tuple = ()


@dataclass
class Member:
    """One run among those a loop iterates together (:func:`run_em_many`).

    Attributes
    ----------
    model : EMModel
    run : EMRun
        Updated in place.
    init : int
        Which initialisation of its model the run is (for the records).
    max_iter : int or None
        Steps the run may have taken in all; None: as many as ``steps`` gives.
    tol : float or None
        Its convergence threshold (default: the loop's).
    seconds : float
        Wall seconds of the passes it took part in.
    error : str or None
        Why the run stopped, if an M-step failed (``LoopSettings.isolate``); the
        run keeps the parameters of its last good step.
    """

    model: EMModel
    run: EMRun
    init: int = 0
    max_iter: int | None = None
    tol: float | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def active(self) -> bool:
        """Whether the run takes the next step (not converged nor failed, steps left)."""
        if self.run.converged or self.error is not None:
            return False
        return self.max_iter is None or self.run.n_iter < self.max_iter


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

    :func:`run_em_many` for one run; ``after_step(run)`` (checkpoints) is called
    after every step.  Returns ``run``, updated in place.
    """
    member = Member(model, run, tol=settings.tol)
    after = None if after_step is None else (lambda members: after_step(run))
    run_em_many([member], rows, steps, settings, after, bar)
    return run


def run_em_many(
    members: list[Member],
    rows: RowChunks,
    steps: Iterable[Sequence[int] | None],
    settings: LoopSettings,
    after_pass: Callable[[list[Member]], None] | None = None,
    bar=None,
) -> list[Member]:
    """EM steps of several runs together, one pass over the data per step for all.

    Each step is one pass (:func:`daskgmm.engine.passes.run_pass_many`) over the
    chunks of ``steps``: every chunk is read once and reduced to the statistics of
    every run still iterating; then each of those runs takes its M-step.  A run
    that converges, or has taken its ``max_iter`` steps, drops out of the later
    passes.  Each run's steps are those it would take alone: the same chunk
    kernels, merged by the same tree, with the same M-step.

    Parameters
    ----------
    members : list of Member
    rows : RowChunks
    steps : iterable
        The chunks each step visits (None: all of them).
    settings : LoopSettings
    after_pass : callable, optional
        Called with ``members`` after every pass (checkpoints).
    bar : FitProgress, optional
        Shows the run furthest from converging.

    Returns
    -------
    list of Member
        ``members``, their runs updated in place.

    Notes
    -----
    Every step's record (:mod:`daskgmm.estimators.fit_events`) is published to
    the cluster's event log, logged at DEBUG and shown on ``bar``.  On a
    distributed cluster, in-memory row chunks are sent to the workers once for
    the loop rather than with every pass (:func:`daskgmm.engine.passes.held_rows`).
    """
    start = time.perf_counter()
    left = settings.n_steps if settings.n_steps is not None else operator.length_hint(steps, -1)
    clock, returned = PassClock(), None
    with fit_scope(tol=settings.tol) as events, held_rows(rows) as pass_rows:
        events.tol = settings.tol
        totals = [_total(member, left) for member in members]
        for chunk_ids in steps:
            active = [(m, total) for m, total in zip(members, totals, strict=True) if m.active]
            if not active:
                break
            tick = time.perf_counter()
            stats = run_pass_many(
                pass_rows,
                [m.model.estep(m.run.params) for m, _ in active],
                chunk_ids,
                split_every=settings.split_every,
                nan_policy=settings.nan_policy,
                clock=clock,
            )
            gap = None if returned is None else clock.submitted - returned
            returned = clock.returned
            stepped = [
                (member, total, one, _step(member, one, settings))
                for (member, total), one in zip(active, stats, strict=True)
            ]
            stepped = [step for step in stepped if step[0].error is None]
            if after_pass is not None:
                after_pass(members)
                if settings.checkpoint:
                    events.checkpointed()
            records = _report(stepped, events, settings, tick, gap)
            if bar is not None and records:
                _, slowest, change, record = max(records, key=lambda r: r[0])
                bar.step(slowest.run.lower_bound, change, record)
        events.flush()
    if settings.tol is not None:
        for member in members:
            settings.logger.info(
                "Initialization %s. time lapse %.5fs\t lower bound %.5f",
                "converged" if member.run.converged else "did not converge",
                time.perf_counter() - start,
                member.run.lower_bound,
            )
    return members


def _report(stepped: list, events, settings: LoopSettings, tick: float, gap) -> list:
    """Each run's record of the pass that began at ``tick``: published, logged;
    returned as ``(|change|, member, change, record)``."""
    seconds = time.perf_counter() - tick
    records = []
    for member, total, stats, change in stepped:
        member.seconds += seconds
        record = events.record(
            member.model, member.run, stats, change, seconds, gap, total, member.init
        )
        events.send(record, settings.logger)
        records.append((abs(change), member, change, record))
        _log_step(settings, member.run, tick, change)
    return records


def _total(member: Member, left: int) -> int | None:
    """Steps the member's run may take in all, for its records' time left."""
    if member.max_iter is not None:
        return member.max_iter
    return None if left < 0 else member.run.n_iter + left


def _step(member: Member, stats, settings: LoopSettings) -> float | None:
    """The M-step and the lower bound after a pass; the member's run moves on.
    Returns the change of the lower bound (None: the step failed and the run
    stopped, ``member.error`` says why)."""
    model, run = member.model, member.run
    tol = settings.tol if member.tol is None else member.tol
    try:
        params = model.mstep(stats, run.params)
        lower_bound = model.lower_bound(stats, run.params, params)
    except settings.isolate as exc:
        member.error = f"{type(exc).__name__} at iteration {run.n_iter + 1}: {exc}"
        settings.logger.warning("a run stopped (the others go on): %s", member.error)
        return None
    change = lower_bound - run.lower_bound
    run.params, run.lower_bound = params, lower_bound
    run.lower_bounds.append(lower_bound)
    run.n_iter += 1
    run.converged = tol is not None and abs(change) < tol
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
        The initialisation the first of ``resumed`` is (or the first to draw).
    resumed : list of EMRun
        Runs to continue, initialisations ``first, first + 1, ...``; those after
        them are drawn anew.
    best : EMRun or None
        The best run of the initialisations before ``first``.
    """

    n_init: int
    first: int = 0
    resumed: list = field(default_factory=list)
    best: EMRun | None = None
