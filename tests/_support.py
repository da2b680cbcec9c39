"""Helpers shared by the tests (imported as ``_support``: pytest puts tests/ on the path)."""

from __future__ import annotations

import threading

from dask.callbacks import Callback


class ComputeCounter(Callback):
    """Counts the dask computations (graphs run by a local scheduler) inside the block."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def _start(self, dsk):
        self.count += 1


def record_task_threads(monkeypatch, module) -> list[int]:
    """Make every E-step chunk task (``module.chunk_stats``) record its thread's ident.

    A dask Callback's ``_pretask`` cannot tell schedulers apart: it runs in the
    calling thread under every local scheduler.
    """
    threads: list[int] = []
    real_chunk_stats = module.chunk_stats

    def recording(*args, **kwargs):
        threads.append(threading.get_ident())
        return real_chunk_stats(*args, **kwargs)

    monkeypatch.setattr(module, "chunk_stats", recording)
    return threads
