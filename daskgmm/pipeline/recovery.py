"""Recover from a killed run: record it and remove the versions it left behind.

A run that dies (SIGKILL, power loss) cannot record itself; the next run finds
its ``running.json``, appends an ``interrupted`` record for it and deletes its
partial or unpublished versions (:meth:`.state.PipelineState.cleanup`).
"""

from __future__ import annotations

from collections.abc import Callable

from .records import STATUS_INTERRUPTED, STATUS_OK, RunRecord, append_record, now, read_records
from .state import PipelineState


def recover(state: PipelineState, notify: Callable[[str], None]) -> None:
    """Record a run that died without recording itself; remove what it left.

    Call it holding the pipeline's lock.

    Parameters
    ----------
    state : PipelineState
        The pipeline's state directory.
    notify : callable
        Receives one line per thing found and done.
    """
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
