"""Synthetic Gaussian mixtures: lazy dask arrays, or Zarr stores written chunk by chunk.

Like :mod:`daskgmm.io`, this module reaches zarr and xarray only lazily, inside
the functions that write stores.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dask.array as da
import numpy as np
from numpy.typing import DTypeLike

from ._typing import PathLike

if TYPE_CHECKING:
    import xarray


@dataclass
class MixtureTruth:
    """The parameters a synthetic mixture was drawn from (full covariances).

    Examples
    --------
    >>> from daskgmm.datasets import random_mixture
    >>> truth = random_mixture(n_features=2, n_components=3)
    >>> truth.weights.shape, truth.means.shape, truth.covariances.shape
    ((3,), (3, 2), (3, 2, 2))
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    def to_attrs(self) -> dict:
        """JSON-ready attributes recording the truth in a store.

        Examples
        --------
        >>> from daskgmm.datasets import random_mixture
        >>> sorted(random_mixture(2, 3).to_attrs())
        ['true_covariances', 'true_means', 'true_weights']
        """
        return {
            "true_weights": self.weights.tolist(),
            "true_means": self.means.tolist(),
            "true_covariances": self.covariances.tolist(),
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping) -> MixtureTruth:
        """The truth recorded by :meth:`to_attrs`.

        Examples
        --------
        >>> import numpy as np
        >>> from daskgmm.datasets import MixtureTruth, random_mixture
        >>> truth = random_mixture(2, 3)
        >>> bool(np.array_equal(MixtureTruth.from_attrs(truth.to_attrs()).means, truth.means))
        True
        """
        return cls(
            np.asarray(attrs["true_weights"]),
            np.asarray(attrs["true_means"]),
            np.asarray(attrs["true_covariances"]),
        )


def random_mixture(
    n_features: int, n_components: int, separation: float = 6.0, seed: int = 0
) -> MixtureTruth:
    """Random mixture parameters: well-spread means, random SPD covariances.

    Parameters
    ----------
    n_features, n_components : int
    separation : float
        Scale of the spread of the means relative to unit-ish covariances.
    seed : int

    Returns
    -------
    MixtureTruth

    Examples
    --------
    >>> from daskgmm.datasets import random_mixture
    >>> truth = random_mixture(n_features=3, n_components=2, seed=0)
    >>> truth.weights.shape, truth.means.shape, truth.covariances.shape
    ((2,), (2, 3), (2, 3, 3))
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = rng.uniform(-separation, separation, size=(n_components, n_features))
    factors = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    covariances = factors @ np.swapaxes(factors, 1, 2) + 0.5 * np.eye(n_features)
    return MixtureTruth(weights, means, covariances)


def _draw_chunk(truth: MixtureTruth, n_rows: int, seed: tuple, dtype) -> np.ndarray:
    """``n_rows`` samples; one matrix product per component (no (n, D, D) temporary)."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(truth.weights), size=n_rows, p=truth.weights)
    chol = np.linalg.cholesky(truth.covariances)
    z = rng.standard_normal(size=(n_rows, truth.means.shape[1]))
    rows = np.empty((n_rows, truth.means.shape[1]), dtype=dtype)
    for k in range(len(truth.weights)):
        picked = labels == k
        rows[picked] = truth.means[k] + z[picked] @ chol[k].T
    return rows


