"""One record per EM iteration: what a fit publishes while it runs.

The EM loop (:func:`daskgmm.estimators.em.run_em`) hands every finished
iteration (or mini-batch) to the fit's :class:`FitEvents`, which makes a record
of it (the keys: :data:`daskgmm.cluster.events.RECORD_KEYS`) and sends it

- on a distributed cluster, to the scheduler's event log (topic ``daskgmm``,
  :func:`daskgmm.cluster.events.publish`), which the dashboard's ``/events``
  page and daskgmm's page ``/individual-daskgmm`` show;
- on every scheduler, to the estimator's logger (``daskgmm.mixture``,
  ``daskgmm.online``) at DEBUG, the record in the log record's ``daskgmm_record``
  attribute, and to the progress line (``progress=True``).

A fit's records share an id.  A batch fit's :func:`fit_scope` spans all its
initialisations, and a grid's all its models, which iterate together
(:func:`daskgmm.estimators.joint.fit_jointly` opens it; each record names its model
and initialisation); a loop run outside one (stepwise EM, ``partial_fit``) is a fit
of its own.
``dask.config.set({"daskgmm.events": False})`` turns publishing to the cluster
off (the logger and the progress line still get the records).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import math
import time
import uuid

import dask

from ..cluster import current_client
from ..cluster.events import ACTION, flush, publish
from ..engine.progress import steps_left

#: The dask configuration key that switches publishing to the cluster on and off.
CONFIG_KEY = "daskgmm.events"

_current: contextvars.ContextVar[FitEvents | None] = contextvars.ContextVar(
    "daskgmm_fit_events", default=None
)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


class FitEvents:
    """The records of one fit: its id, where it is, its timing.

    Parameters
    ----------
    n_init : int
        Initialisations of the fit (they iterate together, sharing passes: the
        time left of a record is its own run's).
    tol : float, optional
        The convergence tolerance (the time left is estimated from it).
    """

    def __init__(self, n_init: int = 1, tol: float | None = None):
        self.fit_id = uuid.uuid4().hex[:12]
        self.n_init = max(int(n_init), 1)
        self.tol = tol
        self.iteration_seconds: list[float] = []
        self.last_checkpoint: float | None = None
        self.publish_seconds = 0.0
        self.published = 0

    def checkpointed(self) -> None:
        """A checkpoint was written just now."""
        self.last_checkpoint = time.time()

    def record(
        self, model, run, stats, change: float, seconds: float, gap, total, init: int = 0
    ) -> dict:
        """The record of the iteration ``run`` has just taken.

        Parameters
        ----------
        model : EMModel
            Its ``_weights_of(params)`` gives the component weights (default
            ``params[0]``).
        run : EMRun
        stats : SufficientStats
            The pass's merged statistics.
        change : float
            Of the lower bound.
        seconds : float
            Of the iteration.
        gap : float or None
            Client-side seconds before this iteration's pass.
        total : int or None
            Iterations this initialisation may take at most.
        init : int
            Which initialisation of its model ``run`` is (from 0).
        """
        self.iteration_seconds.append(seconds)
        weights = getattr(model, "_weights_of", lambda params: params[0])(run.params)
        return {
            "action": ACTION,
            "fit": self.fit_id,
            "estimator": type(model).__name__,
            "model": _model_label(model),
            "init": int(init),
            "n_init": self.n_init,
            "iteration": int(run.n_iter),
            "lower_bound": _finite(run.lower_bound),
            "change": _finite(change),
            "seconds": float(seconds),
            "gap": _finite(gap),
            "rows": int(stats.n_rows),
            "bad_rows": int(stats.n_bad),
            "weights": [float(w) for w in weights],
            "last_checkpoint": self.last_checkpoint,
            **self._time_left(run, total),
            "converged": bool(run.converged),
            "time": time.time(),
        }

    def _time_left(self, run, total) -> dict:
        """Seconds left, estimated and at most, at the mean seconds per iteration."""
        if total is None:
            return {"time_left": None, "time_left_at_most": None}
        changes = [abs(b - a) for a, b in itertools.pairwise(run.lower_bounds)]
        done = total if run.converged else run.n_iter
        at_most, estimate = steps_left(total, done, self.tol, changes)
        per = sum(self.iteration_seconds) / len(self.iteration_seconds)
        bound = at_most * per
        guess = bound if estimate is None else min(estimate * per, bound)
        return {"time_left": guess, "time_left_at_most": bound}

    def send(self, record: dict, logger: logging.Logger) -> None:
        """Publish ``record`` on the cluster (if any) and log it."""
        client = current_client()
        if client is not None and dask.config.get(CONFIG_KEY, True):
            start = time.perf_counter()
            publish(client, record)
            self.publish_seconds += time.perf_counter() - start
            self.published += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(describe(record), extra={"daskgmm_record": record})

    def flush(self) -> None:
        """Wait until the records published so far are with the scheduler."""
        client = current_client()
        if client is not None and self.published:
            flush(client)


def _model_label(model) -> str:
    """'K=3 full': the model's number of components and covariance type."""
    k, covariance_type = getattr(model, "n_components", "?"), getattr(model, "covariance_type", "")
    return f"K={k} {covariance_type}".strip()


def _number(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def describe(record: dict) -> str:
    """One line for a record: init, iteration, lower bound, change, timing, rows."""
    parts = [
        f"fit {record['fit']} {record.get('model', '')}",
        f"init {record['init'] + 1}/{record['n_init']}",
        f"iteration {record['iteration']}",
        f"lower bound {_number(record['lower_bound'], '.6f')}",
        f"change {_number(record['change'], '.3g')}",
        f"{record['seconds']:.3f}s (gap {_number(record['gap'], '.4f')}s)",
        f"rows {record['rows']} bad {record['bad_rows']}",
        "weights [" + " ".join(f"{w:.3g}" for w in record["weights"]) + "]",
    ]
    if record["time_left"] is not None:
        parts.append(f"~{record['time_left']:.1f}s left")
    return "  ".join(parts)


def current_fit() -> FitEvents | None:
    """The fit whose loop runs now (in this context), if one is open."""
    return _current.get()


@contextlib.contextmanager
def fit_scope(n_init: int = 1, tol: float | None = None):
    """Open a fit whose records share one id, unless one is open already (yields it)."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    events = FitEvents(n_init, tol)
    token = _current.set(events)
    try:
        yield events
    finally:
        _current.reset(token)
