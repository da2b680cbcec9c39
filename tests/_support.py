"""Helpers shared by the tests (imported as ``_support``: pytest puts tests/ on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import dask.array as da
import numpy as np
from dask.callbacks import Callback

REPO = Path(__file__).resolve().parents[1]


def cli_env() -> dict:
    """This process's environment with the repository first on ``PYTHONPATH``."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def run_cli(*args, cwd, code: int | None = 0) -> subprocess.CompletedProcess:
    """``python -m daskgmm ARGS`` in ``cwd``; asserts the exit code when given."""
    proc = subprocess.run(
        [sys.executable, "-m", "daskgmm", *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if code is not None:
        assert proc.returncode == code, (
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


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


# --------------------------------------------------------------------------- #
# counted reads
# --------------------------------------------------------------------------- #
INPUT_NAME = "counted-input"


class CountingArray:
    """Array-like over a numpy array that records every read."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim
        self.reads: list = []

    def __getitem__(self, key):
        out = self.array[key]
        self.reads.append((key, out.shape))
        return out

    def row_reads(self):
        """Reads that returned at least one row (dask's meta probe reads none)."""
        return [(key, shape) for key, shape in self.reads if shape[0] > 0]


def counted_dask_array(X: np.ndarray, chunk_rows: int):
    counting = CountingArray(X)
    dX = da.from_array(
        counting,
        chunks=(chunk_rows, -1),
        asarray=True,
        lock=False,
        inline_array=False,
        name=INPUT_NAME,
    )
    counting.reads.clear()  # forget the metadata probe of from_array
    return counting, dX