def make_mixture(
    n_samples: int,
    n_features: int = 16,
    n_components: int = 8,
    *,
    chunk_rows: int = 250_000,
    dtype: DTypeLike = "float64",
    separation: float = 6.0,
    seed: int = 0,
    store: PathLike | None = None,
    cube_shape: tuple | None = None,
    overwrite: bool = False,
    storage_options: dict | None = None,
) -> tuple[da.Array, MixtureTruth]:
    """Samples from a random Gaussian mixture: a lazy dask array, or a Zarr store.

    Each chunk is drawn independently from a generator seeded by ``(seed, chunk
    index)``, so the data are reproducible and never held in memory at once.

    With ``store``, the samples are written to Zarr (v3, default codecs) chunk by
    chunk, with the true weights, means and covariances in the attributes
    (:meth:`MixtureTruth.from_attrs` reads them back), and the store is returned
    opened lazily.  With ``cube_shape`` too, the samples are laid out as an
    xarray cube ``(time, y, x, band)`` with coordinates, ``cube_shape = (T, Y,
    X)`` giving ``n_samples = T * Y * X``.

    Parameters
    ----------
    n_samples, n_features, n_components : int
    chunk_rows : int
        Rows per chunk.
    dtype : str or numpy dtype
    separation : float
        Spread of the component means (see :func:`random_mixture`).
    seed : int
    store : str or path, optional
        Zarr store (path or URL) to write to.
    cube_shape : tuple of 3 ints, optional
        With ``store``: write a ``(time, y, x, band)`` cube (variable ``data``);
        ``chunk_rows`` is then rounded to whole ``(y, x)`` tiles, see
        :func:`write_cube`.
    overwrite : bool
        Replace an existing store.
    storage_options : dict, optional

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features), or for a cube an
        ``xarray.DataArray`` of shape (T, Y, X, n_features), read lazily from the
        store when ``store`` is given
    truth : MixtureTruth

    Examples
    --------
    >>> from daskgmm.datasets import make_mixture
    >>> X, truth = make_mixture(10_000, n_features=4, n_components=3, chunk_rows=2_500)
    >>> X.shape, X.chunks[0], truth.means.shape
    ((10000, 4), (2500, 2500, 2500, 2500), (3, 4))
    """
    if store is not None:
        kwargs = dict(dtype=dtype, separation=separation, seed=seed, overwrite=overwrite)
        kwargs["storage_options"] = storage_options
        if cube_shape is not None:
            return write_cube(store, cube_shape, n_features, n_components, **kwargs)
        return write_table(store, n_samples, n_features, n_components, chunk_rows, **kwargs)
    truth = random_mixture(n_features, n_components, separation, seed)
    dtype = np.dtype(dtype)
    row_chunks = da.core.normalize_chunks((chunk_rows,), (n_samples,))[0]
    blocks = [
        da.from_delayed(
            _delayed_chunk(truth, n, (seed, i), dtype),
            shape=(n, n_features),
            dtype=dtype,
        )
        for i, n in enumerate(row_chunks)
    ]
    return da.concatenate(blocks, axis=0), truth


def _delayed_chunk(truth, n_rows, seed, dtype):
    from dask import delayed

    return delayed(_draw_chunk, pure=True)(truth, n_rows, seed, dtype)


def _store_kwargs(store, storage_options):
    return {"storage_options": storage_options} if isinstance(store, str) else {}


def write_table(
    store: PathLike,
    n_samples: int,
    n_features: int = 16,
    n_components: int = 8,
    chunk_rows: int = 250_000,
    *,
    dtype: DTypeLike = "float32",
    separation: float = 6.0,
    seed: int = 0,
    overwrite: bool = False,
    storage_options: dict | None = None,
) -> tuple[da.Array, MixtureTruth]:
    """Write an (n_samples, n_features) mixture to a Zarr array, chunk by chunk.

    Returns
    -------
    X : dask.array.Array read from the store
    truth : MixtureTruth

    Examples
    --------
    >>> from daskgmm.datasets import write_table
    >>> X, truth = write_table("sensors.zarr", 5_000, 4, 3, 1_000)
    >>> X.shape, X.chunks[0]
    ((5000, 4), (1000, 1000, 1000, 1000, 1000))
    """
    import zarr

    from .engine.compute import compute

    X, truth = make_mixture(
        n_samples,
        n_features,
        n_components,
        chunk_rows=chunk_rows,
        dtype=dtype,
        separation=separation,
        seed=seed,
    )
    store = os.fspath(store) if isinstance(store, os.PathLike) else store
    target = zarr.create_array(
        store,
        shape=X.shape,
        chunks=(chunk_rows, n_features),
        dtype=X.dtype,
        fill_value=np.nan,
        dimension_names=["sample", "feature"],
        overwrite=overwrite,
        **_store_kwargs(store, storage_options),
    )
    target.attrs.update({**truth.to_attrs(), "complete": False})
    compute(da.store(X, target, lock=False, compute=False))
    target.attrs["complete"] = True
    return da.from_zarr(target), truth


