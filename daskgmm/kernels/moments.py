"""Centred second moments of one block of rows, per covariance type (numpy only).

Responsibilities arrive component-major, shape (K, n): row-wise reductions over
K=8 columns are slow in numpy, reductions across K rows of length n are not.
"""

from __future__ import annotations

import numpy as np

from .density import Workspace
from .stats import SufficientStats

#: Largest ratio of the subtracted mean term ``s1^2 / n_k`` to the centred result
#: that the one-product moment formulas of 'diag', 'spherical' and 'tied' may keep:
#: they lose about log10(ratio) of float64's 16 digits (measured: a relative error
#: of ``ratio * 3e-15`` over a block of rows), so beyond 1e5 (a component more than
#: ~300 of its standard deviations from the chunk's centre) the moments are
#: recomputed centred on each component's own mean.
CANCELLATION_LIMIT = 1e5


def _raw_m2_full(resp, xc, s1, nk_safe, ws):
    # Centred on each component's own mean, as scikit-learn does for 'full': the
    # raw-moment shortcut sum r x x^T - s1 s1^T / n_k would cancel catastrophically
    # for a tight component far from the chunk's centre.  One (D, n) @ (n, D)
    # product per component: the scaled copy of the block stays in cache, which
    # measured faster than one (K*D, n) @ (n, D) product.
    xt = ws.array("transposed", xc.T.shape)
    np.copyto(xt, xc.T)
    diff = ws.array("diff", xt.shape)
    scaled = ws.array("scaled", xt.shape)
    m2 = np.empty((resp.shape[0], xc.shape[1], xc.shape[1]))
    means = s1 / nk_safe[:, None]
    for k in range(resp.shape[0]):
        np.subtract(xt, means[k][:, None], out=diff)
        np.matmul(np.multiply(diff, resp[k], out=scaled), diff.T, out=m2[k])
    return m2


def _raw_m2_tied(resp, xc, s1, nk_safe, ws):
    # One (D, n) @ (n, D) product about the chunk's centre, minus the components'
    # mean terms; the per-component centred sum when that cancels too far (the
    # diagonal bounds the off-diagonal error).
    row_weight = resp.sum(axis=0)
    raw = np.multiply(xc, row_weight[:, None], out=ws.array("scaled", xc.shape)).T @ xc
    mean_term = (s1 / nk_safe[:, None]).T @ s1
    m2 = raw - mean_term
    if np.any(np.diagonal(mean_term) > CANCELLATION_LIMIT * np.abs(np.diagonal(m2))):
        return _raw_m2_full(resp, xc, s1, nk_safe, ws).sum(axis=0)
    return m2


def _raw_m2_diag(resp, xc, s1, nk_safe, ws):
    # One (K, n) @ (n, D) product of squares about the chunk's centre, minus the
    # mean terms; centred on the component's own mean for components where that
    # cancels too far.
    squares = np.square(xc, out=ws.array("squares", xc.shape))
    mean_term = np.square(s1) / nk_safe[:, None]
    m2 = resp @ squares - mean_term
    far = np.any(mean_term > CANCELLATION_LIMIT * np.abs(m2), axis=1)
    for k in np.flatnonzero(far):
        diff = np.subtract(xc, s1[k] / nk_safe[k], out=squares)
        m2[k] = resp[k] @ np.square(diff, out=diff)
    return m2


_BLOCK_M2 = {
    "full": _raw_m2_full,
    "tied": _raw_m2_tied,
    "diag": _raw_m2_diag,
    "spherical": _raw_m2_diag,
}


def centred_stats(xc, shift, resp, covariance_type, log_likelihood, weight_sum, ws=None):
    """Statistics of centred rows ``xc = rows - shift`` (n, D) under weighted
    responsibilities ``resp`` (K, n)."""
    nk = resp.sum(axis=1)
    s1 = resp @ xc
    nk_safe = np.where(nk > 0, nk, 1.0)
    m2 = _BLOCK_M2[covariance_type](resp, xc, s1, nk_safe, ws if ws is not None else Workspace())
    means = s1 / nk_safe[:, None] + shift
    return SufficientStats(covariance_type, nk, means, m2, log_likelihood, weight_sum, xc.shape[0])
