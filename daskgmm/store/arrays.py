"""Named arrays in one ``.npz``: the one packer that model files and checkpoints use.

A group of arrays is stored under ``PREFIX + name`` keys beside other groups in
the same archive, and read back by the same prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def pack(arrays: dict, prefix: str, values: Mapping[str, object], dtype=None) -> None:
    """Add ``values`` to ``arrays`` as ``prefix + name`` -> ndarray (``dtype`` if given)."""
    for name, value in values.items():
        arrays[f"{prefix}{name}"] = np.asarray(value, dtype=dtype)


def unpack(arrays: Mapping[str, np.ndarray], prefix: str, names: Iterable[str]) -> dict:
    """The arrays ``prefix + name`` of ``arrays``, by ``name``."""
    return {name: arrays[f"{prefix}{name}"] for name in names}


def group(arrays: Mapping[str, np.ndarray], prefix: str) -> dict:
    """Every array whose key starts with ``prefix``, by the rest of its key."""
    return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}
