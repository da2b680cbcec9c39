"""Run a pipeline once: lock, recover, plan, fit, predict, publish, record.

:func:`run_pipeline` is what ``daskgmm pipeline run`` calls; :func:`pipeline_status`
what ``daskgmm pipeline status`` prints.  One run:

1. takes the pipeline's lock (:mod:`.lock`) or gives up with :class:`PipelineBusy`
   (recorded as ``busy``);
2. records a run that was killed before it could (``running.json`` left behind)
   and removes the partial or unpublished versions it left (:meth:`PipelineState.cleanup`);
3. opens the source and decides what to do (:func:`.plan.plan_run`); with nothing
   new it stops there, computing nothing;
4. writes a new version under ``versions/NNNNNN.partial``: the model, the
   predictions (all rows, or for an online append the old ones carried over plus
   the new rows', see :mod:`.carry`), and ``manifest.json``;
5. renames it to ``versions/NNNNNN`` and publishes it by replacing the ``current``
   symlink (one ``rename(2)``), then deletes versions beyond ``keep``;
6. appends its record to ``runs.jsonl``, whatever happened.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from ..io import write_predictions
from ..model_store import load
from .carry import extend_predictions, mirror_store
from .lock import PipelineBusy, PipelineLock, read_holder
from .plan import ACTION_APPEND, ACTION_NOTHING, Plan, plan_run
from .records import (
    STATUS_BUSY,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    STATUS_NOT_CONVERGED,
    STATUS_NOTHING_NEW,
    STATUS_OK,
    RunRecord,
    append_record,
    now,
    read_records,
)
from .source import Source, open_source
from .spec import PipelineSpec, load_spec
from .state import MANIFEST, MODEL_DIR, PREDICTIONS, PipelineState, write_json_atomic

logger = logging.getLogger(__name__)

#: **Test-only.**  ``POINT`` or ``POINT:SECONDS``: pause the run at ``POINT`` for up
#: to ``SECONDS`` (default 120) so that a test can kill it there; SIGUSR1 ends the
#: pause early.  A warning on the ``daskgmm.pipeline.runner`` logger says when the
#: pause starts.  Never set it in production.
TEST_PAUSE_ENV = "DASKGMM_PIPELINE_TEST_PAUSE"
#: Where a run can be paused: model written (predictions not yet); version complete
#: but not renamed; renamed but not published; published but not recorded.
PAUSE_POINTS = ("after-model", "before-publish", "after-rename", "after-publish")
MANIFEST_SCHEMA = 1


class NotConvergedError(RuntimeError):
    """``require_converged`` and the batch fit did not converge; nothing was published.

    Attributes
    ----------
    record : RunRecord
        The run's record (status ``not-converged``).
    """

    def __init__(self, message: str, record: RunRecord):
        super().__init__(message)
        self.record = record


# --------------------------------------------------------------------------- #
# the test-only pause
# --------------------------------------------------------------------------- #
def _pause_setting() -> tuple[str, float] | None:
    value = os.environ.get(TEST_PAUSE_ENV, "")
    if not value:
        return None
    point, _, seconds = value.partition(":")
    if point not in PAUSE_POINTS:
        raise ValueError(f"{TEST_PAUSE_ENV}={value!r}: the point must be one of {PAUSE_POINTS}.")
    try:
        return point, float(seconds) if seconds else 120.0
    except ValueError:
        raise ValueError(f"{TEST_PAUSE_ENV}={value!r}: seconds must be a number.") from None


def _test_pause(point: str) -> None:
    setting = _pause_setting()
    if setting is None or setting[0] != point:
        return
    resumed = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGUSR1, lambda *_: resumed.set()) if in_main else None
    logger.warning(
        "%s: paused at %s for up to %g s (pid %d; SIGUSR1 resumes)",
        TEST_PAUSE_ENV,
        point,
        setting[1],
        os.getpid(),
    )
    deadline = time.monotonic() + setting[1]
    try:
        while not resumed.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        if in_main:
            signal.signal(signal.SIGUSR1, previous)


# --------------------------------------------------------------------------- #
# fitting and predicting
# --------------------------------------------------------------------------- #
@dataclass
class _Fitted:
    model: object
    rows: int
    iterations: int
    log_likelihood: float
    converged: bool | None


def _warm_start_mismatch(base, spec: PipelineSpec, n_features: int) -> str | None:
    """Why the published model cannot start this fit, or None."""
    from ..mixture import GaussianMixture

    if type(base) is not GaussianMixture:
        return f"it is a {type(base).__name__}"
    for key in ("n_components", "covariance_type"):
        want = spec.model.get(key, GaussianMixture().get_params()[key])
        if getattr(base, key) != want:
            return f"its {key} is {getattr(base, key)!r}, the spec asks for {want!r}"
    if base.n_features_in_ != n_features:
        return f"it has {base.n_features_in_} features, the data {n_features}"
    return None


def _fit(spec, source: Source, plan: Plan, published, progress: bool, notify) -> _Fitted:
    from sklearn.exceptions import ConvergenceWarning

    base_model = None
    if plan.base_version is not None:
        base_model = load(Path(published["path"]) / MODEL_DIR)
    if plan.action == ACTION_APPEND:
        rows = source.rows(plan.start, source.extent)
        model = base_model
        model.set_params(**spec.model, progress=progress)
        before = model.n_batches_seen_
        notify(f"updating version {plan.base_version} with {rows.n_samples:,} new rows (online EM)")
        model.partial_fit(rows)
        return _Fitted(
            model, rows.n_samples, model.n_batches_seen_ - before, model.lower_bound_, None
        )
    rows = source.rows()
    model = spec.estimator(progress=progress)
    how = "from scratch"
    if base_model is not None:
        why_not = _warm_start_mismatch(base_model, spec, rows.n_features)
        if why_not:
            notify(f"cannot warm start from version {plan.base_version} ({why_not})")
        else:
            model = base_model
            model.set_params(**spec.model, progress=progress, warm_start=True)
            how = f"warm start from version {plan.base_version}"
    kind = "online EM" if spec.mode == "online" else "EM"
    notify(
        f"fitting {model.n_components} components to {rows.n_samples:,} rows x "
        f"{rows.n_features} features ({kind}, {how})"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(rows)
    if spec.mode == "online":
        return _Fitted(model, rows.n_samples, model.n_batches_seen_, model.lower_bound_, None)
    model.set_params(warm_start=False)
    return _Fitted(model, rows.n_samples, model.n_iter_, model.lower_bound_, bool(model.converged_))


def _predict(spec, source: Source, plan: Plan, published, model, target: Path, notify) -> int:
    """Write the new version's predictions to ``target``; returns rows predicted."""
    if plan.action == ACTION_APPEND:
        counts = mirror_store(
            Path(published["path"]) / PREDICTIONS, target, source.append_dim, plan.start
        )
        notify(
            f"carried over the predictions of version {plan.base_version} "
            f"({counts['linked']} chunk files linked, {counts['copied']} files copied)"
        )
        return extend_predictions(
            model, source, target, plan.start, proba=spec.proba, log_density=spec.log_density
        )
    rows = source.rows()
    notify(f"predicting {rows.n_samples:,} rows")
    write_predictions(model, rows, str(target), proba=spec.proba, log_density=spec.log_density)
    return rows.n_samples


