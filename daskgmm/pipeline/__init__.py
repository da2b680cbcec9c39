"""Scheduled pipelines: re-run a fit and its predictions safely as data grow.

A pipeline is a TOML spec (:mod:`.spec`) naming an input Zarr store, a mode
(``refit``, ``warm_start`` or ``online``), model settings and an output (state)
directory.  :func:`run_pipeline` runs it once and is safe to call again and
again from cron or a systemd timer:

- *incremental*: it records what it processed (extent along the append
  dimension, digests of the chunk files, the store's fingerprint) in each
  version's manifest; with nothing new it computes nothing (:mod:`.plan`);
- *atomic*: a new version is written aside and published by replacing the
  ``current`` symlink in one ``rename(2)`` (:mod:`.state`); a run killed at any
  moment leaves the previous version published and whole, and the next run
  cleans up;
- *single-flight*: an ``flock`` lets one run of a spec write at a time
  (:mod:`.lock`; the loser exits with :data:`EXIT_BUSY` = 75 on the command line);
- *recorded*: one JSON line per run in ``runs.jsonl`` (:mod:`.records`).

::

    from daskgmm.pipeline import load_spec, pipeline_status, run_pipeline

    spec = load_spec("pipelines/example.toml")
    record = run_pipeline(spec)          # RunRecord: status, rows, version, ...
    pipeline_status(spec).published      # the published version's manifest
"""

from .lock import EXIT_BUSY, PipelineBusy
from .pause import PAUSE_POINTS, TEST_PAUSE_ENV
from .plan import SourceChangedError
from .records import RunRecord, read_records
from .runner import NotConvergedError, run_pipeline
from .spec import MODES, PipelineSpec, SpecError, load_spec
from .state import PipelineState
from .status import PipelineStatus, pipeline_status

__all__ = [
    "EXIT_BUSY",
    "MODES",
    "PAUSE_POINTS",
    "TEST_PAUSE_ENV",
    "NotConvergedError",
    "PipelineBusy",
    "PipelineSpec",
    "PipelineState",
    "PipelineStatus",
    "RunRecord",
    "SourceChangedError",
    "SpecError",
    "load_spec",
    "pipeline_status",
    "read_records",
    "run_pipeline",
]
