"""The E-step of one chunk in its own array namespace (CuPy chunks stay on the GPU).

The counterpart of :func:`daskgmm.kernels.estep.chunk_stats` for chunks that are
not numpy arrays, behind the same protocol: rows and a responsibilities kind
(:mod:`daskgmm.kernels.responsibilities`) in, :class:`SufficientStats` (numpy,
float64) out.  :func:`daskgmm.kernels.estep.chunk_stats` hands such chunks here.

The rows never leave their device.  In blocks of rows that bound the (K, n, D)
temporaries, each component whitens the block by one batched matrix product
(:class:`~daskgmm.kernels.xp_density.DeviceDensity`), a log-sum-exp gives the
responsibilities and the per-row log-likelihoods, and the first moments are
summed; a second sweep sums the second moments centred on each component's own
mean over the chunk (no cancellation, whatever the data's offset).  The
whitening runs in the E-step's ``compute_dtype``; the per-block sums are added
in float64.  Rows with a non-finite log-likelihood (NaN or inf values, or
densities that overflow) are counted and given zero weight, as the numpy
kernels leave them out.  Only the K x D x D statistics and a few counts come to
the host.
"""

from __future__ import annotations

import numpy as np

from .checks import check_sample_weight_values
from .devices import device_of, namespace, to_host, xp_dtype
from .responsibilities import EStep, OneComponent
from .stats import SufficientStats
from .xp_density import DeviceDensity, block_rows, centred, log_sum_exp, row_products

#: Rows of the chunk's start whose mean is the centring point (all rows if none is finite).
SHIFT_ROWS = 1 << 16


def _finite_mean(xp, rows):
    """Mean of the finite rows (float64), or None if there are none."""
    rows = xp.astype(rows, xp.float64, copy=False)
    mean = xp.mean(rows, axis=0)
    if bool(xp.all(xp.isfinite(mean))):
        return mean
    finite = xp.all(xp.isfinite(rows), axis=1)
    count = int(xp.sum(xp.astype(finite, xp.int64)))
    if count == 0:
        return None
    kept = xp.where(finite[:, None], rows, xp.zeros_like(rows))
    return xp.sum(kept, axis=0) / count


def chunk_shift(xp, X):
    """The chunk's centring point: the mean of the finite rows of its start (float64)."""
    shift = _finite_mean(xp, X[: min(SHIFT_ROWS, X.shape[0]), :])
    if shift is None and X.shape[0] > SHIFT_ROWS:
        shift = _finite_mean(xp, X)
    return shift


def _device_weights(xp, X, sample_weight, chunk_index):
    """The chunk's sample weights checked on the host and placed beside the rows."""
    if sample_weight is None:
        return None
    host = np.asarray(to_host(sample_weight), dtype=np.float64)
    check_sample_weight_values(host, f" in row chunk {chunk_index}")
    return xp.asarray(host, dtype=xp.float64, device=device_of(X))


def _given_responsibilities(xp, X, responsibilities, chunk_index, shift):
    """(K, n) responsibilities of a kind other than the E-step, on the rows' device."""
    n = X.shape[0]
    if isinstance(responsibilities, OneComponent):
        return xp.ones((1, n), dtype=xp.float64, device=device_of(X))
    assign = responsibilities.for_chunk(chunk_index)
    resp = np.asarray(assign(None, to_host(shift), 0, n, None)[0], dtype=np.float64)
    return xp.asarray(np.ascontiguousarray(resp), dtype=xp.float64, device=device_of(X))


class _Sweep:
    """What the first sweep over a chunk's blocks leaves for the second."""

    def __init__(self):
        self.resp = []  # per block (K, b), weighted, zero on bad rows
        self.good = []  # per block (b,) bool
        self.nk = 0.0
        self.first = 0.0
        self.log_likelihood = 0.0
        self.weight_sum = 0.0
        self.n_good = 0


