"""The manifest of a new version: what it was made from and how.

``manifest.json`` sits in every version's directory; the next run plans from the
published one (:mod:`.plan`) and ``pipeline status`` shows it.
"""

from __future__ import annotations

from .fitting import Fitted
from .plan import ACTION_APPEND, Plan
from .records import RunRecord, now
from .spec import PipelineSpec
from .state import MODEL_DIR, PREDICTIONS

MANIFEST_SCHEMA = 1


def build_manifest(
    spec: PipelineSpec,
    plan: Plan,
    published: dict | None,
    number: int,
    fitted: Fitted,
    record: RunRecord,
) -> dict:
    """The manifest of version ``number``.

    Parameters
    ----------
    spec : PipelineSpec
    plan : Plan
        What the run did; its ``source`` is recorded as the version's input.
    published : dict or None
        The published version's manifest; an online append extends its
        prediction segments.
    number : int
        The new version.
    fitted : Fitted
        The new version's model and its fit.
    record : RunRecord
        The run writing the version.

    Returns
    -------
    dict
        JSON-ready; ``predictions.segments`` says which version's model predicted
        which entries along the append dimension.
    """
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
