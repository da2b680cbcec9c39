"""Progress of a fit on one terminal line: iterations, lower bound, chunks of a pass.

With ``progress=True`` an estimator draws, on stderr::

    EM init 1  12/100 [######..........]  lower bound -26.355945  change 1.23e-05  pass 37%

The pass percentage counts finished E-step tasks while a pass runs on a local
scheduler (threads, processes, sync).  On a distributed cluster it counts the
pass's finished tasks (reads, E-steps, merges) as the scheduler reports them
(:func:`daskgmm.cluster.compute_with_progress`).
"""

from __future__ import annotations

import math
import sys
import threading
import time

from dask.callbacks import Callback


class FitProgress:
    """A one-line progress bar over EM iterations (or mini-batches).

    Parameters
    ----------
    total : int
        Iterations (or mini-batches) at most.
    label : str
    stream : file-like, default sys.stderr
    width : int
        Characters of the bar.
    """

    def __init__(self, total: int, label: str = "EM", stream=None, width: int = 20):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self.lower_bound = None
        self.change = None
        self.pass_fraction = None
        self._lock = threading.Lock()
        self._last_draw = 0.0

    def _line(self) -> str:
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        parts = [f"{self.label} {self.done:>{len(str(self.total))}}/{self.total} [{bar}]"]
        if self.lower_bound is not None:
            parts.append(f"lower bound {self.lower_bound: .6f}")
        if self.change is not None and math.isfinite(self.change):
            parts.append(f"change {self.change:.3g}")
        if self.pass_fraction is not None:
            parts.append(f"pass {self.pass_fraction:4.0%}")
        return "  ".join(parts)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        self.stream.write("\r" + self._line().ljust(100))
        self.stream.flush()

    def step(self, lower_bound: float, change: float) -> None:
        """One iteration (mini-batch) finished with this lower bound and change."""
        with self._lock:
            self.done += 1
            self.lower_bound = lower_bound
            self.change = change
            self.pass_fraction = None
            self._draw(force=True)

    def chunk_fraction(self, fraction: float) -> None:
        """Part of the current pass done (0..1)."""
        with self._lock:
            self.pass_fraction = fraction
            self._draw()

    def close(self, message: str = "") -> None:
        """Finish the line (with an optional closing message)."""
        with self._lock:
            self._draw(force=True)
            self.stream.write(("  " + message if message else "") + "\n")
            self.stream.flush()


_active = threading.local()


def active_pass_progress() -> FitProgress | None:
    """The bar that a pass computed now (in this thread) reports to, if any."""
    return getattr(_active, "progress", None)


class ChunkProgress(Callback):
    """Reports the fraction of a pass's chunk tasks done.

    On local schedulers through dask's callbacks; while the block runs, the bar
    is also :func:`active_pass_progress`, which ``_engine.compute`` uses on a
    distributed cluster.

    Parameters
    ----------
    progress : FitProgress
    prefix : str
        Key prefix of the per-chunk tasks, e.g. ``'daskgmm_estep'``.
    """

    def __init__(self, progress: FitProgress, prefix: str = "daskgmm_estep"):
        super().__init__()
        self.progress = progress
        self.prefix = prefix
        self.total = 0
        self.finished = 0

    def __enter__(self):
        self._outer = active_pass_progress()
        _active.progress = self.progress
        return super().__enter__()

    def __exit__(self, *exc):
        _active.progress = self._outer
        return super().__exit__(*exc)

    @staticmethod
    def _name(key) -> str:
        return key[0] if isinstance(key, tuple) else str(key)

    def _start(self, dsk):
        self.total = sum(1 for k in dsk if self._name(k).startswith(self.prefix))
        self.finished = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        if self.total and self._name(key).startswith(self.prefix):
            self.finished += 1
            self.progress.chunk_fraction(self.finished / self.total)
