"""Row chunks kept on the workers for the passes of a fit."""

from __future__ import annotations

import logging

logger = logging.getLogger("daskgmm.cluster")

#: In-memory rows are kept on the workers while they take at most this share of
#: the workers' memory limits together.
HOLD_SHARE = 0.5


def hold_on_workers(client, collections: list, nbytes: int) -> list | None:
    """``collections`` (delayed blocks of in-memory data) computed once and kept on
    the workers, so that the passes that follow send them only their keys.

    A graph that holds in-memory data carries those data to the scheduler and on
    to the workers every time it is computed: an EM fit on a numpy array would
    ship the whole array with every iteration.

    Parameters
    ----------
    client : distributed.Client
    collections : list of dask collections
    nbytes : int
        Bytes they hold.

    Returns
    -------
    list or None
        The collections, backed by futures (they stay on the workers while
        referenced), or None when they would take more than :data:`HOLD_SHARE`
        of the workers' memory limits.
    """
    workers = client.scheduler_info().get("workers", {})
    limits = [w.get("memory_limit") or 0 for w in workers.values()]
    if not limits or (all(limits) and nbytes > HOLD_SHARE * sum(limits)):
        logger.debug("row chunks of %d bytes are sent with every pass", nbytes)
        return None
    return list(client.persist(collections))
