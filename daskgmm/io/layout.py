"""The arrays of a Zarr store, array or group, from its metadata alone."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .._typing import PathLike
from .lazy import _zarr

if TYPE_CHECKING:
    import zarr


def store_layout(source: PathLike | zarr.Group) -> dict[str, tuple]:
    """The arrays of a Zarr store, array or group: name -> (shape, chunks, dtype).

    ``source`` is a location (path or URL, opened read-only) or an open zarr
    array or group.  An array is named by its path ('' at a store's root), a
    group's arrays by their names, in sorted order.  Reads metadata only.

    Raises
    ------
    FileNotFoundError
        If no Zarr store is at the location.

    Examples
    --------
    >>> from daskgmm import datasets, io
    >>> X, truth = datasets.write_table("layout.zarr", 1_000, 3, 2, chunk_rows=250)
    >>> shape, chunks, dtype = io.store_layout("layout.zarr")[""]   # '': the root array
    >>> shape, chunks, dtype == "float32"
    ((1000, 3), (250, 3), True)
    """
    zarr = _zarr()
    node = zarr.open(source, mode="r") if isinstance(source, (str, os.PathLike)) else source
    if isinstance(node, zarr.Array):
        return {node.path or "": (node.shape, node.chunks, node.dtype)}
    return {
        name: (arr.shape, arr.chunks, arr.dtype)
        for name, arr in sorted(node.arrays(), key=lambda item: item[0])
    }
