"""Batch mixtures fitted together: one pass over the data per EM iteration for all.

When reading the data costs more than the arithmetic (object storage, network
disks, a busy cluster), fitting ``n_init`` restarts, or a grid of models, one
after another reads the data once per model per iteration.  Here every run of
every model iterates together: each pass reads each chunk once and reduces it to
the statistics of every run still iterating
(:func:`daskgmm.engine.passes.run_pass_many`); runs that converge drop out of the
later passes.  Each run takes the steps it would take alone, from the same
initial parameters drawn from the same random state in the same order, so each
model ends where fitting it alone ends.

A fit goes through four phases:

1. each model's initialisations are drawn in order; the ``init_params='random'``
   starts of all models share one pass, and the sample-based ones one gather;
2. the runs iterate together (:func:`daskgmm.estimators.em.run_em_many`), each
   model's checkpoint (all its runs) written after every pass;
3. each model keeps its best run;
4. on request (:func:`score_runs`), one more pass scores every run's mixture.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from dataclasses import dataclass, field

import numpy as np

from ..engine.passes import run_pass_many
from ..engine.rows import RowChunks
from ..kernels.density import LogDensity
from ..kernels.responsibilities import EStep
from .em import EMRun, Initialisations, LoopSettings, Member, run_em_many
from .fit_events import fit_scope
from .fit_state import pack_run

logger = logging.getLogger("daskgmm.mixture")


@dataclass
class ModelFit:
    """One model's part in a joint fit.

    Attributes
    ----------
    estimator : BatchMixture
        Checked (``_start_fit`` done) and ready to draw initialisations.
    rows : RowChunks
        Its view of the shared rows (its own initialisation sample, the shared
        cache of gathered samples).
    random_state : numpy.random.RandomState
    saver : Checkpoint
        Its checkpoint (inactive without a path).
    start : Initialisations
        Where it starts: afresh, or where its checkpoint says.
    fresh_run : bool
        Whether new runs are drawn (False: a warm start continues the fitted model).
    members : list of Member
        Its runs in this fit, in initialisation order.
    best : EMRun or None
        Its best run once the fit is over.
    """

    estimator: object
    rows: RowChunks
    random_state: np.random.RandomState
    saver: object
    start: Initialisations
    fresh_run: bool = True
    members: list = field(default_factory=list)
    best: EMRun | None = None

    @property
    def n_init(self) -> int:
        return self.start.n_init


def model_view(rows: RowChunks) -> RowChunks:
    """A model's own view of shared rows: the same chunks and gathered samples,
    its own initialisation sample and data moments."""
    return dataclasses.replace(rows, init_sample=None, data_moments=None)


def fit_jointly(
    fits: list[ModelFit], rows: RowChunks, bar=None, isolate: tuple = ()
) -> list[ModelFit]:
    """Fit every model of ``fits`` together; each keeps its best run (``fit.best``).

    Parameters
    ----------
    fits : list of ModelFit
        Their estimators must agree on ``split_every`` and ``nan_policy`` (one
        pass serves them all).
    rows : RowChunks
        The shared rows.
    bar : FitProgress, optional
    isolate : tuple of exception types
        Errors of a run's M-step (a singular covariance) that stop that run only,
        recorded in its member's ``error``; a model whose runs all stopped so has
        ``best`` None.  Empty: they raise, as fitting alone does.

    Returns
    -------
    list of ModelFit
        ``fits``, with their ``members`` and ``best``.
    """
    settings = dataclasses.replace(_loop_settings(fits), isolate=isolate)
    with fit_scope(max(f.n_init for f in fits), settings.tol):
        _initialise(fits, rows, settings)
        todo = [f for f in fits if f.members and f.estimator.max_iter > 0]
        if todo:
            members = [m for f in todo for m in f.members]
            if bar is not None:
                bar.start(min(m.run.n_iter for m in members))
            saved = {}
            run_em_many(
                members,
                rows,
                itertools.repeat(None),
                settings,
                lambda _: _save_stepped(todo, saved),
                bar,
            )
    for f in fits:
        f.best = _best(f)
        _save(f)
    return fits


def _loop_settings(fits: list[ModelFit]) -> LoopSettings:
    """The settings of the shared passes (each run keeps its own tol and max_iter)."""
    first = fits[0].estimator
    for f in fits[1:]:
        for name in ("split_every", "nan_policy"):
            if getattr(f.estimator, name) != getattr(first, name):
                raise ValueError(
                    f"Models fitted together share their passes, so they need the same "
                    f"{name}: got {getattr(first, name)!r} and {getattr(f.estimator, name)!r}."
                )
    return LoopSettings(
        tol=first.tol,
        split_every=first.split_every,
        nan_policy=first.nan_policy,
        verbose_interval=first.verbose_interval,
        logger=logger,
        checkpoint=any(f.saver.path is not None for f in fits),
    )


def _initialise(fits: list[ModelFit], rows: RowChunks, settings: LoopSettings) -> None:
    """Every model's runs: the resumed ones, then new ones drawn in order, the
    'random' starts of all models computed by one shared pass."""
    starts = []
    for f in fits:
        first_new = f.start.first + len(f.start.resumed)
        for init in range(first_new, f.n_init if f.fresh_run else first_new + 1):
            spec = f.estimator._random_start(f.random_state) if f.fresh_run else None
            starts.append((f, init, spec))
    specs = [spec for _, _, spec in starts if spec is not None]
    stats = iter(
        run_pass_many(
            rows,
            specs,
            prefix="daskgmm_init",
            split_every=settings.split_every,
            nan_policy=settings.nan_policy,
        )
        if specs
        else ()
    )
    for f in fits:
        f.members = [_member(f, run, f.start.first + i) for i, run in enumerate(f.start.resumed)]
    for f, init, spec in starts:
        logger.info("Initialization %d", init + 1)
        if f.fresh_run:
            given = None if spec is None else next(stats)
            params = f.estimator._initial_params(f.rows, f.random_state, given)
            run = EMRun(params, -np.inf)
        else:
            run = EMRun(f.estimator._get_parameters(), f.estimator.lower_bound_)
        f.members.append(_member(f, run, init))


def _member(f: ModelFit, run: EMRun, init: int) -> Member:
    """Initialisation ``init`` of ``f``'s model, with its max_iter and tol."""
    return Member(f.estimator, run, init, f.estimator.max_iter, f.estimator.tol)


