"""A pipeline's state directory: versions, the published pointer, the run marker.

Layout (``output.directory`` of the spec)::

    current -> versions/000003     symlink: the published version, replaced atomically
    versions/000003/               one published version
        manifest.json              what it was made from (extent, source digests,
                                   settings), how (mode, action), and its fit
        model/                     the fitted model (daskgmm.load)
        predictions.zarr/          labels (+ proba, log_density) for every row
    versions/000004.partial/       a version being written (never read)
    runs.jsonl                     one JSON line per run (see records.py)
    lock                           held (flock) by the run in progress
    running.json                   the run in progress; left behind by a killed run

Publishing is one ``os.replace`` of a new symlink onto ``current``: readers see
the old version or the new one, never a mixture.  A version is written under
``NNNNNN.partial``, renamed to ``NNNNNN`` when complete, then published.  A run
killed at any moment leaves ``current`` pointing at a complete version; the next
run (holding the lock) removes ``*.partial`` directories and complete versions
newer than ``current`` that no successful run published (:meth:`cleanup`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MODEL_DIR = "model"
PREDICTIONS = "predictions.zarr"
#: Digits of a version directory's name.
VERSION_DIGITS = 6
PARTIAL_SUFFIX = ".partial"


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` via a synced temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, allow_nan=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(path: Path) -> None:
    """``fsync`` every file and directory under ``path`` (files first), so that a
    version is on disk before the rename that publishes it."""
    for root, _, files in os.walk(path, topdown=False):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


class PipelineState:
    """The state directory of one pipeline (see the module docstring).

    Only the run holding the pipeline's lock calls the methods that write;
    :meth:`published`, :meth:`versions` and :meth:`running` are safe to call at any
    time.

    Parameters
    ----------
    directory : str or os.PathLike

    Examples
    --------
    >>> from daskgmm.pipeline import PipelineState
    >>> state = PipelineState("out/daily")          # nothing written yet
    >>> state.current_version(), state.published(), state.versions()
    (None, None, [])
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.versions_dir = self.directory / "versions"
        self.current_link = self.directory / "current"
        self.records_path = self.directory / "runs.jsonl"
        self.lock_path = self.directory / "lock"
        self.running_path = self.directory / "running.json"

    def ensure(self) -> None:
        """Create the directory and ``versions/``."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- reading
    @staticmethod
    def version_name(number: int) -> str:
        return f"{number:0{VERSION_DIGITS}d}"

    def version_path(self, number: int) -> Path:
        """The directory of version ``number``.

        Examples
        --------
        >>> from daskgmm.pipeline import PipelineState
        >>> state = PipelineState("out/daily")          # nothing written yet
        >>> state.version_path(3).relative_to(state.directory).as_posix()
        'versions/000003'
        """
        return self.versions_dir / self.version_name(number)

    def partial_path(self, number: int) -> Path:
        """Where version ``number`` is written before it is complete."""
        return self.versions_dir / (self.version_name(number) + PARTIAL_SUFFIX)

    def current_version(self) -> int | None:
        """The published version number, or None before the first publish.

        Examples
        --------
        >>> from daskgmm.pipeline import PipelineState
        >>> state = PipelineState("out/daily")          # nothing written yet
        >>> state.current_version() is None              # before the first publish
        True
        """
        try:
            target = os.readlink(self.current_link)
        except FileNotFoundError:
            return None
        name = Path(target).name
        if not name.isdigit():
            raise RuntimeError(f"{self.current_link} points at {target!r}, not a version")
        return int(name)

    def published(self) -> dict | None:
        """The published version's manifest (with ``path`` added), or None.

        Examples
        --------
        >>> from daskgmm.pipeline import PipelineState
        >>> state = PipelineState("out/daily")          # nothing written yet
        >>> state.published() is None
        True
        """
        number = self.current_version()
        if number is None:
            return None
        path = self.version_path(number)
        manifest = json.loads((path / MANIFEST).read_text())
        return {**manifest, "path": str(path)}

    def versions(self) -> list[int]:
        """Complete version numbers present, ascending.

        Examples
        --------
        >>> from daskgmm.pipeline import PipelineState
        >>> state = PipelineState("out/daily")          # nothing written yet
        >>> state.versions()
        []
        """
        if not self.versions_dir.is_dir():
            return []
        return sorted(int(p.name) for p in self.versions_dir.iterdir() if p.name.isdigit())

    def running(self) -> dict | None:
        """The marker of the run in progress, or of a run that was killed."""
        try:
            return json.loads(self.running_path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            return {"run_id": None, "note": "unreadable running.json"}

    # ---------------------------------------------------------------- writing
    def mark_running(self, info: dict) -> None:
        """Record the run in progress (removed by :meth:`clear_running`)."""
        write_json_atomic(self.running_path, info)

    def clear_running(self) -> None:
        self.running_path.unlink(missing_ok=True)

    def cleanup(self, published_versions: set[int]) -> list[str]:
        """Remove what killed runs left: partial versions, and complete versions newer
        than ``current`` that are not in ``published_versions`` (never published).

        Returns
        -------
        list of str
            Names of the directories removed.
        """
        current = self.current_version() or 0
        removed = []
        if not self.versions_dir.is_dir():
            return removed
        for path in sorted(self.versions_dir.iterdir()):
            orphan = path.name.isdigit() and int(path.name) > current
            if (
                path.name.endswith(PARTIAL_SUFFIX)
                or path.name.startswith(".")
                or (orphan and int(path.name) not in published_versions)
            ):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path.name)
        for stale in self.directory.glob(".current.tmp-*"):
            stale.unlink()
            removed.append(stale.name)
        if removed:
            logger.info("removed what an interrupted run left: %s", ", ".join(removed))
        return removed

    def next_version(self) -> int:
        """One more than any version present or published."""
        return max([self.current_version() or 0, *self.versions()]) + 1

    def begin_version(self, number: int) -> Path:
        """A fresh, empty partial directory for version ``number``."""
        path = self.partial_path(number)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def discard_partial(self, number: int) -> None:
        """Remove version ``number``'s partial directory, if any."""
        shutil.rmtree(self.partial_path(number), ignore_errors=True)

    def complete_version(self, number: int) -> Path:
        """Sync the partial directory of ``number`` to disk and rename it to its final
        name."""
        final = self.version_path(number)
        sync_tree(self.partial_path(number))
        os.rename(self.partial_path(number), final)
        _fsync_dir(self.versions_dir)
        return final

    def publish(self, number: int) -> None:
        """Point ``current`` at version ``number`` in one atomic step.

        A new symlink is made under a temporary name and renamed onto ``current``
        (``rename(2)`` replaces the old link atomically), then the directory is
        synced.
        """
        if not self.version_path(number).is_dir():
            raise RuntimeError(f"version {number} is not complete; cannot publish it")
        tmp = self.directory / f".current.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(Path("versions") / self.version_name(number), tmp)
        os.replace(tmp, self.current_link)
        _fsync_dir(self.directory)

    def prune(self, keep: int) -> list[int]:
        """Delete versions older than the published one beyond the newest ``keep``.

        Predictions of online versions may share chunk files (hard links) with
        older versions; deleting an old version leaves the shared files in place.

        Returns
        -------
        list of int
            The versions deleted.
        """
        current = self.current_version()
        if current is None:
            return []
        older = [v for v in self.versions() if v < current]
        doomed = older[: max(0, len(older) - keep)]
        for number in doomed:
            shutil.rmtree(self.version_path(number))
        if doomed:
            logger.info("deleted old versions %s (keep=%d)", doomed, keep)
        return doomed
