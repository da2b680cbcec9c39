"""Online runs: the new version's predictions are the old ones plus the appended rows'.

The published prediction store is never written to.  It is mirrored into the
new version: metadata files and every chunk file that the appended rows reach
(the *boundary* chunk, partly filled, along the append dimension) are copied;
the chunk files wholly before the old extent are hard-linked (copied where the
filesystem refuses links).  Only copied files and new files are then written:

- growing an array (zarr's ``resize``) rewrites its ``zarr.json`` -- a copy -- and
  deletes no chunk;
- predictions of the appended rows land in chunks at or after the boundary chunk;
- zarr's LocalStore writes a chunk to a temporary file and renames it over the
  old name, so even a chunk it rewrote in place of a link would get a new inode.
  Copying the boundary chunk does not rely on that: a store that rewrote files in
  place (an older zarr, another store class) still could not reach the old version.

The cost of an online version is therefore the new rows' predictions, one chunk
copy per array, and a link per old chunk, whatever the size of the old store.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

from ..io import write_predictions
from ._chunkfiles import array_layouts, chunk_files
from .source import Source

logger = logging.getLogger(__name__)

#: Arrays written by daskgmm.io.write_predictions.
OUTPUT_ARRAYS = ("labels", "proba", "log_density")


def _link_or_copy(src: Path, dst: Path) -> bool:
    """Hard-link ``src`` to ``dst``; copy if linking is refused. True if linked."""
    try:
        os.link(src, dst)
        return True
    except OSError:
        shutil.copy2(src, dst)
        return False


def mirror_store(old: str | os.PathLike, new: str | os.PathLike, dim: str, extent: int) -> dict:
    """Mirror the Zarr store ``old`` into ``new`` (which must not exist), sharing the
    chunk files wholly before ``extent`` along ``dim``.

    Parameters
    ----------
    old, new : path
    dim : str
        The append dimension.
    extent : int
        Its length in ``old``.

    Returns
    -------
    dict
        ``{'linked': n, 'copied': n}`` files.
    """
    old, new = Path(old), Path(new)
    shared = set()
    for name, layout in array_layouts(old).items():
        axis = layout.axis(dim)
        limit = None if axis is None else extent // layout.chunk_shape[axis]
        for chunk in chunk_files(layout):
            if limit is None or chunk.index[axis] < limit:
                shared.add(Path(name, chunk.key).as_posix() if name else chunk.key)
    counts = {"linked": 0, "copied": 0}
    for root, _, files in os.walk(old):
        root = Path(root)
        target = new / root.relative_to(old)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            key = (root / name).relative_to(old).as_posix()
            if key in shared:
                linked = _link_or_copy(root / name, target / name)
            else:
                shutil.copy2(root / name, target / name)
                linked = False
            counts["linked" if linked else "copied"] += 1
    return counts


def _encoded_coordinate(store: Path, name: str, values):
    """Coordinate ``values`` encoded as the store already encodes ``name`` (CF times)."""
    import xarray as xr

    existing = xr.open_zarr(store, consolidated=False)[name].encoding
    keep = ("units", "calendar", "dtype", "scale_factor", "add_offset")
    variable = values.variable.copy(deep=False)
    variable.encoding = {k: v for k, v in existing.items() if k in keep}
    return xr.conventions.encode_cf_variable(variable, name=name).values


def extend_predictions(
    model,
    source: Source,
    store: str | os.PathLike,
    start: int,
    *,
    proba: bool = False,
    log_density: bool = False,
) -> int:
    """Grow a mirrored prediction store to the source's extent and predict the new part.

    Arrays along the append dimension are resized; coordinates along it get the
    source's new values (encoded like the old ones); ``labels`` (and ``proba``,
    ``log_density``) of ``[start, extent)`` are written by
    :func:`daskgmm.io.write_predictions` into that region.

    Returns
    -------
    int
        Rows predicted.
    """
    import zarr

    store = Path(store)
    dim, stop = source.append_dim, source.extent
    part = source.part(start, stop)
    group = zarr.open_group(store, mode="r+")
    coordinates = []
    for name, array in group.arrays():
        dims = tuple(array.metadata.dimension_names or ())
        if dim not in dims:
            continue
        axis = dims.index(dim)
        array.resize(tuple(stop if i == axis else n for i, n in enumerate(array.shape)))
        if name not in OUTPUT_ARRAYS:
            coordinates.append((name, array, dims, axis))
    # encoded only once every array has grown: xarray cannot open the store between
    for name, array, dims, axis in coordinates:
        if name not in part.coords or tuple(part[name].dims) != dims:
            logger.warning("coordinate %r of %s not in the source; left unset", name, store)
            continue
        region = tuple(slice(start, stop) if i == axis else slice(None) for i in range(len(dims)))
        array[region] = _encoded_coordinate(store, name, part[name])
    view = source.rows(start, stop)
    # A plain region write (dask.array.store into the grown arrays): xarray refuses a
    # region that starts inside a storage chunk even when one task writes each chunk.
    view = dataclasses.replace(view, is_xarray=False)
    write_predictions(
        model,
        view,
        str(store),
        region={dim: slice(start, stop)},
        proba=proba,
        log_density=log_density,
    )
    return view.n_samples
