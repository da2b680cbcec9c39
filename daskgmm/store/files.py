"""Directories written all at once: build in a temporary sibling, then rename into place.

Used for saved models and for checkpoints.  ``rename(2)`` cannot replace a non-empty
directory, so replacing one takes two renames: the current directory moves aside
to ``.NAME.old``, the new one moves in, the old one is deleted.  A writer killed
between the two renames leaves the previous version whole under ``.NAME.old``;
:func:`readable_directory` finds it there, and the next write cleans it up.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def _aside(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def write_directory(path: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Create or replace the directory ``path`` with what ``fill(tmp_dir)`` writes.

    Readers never see a half-written directory: ``fill`` works in a temporary
    sibling, which is renamed into place only once ``fill`` has returned.  If
    ``fill`` (or the process) dies, the previous directory stays as it was.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkdir, not tempfile.mkdtemp: the directory gets the umask's permissions, as the
    # published one should (mkdtemp's are private, 0700)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        fill(tmp)
        aside = _aside(path)
        if path.exists():
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(path, aside)
        elif aside.exists():
            shutil.rmtree(aside)  # a killed writer's leftover; path was never replaced
        os.replace(tmp, path)
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def readable_directory(path: str | os.PathLike) -> Path | None:
    """``path``, or the previous version a killed writer left aside; None if neither."""
    path = Path(path)
    if path.exists():
        return path
    aside = _aside(path)
    return aside if aside.exists() else None
