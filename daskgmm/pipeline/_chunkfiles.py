"""The files of a local Zarr store, read from its JSON metadata (no zarr import).

Pipelines need two things zarr's API does not give: which storage chunk a file
holds (to fingerprint the part of a source that was already processed, and to
know which files of a published prediction store a new version may share), and
the files' sizes and modification times.  Zarr v3 (``zarr.json``, ``default``
and ``v2`` chunk key encodings, sharded or not: a shard is one file) and v2
(``.zarray``, ``_ARRAY_DIMENSIONS``) layouts are understood.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ArrayLayout:
    """Where a Zarr array's chunk files are and how they are named.

    Attributes
    ----------
    path : pathlib.Path
        The array's directory.
    dims : tuple of str or None
        Dimension names, when the metadata has them.
    chunk_shape : tuple of int
        Shape of one chunk file (of one shard for sharded arrays).
    prefix : str
        ``'c'`` for v3's default key encoding, ``''`` otherwise.
    separator : str
        Between chunk indices in a key: ``'/'`` or ``'.'``.
    """

    path: Path
    dims: tuple | None
    chunk_shape: tuple
    prefix: str
    separator: str

    def chunk_index(self, key: str) -> tuple | None:
        """The chunk indices of the file at ``key`` (posix path relative to the
        array), or None if it is not a chunk file (metadata, a writer's temporary)."""
        if self.prefix:
            if key == self.prefix:
                return ()
            head = self.prefix + self.separator
            if not key.startswith(head):
                return None
            key = key[len(head) :]
        parts = key.split(self.separator)
        if len(parts) != len(self.chunk_shape) or not all(p.isdigit() for p in parts):
            return None
        return tuple(int(p) for p in parts)

    def axis(self, dim: str) -> int | None:
        """Position of the dimension ``dim``, or None."""
        if self.dims is None or dim not in self.dims:
            return None
        return self.dims.index(dim)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def array_layout(path: str | os.PathLike) -> ArrayLayout | None:
    """The layout of the Zarr array stored at the directory ``path``, or None if
    ``path`` holds no array (a group, or nothing) or one laid out in a way not
    understood here (its files are then never shared, and its source compared by
    shape only)."""
    path = Path(path)
    try:
        return _layout(path)
    except (KeyError, TypeError, AttributeError):  # a chunk grid or encoding we do not know
        return None


def _layout(path: Path) -> ArrayLayout | None:
    meta = _read_json(path / "zarr.json")
    if meta is not None:
        if meta.get("node_type") != "array":
            return None
        grid = meta["chunk_grid"]["configuration"]["chunk_shape"]
        encoding = meta.get("chunk_key_encoding", {"name": "default"})
        config = encoding.get("configuration") or {}
        if encoding.get("name") == "v2":
            prefix, separator = "", config.get("separator", ".")
        else:
            prefix, separator = "c", config.get("separator", "/")
        dims = meta.get("dimension_names")
        return ArrayLayout(path, tuple(dims) if dims else None, tuple(grid), prefix, separator)
    meta = _read_json(path / ".zarray")
    if meta is None:
        return None
    attrs = _read_json(path / ".zattrs") or {}
    dims = attrs.get("_ARRAY_DIMENSIONS")
    separator = meta.get("dimension_separator") or "."
    return ArrayLayout(path, tuple(dims) if dims else None, tuple(meta["chunks"]), "", separator)


def array_layouts(store: str | os.PathLike) -> dict[str, ArrayLayout]:
    """Every array under a local store: name (posix path in the store, ``''`` for a
    store that is one array) -> layout."""
    store = Path(store)
    found = {}
    for root, dirs, _ in os.walk(store):
        root_path = Path(root)
        layout = array_layout(root_path)
        if layout is not None:
            name = "" if root_path == store else root_path.relative_to(store).as_posix()
            found[name] = layout
            dirs.clear()  # an array's subdirectories hold its chunks
    return found


@dataclass(frozen=True)
class ChunkFile:
    """One chunk file: path relative to the array, chunk indices, size, mtime (ns)."""

    key: str
    index: tuple
    size: int
    mtime_ns: int


def chunk_files(layout: ArrayLayout) -> list[ChunkFile]:
    """The chunk files of an array, sorted by key."""
    out = []
    for root, _, files in os.walk(layout.path):
        for name in files:
            full = Path(root, name)
            key = full.relative_to(layout.path).as_posix()
            index = layout.chunk_index(key)
            if index is None:
                continue
            info = full.stat()
            out.append(ChunkFile(key, index, info.st_size, info.st_mtime_ns))
    return sorted(out, key=lambda c: c.key)


def chunks_digest(layouts: dict[str, ArrayLayout], dim: str, below: int | None = None) -> str:
    """SHA-256 of the names, sizes and modification times of chunk files.

    Parameters
    ----------
    layouts : dict of name -> ArrayLayout
        The arrays to describe.
    dim : str
        The dimension along which ``below`` counts.
    below : int, optional
        Keep only chunks that lie wholly before this index along ``dim`` (chunks
        a later append cannot touch).  Arrays without ``dim`` count whole.

    Returns
    -------
    str
        Hex digest; equal digests mean no chunk file was written in between
        (up to the filesystem's timestamp resolution).
    """
    digest = hashlib.sha256()
    for name in sorted(layouts):
        layout = layouts[name]
        axis = layout.axis(dim)
        limit = None if below is None or axis is None else below // layout.chunk_shape[axis]
        for chunk in chunk_files(layout):
            if limit is not None and chunk.index[axis] >= limit:
                continue
            digest.update(f"{name}/{chunk.key}\0{chunk.size}\0{chunk.mtime_ns}\n".encode())
    return digest.hexdigest()
