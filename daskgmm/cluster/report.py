"""distributed's HTML performance report of a block of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client


@contextmanager
def performance_report(path: str | None, client: Client | None = None) -> Iterator[None]:
    """Write distributed's HTML performance report of the block to ``path`` (if given).

    Parameters
    ----------
    path : str or None
    client : distributed.Client, optional
        The client whose work to report; default: the current one.  Anything
        else (None, a scheduler name) means the current client.

    Examples
    --------
    Without a path nothing is written (with one, it needs an active client):

    >>> import dask.array as da
    >>> from daskgmm.cluster import performance_report
    >>> with performance_report(None):
    ...     total = da.ones(10, chunks=5).sum().compute()
    """
    if path is None:
        yield
        return
    from distributed import Client
    from distributed import performance_report as report

    if isinstance(client, Client):
        with client.as_current(), report(filename=path):
            yield
        return
    with report(filename=path):
        yield
