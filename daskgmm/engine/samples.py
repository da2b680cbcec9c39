"""N-D sample arrays as rows of features and back, lazily, one row chunk per block."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph


def flatten_samples(array: da.Array, feature_axis: int) -> da.Array:
    """Rows of feature values from an N-D array, lazily, one row chunk per block.

    Every axis but ``feature_axis`` is a sample axis.  Each block of the sample
    axes becomes one row chunk (its samples in C order), so chunks stay aligned
    with the storage chunks and nothing is rechunked but a chunked feature
    axis, which is merged once.  Rows are therefore in block order, which equals
    ``reshape(-1, D)`` order when only the first sample axis is chunked.

    Parameters
    ----------
    array : dask.array.Array of any shape with ndim >= 1
    feature_axis : int or None
        None: one feature, every axis is a sample axis.

    Returns
    -------
    dask.array.Array of shape (N, D)
    """
    if feature_axis is None:
        array = array[..., None]
    elif feature_axis % array.ndim != array.ndim - 1:
        # (da.moveaxis to where the axis already is adds an identity transpose
        # task per chunk, on the dashboard and in every pass)
        array = da.moveaxis(array, feature_axis, -1)
    if array.numblocks[-1] > 1:
        array = array.rechunk({array.ndim - 1: -1})
    if array.ndim == 2:
        return array
    n_features = array.shape[-1]
    sample_chunks = array.chunks[:-1]
    name = f"daskgmm_rows-{tokenize(array, 'flatten')}"
    layer, row_chunks = {}, []
    for i, index in enumerate(np.ndindex(*array.numblocks[:-1])):
        n = math.prod(sample_chunks[axis][j] for axis, j in enumerate(index))
        layer[(name, i, 0)] = (np.reshape, (array.name, *index, 0), (n, n_features))
        row_chunks.append(n)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[array])
    meta = np.empty((0, 0), dtype=array.dtype)
    return da.Array(graph, name, chunks=(tuple(row_chunks), (n_features,)), meta=meta)


def unflatten_samples(values: da.Array, sample_chunks: tuple) -> da.Array:
    """Inverse of :func:`flatten_samples` for per-row results.

    Parameters
    ----------
    values : dask.array.Array of shape (N,) or (N, K)
        Row chunks as made by :func:`flatten_samples`.
    sample_chunks : tuple of tuples
        Chunks of the sample axes of the source.

    Returns
    -------
    dask.array.Array of the sample shape (plus K)
    """
    if len(sample_chunks) == 1:
        return values
    extra = values.shape[1:]
    name = f"daskgmm_samples-{tokenize(values, sample_chunks)}"
    layer = {}
    numblocks = tuple(len(c) for c in sample_chunks)
    for i, index in enumerate(np.ndindex(*numblocks)):
        shape = tuple(sample_chunks[axis][j] for axis, j in enumerate(index)) + extra
        key = (values.name, i) + (0,) * len(extra)
        layer[(name, *index) + (0,) * len(extra)] = (np.reshape, key, shape)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[values])
    chunks = tuple(sample_chunks) + tuple((n,) for n in extra)
    meta = np.empty((0,) * len(chunks), dtype=values.dtype)
    return da.Array(graph, name, chunks=chunks, meta=meta)
