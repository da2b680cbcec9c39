"""Checkpoints of a running fit: written atomically after every step, resumed exactly.

A checkpoint is a directory::

    PATH/state.json     schema version, what was fitted (its fingerprint), where the
                        fit is, the random state's scalars
    PATH/arrays.npz     the arrays (parameters, statistics, the random state's keys);
                        no pickle

It is written by :func:`daskgmm.store.files.write_directory`, so a reader sees
either the previous complete checkpoint or the new one, never a half-written one,
whenever the writer is killed.  Resuming checks that the checkpoint's fingerprint
(the estimator's parameters, the data's layout and values) is the fit's own.
What a step's state holds is the estimator's business: this module only adds
the fingerprint and the random state, and knows no estimator.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import CheckpointMismatchError
from .files import readable_directory, write_directory
from .json_values import to_json

SCHEMA_VERSION = 2
STATE_FILE = "state.json"
ARRAYS_FILE = "arrays.npz"
RANDOM_STATE_KEYS = "random_state_keys"

#: What each part of a fingerprint describes, for the mismatch message.
_FINGERPRINT_PARTS = {
    "params": "estimator parameters",
    "data": "data (shape, dtype, chunks)",
    "source": "data: the same shape, other values (SHA-256, store files or dask graph)",
}


def fingerprint(params: dict, data: dict, source: dict) -> dict:
    """What a checkpoint must match to be resumed.

    Parameters
    ----------
    params : dict
        The estimator parameters that change the result.
    data : dict
        The rows' layout: shape, dtype, row chunks, whether weighted.
    source : dict
        The input's data fingerprint (values, store files or graph name).
    """
    return {"params": to_json(params), "data": to_json(data), "source": to_json(source)}


class Checkpoint:
    """The checkpoint directory of one fit; every method does nothing when ``path`` is None.

    Parameters
    ----------
    path : path-like or None
    fingerprint : dict
        From :func:`fingerprint`.
    random_state : numpy.random.RandomState
        The fit's; saved with every step and restored on resuming, so that a
        resumed fit draws what the uninterrupted one draws.
    """

    def __init__(self, path, fingerprint: dict | None, random_state: np.random.RandomState):
        self.path = path
        self.fingerprint = fingerprint
        self.random_state = random_state

    def save(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        """Replace the checkpoint with ``state`` (JSON-able) and ``arrays``, atomically."""
        if self.path is None:
            return
        check_checkpoint_path(self.path)
        kind, keys, pos, has_gauss, cached = self.random_state.get_state()
        meta = {
            "schema_version": SCHEMA_VERSION,
            "fingerprint": self.fingerprint,
            "random_state": [kind, int(pos), int(has_gauss), float(cached)],
            **to_json(state),
        }
        arrays = {RANDOM_STATE_KEYS: keys, **arrays}

        def fill(tmp: Path) -> None:
            np.savez(tmp / ARRAYS_FILE, **arrays)
            (tmp / STATE_FILE).write_text(json.dumps(to_json(meta)))

        write_directory(self.path, fill)

    def load(self) -> tuple[dict, dict] | None:
        """``(state, arrays)`` of the last saved step, the random state restored; None
        when there is no checkpoint yet.

        Raises
        ------
        CheckpointMismatchError
            If it is unreadable, of another schema version, or made by another
            fit (other parameters or other data).
        """
        if self.path is None:
            return None
        check_checkpoint_path(self.path)
        path = readable_directory(self.path)
        if path is None or (path.is_dir() and not any(path.iterdir())):
            return None  # nothing yet (an empty directory is taken for a new one)
        meta, arrays = _read(path)
        _check_fingerprint(path, meta, self.fingerprint)
        kind, pos, has_gauss, cached = meta["random_state"]
        self.random_state.set_state((kind, arrays[RANDOM_STATE_KEYS], pos, has_gauss, cached))
        return meta, arrays


_ZARR_FILES = ("zarr.json", ".zgroup", ".zarray")


def _not_a_checkpoint(path: Path, why: str) -> CheckpointMismatchError:
    return CheckpointMismatchError(
        f"{str(path)!r} is not a daskgmm checkpoint: {why}. Choose a new path for "
        "checkpoint= (--checkpoint), or the checkpoint directory of this fit."
    )


def check_checkpoint_path(path) -> None:
    """Refuse a checkpoint path that holds something else, or lies inside a Zarr store.

    A checkpoint is replaced whole after every step, so anything daskgmm did not
    write there would be lost: a file, a directory without ``state.json`` (but
    for an empty one), a Zarr store, or a folder inside one.

    Raises
    ------
    CheckpointMismatchError
    """
    path = Path(path)
    absolute = path.absolute()
    for folder in (absolute, *absolute.parents):
        if any((folder / name).is_file() for name in _ZARR_FILES):
            where = "it is" if folder == absolute else f"it lies inside {str(folder)!r}, which is"
            raise _not_a_checkpoint(path, f"{where} a Zarr store")
    if path.exists() and not path.is_dir():
        raise _not_a_checkpoint(path, "it is a file")
    if path.is_dir() and any(path.iterdir()) and not (path / STATE_FILE).is_file():
        raise _not_a_checkpoint(path, f"the directory holds no {STATE_FILE}")


def _read(path: Path) -> tuple[dict, dict]:
    try:
        meta = json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise _not_a_checkpoint(path, f"its {STATE_FILE} cannot be read ({exc})") from exc
    if not isinstance(meta, dict) or "fingerprint" not in meta or "schema_version" not in meta:
        raise _not_a_checkpoint(path, f"its {STATE_FILE} is not one daskgmm wrote")
    try:
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointMismatchError(
            f"Checkpoint {str(path)!r} is damaged: its {ARRAYS_FILE} is unreadable ({exc}); "
            "delete it to start afresh."
        ) from exc
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise CheckpointMismatchError(
            f"Checkpoint {str(path)!r} has schema version {meta.get('schema_version')}, "
            f"this daskgmm writes {SCHEMA_VERSION}; delete it to start afresh."
        )
    return meta, arrays


def _check_fingerprint(path: Path, meta: dict, expected: dict) -> None:
    expected = to_json(expected)
    for part in expected:
        if meta.get("fingerprint", {}).get(part) != expected[part]:
            raise CheckpointMismatchError(
                f"Checkpoint {str(path)!r} was made with other {_FINGERPRINT_PARTS[part]}; "
                "use another checkpoint path or delete it to start afresh."
            )
