"""Checkpoints of a running fit: written atomically after every iteration, resumed exactly.

A checkpoint is a directory::

    PATH/state.json     schema version, what was fitted (parameters, data), where the fit is
    PATH/arrays.npz     the arrays (current and best parameters, random state); no pickle

It is written by :func:`daskgmm._files.write_directory`, so a reader sees either the
previous complete checkpoint or the new one, never a half-written one, whenever the
writer is killed.  Resuming checks that
the estimator's parameters and the data (shape, dtype, row chunks) are the ones the
checkpoint was made with.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ._files import readable_directory, write_directory

SCHEMA_VERSION = 2


class CheckpointMismatchError(ValueError):
    """The checkpoint belongs to another fit (other parameters or other data)."""


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def fingerprint(params: dict, data: dict) -> dict:
    """What a checkpoint must match to be resumed: estimator parameters and data layout."""
    return {"params": _jsonable(params), "data": _jsonable(data)}


#: Parameters that do not change a fit's result, left out of its checkpoint's fingerprint.
UNFINGERPRINTED = ("verbose", "verbose_interval", "progress", "scheduler")


def fit_fingerprint(estimator, rows, training_data: dict) -> dict:
    """The fingerprint of fitting ``estimator`` to ``rows`` (an ``_engine.RowChunks``).

    Besides the parameters and the rows' layout it holds ``training_data``, the
    input's :func:`daskgmm.fingerprint.training_data_fingerprint` (the SHA-256 of
    a numpy array up to 256 MiB, a local store's file count, bytes and newest
    modification time, a dask array's graph name), less the time it was taken.
    """
    params = {
        name: ("RandomState" if isinstance(v, np.random.RandomState) else v)
        for name, v in estimator.get_params().items()
        if name not in UNFINGERPRINTED
    }
    data = {
        "shape": rows.array.shape,
        "dtype": str(rows.array.dtype),
        "row_chunks": rows.array.chunks[0],
        "weighted": rows.weights is not None,
    }
    source = {k: v for k, v in training_data.items() if k != "recorded"}
    return {**fingerprint(params, data), "source": _jsonable(source)}


def random_state_parts(random_state: np.random.RandomState) -> tuple[list, np.ndarray]:
    """A RandomState's state as JSON-able scalars and its key array."""
    kind, keys, pos, has_gauss, cached = random_state.get_state()
    return [kind, int(pos), int(has_gauss), float(cached)], keys


def restore_random_state(random_state: np.random.RandomState, scalars: list, keys) -> None:
    """Inverse of :func:`random_state_parts`."""
    kind, pos, has_gauss, cached = scalars
    random_state.set_state((kind, keys, pos, has_gauss, cached))


def save(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write a checkpoint atomically (see :func:`daskgmm._files.write_directory`).

    Parameters
    ----------
    path : path-like
        The checkpoint directory.
    meta : dict
        JSON-able state: fingerprint, init index, iteration, lower bounds...
    arrays : dict of str -> ndarray
    """

    def fill(tmp: Path) -> None:
        np.savez(tmp / "arrays.npz", **arrays)
        (tmp / "state.json").write_text(
            json.dumps({"schema_version": SCHEMA_VERSION, **_jsonable(meta)})
        )

    write_directory(path, fill)


def load(path: str | os.PathLike, expected_fingerprint: dict):
    """Read a checkpoint if there is one and it belongs to this fit.

    Returns
    -------
    (meta, arrays) or None
        None when no checkpoint exists yet.

    Raises
    ------
    CheckpointMismatchError
        If it was made by another fit or another schema version.
    """
    path = readable_directory(path)
    if path is None:
        return None
    try:
        meta = json.loads((path / "state.json").read_text())
        with np.load(path / "arrays.npz", allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointMismatchError(
            f"Checkpoint {str(path)!r} is unreadable ({exc}); delete it to start afresh."
        ) from exc
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise CheckpointMismatchError(
            f"Checkpoint {str(path)!r} has schema version {meta.get('schema_version')}, "
            f"this daskgmm writes {SCHEMA_VERSION}; delete it to start afresh."
        )
    expected = _jsonable(expected_fingerprint)
    what = {
        "params": "estimator parameters",
        "data": "data (shape, dtype, chunks)",
        "source": "data: the same shape, other values (SHA-256, store files or dask graph)",
    }
    for part in expected:
        if meta.get("fingerprint", {}).get(part) != expected[part]:
            raise CheckpointMismatchError(
                f"Checkpoint {str(path)!r} was made with other {what[part]}; use "
                "another checkpoint path or delete it to start afresh."
            )
    return meta, arrays
