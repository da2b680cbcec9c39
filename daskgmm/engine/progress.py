"""Progress on one terminal line: EM iterations (per initialisation), mini-batches,
the chunks of a pass, or the tasks of any computation, with the time elapsed and an
estimate of the time left.

With ``progress=True`` an estimator draws, on stderr::

    EM, 3 initialisations together  4/100 [#...................]  lower bound -26.355945
      change 1.23e-03  0.21 s/iter  0.9s elapsed  ~1.3s left (at most 20.1s)  pass  37%

(one line; restarts that iterate together show the run furthest from converging).
*Time left* is honest about what it knows:

- ``at most``: the iterations still allowed (what ``max_iter`` leaves; the
  initialisations iterate together) at the mean seconds per iteration so far;
  EM cannot take longer unless iterations slow down.
- ``~``: an estimate that assumes EM converges linearly, as it does near a
  maximum: the change of the lower bound shrinks by the same factor every
  iteration (the last two changes give the factor), so the iterations until it
  falls below ``tol`` follow.  Shown once two changes have shrunk; never above
  the bound.
- Stepwise EM and task counts (``predict``, ``score``) know their total: time
  left is the steps (tasks) left at the rate so far, ``~``.

The pass percentage counts finished E-step tasks while a pass runs on a local
scheduler (threads, processes, sync).  On a distributed cluster it counts the
pass's finished tasks (reads, E-steps, merges) as the scheduler reports them
(:func:`daskgmm.cluster.compute_with_progress`).  :func:`progress_label` puts a
prefix (``select --online``'s ``K=3 (2/4)``) before every line drawn in its block.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import sys
import threading
import time

from dask.callbacks import Callback

_prefix: contextvars.ContextVar[str] = contextvars.ContextVar("daskgmm_progress_prefix", default="")


@contextlib.contextmanager
def progress_label(prefix: str):
    """Put ``prefix`` before the label of every progress line started in the block."""
    token = _prefix.set(f"{_prefix.get()}{prefix} ")
    try:
        yield
    finally:
        _prefix.reset(token)


def format_seconds(seconds: float) -> str:
    """'0.4s', '12s', '4m05s', '2h03m'."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class _Line:
    """A line redrawn in place (``\\r``), at most every 0.1 s unless forced."""

    def __init__(self, stream=None, width: int = 20):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self._length = 0
        self._closing = False

    def bar(self, fraction: float) -> str:
        filled = int(self.width * min(max(fraction, 0.0), 1.0))
        return "[" + "#" * filled + "." * (self.width - filled) + "]"

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _line(self) -> str:
        raise NotImplementedError

    def _draw(self, force: bool = False, end: str = "") -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        line = self._line() + end
        self.stream.write("\r" + line.ljust(self._length))
        self._length = len(line)
        self.stream.flush()

    def _end(self, message: str) -> None:
        """Draw the last state, the message after it, and end the line."""
        self._draw(force=True, end="  " + message if message else "")
        self.stream.write("\n")
        self.stream.flush()


