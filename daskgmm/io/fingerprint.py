"""A small JSON description of a data source: what it is, its shape, when it changed.

Saved models record the fingerprint of their training data, and pipelines compare
fingerprints to tell whether a store has changed since their last run.  Nothing
here reads array values except for small numpy arrays, which are hashed.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from .._typing import Data
from ..kernels.devices import host_dtype, namespace

logger = logging.getLogger("daskgmm.fingerprint")

#: numpy arrays up to this size are hashed (SHA-256 of their bytes).
HASH_LIMIT_BYTES = 256 * 2**20


def _is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


def _local_path(location: str) -> Path:
    return Path(location.removeprefix("file://")).expanduser().resolve()


def directory_state(path: Path) -> dict:
    """Files, bytes and the newest modification time (ns) under ``path``."""
    n_files = n_bytes = newest = 0
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    n_files += 1
                    n_bytes += info.st_size
                    newest = max(newest, info.st_mtime_ns)
    return {"n_files": n_files, "n_bytes": n_bytes, "modified_ns": newest}


#: Irregular chunk sizes along one dimension listed in full up to this many chunks;
#: beyond, their count and a SHA-256 of the sizes.
_LISTED_CHUNKS = 32


def _chunk_sizes(dim) -> int | list[int] | dict:
    """One dimension's chunking, as compact as it is exact.

    An int for a regular chunking (Zarr's, or dask's sizes all equal but a smaller
    last one: the shape then tells them all), the sizes for a few irregular chunks,
    their count and SHA-256 for many.
    """
    if not isinstance(dim, tuple):
        return int(dim)
    sizes = [int(c) for c in dim]
    if len(sizes) == 1 or (len(set(sizes[:-1])) == 1 and sizes[-1] <= sizes[0]):
        return sizes[0]
    if len(sizes) <= _LISTED_CHUNKS:
        return sizes
    digest = hashlib.sha256(np.asarray(sizes, dtype="<i8").tobytes()).hexdigest()
    return {"count": len(sizes), "sha256": digest}


def _array_info(shape, chunks, dtype) -> dict:
    return {
        "shape": [int(n) for n in shape],
        "chunks": [_chunk_sizes(dim) for dim in chunks],
        "dtype": host_dtype(dtype).name,
    }


def _zarr_arrays(source) -> dict:
    from .layout import store_layout

    return {name: _array_info(*layout) for name, layout in store_layout(source).items()}


def _store_fingerprint(location: str) -> dict:
    local = _is_local(location)
    where = str(_local_path(location)) if local else location
    try:
        arrays = _zarr_arrays(where)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"No Zarr store at {location!r}; check the path or URL.") from exc
    out = {"kind": "zarr", "location": where, "arrays": arrays}
    if local:
        out["files"] = directory_state(Path(where))
    return out


def data_fingerprint(X: Data) -> dict:
    """Describe ``X`` (a store path/URL, zarr, xarray, dask or numpy array) as JSON.

    Parameters
    ----------
    X
        Anything :func:`daskgmm.io.open_rows` or the estimators accept.

    Returns
    -------
    dict
        ``kind`` ('zarr', 'zarr-array', 'zarr-group', 'xarray', 'dask' or 'numpy')
        and what identifies it: location, array names, shapes, chunks and dtypes;
        for local stores the number of files, their bytes and the newest
        modification time; for numpy arrays up to ``HASH_LIMIT_BYTES`` a SHA-256 of
        the values; for dask arrays the graph name.  A ``daskgmm.io.RowView``
        opened from a store gives the store's fingerprint (with the variables
        used), any other its array's; both add ``rows`` (samples, features,
        sample dimensions, number of row chunks).

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm.io import data_fingerprint
    >>> fp = data_fingerprint(np.zeros((100, 3)))
    >>> fp["kind"], fp["shape"]
    ('numpy', [100, 3])
    """
    if isinstance(X, (str, os.PathLike)):
        return _store_fingerprint(os.fspath(X))
    module = type(X).__module__
    if module.startswith("zarr"):
        store = X.store
        root = getattr(store, "root", None)
        location = str(root) if root is not None else repr(store)
        kind = "zarr-array" if hasattr(X, "shape") else "zarr-group"
        return {"kind": kind, "location": location, "path": X.path, "arrays": _zarr_arrays(X)}
    if module.startswith("xarray"):
        variables = X.data_vars if hasattr(X, "data_vars") else {X.name: X}
        return {
            "kind": "xarray",
            "source": X.encoding.get("source"),
            "sizes": {str(k): int(v) for k, v in X.sizes.items()},
            "variables": {
                str(name): {"dims": [str(d) for d in var.dims], "dtype": var.dtype.name}
                for name, var in variables.items()
            },
        }
    if module.startswith("daskgmm.io"):
        return _rows_fingerprint(X)
    if hasattr(X, "dask") and hasattr(X, "chunks"):
        return {"kind": "dask", "name": X.name, **_array_info(X.shape, X.chunks, X.dtype)}
    if namespace(X) is not None:  # a CuPy array: described, not read back to hash
        return {"kind": "device", **_array_info(X.shape, [X.shape], X.dtype)}
    X = np.asarray(X)
    out = {"kind": "numpy", "shape": [int(n) for n in X.shape], "dtype": X.dtype.name}
    if X.nbytes <= HASH_LIMIT_BYTES and X.dtype.kind in "biuf":
        out["sha256"] = hashlib.sha256(memoryview(np.ascontiguousarray(X))).hexdigest()
    return out


def _rows_fingerprint(view) -> dict:
    """A ``daskgmm.io.RowView``: its store (when opened from one) and its rows."""
    source = view.source or {}
    location = source.get("location")
    base = _store_fingerprint(location) if location else data_fingerprint(view.data)
    if location:
        base["variables"] = source.get("variables")
    return {
        **base,
        "rows": {
            "n_samples": int(view.data.shape[0]),
            "n_features": int(view.data.shape[1]),
            "sample_dims": [str(d) for d in view.sample_dims],
            "row_chunks": len(view.data.chunks[0]),
        },
    }


def training_data_fingerprint(X: Data) -> dict:
    """:func:`data_fingerprint` for a model's metadata; never fails a fit.

    Parameters
    ----------
    X
        What ``fit`` or ``partial_fit`` was given.

    Returns
    -------
    dict
        The fingerprint plus ``recorded`` (UTC time); when ``X`` cannot be
        described, ``kind`` is its type name and ``error`` says why.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm.io import training_data_fingerprint
    >>> fingerprint = training_data_fingerprint(np.zeros((100, 3)))
    >>> fingerprint["kind"], "recorded" in fingerprint
    ('numpy', True)
    """
    recorded = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    try:
        out = data_fingerprint(X)
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        logger.warning("could not fingerprint the training data: %s", exc)
        out = {"kind": type(X).__name__, "error": str(exc)}
    return {**out, "recorded": recorded}
