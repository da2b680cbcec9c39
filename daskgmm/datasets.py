"""Synthetic Gaussian mixtures as lazy dask arrays, generated chunk by chunk."""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np


@dataclass
class MixtureTruth:
    """The parameters a synthetic mixture was drawn from (full covariances)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray


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
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = rng.uniform(-separation, separation, size=(n_components, n_features))
    factors = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    covariances = factors @ np.swapaxes(factors, 1, 2) + 0.5 * np.eye(n_features)
    return MixtureTruth(weights, means, covariances)


def _draw_chunk(truth: MixtureTruth, n_rows: int, seed: tuple, dtype) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(truth.weights), size=n_rows, p=truth.weights)
    chol = np.linalg.cholesky(truth.covariances)
    z = rng.standard_normal(size=(n_rows, truth.means.shape[1]))
    rows = truth.means[labels] + np.einsum("nij,nj->ni", chol[labels], z)
    return rows.astype(dtype, copy=False)


def make_mixture(
    n_samples: int,
    n_features: int = 16,
    n_components: int = 8,
    *,
    chunk_rows: int = 250_000,
    dtype="float64",
    separation: float = 6.0,
    seed: int = 0,
) -> tuple[da.Array, MixtureTruth]:
    """A lazy dask array of samples from a random Gaussian mixture.

    Each chunk is drawn independently from a generator seeded by ``(seed, chunk
    index)``, so the array is reproducible and never held in memory at once.

    Parameters
    ----------
    n_samples, n_features, n_components : int
    chunk_rows : int
        Rows per chunk.
    dtype : str or numpy dtype
    separation : float
        Spread of the component means (see :func:`random_mixture`).
    seed : int

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
    truth : MixtureTruth
    """
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
