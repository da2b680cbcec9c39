"""Training input as row chunks: stores and xarray objects opened through ``daskgmm.io``."""

from __future__ import annotations

from ..engine.rows import RowChunks, prepare_rows
from ..io import is_source, open_rows


def fit_rows(X, sample_weight=None, chunk_rows="auto", n_components=None) -> RowChunks:
    """Row chunks of ``X`` for the passes of a fit.

    Parameters
    ----------
    X : array-like, dask array, or a source :func:`daskgmm.io.open_rows` opens
        (a Zarr store path or URL, a ``zarr.Array``, an xarray object with the
        features on its last dimension, a ``RowView``).
    sample_weight : array-like or dask array of shape (n_samples,), optional
    chunk_rows : int or 'auto'
        Rows per chunk for in-memory input.
    n_components : int, optional
        When fitting afresh: the data need at least this many rows.

    Returns
    -------
    RowChunks
    """
    if is_source(X):
        X = open_rows(X).data
    return prepare_rows(X, sample_weight, chunk_rows, n_components)
