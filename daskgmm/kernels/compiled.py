"""The 'full'/'tied' quadratic-feature E-step of a whole chunk, compiled, without the GIL.

The numpy kernel (:mod:`daskgmm.kernels.quadratic`) makes dozens of numpy calls per
block of rows, each of which takes the GIL, and works on blocks of a few MiB so that
those calls stay few.  Measured on 2 cores (D=16, K=8): with blocks that fit the
core's L2 cache, two threads ran *slower* than one (the GIL hands over at every
call); with 4 MiB blocks they ran 1.3-1.5x one thread (the blocks stream through
memory, which two cores share).  Here one compiled call (numba, ``nogil=True``)
does a whole chunk in tiles of :data:`TILE` rows that stay in L2: per tile it
builds the quadratic features ``z = [x_i x_j (i <= j), x_i, 1]`` of the centred
rows (feature by feature, vectorised over the tile's rows), ``z @ W^T`` gives the
K weighted log-densities (BLAS), a softmax per row gives the responsibilities, and
``z^T @ r`` (BLAS) adds every statistic the M-step
needs into one (F, K) float64 accumulator: pair moments, first moments and
``n_k``.  Rows are read in their own dtype and centred in float64; the
features and products are in the weights' dtype (float32 under
``compute_dtype='float32'``), each tile's sums are added in float64.

A tile is *skipped*, and left to the numpy kernels, when a row holds a
non-finite value, when a row's density is not finite, or when the rounding-error
bound of the expansion exceeds the tolerance (:class:`QuadraticEStep`); the
caller computes those tiles row-major and merges them.

Compiled on first use and cached on disk (``cache=True``): later processes load
it.  numba is imported only when this module is.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Rows per tile: the features of a tile, 128 x F float64 (157 KiB at D=16), stay in L2.
TILE = 128


@numba.njit(nogil=True, cache=True)
def _tile_features(X, start, m, shift, u0, u1, ZT, xT, r2):
    """Features of rows ``start:start+m`` into the columns of ``ZT`` (F, TILE); the
    largest squared norm of a centred row, or -1.0 when a value is not finite.

    Feature-major: each feature is one pass over the tile's rows, contiguous in
    ``ZT`` and in the centred rows ``xT`` (D, TILE), which the compiler vectorises
    (3x faster than building each row's features in turn).  Columns ``m:`` are the
    features of zero rows (finite; their responsibilities are set to 0)."""
    d = X.shape[1]
    n_pairs = u0.shape[0]
    width, tile = ZT.shape
    for i in range(m):
        for j in range(d):
            xT[j, i] = np.float64(X[start + i, j]) - shift[j]
    xT[:, m:] = 0.0
    r2[:] = 0.0
    for j in range(d):
        for i in range(tile):
            r2[i] += xT[j, i] * xT[j, i]
    largest = 0.0
    for i in range(m):
        if not math.isfinite(r2[i]):
            return -1.0
        largest = max(largest, r2[i])
    for p in range(n_pairs):
        a = u0[p]
        b = u1[p]
        for i in range(tile):
            ZT[p, i] = xT[a, i] * xT[b, i]  # in float64, then stored in ZT's dtype
    for j in range(d):
        for i in range(tile):
            ZT[n_pairs + j, i] = xT[j, i]
    ZT[width - 1, :] = 1.0
    return largest


@numba.njit(nogil=True, cache=True)
def _error_bound(largest, bound_terms):
    """The expansion's rounding-error bound for rows up to squared norm ``largest``."""
    root = math.sqrt(largest)
    worst = 0.0
    for c in range(bound_terms.shape[1]):
        term = bound_terms[0, c] * largest + bound_terms[1, c] * root + bound_terms[2, c]
        worst = max(worst, term)
    return bound_terms[3, 0] * worst


@numba.njit(nogil=True, cache=True)
def _tile_softmax(L, m, weights, start, R, sums):
    """Weighted responsibilities of the tile into ``R[:m]``; adds the log-likelihood
    and weight sums to ``sums``; False when a row's density is not finite."""
    k = L.shape[1]
    weighted = weights.shape[0] > 0
    log_likelihood = 0.0
    weight_sum = 0.0
    for i in range(m):
        top = np.float64(L[i, 0])
        for c in range(1, k):
            top = max(top, np.float64(L[i, c]))
        total = 0.0
        for c in range(k):
            # probabilities below exp(-700) are exact zeros, as in the numpy kernel
            gap = np.float64(L[i, c]) - top
            value = math.exp(gap) if gap >= -700.0 else 0.0
            R[i, c] = value
            total += value
        lse = math.log(total) + top
        if not math.isfinite(lse):
            return False
        w = weights[start + i] if weighted else 1.0
        scale = w / total
        for c in range(k):
            R[i, c] *= scale
        log_likelihood += lse * w
        weight_sum += w
    sums[0] += log_likelihood
    sums[1] += weight_sum
    return True


@numba.njit(nogil=True, cache=True)
def quadratic_tiles(
    X, weights, shift, WT, u0, u1, bound_terms, tolerance, acc, sums, skipped, log_prob
):
    """The statistics of every tile of ``X`` the expansion may take, or (``log_prob``
    not empty) their weighted log-densities.

    The per-row answers (``predict`` and the like) use the same function, so that a
    process compiles (or loads) one specialisation for both, not two.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32 or float64
    weights : ndarray of shape (n,) or (0,)
        Sample weights; empty for unweighted rows.
    shift : ndarray of shape (D,)
        The chunk's centring point.
    WT : ndarray of shape (F, K), float64 or float32
        Weights of the features in each component's weighted log-density; their
        dtype is the products' (the statistics accumulate in float64 either way).
    u0, u1 : ndarray of shape (P,), int64
        The pairs ``(i, j), i <= j`` of the features, in order.
    bound_terms : ndarray of shape (4, K)
        Rows: quadratic, linear and constant terms of the error bound per
        component; ``[3, 0]`` the error per term.
    tolerance : float
    acc : ndarray of shape (F, K), float64
        Accumulates ``z^T r`` over the tiles taken.
    sums : ndarray of shape (3,), float64
        Accumulates log-likelihood, weight sum and rows over the tiles taken.
    skipped : ndarray of shape (n_tiles,), bool
        Set for the tiles left to the caller.
    log_prob : ndarray of shape (n, K) or (0, K), float64
        When not empty: receives ``z @ W^T`` of the rows of the tiles taken, and
        nothing is accumulated (``weights``, ``acc`` and ``sums`` are not used).
    """
    n, d = X.shape
    width, k = WT.shape
    ZT = np.empty((width, TILE), WT.dtype)  # float32 in compute_dtype='float32'
    R = np.zeros((TILE, k), WT.dtype)  # rows past a short last tile stay 0
    xT = np.empty((d, TILE))
    r2 = np.empty(TILE)
    for t, start in enumerate(range(0, n, TILE)):
        m = min(TILE, n - start)
        largest = _tile_features(X, start, m, shift, u0, u1, ZT, xT, r2)
        if largest < 0.0 or _error_bound(largest, bound_terms) > tolerance:
            skipped[t] = True
            continue
        L = np.dot(ZT.T, WT)
        if log_prob.shape[0] > 0:
            for i in range(m):  # loops: a slice assignment costs seconds to compile
                for c in range(k):
                    log_prob[start + i, c] = L[i, c]
            continue
        if not _tile_softmax(L, m, weights, start, R, sums):
            skipped[t] = True
            continue
        R[m:] = 0.0
        acc += np.dot(ZT, R)
        sums[2] += m