class FitProgress(_Line):
    """A one-line progress bar over EM iterations (or stepwise-EM mini-batches).

    Parameters
    ----------
    total : int
        Iterations at most (``max_iter``; initialisations iterate together), or
        mini-batches.
    label : str
    stream : file-like, default sys.stderr
    width : int
        Characters of the bar.
    tol : float, optional
        The convergence tolerance: iterations may stop before ``total``, so the
        time left is shown as a bound and an estimate.  None: all ``total`` steps run.
    """

    def __init__(
        self,
        total: int,
        label: str = "EM",
        stream=None,
        width: int = 20,
        tol: float | None = None,
    ):
        super().__init__(stream, width)
        self.total = max(int(total), 1)
        self.label = _prefix.get() + label
        self.tol = tol
        self.unit = "iter" if tol is not None else "step"
        self.done = 0
        self.steps = 0
        self.step_seconds = 0.0
        self.lower_bound = None
        self.change = None
        self.changes: list[float] = []
        self.pass_fraction = None
        self.record = None
        self._step_started = self.started

    def start(self, done: int = 0) -> None:
        """The iterations begin, ``done`` of them already taken (resumed runs)."""
        with self._lock:
            self.done = done
            self.lower_bound = self.change = self.pass_fraction = self.record = None
            self.changes = []
            self._step_started = time.monotonic()
            self._draw(force=True)

    def step(self, lower_bound: float, change: float, record: dict | None = None) -> None:
        """One iteration (mini-batch) finished with this lower bound and change.

        ``record`` is the iteration's record (:mod:`daskgmm.estimators.fit_events`):
        the line then also shows bad rows and the smallest component weight."""
        with self._lock:
            self.record = record
            now = time.monotonic()
            self.step_seconds += now - self._step_started
            self._step_started = now
            self.steps += 1
            self.done += 1
            self.lower_bound = lower_bound
            self.change = change
            if math.isfinite(change):
                self.changes.append(abs(change))
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
            self.pass_fraction = None
            self._closing = True
            self._end(message)

    # ------------------------------------------------------------- drawing
    def _line(self) -> str:
        count = f"{self.done:>{len(str(self.total))}}/{self.total}"
        parts = [f"{self.label} {count} {self.bar(self.done / self.total)}"]
        if self.lower_bound is not None:
            parts.append(f"lower bound {self.lower_bound: .6f}")
        if self.change is not None and math.isfinite(self.change):
            parts.append(f"change {self.change:.3g}")
        if self.record is not None and self.record.get("bad_rows"):
            parts.append(f"bad rows {self.record['bad_rows']}")
        if self.record is not None and self.record.get("weights"):
            parts.append(f"min weight {min(self.record['weights']):.2g}")
        parts.append(self._timing())
        if self.pass_fraction is not None:
            parts.append(f"pass {self.pass_fraction:4.0%}")
        return "  ".join(parts)

    def _timing(self) -> str:
        """Seconds per step, elapsed, and (while running) the time left."""
        elapsed = format_seconds(self.elapsed()) + " elapsed"
        if not self.steps:
            return elapsed
        per_step = self.step_seconds / self.steps
        text = f"{per_step:.3g} s/{self.unit}  {elapsed}"
        if self._closing:
            return text
        bound = per_step * self._steps_left_at_most()
        if self.tol is None:
            return f"{text}  ~{format_seconds(bound)} left"
        estimate = self._steps_left_estimate()
        if estimate is None:
            return f"{text}  at most {format_seconds(bound)} left"
        guess = format_seconds(min(per_step * estimate, bound))
        return f"{text}  ~{guess} left (at most {format_seconds(bound)})"

    def _steps_left_at_most(self) -> int:
        return steps_left(self.total, self.done)[0]

    def _steps_left_estimate(self) -> float | None:
        """Iterations left if the change keeps shrinking by its last factor (None
        when it has not shrunk twice yet)."""
        return steps_left(self.total, self.done, self.tol, self.changes)[1]


def steps_left(
    total: int,
    done: int,
    tol: float | None = None,
    changes: list | None = None,
) -> tuple[int, float | None]:
    """EM steps left: at most, and as estimated (see the module docstring).

    Parameters
    ----------
    total : int
        Steps at most (``max_iter``).
    done : int
        Steps taken.
    tol : float, optional
        The convergence tolerance (None: no estimate beyond the bound).
    changes : list of float
        Absolute changes of the lower bound so far.

    Returns
    -------
    at_most : int
    estimate : float or None
        None until the change has shrunk twice.
    """
    at_most = max(total - done, 0)
    changes = changes or []
    if len(changes) < 2 or not tol:
        return at_most, None
    previous, last = changes[-2], changes[-1]
    if not 0 < last < previous:
        return at_most, None
    if last < tol:
        return at_most, 0.0
    return at_most, min(math.ceil(math.log(tol / last) / math.log(last / previous)), at_most)


class TaskProgress(_Line, Callback):
    """A progress line over the tasks of every ``compute`` in its block (local
    schedulers), in the style of :class:`FitProgress`::

        predict [########............]  40% of 25 tasks  0.8s elapsed  ~1.2s left

    The time left is the tasks left of the running computation at its rate so far.

    Parameters
    ----------
    label : str
    stream : file-like, default sys.stderr
    width : int
    """

    def __init__(self, label: str, stream=None, width: int = 20):
        _Line.__init__(self, stream, width)
        Callback.__init__(self)
        self.label = _prefix.get() + label
        self.total = self.finished = 0
        self._compute_started = self.started

    def _start_state(self, dsk, state):
        with self._lock:
            self.total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
            self.finished = 0
            self._compute_started = time.monotonic()
            self._draw()

    def _posttask(self, key, result, dsk, state, worker_id):
        with self._lock:
            self.finished += 1
            self._draw()

    def __exit__(self, *exc):
        with self._lock:
            self._closing = True
            if exc[0] is None:
                self._end("")
            else:
                self.stream.write("\n")
        return super().__exit__(*exc)

    def _line(self) -> str:
        fraction = self.finished / self.total if self.total else 0.0
        parts = [f"{self.label} {self.bar(fraction)}", f"{fraction:4.0%} of {self.total} tasks"]
        parts.append(format_seconds(self.elapsed()) + " elapsed")
        if not self._closing and 0 < fraction < 1:
            running = time.monotonic() - self._compute_started
            parts.append(f"~{format_seconds(running * (1 - fraction) / fraction)} left")
        return "  ".join(parts)


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