def _manifest(spec, plan: Plan, published, number: int, fitted: _Fitted, record) -> dict:
    extent = plan.source["extent"]
    if plan.action == ACTION_APPEND:
        segments = [*published["predictions"]["segments"]]
        segments.append({"version": number, "start": plan.start, "stop": extent})
    else:
        segments = [{"version": number, "start": 0, "stop": extent}]
    return {
        "schema": MANIFEST_SCHEMA,
        "pipeline": spec.name,
        "version": number,
        "created": now(),
        "run_id": record.run_id,
        "spec": str(spec.path),
        "mode": spec.mode,
        "action": plan.action,
        "reason": plan.reason,
        "base_version": plan.base_version,
        "settings": spec.settings(),
        "source": plan.source,
        "model": {
            "path": MODEL_DIR,
            "class": type(fitted.model).__name__,
            "rows_fitted": fitted.rows,
            "iterations": fitted.iterations,
            "log_likelihood": fitted.log_likelihood,
            "converged": fitted.converged,
        },
        "predictions": {
            "path": PREDICTIONS,
            "append_dim": plan.source["append_dim"],
            # which version's model predicted which entries along append_dim
            "segments": segments,
        },
    }


# --------------------------------------------------------------------------- #
# one run
# --------------------------------------------------------------------------- #
def _recover(state: PipelineState, notify) -> None:
    """Record a run that died without recording itself; remove what it left."""
    records = read_records(state.records_path)
    published = {r.version for r in records if r.status == STATUS_OK and r.version}
    current = state.current_version()
    marker = state.running()
    if marker is not None:
        planned = marker.pop("planned_version", None)
        dead = RunRecord.from_dict(marker) if marker.get("run_id") else None
        did_publish = planned is not None and planned == current and planned not in published
        if did_publish:
            published.add(planned)
            note = f"it had published version {planned}"
        elif planned is not None:
            note = f"its unpublished version {planned} was removed"
        else:
            note = "it had not started a version"
        if dead is not None:
            dead.status = STATUS_INTERRUPTED
            dead.version = planned if did_publish else None
            dead.current_version = current
            dead.message = f"ended without recording itself (killed?); found at {now()}; {note}"
            append_record(state.records_path, dead)
            notify(f"an earlier run (pid {dead.pid}, started {dead.start}) was interrupted; {note}")
        state.clear_running()
    removed = state.cleanup(published)
    if removed:
        notify(f"cleaned up after an interrupted run: removed {', '.join(removed)}")


