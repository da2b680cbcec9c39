"""The test-only pause: stop a run at a named point so that a test can kill it.

Set :data:`TEST_PAUSE_ENV` to ``POINT`` or ``POINT:SECONDS`` and the run waits at
``POINT`` (one of :data:`PAUSE_POINTS`) for up to ``SECONDS`` (default 120);
SIGUSR1 ends the wait early.  Never set it in production.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

# the pause has always been announced on the runner's logger; tests wait for it
logger = logging.getLogger("daskgmm.pipeline.runner")

#: **Test-only.**  ``POINT`` or ``POINT:SECONDS``: pause the run at ``POINT`` for up
#: to ``SECONDS`` (default 120) so that a test can kill it there; SIGUSR1 ends the
#: pause early.  A warning on the ``daskgmm.pipeline.runner`` logger says when the
#: pause starts.  Never set it in production.
TEST_PAUSE_ENV = "DASKGMM_PIPELINE_TEST_PAUSE"
#: Where a run can be paused: model written (predictions not yet); version complete
#: but not renamed; renamed but not published; published but not recorded.
PAUSE_POINTS = ("after-model", "before-publish", "after-rename", "after-publish")


def pause_setting() -> tuple[str, float] | None:
    """Read :data:`TEST_PAUSE_ENV`.

    Returns
    -------
    tuple of (str, float) or None
        The point to pause at and the longest pause in seconds; None when the
        variable is unset or empty.

    Raises
    ------
    ValueError
        The point is not one of :data:`PAUSE_POINTS`, or the seconds are no number.
    """
    value = os.environ.get(TEST_PAUSE_ENV, "")
    if not value:
        return None
    point, _, seconds = value.partition(":")
    if point not in PAUSE_POINTS:
        raise ValueError(f"{TEST_PAUSE_ENV}={value!r}: the point must be one of {PAUSE_POINTS}.")
    try:
        return point, float(seconds) if seconds else 120.0
    except ValueError:
        raise ValueError(f"{TEST_PAUSE_ENV}={value!r}: seconds must be a number.") from None


def pause_if_asked(point: str) -> None:
    """Pause here if :data:`TEST_PAUSE_ENV` names ``point``; otherwise return at once.

    The pause lasts until its deadline or until the process receives SIGUSR1
    (listened for only in the main thread, whose previous handler is restored).

    Parameters
    ----------
    point : str
        One of :data:`PAUSE_POINTS`.
    """
    setting = pause_setting()
    if setting is None or setting[0] != point:
        return
    resumed = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGUSR1, lambda *_: resumed.set()) if in_main else None
    logger.warning(
        "%s: paused at %s for up to %g s (pid %d; SIGUSR1 resumes)",
        TEST_PAUSE_ENV,
        point,
        setting[1],
        os.getpid(),
    )
    deadline = time.monotonic() + setting[1]
    try:
        while not resumed.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        if in_main:
            signal.signal(signal.SIGUSR1, previous)