def _first_sweep(xp, X, responsibilities, weights, shift, chunk_index, dtype):
    """Responsibilities, bad rows, n_k, first moments and log-likelihood, per block."""
    k, d = responsibilities.n_components, X.shape[1]
    sweep = _Sweep()
    cdt = xp_dtype(xp, dtype)
    estep = isinstance(responsibilities, EStep)
    if estep:
        density = DeviceDensity.of(responsibilities.log_density, X, dtype)
        centres = density.centres(shift)
    else:
        given = _given_responsibilities(xp, X, responsibilities, chunk_index, shift)
    step = block_rows(k, d)
    for start in range(0, X.shape[0], step):
        stop = min(start + step, X.shape[0])
        xc = centred(xp, X[start:stop, :], shift, cdt)
        if estep:
            resp, lse = log_sum_exp(xp, density.log_prob(xc, centres))
            good = xp.isfinite(lse)
        else:
            resp, lse = given[:, start:stop], None
            good = xp.all(xp.isfinite(xc), axis=1)
        w = xp.astype(good, xp.float64)
        if weights is not None:
            w = w * weights[start:stop]
        resp = xp.where(good[None, :], resp, xp.zeros_like(resp)) * xp.astype(w, resp.dtype)
        xc = xp.where(good[:, None], xc, xp.zeros_like(xc))
        sweep.nk += xp.sum(xp.astype(resp, xp.float64), axis=1)
        sweep.first += row_products(xp, resp[:, :, None], xc[None, :, :])[:, 0, :]
        sweep.weight_sum += xp.sum(w)
        sweep.n_good += xp.sum(xp.astype(good, xp.int64))
        if lse is not None:
            sweep.log_likelihood += xp.sum(xp.where(good, lse, xp.zeros_like(lse)) * w)
        sweep.resp.append(resp)
        sweep.good.append(good)
    return sweep


def _second_moments(xp, X, sweep, shift, means, covariance_type, dtype):
    """Centred second moments: each component's about its own mean over the chunk."""
    cdt = xp_dtype(xp, dtype)
    step = block_rows(sweep.resp[0].shape[0], X.shape[1])
    centre = xp.astype(means, cdt)[:, None, :]
    m2 = 0.0
    for block, start in enumerate(range(0, X.shape[0], step)):
        stop = min(start + step, X.shape[0])
        xc = centred(xp, X[start:stop, :], shift, cdt)
        xc = xp.where(sweep.good[block][:, None], xc, xp.zeros_like(xc))
        diff = xc[None, :, :] - centre  # (K, b, D)
        resp = sweep.resp[block]
        if covariance_type in ("full", "tied"):
            m2 = m2 + row_products(xp, diff * resp[:, :, None], diff)  # (K, D, D)
        else:
            m2 = m2 + row_products(xp, resp[:, :, None], diff * diff)[:, 0, :]  # (K, D)
    return xp.sum(m2, axis=0) if covariance_type == "tied" else m2


def chunk_stats(X, responsibilities, sample_weight=None, chunk_index: int = 0) -> SufficientStats:
    """Statistics of one chunk of rows in its own array namespace.

    Parameters
    ----------
    X : array of shape (n, D)
        Any array-API array (CuPy on a GPU); not numpy (that goes to
        :func:`daskgmm.kernels.estep.chunk_stats`).
    responsibilities : EStep, RandomResponsibilities, GivenResponsibilities or OneComponent
    sample_weight : array of shape (n,), optional
        numpy or the rows' namespace.
    chunk_index : int

    Returns
    -------
    SufficientStats
        numpy float64, as the numpy kernels give them (to rounding).
    """
    xp = namespace(X)
    cov_type = responsibilities.covariance_type
    n, d = X.shape
    k = responsibilities.n_components
    weights = _device_weights(xp, X, sample_weight, chunk_index)
    out = SufficientStats.empty(cov_type, k, d)
    shift = chunk_shift(xp, X) if n else None
    if shift is None:
        out.n_rows = out.n_bad = n
        out.bad_chunks = {chunk_index: n} if n else {}
        return out
    dtype = np.dtype(getattr(responsibilities, "compute_dtype", np.float64))
    sweep = _first_sweep(xp, X, responsibilities, weights, shift, chunk_index, dtype)
    nk_safe = xp.where(sweep.nk > 0, sweep.nk, xp.ones_like(sweep.nk))
    means = sweep.first / nk_safe[:, None]
    m2 = _second_moments(xp, X, sweep, shift, means, cov_type, dtype)
    n_good = int(sweep.n_good)
    stats = SufficientStats(
        cov_type,
        to_host(sweep.nk),
        to_host(means + shift[None, :]),
        to_host(m2),
        float(sweep.log_likelihood),
        float(sweep.weight_sum),
        n,
        n - n_good,
    )
    if stats.n_bad:
        stats.bad_chunks = {chunk_index: stats.n_bad}
    return stats
