"""distributed's HTML performance report of a block of work."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def performance_report(path: str | None, client=None):
    """Write distributed's HTML performance report of the block to ``path`` (if given).

    Parameters
    ----------
    path : str or None
    client : distributed.Client, optional
        The client whose work to report; default: the current one.  Anything
        else (None, a scheduler name) means the current client.
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
