"""The fused E-step of one chunk: rows in, sufficient statistics out (numpy only).

A chunk is processed in cache-sized blocks of rows, all centred on one point of
the chunk and computed in float64; each block becomes :class:`SufficientStats`
and the blocks are merged.  'full' and 'tied' E-steps use the quadratic-feature
kernel (:mod:`daskgmm.kernels.quadratic`) where its rounding-error bound allows,
the whitening kernel (:mod:`daskgmm.kernels.density`) elsewhere.  Rows with a
non-finite value are counted and left out; what then happens is the NaN
policy's (:mod:`daskgmm.kernels.nan_policy`).
"""

from __future__ import annotations

import numpy as np

from .checks import check_sample_weight_values
from .density import Workspace, block_rows
from .moments import centred_stats
from .quadratic import QuadraticEStep, quadratic_block_rows, worthwhile
from .responsibilities import EStep, GivenResponsibilities
from .stats import SufficientStats

#: Covariance types whose E-step uses the quadratic-feature kernel.
QUADRATIC_TYPES = ("full", "tied")


def _finite_shift(rows: np.ndarray) -> np.ndarray | None:
    """Mean of the finite rows (None if there are none): the chunk's centring point."""
    shift = rows.mean(axis=0)
    if np.isfinite(shift).all():
        return shift
    finite = rows[np.isfinite(rows).all(axis=1)]
    return finite.mean(axis=0) if finite.shape[0] else None


def chunk_stats(
    X: np.ndarray,
    responsibilities,
    sample_weight: np.ndarray | None = None,
    chunk_index: int = 0,
) -> SufficientStats:
    """Statistics of one chunk of rows: the fused E-step of one iteration.

    The chunk is processed in cache-sized blocks of rows, centred on one point of
    the chunk (the mean of its first block) and computed in float64; blocks are
    merged with :meth:`SufficientStats.merge`.  An E-step of a 'full' or 'tied'
    mixture uses the quadratic-feature kernel (:mod:`daskgmm.kernels.quadratic`) on
    every block whose rounding-error bound allows it, and the whitening kernel
    otherwise.  Rows with a non-finite value are counted and left out.  Under an
    E-step they are found from the per-row log-likelihood, which they make
    non-finite, so clean blocks cost no extra check (a finite row whose density
    overflows counts as bad too).

    Parameters
    ----------
    X : ndarray of shape (n, D)
    responsibilities : EStep, RandomResponsibilities or GivenResponsibilities
        What assigns rows to components.
    sample_weight : ndarray of shape (n,), optional
    chunk_index : int
        Position of the chunk among the row chunks; seeds random responsibilities
        and is recorded with any bad rows, for error messages.

    Returns
    -------
    SufficientStats
    """
    cov_type = responsibilities.covariance_type
    assign = responsibilities.for_chunk(chunk_index)
    out = SufficientStats.empty(cov_type, responsibilities.n_components, X.shape[1])
    if sample_weight is not None:
        check_sample_weight_values(np.asarray(sample_weight), f" in row chunk {chunk_index}")
    use_quadratic, step = _kernel_choice(responsibilities, X.shape[1])
    shift = quadratic = None
    n_bad = 0
    workspace = Workspace()
    for start in range(0, X.shape[0], step):
        stop = min(start + step, X.shape[0])
        rows = np.asarray(X[start:stop])
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight[start:stop], dtype=np.float64)
        if shift is None:
            shift = _finite_shift(np.asarray(rows, dtype=np.float64))
            if shift is not None and use_quadratic:
                quadratic = QuadraticEStep(responsibilities.log_density, shift)
        block = None
        if quadratic is not None:
            block = _quadratic_block(quadratic, rows, weights, workspace)
        if block is None:
            block = _general_block(rows, weights, shift, assign, out, start, workspace)
            n_bad += block.n_bad
        out = out.merge(block)
    if n_bad:
        out.bad_chunks = {chunk_index: n_bad}
    return out


def _kernel_choice(responsibilities, n_features: int) -> tuple[bool, int]:
    """Whether the quadratic-feature kernel serves this pass, and the rows per block."""
    cov_type = responsibilities.covariance_type
    n_components = responsibilities.n_components
    use_quadratic = (
        isinstance(responsibilities, EStep)
        and cov_type in QUADRATIC_TYPES
        and worthwhile(n_components, n_features)
    )
    if use_quadratic:
        return True, quadratic_block_rows(n_features)
    return False, block_rows(n_components, n_features, cov_type)


def _quadratic_block(quadratic: QuadraticEStep, rows, weights, workspace):
    """A block's statistics by the quadratic-feature kernel, or None if it can't."""
    z = quadratic.features(rows, workspace)
    if z is None:
        return None
    parts = quadratic.block_stats(z, weights, workspace)
    if parts is None:
        return None
    nk, first, raw, log_likelihood, weight_sum = parts
    nk_safe = np.where(nk > 0, nk, 1.0)
    if quadratic.covariance_type == "tied":
        m2 = raw - (first / nk_safe[:, None]).T @ first
    else:
        m2 = raw - first[:, :, None] * first[:, None, :] / nk_safe[:, None, None]
    means = first / nk_safe[:, None] + quadratic.shift
    return SufficientStats(
        quadratic.covariance_type, nk, means, m2, log_likelihood, weight_sum, rows.shape[0]
    )


def _general_block(rows, weights, shift, assign, like, start, ws) -> SufficientStats:
    """A block's statistics by the row-major kernels; counts and drops bad rows.

    ``like`` is statistics of the same type and shape (the chunk's so far).
    """
    n_rows, n_features = rows.shape
    cov_type, n_components = like.covariance_type, like.nk.shape[0]
    if shift is None:  # no finite row seen yet: all of these are bad
        return _bad_block(cov_type, n_components, n_features, n_rows)
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
            return _bad_block(cov_type, n_components, n_features, n_rows)
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


def _bad_block(cov_type, n_components, n_features, n_bad) -> SufficientStats:
    block = SufficientStats.empty(cov_type, n_components, n_features)
    block.n_bad = block.n_rows = n_bad
    return block


def stats_from_responsibilities(
    X: np.ndarray,
    resp: np.ndarray,
    covariance_type: str,
    sample_weight: np.ndarray | None = None,
) -> SufficientStats:
    """Statistics of in-memory rows under given responsibilities (for initialisation).

    Parameters
    ----------
    X : ndarray of shape (n, D)
    resp : ndarray of shape (n, K)
    covariance_type : str
    sample_weight : ndarray of shape (n,), optional

    Returns
    -------
    SufficientStats
        With ``log_likelihood`` left at 0.
    """
    return chunk_stats(X, GivenResponsibilities(resp, covariance_type), sample_weight)