def _best(f: ModelFit) -> EMRun | None:
    """The run with the highest lower bound (the first among equals; with
    ``max_iter=0``, the last initialisation's parameters)."""
    if f.estimator.max_iter == 0:
        return f.members[-1].run if f.members else f.start.best
    best = f.start.best
    for member in f.members:
        if member.error is not None:
            continue
        run = member.run
        if best is None or run.lower_bound > best.lower_bound or best.lower_bound == -np.inf:
            best = run
    return best


def _save_stepped(fits: list[ModelFit], saved: dict) -> None:
    """Write the checkpoints of the models whose runs moved since their last one
    (converged models are not rewritten at every pass of the others)."""
    for f in fits:
        where = tuple((m.run.n_iter, m.error) for m in f.members)
        if saved.get(id(f)) != where:
            _save(f)
            saved[id(f)] = where


def _save(f: ModelFit) -> None:
    """Write the model's checkpoint: all its runs so far, and the best run of any
    initialisations before them.

    The random state goes with it; every initialisation was drawn before the
    first pass, so a resumed fit continues the same runs, and a finished fit's
    checkpoint (every run converged or at ``max_iter``) resumes to its result
    without a pass.
    """
    if f.saver.path is None:
        return
    estimator = f.estimator
    state, arrays = {"init": f.start.first, "runs": len(f.members)}, {}
    pack_run("run", None, state, arrays)
    pack_run("best", f.start.best, state, arrays, estimator._pack_params)
    for i, member in enumerate(f.members):
        pack_run(f"run{i}", member.run, state, arrays, estimator._pack_params)
    arrays.update(estimator._fit_state())
    f.saver.save(state, arrays)


def score_runs(fits: list[ModelFit], rows: RowChunks, nan_policy: str = "raise") -> dict:
    """Score every run's mixture on all rows in one pass (unweighted, as ``score``).

    A Bayesian model is scored under its posterior-mean mixture, as its ``bic``
    and ``aic`` are.  Leaves each estimator holding its best run.

    Returns
    -------
    dict
        ``id(member) -> {"log_likelihood", "n_scored", "n_parameters"}``: the sum
        of the rows' log-densities, the rows scored and the model's free
        parameters, for every run that did not fail.
    """
    specs, keyed = [], []
    for f in fits:
        for member in f.members:
            if member.error is not None:
                continue
            f.estimator._set_run_parameters(member.run.params)
            density: LogDensity = f.estimator._plug_in_density()
            specs.append(EStep(density))
            keyed.append((member, f.estimator._n_parameters()))
        if f.best is not None:
            f.estimator._set_run_parameters(f.best.params)
    if not specs:
        return {}
    unweighted = dataclasses.replace(rows, weights=None, weight_array=None)
    stats = run_pass_many(unweighted, specs, prefix="daskgmm_score", nan_policy=nan_policy)
    scores = {}
    for (member, n_parameters), one in zip(keyed, stats, strict=True):
        scores[id(member)] = {
            "log_likelihood": float(one.log_likelihood),
            "n_scored": int(one.n_rows - one.n_bad),
            "n_parameters": int(n_parameters),
        }
    return scores
