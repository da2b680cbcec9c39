"""Computing on a distributed client while relaying its progress."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger("daskgmm.cluster")


class _PassProgress:
    """Relays the scheduler's count of a computation's finished tasks to a callback."""

    def __init__(self, futures, client, on_fraction):
        from distributed.diagnostics.progressbar import ProgressBar

        outer = self

        class _Bar(ProgressBar):
            def _draw_bar(self, remaining, all, **kwargs):
                if all:
                    on_fraction((all - remaining) / all)
                outer.finished = kwargs.get("status") in ("finished", "error")

        self.finished = False
        self.bar = _Bar(futures, scheduler=client.scheduler.address, interval="200ms")

    async def listen(self):
        try:
            await self.bar.listen()
        except Exception:  # progress is a nicety: never fail the computation for it
            logger.debug("progress stream from the scheduler ended", exc_info=True)


def compute_with_progress(
    client: Client, graphs: Sequence, on_fraction: Callable[[float], None]
) -> tuple:
    """Compute dask collections on ``client``, reporting the share of tasks finished.

    Parameters
    ----------
    client : distributed.Client
    graphs : sequence of dask collections
    on_fraction : callable
        Called with the fraction (0..1) of the computation's tasks finished, from
        the client's event-loop thread, about every 0.2 s.

    Returns
    -------
    tuple
        The results, as ``dask.compute(*graphs)`` gives them.

    Examples
    --------
    Needs a cluster (not run as a doctest):

    >>> import dask.array as da
    >>> from daskgmm.cluster import compute_with_progress, start_local_cluster
    >>> client = start_local_cluster(n_workers=2)  # doctest: +SKIP
    >>> shares = []
    >>> graphs = [da.ones(10, chunks=2).sum()]
    >>> (total,) = compute_with_progress(client, graphs, shares.append)  # doctest: +SKIP
    >>> shares[-1]  # doctest: +SKIP
    1.0
    >>> total  # doctest: +SKIP
    10.0
    """
    futures = client.compute(list(graphs))
    watcher = _PassProgress(futures, client, on_fraction)
    client.loop.add_callback(watcher.listen)
    try:
        return tuple(client.gather(futures))
    finally:
        comm = getattr(watcher.bar, "comm", None)
        if comm is not None and not watcher.finished:
            comm.abort()
