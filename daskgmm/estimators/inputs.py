"""Training input as row chunks: stores and xarray objects opened through ``daskgmm.io``."""

from __future__ import annotations

import logging
import math

import dask.array as da
import numpy as np

from ..engine.rows import RowChunks, prepare_rows
from ..io import is_source, open_rows, rows_for_model
from ..kernels.checks import feature_names_of
from .stepwise import CHUNKS_PER_BATCH


def fit_rows(X, sample_weight=None, chunk_rows="auto", n_components=None, device=None) -> RowChunks:
    """Row chunks of ``X`` for the passes of a fit.

    Parameters
    ----------
    X : array-like, dask array, or a source :func:`daskgmm.io.open_rows` opens
        (a Zarr store path or URL, a ``zarr.Array``, an xarray object, a
        ``RowView``; see :func:`training_input` for the feature dimension).
    sample_weight : array-like or dask array of shape (n_samples,), optional
    chunk_rows : int or 'auto'
        Rows per chunk for in-memory input.
    n_components : int, optional
        When fitting afresh: the data need at least this many rows.
    device : str, optional
        Move each chunk there as it is read ('cuda'; the estimators' ``device``).

    Returns
    -------
    RowChunks
    """
    if is_source(X):
        X = open_rows(X).data
    return prepare_rows(X, sample_weight, chunk_rows, n_components, device)


def training_input(model, X, continuing: bool) -> tuple:
    """What a fit reads from ``X``, and the feature names and dimension it records.

    Parameters
    ----------
    model : estimator
        Its ``feature_dim`` parameter names the feature dimension of named input.
    X : array-like, dask array or a source
    continuing : bool
        Whether the fit continues a fitted model (warm start, ``partial_fit``):
        sources are then read on the model's feature dimension, their features
        taken by label in the model's order
        (:func:`daskgmm.io.rows_for_model`).

    Returns
    -------
    X : the input, or for a source its ``RowView``
    names : ndarray of str (object) or None
        DataFrame column names, or the string labels of a source's features.
    feature_dim : str or None
        The dimension of a named source that held the features.
    """
    if not is_source(X):
        return X, feature_names_of(X), None
    if continuing:
        view = rows_for_model(model, X)
    else:
        view = open_rows(X, feature_dim=getattr(model, "feature_dim", None))
    labels = view.feature_names
    if labels is None or not all(isinstance(n, str) for n in labels):
        return view, None, view.feature_dim
    return view, np.asarray(labels, dtype=object), view.feature_dim


def mini_batch_rows(X, sample_weight, chunk_rows, batch_size: int, n_components=None) -> RowChunks:
    """Row chunks of ``X`` for stepwise EM's mini-batches of ``batch_size`` rows.

    With ``chunk_rows='auto'`` numpy input is cut into ``CHUNKS_PER_BATCH`` chunks per
    mini-batch.  Not per core: the mini-batches, and so the fit, must not depend on
    the machine.  Chunks over twice ``batch_size`` are warned about.
    """
    if chunk_rows == "auto" and not isinstance(X, da.Array):
        chunk_rows = max(1, math.ceil(batch_size / CHUNKS_PER_BATCH))
    rows = fit_rows(X, sample_weight, chunk_rows, n_components)
    largest = max(rows.array.chunks[0])
    if largest > 2 * batch_size:
        logging.getLogger("daskgmm.online").warning(
            "row chunks of up to %d rows are larger than batch_size=%d: each chunk is "
            "one mini-batch; rechunk the rows for more updates per pass",
            largest,
            batch_size,
        )
    return rows
