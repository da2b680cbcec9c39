"""Run a pipeline once: lock, recover, plan, fit, predict, publish, record.

:func:`run_pipeline` is what ``daskgmm pipeline run`` calls.  One run:

1. takes the pipeline's lock (:mod:`.lock`) or gives up with :class:`PipelineBusy`
   (recorded as ``busy``);
2. records a run that was killed before it could (``running.json`` left behind)
   and removes the partial or unpublished versions it left (:mod:`.recovery`);
3. opens the source and decides what to do (:func:`.plan.plan_run`); with nothing
   new it stops there, computing nothing;
4. writes a new version under ``versions/NNNNNN.partial``: the model, the
   predictions (all rows, or for an online append the old ones carried over plus
   the new rows', see :mod:`.fitting` and :mod:`.carry`), and ``manifest.json``
   (:mod:`.manifest`);
5. renames it to ``versions/NNNNNN`` and publishes it by replacing the ``current``
   symlink (one ``rename(2)``), then deletes versions beyond ``keep``;
6. appends its record to ``runs.jsonl``, whatever happened.

What ``daskgmm pipeline status`` prints is :func:`.status.pipeline_status`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from ..errors import NotConvergedError
from .fitting import Fitted, check_model_for, fit_model, predict
from .lock import PipelineBusy, PipelineLock
from .manifest import build_manifest
from .pause import pause_if_asked, pause_setting
from .plan import ACTION_NOTHING, Plan, plan_run
from .records import (
    STATUS_BUSY,
    STATUS_FAILED,
    STATUS_NOT_CONVERGED,
    STATUS_NOTHING_NEW,
    STATUS_OK,
    RunRecord,
    append_record,
)
from .recovery import recover
from .source import Source, open_source
from .spec import PipelineSpec, load_spec
from .state import MANIFEST, MODEL_DIR, PREDICTIONS, PipelineState, write_json_atomic

logger = logging.getLogger(__name__)


def _take_lock(spec: PipelineSpec, state: PipelineState, record: RunRecord, wait, notify):
    """Acquire the pipeline's lock for ``record``'s run; record and raise if busy."""
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
    return lock


def _fit_recorded(
    spec,
    source: Source,
    plan: Plan,
    published,
    record: RunRecord,
    require_converged,
    progress,
    notify,
) -> Fitted:
    """Fit, note the fit in ``record``, and refuse a fit that had to converge and did not."""
    fitted = fit_model(spec, source, plan, published, progress, notify)
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
    return fitted


def _prune(spec: PipelineSpec, state: PipelineState, record: RunRecord, notify) -> None:
    """Delete versions beyond ``pipeline.keep``; a failure is noted, not raised."""
    try:
        pruned = state.prune(spec.keep)
    except OSError as exc:  # the run did its job; say what is left over
        logger.warning("could not delete old versions: %s", exc)
        record.message = f"old versions not deleted: {exc}"
    else:
        if pruned:
            notify(f"deleted old versions {pruned} (pipeline.keep = {spec.keep})")


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
            fitted = _fit_recorded(
                spec, source, plan, published, record, require_converged, progress, notify
            )
            fitted.model.set_params(progress=False)
            fitted.model.save(work / MODEL_DIR)
            pause_if_asked("after-model")
            record.rows_predicted = predict(
                spec, source, plan, published, fitted.model, work / PREDICTIONS, notify
            )
        manifest = build_manifest(spec, plan, published, number, fitted, record)
        write_json_atomic(work / MANIFEST, manifest)
        pause_if_asked("before-publish")
        state.complete_version(number)
        pause_if_asked("after-rename")
        state.publish(number)
    except BaseException:
        state.discard_partial(number)
        raise
    pause_if_asked("after-publish")
    record.finish(STATUS_OK, version=number, current_version=number)
    notify(f"published version {number}: {state.version_path(number)}")
    _prune(spec, state, record, notify)


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

    Examples
    --------
    >>> from pathlib import Path
    >>> from daskgmm.datasets import write_table
    >>> X, truth = write_table("data/sensors.zarr", 4_000, 3, 2, 1_000)
    >>> _ = Path("example.toml").write_text('''
    ... [pipeline]
    ... name = "sensors"
    ... mode = "online"
    ... [input]
    ... store = "data/sensors.zarr"
    ... [model]
    ... n_components = 2
    ... random_state = 0
    ... [output]
    ... directory = "out/sensors"
    ... ''')
    >>> from daskgmm.pipeline import load_spec, run_pipeline
    >>> record = run_pipeline(load_spec("example.toml"))
    >>> record.status, record.action, record.version
    ('ok', 'full', 1)
    >>> run_pipeline(load_spec("example.toml")).status          # nothing new
    'nothing-new'
    """
    spec = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    pause_setting()  # a bad test setting fails before anything happens
    source = open_source(spec)  # so does a store that does not match input.*: nothing is written
    check_model_for(spec, source.n_features)  # and priors that do not fit the data
    notify = notify or logger.info
    require = spec.require_converged if require_converged is None else require_converged
    state = PipelineState(spec.directory)
    state.ensure()
    record = RunRecord.begin(spec.name, str(spec.path), spec.mode)
    lock = _take_lock(spec, state, record, wait, notify)
    try:
        recover(state, notify)
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
