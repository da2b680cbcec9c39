"""What ``daskgmm pipeline status`` shows: published version, versions kept, last runs.

Reads only; takes no lock.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from .lock import read_holder
from .records import read_records
from .spec import PipelineSpec, load_spec
from .state import PipelineState


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

    Examples
    --------
    >>> from daskgmm.pipeline import PipelineStatus
    >>> from daskgmm.pipeline.spec import parse_spec
    >>> spec = parse_spec(
    ...     {"pipeline": {"mode": "refit"}, "input": {"store": "x.zarr"},
    ...      "model": {"n_components": 2}, "output": {"directory": "out"}},
    ...     "daily.toml", check_store=False)
    >>> PipelineStatus(spec, published=None).to_dict()["published"] is None
    True
    """

    spec: PipelineSpec
    published: dict | None
    versions: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    running: dict | None = None

    def to_dict(self) -> dict:
        """The status as JSON-ready data (what ``pipeline status --json`` prints).

        Returns
        -------
        dict

        Examples
        --------
        >>> import json
        >>> from daskgmm.pipeline import PipelineStatus
        >>> from daskgmm.pipeline.spec import parse_spec
        >>> spec = parse_spec(
        ...     {"pipeline": {"mode": "online"}, "input": {"store": "x.zarr"},
        ...      "model": {"n_components": 2}, "output": {"directory": "out"}},
        ...     "daily.toml", check_store=False)
        >>> data = PipelineStatus(spec, published=None, versions=[1, 2]).to_dict()
        >>> data["versions"], bool(json.dumps(data))
        ([1, 2], True)
        """
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

    Parameters
    ----------
    spec : PipelineSpec or path
        The spec, or its TOML file.
    last : int
        How many of the last runs to read from ``runs.jsonl``.

    Returns
    -------
    PipelineStatus

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
    >>> from daskgmm.pipeline import load_spec, pipeline_status, run_pipeline
    >>> spec = load_spec("example.toml")
    >>> _ = run_pipeline(spec)
    >>> status = pipeline_status(spec)
    >>> status.versions, status.published["source"]["extent"]
    ([1], 4000)
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
