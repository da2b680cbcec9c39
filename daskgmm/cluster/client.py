"""Which distributed client dask computes with now, and how loudly distributed logs."""

from __future__ import annotations

import logging

import dask


def current_client():
    """The ``distributed.Client`` dask computes with now, or None (local schedulers)."""
    owner = getattr(dask.base.get_scheduler(), "__self__", None)
    if owner is not None and type(owner).__module__.startswith("distributed"):
        return owner
    return None


def scheduler_address() -> str:
    """Address of the distributed scheduler dask would use now ('' if local)."""
    client = current_client()
    return str(getattr(getattr(client, "scheduler", None), "address", "") or "")


def quiet_logs() -> None:
    """distributed logs every scheduler and worker event at INFO: show them only
    with ``-v`` (the level the user chose for the root logger).  bokeh's warning
    about the dashboard's wildcard websocket origin (the dashboard listens on
    127.0.0.1 only) is shown from ``-v`` on too."""
    import distributed  # noqa: F401  (configures its loggers on import)

    level = max(logging.getLogger().getEffectiveLevel(), logging.INFO)
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("bokeh").setLevel(logging.ERROR if level > logging.INFO else level)