def _run_locked(spec, state, record, *, full, require_converged, progress, session, notify):
    source = open_source(spec)
    published = state.published()
    plan = plan_run(spec, source, published, full=full)
    record.action = plan.action
    record.reason = plan.reason
    record.extent = source.extent
    record.rows_total = source.n_rows
    record.current_version = published["version"] if published else None
    notify(plan.reason)
    if plan.action == ACTION_NOTHING:
        record.finish(STATUS_NOTHING_NEW, rows_processed=0, rows_predicted=0)
        return
    number = state.next_version()
    state.mark_running({**record.to_dict(), "planned_version": number})
    work = state.begin_version(number)
    try:
        with session() if session is not None else nullcontext():
            fitted = _fit(spec, source, plan, published, progress, notify)
            record.rows_processed = fitted.rows
            record.iterations = fitted.iterations
            record.log_likelihood = fitted.log_likelihood
            record.converged = fitted.converged
            if require_converged and fitted.converged is False:
                message = (
                    f"the fit did not converge in {fitted.iterations} iterations; version "
                    f"{record.current_version} stays published. Increase model.max_iter or "
                    "model.tol, or drop require_converged."
                )
                record.finish(STATUS_NOT_CONVERGED, message=message)
                raise NotConvergedError(message, record)
            fitted.model.set_params(progress=False)
            fitted.model.save(work / MODEL_DIR)
            _test_pause("after-model")
            record.rows_predicted = _predict(
                spec, source, plan, published, fitted.model, work / PREDICTIONS, notify
            )
        write_json_atomic(work / MANIFEST, _manifest(spec, plan, published, number, fitted, record))
        _test_pause("before-publish")
        state.complete_version(number)
        _test_pause("after-rename")
        state.publish(number)
    except BaseException:
        state.discard_partial(number)
        raise
    _test_pause("after-publish")
    record.finish(STATUS_OK, version=number, current_version=number)
    notify(f"published version {number}: {state.version_path(number)}")
    try:
        pruned = state.prune(spec.keep)
    except OSError as exc:  # the run did its job; say what is left over
        logger.warning("could not delete old versions: %s", exc)
        record.message = f"old versions not deleted: {exc}"
    else:
        if pruned:
            notify(f"deleted old versions {pruned} (pipeline.keep = {spec.keep})")


