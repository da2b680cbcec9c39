"""Per-iteration records of EM fits in distributed's event log.

Every fit on a distributed cluster publishes one record per EM iteration (batch
EM) or mini-batch (stepwise EM) to the scheduler's event log, as
``Client.log_event`` does (:func:`publish`), under the topic
:data:`TOPIC`, and under distributed's ``"all"`` topic, which the dashboard's
``/events`` page draws (each record is a dot labelled with its ``action``).
``client.get_events("daskgmm")`` reads them back as ``(time, record)`` pairs;
:func:`fit_records` groups them by fit.  The page ``/individual-daskgmm``
(:mod:`daskgmm.cluster.dashboard`) draws them.

A record is a dict of plain numbers, strings and lists (msgpack-serialisable);
its keys are listed in :data:`RECORD_KEYS`.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("daskgmm.cluster")

#: The event topic of daskgmm's records.
TOPIC = "daskgmm"
#: The records' ``action``: how the dashboard's ``/events`` page labels them.
ACTION = "daskgmm-iteration"
#: What a record holds.
RECORD_KEYS = {
    "action": "always ACTION",
    "fit": "an id for the fit (12 hex digits), the same for all its records",
    "estimator": "the estimator's class name",
    "model": "its components and covariance type ('K=3 full'): models fitted together "
    "(daskgmm.select_mixture) share a fit",
    "init": "the initialisation, from 0",
    "n_init": "initialisations of the fit",
    "iteration": "EM iterations (mini-batches) of this initialisation so far",
    "lower_bound": "after the iteration",
    "change": "of the lower bound (None after the first iteration)",
    "seconds": "wall seconds of the iteration, pass and M-step",
    "gap": "client seconds from the previous pass's results to this pass's "
    "submission (None for the first)",
    "rows": "rows the pass used",
    "bad_rows": "rows with NaN or inf (left out under nan_policy='omit')",
    "weights": "the component weights after the iteration",
    "last_checkpoint": "Unix time of the last checkpoint written (None: none)",
    "time_left": "estimated seconds left in the fit (None: no estimate yet)",
    "time_left_at_most": "seconds left if every allowed iteration runs",
    "converged": "whether this initialisation has converged",
    "time": "Unix time of the record",
}


def publish(client, record: dict) -> None:
    """Send ``record`` to ``client``'s scheduler, under :data:`TOPIC` and ``"all"``.

    It goes to the scheduler's ``log_event`` handler, as ``Client.log_event``
    sends it, but without waiting for the scheduler: the records of a client go
    out one after the other, in order, from the client's event loop, while the
    fit goes on (a ``Client.log_event`` round trip took 1-10 ms on a loaded
    2-core machine, several per cent of a short iteration).  :func:`flush` waits
    for them.  Never raises: a record that cannot be sent is logged at DEBUG.

    Parameters
    ----------
    client : distributed.Client
    record : dict
        msgpack-serialisable.

    Examples
    --------
    Fits publish their records themselves; reading them needs a cluster (not run
    as a doctest):

    >>> records = client.get_events("daskgmm")  # doctest: +SKIP
    >>> records[-1][1]["iteration"], records[-1][1]["lower_bound"]  # doctest: +SKIP
    (12, -3.4187...)
    """
    try:
        client.loop.add_callback(_send, client, record)
    except Exception:  # the records are a view of the fit: never fail it for them
        logger.debug("could not publish a daskgmm record", exc_info=True)


def flush(client, timeout: float = 10) -> None:
    """Wait (at most ``timeout`` seconds) until the records :func:`publish` queued
    so far are with the scheduler.

    Examples
    --------
    Needs a cluster (not run as a doctest):

    >>> from daskgmm.cluster.events import flush
    >>> flush(client)           # every record queued so far is with the scheduler  # doctest: +SKIP
    """
    try:
        client.sync(_drain, client, callback_timeout=timeout)
    except Exception:
        logger.debug("daskgmm records not flushed", exc_info=True)


def _lock(client):
    """The lock that keeps a client's records in order (made on its event loop)."""
    import asyncio

    lock = getattr(client, "_daskgmm_records_lock", None)
    if lock is None:
        lock = client._daskgmm_records_lock = asyncio.Lock()
    return lock


async def _send(client, record: dict) -> None:
    async with _lock(client):  # asyncio locks serve their waiters first come, first served
        try:
            await client.scheduler.log_event(topic=[TOPIC, "all"], msg=record)
        except Exception:
            logger.debug("could not publish a daskgmm record", exc_info=True)


async def _drain(client) -> None:
    async with _lock(client):
        pass


def fit_records(events) -> dict[str, list[dict]]:
    """The records of ``events`` (``(time, record)`` pairs, as ``get_events``
    gives them) grouped by fit id, in the order they were published.

    Examples
    --------
    >>> from daskgmm.cluster.events import ACTION, fit_records
    >>> events = [(0.0, {"action": ACTION, "fit": "a1", "iteration": 1}),
    ...           (1.0, {"action": "other"}),
    ...           (2.0, {"action": ACTION, "fit": "a1", "iteration": 2})]
    >>> [r["iteration"] for r in fit_records(events)["a1"]]
    [1, 2]

    On a cluster: ``fit_records(client.get_events("daskgmm"))``.
    """
    fits: dict[str, list[dict]] = {}
    for _, record in events:
        if isinstance(record, dict) and record.get("action") == ACTION:
            fits.setdefault(str(record.get("fit")), []).append(record)
    return fits