def append_table(
    store: PathLike, n_rows: int, *, seed: int = 0, storage_options: dict | None = None
) -> tuple[int, int]:
    """Append ``n_rows`` rows, drawn from the mixture recorded in a table store, to it.

    For trying scheduled pipelines: the store grows along its first axis as a
    store of arriving measurements would.  The rows are drawn chunk by chunk
    from a generator seeded by ``(seed, row count before the append)``.

    Parameters
    ----------
    store : str or path
        A table written by :func:`write_table` (or ``daskgmm make-data``).
    n_rows : int
    seed : int

    Returns
    -------
    (int, int)
        Rows before and after.

    Examples
    --------
    >>> from daskgmm.datasets import append_table, write_table
    >>> X, truth = write_table("growing.zarr", 5_000, 4, 3, 1_000)
    >>> append_table("growing.zarr", 2_000)
    (5000, 7000)
    """
    import zarr

    store = os.fspath(store) if isinstance(store, os.PathLike) else store
    target = zarr.open_array(store, mode="r+", **_store_kwargs(store, storage_options))
    truth = MixtureTruth.from_attrs(target.attrs)
    before, n_features = target.shape
    step = target.chunks[0]
    target.attrs["complete"] = False
    target.resize((before + n_rows, n_features))
    for start in range(0, n_rows, step):
        stop = min(n_rows, start + step)
        rows = _draw_chunk(truth, stop - start, (seed, before, start), target.dtype)
        target[before + start : before + stop] = rows
    target.attrs["complete"] = True
    return before, before + n_rows


def _draw_tile(block_info=None, *, truth, seed, dtype):
    info = block_info[None]
    shape = info["chunk-shape"]
    index = info["chunk-location"]
    rows = _draw_chunk(truth, math.prod(shape[:-1]), (seed, *index[:-1]), dtype)
    return rows.reshape(shape)


def write_cube(
    store: PathLike,
    cube_shape: tuple,
    n_features: int = 16,
    n_components: int = 8,
    chunks: tuple | None = None,
    *,
    dtype: DTypeLike = "float32",
    separation: float = 6.0,
    seed: int = 0,
    overwrite: bool = False,
    storage_options: dict | None = None,
) -> xarray.Dataset:
    """Write a mixture as an xarray cube ``data(time, y, x, band)``, chunk by chunk.

    Every pixel is a sample and the bands are its features; coordinates are
    ``time`` (daily dates), ``y`` and ``x`` (metres) and ``band`` (names).

    Parameters
    ----------
    store : str or path
    cube_shape : (T, Y, X)
    n_features, n_components : int
    chunks : (ct, cy, cx), optional
        Default: one time step, whole rows of tiles of at most 256 x 256.

    Returns
    -------
    data : xarray.DataArray, read lazily from the store
    truth : MixtureTruth

    Examples
    --------
    >>> from daskgmm.datasets import write_cube
    >>> cube, truth = write_cube("small_cube.zarr", (2, 10, 20), 4, 3)
    >>> cube.dims, cube.shape
    (('time', 'y', 'x', 'band'), (2, 10, 20, 4))
    """
    import pandas as pd
    import xarray as xr

    from .engine.compute import compute

    truth = random_mixture(n_features, n_components, separation, seed)
    t, y, x = (int(n) for n in cube_shape)
    chunks = tuple(chunks) if chunks is not None else (1, min(y, 256), min(x, 256))
    dtype = np.dtype(dtype)
    data = da.map_blocks(
        functools.partial(_draw_tile, truth=truth, seed=seed, dtype=dtype),
        chunks=da.core.normalize_chunks((*chunks, n_features), (t, y, x, n_features)),
        dtype=dtype,
        meta=np.empty((0, 0, 0, 0), dtype),
        name=f"daskgmm_make_cube-{seed}-{t}x{y}x{x}x{n_features}",
    )
    ds = xr.Dataset(
        {"data": (("time", "y", "x", "band"), data)},
        coords={
            "time": pd.date_range("2024-01-01", periods=t, freq="D"),
            "y": 10.0 * np.arange(y),
            "x": 10.0 * np.arange(x),
            "band": np.arange(n_features),
        },
        attrs=truth.to_attrs(),
    )
    store = os.fspath(store) if isinstance(store, os.PathLike) else store
    write = ds.to_zarr(
        store,
        mode="w" if overwrite else "w-",
        compute=False,
        zarr_format=3,
        consolidated=False,
        encoding={"data": {"chunks": (*chunks, n_features)}},
        **_store_kwargs(store, storage_options),
    )
    compute(write)
    opened = xr.open_zarr(
        store, chunks={}, consolidated=False, **_store_kwargs(store, storage_options)
    )
    return opened["data"], truth
