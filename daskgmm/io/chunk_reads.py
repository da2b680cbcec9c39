"""Reading Zarr chunks with errors that name the chunk.

A damaged chunk makes zarr's codecs raise bare errors ("Zstd decompression error:
invalid input data") that name neither the store nor the chunk.  A chunk whose
file is missing reads as the array's fill value, which for zarr's default fill
value (0) looks like data.  The dask arrays the readers build read their blocks
through :class:`ChunkGuard`, which turns both into a
:class:`~daskgmm.errors.DataReadError` naming the store, the array and the chunk.

What is checked, and what is not:

- Any error while reading a block (a damaged or unreadable chunk): the block is
  read again chunk by chunk to name the one that fails.
- A missing chunk, when the value it would read as is taken as data: the array's
  fill value is not NaN and not read as missing (``fill_value='auto'`` and
  zarr's default 0, for instance).  Only a stretch of a block that holds one
  value throughout costs a look for its chunk file, so blocks of real data cost
  one comparison.  ``fill_value=None`` ("nothing is missing") turns the check
  off: zarr leaves out chunks that hold only the fill value, and such a store
  is then read as written.  Within a shard, missing inner chunks are not
  detected (the shard file is what is looked for).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from dask.array.core import getter

from ..errors import DataReadError
from .lazy import _zarr

logger = logging.getLogger("daskgmm.io")


class ChunkGuard:
    """The ``getitem`` of :func:`dask.array.from_array` for Zarr-backed arrays.

    Picklable (it travels to distributed workers with every task that reads).

    Parameters
    ----------
    location : str
        The store as the user named it (a path or URL), for messages.
    check_missing : bool
        Look for the files of chunks that read as one value throughout.
    masked : tuple
        Values read as missing afterwards (a chunk of them is no longer data).
    """

    def __init__(self, location: str, check_missing: bool = True, masked: tuple = ()):
        self.location = str(location)
        self.check_missing = bool(check_missing)
        self.masked = tuple(masked)

    def __call__(self, source, key, asarray: bool = True, lock=None):
        try:
            block = getter(source, key, asarray=asarray, lock=lock)
        except (MemoryError, DataReadError):
            raise
        except Exception as exc:
            raise self._read_error(source, key, exc) from exc
        if self.check_missing:
            zarray = zarr_array_of(source)
            if zarray is not None:
                self._check_missing(zarray, key, block)
        return block

    def _read_error(self, source, key, exc: Exception) -> DataReadError:
        """The error for a block that failed: the first of its chunks that fails."""
        zarray = zarr_array_of(source)
        if zarray is None:
            return DataReadError(
                f"Cannot read the Zarr store {self.location}: {type(exc).__name__}: {exc}."
            )
        failing, cause = None, exc
        for coords, _, _ in covered_chunks(zarray, key):
            try:
                zarray[chunk_selection(zarray, coords)]
            except Exception as chunk_exc:  # the one to name
                failing, cause = coords, chunk_exc
                break
        name = (
            chunk_name(zarray, failing)
            if failing
            else "one of chunks "
            + ", ".join(repr(chunk_key(zarray, c)) for c, _, _ in covered_chunks(zarray, key))
        )
        return DataReadError(
            f"Cannot read {name} of {array_name(zarray)} in store "
            f"{self.location}: {type(cause).__name__}: {cause}. The chunk is damaged "
            "(truncated or corrupted) or unreadable; restore the store, or write the "
            "chunk again from the original data."
        )

    def _check_missing(self, zarray, key, block: np.ndarray) -> None:
        for coords, region, _ in covered_chunks(zarray, key):
            part = block[region]
            if part.size == 0:
                continue
            value = part.flat[0]
            if part.flat[-1] != value or value in self.masked or not (part == value).all():
                continue  # real data, NaN, or values read as missing anyway
            if not chunk_exists(zarray, coords):
                raise DataReadError(self._missing_message(zarray, coords, value))

    def _missing_message(self, zarray, coords, value) -> str:
        fill = np.asarray(value).item()
        return (
            f"The {chunk_name(zarray, coords)} of {array_name(zarray)} in "
            f"store {self.location} is missing: it reads as the fill value {fill!r} "
            "throughout, which cannot be told from data. "
            "Restore the chunk. If it is meant to hold only the fill value (zarr does not "
            f"write such chunks), pass fill_value=None (--fill-value none) to read it as "
            f"{fill!r}, or fill_value={fill!r} to read it as missing."
        )


def zarr_array_of(source):
    """The ``zarr.Array`` that ``source`` reads from (itself, or below xarray's
    lazy wrappers); None if there is none."""
    zarr = _zarr()
    for _ in range(16):
        if isinstance(source, zarr.Array):
            return source
        get_array = getattr(source, "get_array", None)
        if get_array is not None and type(source).__name__ == "ZarrArrayWrapper":
            return get_array()
        source = getattr(source, "array", None)
        if source is None:
            return None
    return None


def _grid(zarray) -> tuple:
    """The shape of what one storage key holds (a shard, or a chunk)."""
    return tuple(getattr(zarray, "shards", None) or zarray.chunks)


def covered_chunks(zarray, key) -> list:
    """``(coords, region in the block, storage key)`` of every stored chunk a block
    selected by ``key`` (a tuple of slices) touches."""
    if not isinstance(key, tuple) or not all(isinstance(k, slice) for k in key):
        return []
    grid = _grid(zarray)
    per_dim = []
    for sel, size, length in zip(key, grid, zarray.shape, strict=False):
        start, stop, step = sel.indices(length)
        if step != 1 or stop <= start:
            return []
        per_dim.append(
            [
                (c, slice(max(c * size, start) - start, min((c + 1) * size, stop) - start))
                for c in range(start // size, -(-stop // size))
            ]
        )
    out = [((), ())]
    for options in per_dim:
        out = [((*cs, c), (*rs, r)) for cs, rs in out for c, r in options]
    return [(coords, region, chunk_key(zarray, coords)) for coords, region in out]


def chunk_selection(zarray, coords) -> tuple:
    """The slices of the array a stored chunk holds."""
    return tuple(
        slice(c * size, min((c + 1) * size, length))
        for c, size, length in zip(coords, _grid(zarray), zarray.shape, strict=True)
    )


def chunk_key(zarray, coords) -> str:
    """The storage key of a chunk within its array (``c/1/0``, ``1.0``)."""
    return zarray.metadata.encode_chunk_key(tuple(int(c) for c in coords))


def _store_key(zarray, coords) -> str:
    path = zarray.path.strip("/")
    return f"{path}/{chunk_key(zarray, coords)}" if path else chunk_key(zarray, coords)


def _local_root(zarray) -> Path | None:
    root = getattr(zarray.store, "root", None)
    return Path(root).absolute() if root is not None else None


def chunk_name(zarray, coords) -> str:
    """``chunk 'c/1/0' (file /data/x.zarr/c/1/0)``: its key, and its file when local."""
    root = _local_root(zarray)
    where = f" (file {root / _store_key(zarray, coords)})" if root is not None else ""
    return f"chunk {chunk_key(zarray, coords)!r}{where}"


def array_name(zarray) -> str:
    """``Zarr array 'data'``, or ``the root Zarr array``."""
    return f"Zarr array {zarray.path!r}" if zarray.path else "the root Zarr array"


def chunk_exists(zarray, coords) -> bool:
    """Whether the stored object of a chunk exists."""
    root = _local_root(zarray)
    key = _store_key(zarray, coords)
    if root is not None:
        return (root / key).exists()
    from zarr.core.sync import sync

    return bool(sync(zarray.store.exists(key)))


def store_location(zarray) -> str:
    """The store of ``zarray`` for messages: its directory when local, else its URL."""
    root = _local_root(zarray)
    return str(root) if root is not None else str(zarray.store)


def read_zarr_array(zarray, chunks, *, check_missing: bool = True, masked=()):
    """``zarray`` as a dask array whose blocks are read through :class:`ChunkGuard`.

    As :func:`dask.array.from_zarr` (same chunks, same graph name).
    """
    import dask.array as da
    from dask.base import tokenize

    chunks = chunks if chunks is not None else zarray.chunks
    name = "from-zarr-" + tokenize(zarray, None, {}, chunks)
    guard = ChunkGuard(store_location(zarray), check_missing, tuple(masked))
    return da.from_array(zarray, chunks, name=name, getitem=guard)
