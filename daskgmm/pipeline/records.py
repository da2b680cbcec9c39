"""Run records: one JSON line per run in the state directory's ``runs.jsonl``.

Every run leaves a line, whatever its end: published a version (``ok``), found
nothing new (``nothing-new``), did not converge with ``require_converged``
(``not-converged``), failed (``failed``, with the error), found another run
holding the lock (``busy``).  A run killed before it could write its line
(SIGKILL, power loss) is recorded by the next run as ``interrupted``, from the
``running.json`` marker it left.

Lines are appended with one ``write`` on a file opened with ``O_APPEND``, so
lines of concurrent writers (a ``busy`` run and the lock holder) never interleave.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path

logger = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_NOTHING_NEW = "nothing-new"
STATUS_NOT_CONVERGED = "not-converged"
STATUS_FAILED = "failed"
STATUS_BUSY = "busy"
STATUS_INTERRUPTED = "interrupted"
#: Every status a record can have.
STATUSES = (
    STATUS_OK,
    STATUS_NOTHING_NEW,
    STATUS_NOT_CONVERGED,
    STATUS_FAILED,
    STATUS_BUSY,
    STATUS_INTERRUPTED,
)


def now() -> str:
    """The time now, UTC, ISO 8601 with milliseconds."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


@dataclass
class RunRecord:
    """What one run did.

    Attributes
    ----------
    run_id : str
    pipeline : str
        The spec's ``pipeline.name``.
    spec : str
        Path of the spec file.
    mode : str
    status : str
        One of :data:`STATUSES`; ``'running'`` until the run ends.
    start, end : str
        UTC, ISO 8601.
    seconds : float
        Wall time of the run.
    action : str
        ``'full'`` (fit on all rows, predict all), ``'append'`` (online: update
        with the appended rows, predict them) or ``'nothing'``.
    reason : str
        Why that action, in words.
    extent : int
        Length of the append dimension the run saw.
    rows_total : int
        Rows (samples) in the source the run saw.
    rows_processed : int
        Rows the model was fitted on or updated with in this run.
    rows_predicted : int
        Rows whose predictions this run wrote.
    iterations : int
        EM iterations (batch modes) or mini-batch updates (online) of this run.
    log_likelihood : float
        The model's mean log-likelihood per sample after the run (``lower_bound_``;
        for online models the running estimate; for a Bayesian model its evidence
        lower bound, a total over the rows).
    converged : bool
        Batch fits: ``converged_``; None for online updates.
    version : int
        The version this run published, None if it published none.
    current_version : int
        The published version after the run.
    message : str
        Error, or other detail.
    pid : int
    host : str

    Examples
    --------
    >>> from daskgmm.pipeline import RunRecord
    >>> record = RunRecord.begin("daily", "daily.toml", "refit").finish("nothing-new")
    >>> record.pipeline, record.status
    ('daily', 'nothing-new')
    """

    run_id: str
    pipeline: str
    spec: str
    mode: str
    status: str = "running"
    start: str | None = None
    end: str | None = None
    seconds: float | None = None
    action: str | None = None
    reason: str | None = None
    extent: int | None = None
    rows_total: int | None = None
    rows_processed: int | None = None
    rows_predicted: int | None = None
    iterations: int | None = None
    log_likelihood: float | None = None
    converged: bool | None = None
    version: int | None = None
    current_version: int | None = None
    message: str | None = None
    pid: int | None = None
    host: str | None = None

    @classmethod
    def begin(cls, pipeline: str, spec: str, mode: str) -> RunRecord:
        """A record for a run starting now in this process."""
        return cls(
            run_id=uuid.uuid4().hex[:12],
            pipeline=pipeline,
            spec=spec,
            mode=mode,
            start=now(),
            pid=os.getpid(),
            host=socket.gethostname(),
        )

    def finish(self, status: str, **values) -> RunRecord:
        """Set the status, end time, seconds and any other field given."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        for name, value in values.items():
            setattr(self, name, value)
        self.status = status
        self.end = now()
        if self.start is not None:
            elapsed = _dt.datetime.fromisoformat(self.end) - _dt.datetime.fromisoformat(self.start)
            self.seconds = round(elapsed.total_seconds(), 3)
        return self

    def to_dict(self) -> dict:
        """The record as a JSON-able dict.

        Examples
        --------
        >>> from daskgmm.pipeline import RunRecord
        >>> record = RunRecord.begin("daily", "daily.toml", "refit")
        >>> RunRecord.from_dict(record.to_dict()) == record
        True
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        """Inverse of :meth:`to_dict`; unknown keys (from newer versions) are ignored.

        Examples
        --------
        >>> from daskgmm.pipeline import RunRecord
        >>> RunRecord.from_dict(RunRecord.begin("daily", "daily.toml", "online").to_dict()).mode
        'online'
        """
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def append_record(path: str | os.PathLike, record: RunRecord) -> None:
    """Append ``record`` as one JSON line to ``path`` (created if missing)."""
    line = (json.dumps(record.to_dict(), allow_nan=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path: str | os.PathLike, last: int | None = None) -> list[RunRecord]:
    """The records in ``path``, oldest first (the ``last`` ones if given).

    Lines that are not valid JSON (a writer cut off mid-line) are skipped with a
    warning.

    Examples
    --------
    >>> from daskgmm.pipeline import RunRecord, read_records
    >>> from daskgmm.pipeline.records import append_record
    >>> for status in ("ok", "nothing-new"):
    ...     record = RunRecord.begin("daily", "daily.toml", "refit").finish(status)
    ...     append_record("runs.jsonl", record)
    >>> [r.status for r in read_records("runs.jsonl")], len(read_records("runs.jsonl", last=1))
    (['ok', 'nothing-new'], 1)
    >>> read_records("no-such-file.jsonl")
    []
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(RunRecord.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            logger.warning("%s line %d is not a run record; skipped", path, number)
    return records[-last:] if last else records
