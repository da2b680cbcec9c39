"""Single flight: an exclusive ``flock`` on the state directory's ``lock`` file.

The kernel releases the lock when the holder's process ends, however it ends
(SIGKILL included), so a lock is never left stale.  The holder writes who it is
(pid, host, run id, start) into the file; a run that finds the lock taken reads
that and says so.  ``flock`` locks are reliable on local filesystems; on NFS use
a state directory on local disk or check that your NFS client supports them.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
from pathlib import Path

from ..errors import PipelineBusy

#: Exit code of a run that found another run of the same spec holding the lock
#: (``EX_TEMPFAIL`` from sysexits.h: try again later).
EXIT_BUSY = 75


def read_holder(path: str | os.PathLike) -> dict:
    """What the current holder of the lock at ``path`` wrote (empty if nothing)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


class PipelineLock:
    """The exclusive lock of one pipeline.

    Parameters
    ----------
    path : path
        The lock file (created if missing; never deleted, so that every run locks
        the same inode).
    name : str
        The pipeline's name, for messages.
    wait : float or None
        None (default): give up at once if the lock is held.  A number: wait up to
        that many seconds (``math.inf``: as long as it takes).
    on_wait : callable, optional
        Called once with the holder's dict when the lock is held and we wait.
    """

    def __init__(self, path, name: str, wait: float | None = None, on_wait=None):
        self.path = Path(path)
        self.name = name
        self.wait = wait
        self.on_wait = on_wait
        self._fd: int | None = None

    def acquire(self, holder: dict) -> None:
        """Take the lock and write ``holder`` into the file.

        Raises
        ------
        PipelineBusy
            If the lock is held (and stays held for ``wait`` seconds).
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._take(fd)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd

    def _take(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not self.wait:
                raise PipelineBusy(self.name, read_holder(self.path)) from None
        if self.on_wait is not None:
            self.on_wait(read_holder(self.path))
        if math.isinf(self.wait):
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PipelineBusy(self.name, read_holder(self.path), self.wait) from None
                time.sleep(0.1)

    def release(self) -> None:
        """Clear the holder's note and release the lock."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None