def run_pipeline(
    spec: PipelineSpec | str | os.PathLike,
    *,
    wait: float | None = None,
    full: bool = False,
    require_converged: bool | None = None,
    progress: bool = False,
    session: Callable[[], AbstractContextManager] | None = None,
    notify: Callable[[str], None] | None = None,
) -> RunRecord:
    """Run a pipeline once (see the module docstring).

    Parameters
    ----------
    spec : PipelineSpec or path
        The spec, or its TOML file.
    wait : float, optional
        If another run holds the lock: None gives up at once (:class:`PipelineBusy`);
        a number waits that many seconds (``math.inf``: until it is free).
    full : bool
        Fit from scratch on all rows and predict all, whatever changed.
    require_converged : bool, optional
        Do not publish a batch fit that did not converge (default: the spec's
        ``pipeline.require_converged``).
    progress : bool
        Progress bars of the estimators on stderr.
    session : callable, optional
        Returns a context manager entered around the computation only (not for
        runs with nothing new), e.g. a cluster.
    notify : callable, optional
        Receives one line per step (what was decided, fitted, published); default
        the ``daskgmm.pipeline.runner`` logger at INFO.

    Returns
    -------
    RunRecord
        Status ``ok`` (a version was published) or ``nothing-new``; also appended
        to ``runs.jsonl``.

    Raises
    ------
    PipelineBusy
        Another run holds the lock (recorded as ``busy``; its ``record`` attribute).
    NotConvergedError
        ``require_converged`` and the fit did not converge (recorded).
    SpecError
        Bad spec, or a store that does not match ``input.*``: raised before the
        state directory is touched.
    SourceChangedError
        An online source changed other than by appending (a ``ValueError``;
        recorded as ``failed``).
    """
    spec = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    _pause_setting()  # a bad test setting fails before anything happens
    open_source(spec)  # so does a store that does not match input.*: nothing is written
    notify = notify or logger.info
    require = spec.require_converged if require_converged is None else require_converged
    state = PipelineState(spec.directory)
    state.ensure()
    record = RunRecord.begin(spec.name, str(spec.path), spec.mode)
    holder = {
        "pid": record.pid,
        "host": record.host,
        "run_id": record.run_id,
        "start": record.start,
    }

    def waiting(held: dict) -> None:
        notify(
            f"waiting for the lock: run {held.get('run_id')} (pid {held.get('pid')}) has "
            "held it since " + str(held.get("start"))
        )

    lock = PipelineLock(state.lock_path, spec.name, wait=wait, on_wait=waiting)
    try:
        lock.acquire(holder)
    except PipelineBusy as busy:
        record.finish(STATUS_BUSY, message=str(busy), current_version=state.current_version())
        append_record(state.records_path, record)
        busy.record = record
        raise
    try:
        _recover(state, notify)
        state.mark_running(record.to_dict())
        try:
            _run_locked(
                spec,
                state,
                record,
                full=full,
                require_converged=require,
                progress=progress,
                session=session,
                notify=notify,
            )
        except BaseException as exc:
            if record.status == "running":
                message = f"{type(exc).__name__}: {exc}"
                record.finish(STATUS_FAILED, message=message)
            raise
        finally:
            append_record(state.records_path, record)
            state.clear_running()
    finally:
        lock.release()
    return record


# --------------------------------------------------------------------------- #
# status
# --------------------------------------------------------------------------- #
@dataclass
class PipelineStatus:
    """What ``pipeline status`` shows.

    Attributes
    ----------
    spec : PipelineSpec
    published : dict or None
        The published version's manifest (with its ``path``).
    versions : list of int
        Complete versions kept.
    runs : list of RunRecord
        The last runs, oldest first.
    running : dict or None
        The lock holder's note, with ``alive`` (whether that process still runs on
        this host; None for another host), when a run holds or held the lock
        without finishing.
    """

    spec: PipelineSpec
    published: dict | None
    versions: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    running: dict | None = None

    def to_dict(self) -> dict:
        return {
            "pipeline": self.spec.name,
            "mode": self.spec.mode,
            "directory": str(self.spec.directory),
            "published": self.published,
            "versions": self.versions,
            "running": self.running,
            "runs": [r.to_dict() for r in self.runs],
        }


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True
    return True


def pipeline_status(spec: PipelineSpec | str | os.PathLike, last: int = 10) -> PipelineStatus:
    """The published version, the versions kept and the last ``last`` runs.

    Reads only; takes no lock; works while the input store is missing.
    """
    spec = spec if isinstance(spec, PipelineSpec) else load_spec(spec, check_store=False)
    state = PipelineState(spec.directory)
    running = None
    marker = state.running()
    if marker is not None:
        holder = read_holder(state.lock_path) or marker
        same_host = holder.get("host") == socket.gethostname()
        running = {**holder, "alive": _alive(holder.get("pid")) if same_host else None}
    return PipelineStatus(
        spec=spec,
        published=state.published(),
        versions=state.versions(),
        runs=read_records(state.records_path, last),
        running=running,
    )
