"""One block of rows to sufficient statistics, row-major (numpy only).

The kernels the chunk E-step (:mod:`daskgmm.kernels.estep`) runs on blocks of a
chunk, and that the compiled kernel (:mod:`daskgmm.kernels.tiles`) leaves tiles
to: the quadratic-feature kernel of 'full'/'tied' mixtures, and the general
whitening kernel, which also counts and drops rows with NaN or inf.
"""

from __future__ import annotations

import numpy as np

from .moments import centred_stats
from .quadratic import QuadraticEStep
from .responsibilities import EStep
from .stats import SufficientStats


def finite_shift(rows: np.ndarray) -> np.ndarray | None:
    """Mean of the finite rows (None if there are none): the chunk's centring point."""
    shift = rows.mean(axis=0)
    if np.isfinite(shift).all():
        return shift
    finite = rows[np.isfinite(rows).all(axis=1)]
    return finite.mean(axis=0) if finite.shape[0] else None


def moments_to_stats(quadratic, nk, first, raw, log_likelihood, weight_sum, n_rows):
    """'full'/'tied' centred statistics from sums about the shift: ``n_k``, first and
    raw second moments of the centred rows.  ``quadratic`` is anything with the
    ``covariance_type`` and the ``shift``."""
    nk_safe = np.where(nk > 0, nk, 1.0)
    if quadratic.covariance_type == "tied":
        m2 = raw - (first / nk_safe[:, None]).T @ first
    else:
        m2 = raw - first[:, :, None] * first[:, None, :] / nk_safe[:, None, None]
    means = first / nk_safe[:, None] + quadratic.shift
    return SufficientStats(
        quadratic.covariance_type, nk, means, m2, log_likelihood, weight_sum, n_rows
    )


def quadratic_block(quadratic: QuadraticEStep, rows, weights, workspace):
    """A block's statistics by the quadratic-feature kernel, or None if it can't."""
    z = quadratic.features(rows, workspace)
    if z is None:
        return None
    parts = quadratic.block_stats(z, weights, workspace)
    if parts is None:
        return None
    nk, first, raw, log_likelihood, weight_sum = parts
    return moments_to_stats(quadratic, nk, first, raw, log_likelihood, weight_sum, rows.shape[0])


def general_block(rows, weights, shift, assign, like, start, ws) -> SufficientStats:
    """A block's statistics by the row-major kernels; counts and drops bad rows.

    ``like`` is statistics of the same type and shape (the chunk's so far).
    """
    n_rows, n_features = rows.shape
    cov_type, n_components = like.covariance_type, like.nk.shape[0]
    if shift is None:  # no finite row seen yet: all of these are bad
        return bad_block(cov_type, n_components, n_features, n_rows)
    if rows.dtype != np.float64:  # float32 data are computed in float64
        converted = ws.array("rows", rows.shape)
        converted[...] = rows
        rows = converted
    stop = start + n_rows
    good = lse = None
    if isinstance(assign, EStep):
        xc = np.subtract(rows, shift, out=ws.array("centred", rows.shape))
        with np.errstate(invalid="ignore", over="ignore"):  # bad rows are found next
            resp, lse = assign(xc, shift, start, stop, None, ws)
        if not np.isfinite(lse).all():
            good = np.isfinite(lse) & np.isfinite(rows).all(axis=1)
    else:
        good = np.isfinite(rows).all(axis=1)
    n_bad = 0
    if good is not None:
        n_bad = n_rows - int(np.count_nonzero(good))
        if n_bad == n_rows:
            return bad_block(cov_type, n_components, n_features, n_rows)
        if n_bad:
            rows = rows[good]
            weights = None if weights is None else weights[good]
        else:
            good = None
        xc = np.subtract(rows, shift, out=ws.array("centred", rows.shape))
        resp, lse = assign(xc, shift, start, stop, good, ws)
    wsum = float(rows.shape[0])
    if weights is not None:
        resp = resp * weights
        wsum = float(weights.sum())
    loglik = 0.0
    if lse is not None:
        loglik = float(lse.sum() if weights is None else lse @ weights)
    block = centred_stats(xc, shift, resp, cov_type, loglik, wsum, ws)
    block.n_bad = n_bad
    block.n_rows += n_bad
    return block


def bad_block(cov_type, n_components, n_features, n_bad) -> SufficientStats:
    block = SufficientStats.empty(cov_type, n_components, n_features)
    block.n_bad = block.n_rows = n_bad
    return block
