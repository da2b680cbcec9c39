"""Sufficient statistics of a Gaussian mixture: per-chunk E-step, merge, M-step.

numpy only.  A :class:`SufficientStats` holds, per component, the total
responsibility ``n_k``, the responsibility-weighted mean ``m_k`` and the
*centred* weighted second moment ``M2_k = sum_i r_ik (x_i - m_k)(x_i - m_k)^T``
(its diagonal for 'diag'/'spherical', its sum over components for 'tied'),
plus the log-likelihood sum, the row count and the bad-row count.

Statistics are merged with the parallel update of Chan, Golub & LeVeque::

    n = n_a + n_b,  delta = m_b - m_a,  m = m_a + delta * n_b / n
    M2 = M2_a + M2_b + (n_a * n_b / n) * delta delta^T

in float64 whatever the data's dtype.  Unlike ``sum r x x^T - n m m^T`` this does
not cancel catastrophically for data far from the origin, and it is associative,
so any tree of merges gives the same result to rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._kernels import LogDensity, Workspace, block_rows, precision_cholesky, softmax_components
from ._quadratic import QuadraticEStep, quadratic_block_rows, worthwhile
from ._validation import bad_rows_error, check_sample_weight_values

EPS = float(np.finfo(np.float64).eps)
#: Covariance types whose E-step uses the quadratic-feature kernel.
QUADRATIC_TYPES = ("full", "tied")


@dataclass
class SufficientStats:
    """Merged E-step statistics of some rows under fixed parameters.

    Attributes
    ----------
    covariance_type : str
    nk : ndarray of shape (K,)
        Total (sample-weighted) responsibility per component.
    means : ndarray of shape (K, D)
        Responsibility-weighted mean per component (arbitrary where ``nk == 0``).
    m2 : ndarray
        Centred second moments: (K, D, D) full, (D, D) tied (summed over
        components), (K, D) diag and spherical (diagonals).
    log_likelihood : float
        Sum over rows of ``weight_i * log p(x_i)``.
    weight_sum : float
        Sum of sample weights (the row count when unweighted).
    n_rows : int
        Rows seen.
    n_bad : int
        Rows with a non-finite value (their statistics are left out).
    bad_chunks : dict
        Chunk index -> number of bad rows, for error messages.
    """

    covariance_type: str
    nk: np.ndarray
    means: np.ndarray
    m2: np.ndarray
    log_likelihood: float = 0.0
    weight_sum: float = 0.0
    n_rows: int = 0
    n_bad: int = 0
    bad_chunks: dict = field(default_factory=dict)

    @classmethod
    def empty(cls, covariance_type: str, n_components: int, n_features: int):
        """Statistics of no rows."""
        k, d = n_components, n_features
        return cls(
            covariance_type,
            np.zeros(k),
            np.zeros((k, d)),
            np.zeros(_M2_SHAPE[covariance_type](k, d)),
        )

    def merge(self, other: SufficientStats) -> SufficientStats:
        """Chan's parallel update of two sets of statistics; returns a new object."""
        n = self.nk + other.nk
        with np.errstate(invalid="ignore", divide="ignore"):
            frac_b = np.where(n > 0, other.nk / n, 0.0)
            cross = np.where(n > 0, self.nk * other.nk / n, 0.0)
        delta = other.means - self.means
        means = self.means + delta * frac_b[:, None]
        m2 = self.m2 + other.m2 + _M2_CROSS[self.covariance_type](cross, delta)
        bad_chunks = {**self.bad_chunks, **other.bad_chunks}
        return SufficientStats(
            self.covariance_type,
            n,
            means,
            m2,
            self.log_likelihood + other.log_likelihood,
            self.weight_sum + other.weight_sum,
            self.n_rows + other.n_rows,
            self.n_bad + other.n_bad,
            bad_chunks,
        )

    def scaled(self, factor: float) -> SufficientStats:
        """The statistics with every row weight multiplied by ``factor``; a new object.

        ``n_k``, the second moments, the log-likelihood and the weight sum scale;
        means do not.  Stepwise EM's blend ``(1 - g) * s + g * s_hat`` of the raw
        moments is exactly ``s.scaled(1 - g).merge(s_hat.scaled(g))``.

        Parameters
        ----------
        factor : float
            Non-negative.

        Returns
        -------
        SufficientStats
        """
        return SufficientStats(
            self.covariance_type,
            self.nk * factor,
            self.means.copy(),
            self.m2 * factor,
            self.log_likelihood * factor,
            self.weight_sum * factor,
            self.n_rows,
            self.n_bad,
            dict(self.bad_chunks),
        )

    def normalised(self) -> SufficientStats:
        """Per-sample statistics: scaled so that the weight sum is 1."""
        return self.scaled(1.0 / self.weight_sum)

    @property
    def mean_log_likelihood(self) -> float:
        """Weighted mean per-sample log-likelihood (scikit-learn's lower bound)."""
        return self.log_likelihood / self.weight_sum


def merge_all(stats: list[SufficientStats]) -> SufficientStats:
    """Merge a list of statistics left to right (one node of a reduction tree)."""
    out = stats[0]
    for s in stats[1:]:
        out = out.merge(s)
    return out


_M2_SHAPE: dict[str, Callable[[int, int], tuple]] = {
    "full": lambda k, d: (k, d, d),
    "tied": lambda k, d: (d, d),
    "diag": lambda k, d: (k, d),
    "spherical": lambda k, d: (k, d),
}

_M2_CROSS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "full": lambda c, dl: c[:, None, None] * dl[:, :, None] * dl[:, None, :],
    "tied": lambda c, dl: (dl * c[:, None]).T @ dl,
    "diag": lambda c, dl: c[:, None] * np.square(dl),
    "spherical": lambda c, dl: c[:, None] * np.square(dl),
}


# --------------------------------------------------------------------------- #
# per-block statistics (the fused E-step)
# --------------------------------------------------------------------------- #
# Responsibilities arrive component-major, shape (K, n): row-wise reductions over
# K=8 columns are slow in numpy, reductions across K rows of length n are not.
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


def _centred_stats(xc, shift, resp, covariance_type, log_likelihood, weight_sum, ws=None):
    """Statistics of centred rows ``xc = rows - shift`` (n, D) under weighted
    responsibilities ``resp`` (K, n)."""
    nk = resp.sum(axis=1)
    s1 = resp @ xc
    nk_safe = np.where(nk > 0, nk, 1.0)
    m2 = _BLOCK_M2[covariance_type](resp, xc, s1, nk_safe, ws if ws is not None else Workspace())
    means = s1 / nk_safe[:, None] + shift
    return SufficientStats(covariance_type, nk, means, m2, log_likelihood, weight_sum, xc.shape[0])


class EStep:
    """Posterior responsibilities under fixed parameters (the E-step).

    Parameters
    ----------
    log_density : LogDensity
        Prepared parameters including log-weights.
    """

    def __init__(self, log_density: LogDensity):
        self.log_density = log_density
        self.covariance_type = log_density.covariance_type
        self.n_components = log_density.n_components

    def for_chunk(self, chunk_index: int) -> EStep:
        """The same E-step for every chunk."""
        return self

    def __call__(self, xc, shift, start, stop, good, workspace=None):
        """Responsibilities (K, n) and per-row log-likelihoods (n,) of centred rows."""
        workspace = workspace if workspace is not None else Workspace()
        wlp = self.log_density(xc, shift, workspace)
        resp = workspace.array("resp", (self.n_components, xc.shape[0]))
        return softmax_components(wlp, out=resp)


class RandomResponsibilities:
    """Uniform random responsibilities, reproducible per chunk (``init_params='random'``).

    Parameters
    ----------
    seed : int
    n_components : int
    covariance_type : str
    """

    def __init__(self, seed: int, n_components: int, covariance_type: str):
        self.seed = seed
        self.n_components = n_components
        self.covariance_type = covariance_type

    def for_chunk(self, chunk_index: int):
        """A generator of responsibilities for one chunk, seeded by its index."""
        rng = np.random.default_rng([self.seed, chunk_index])

        def draw(xc, shift, start, stop, good, workspace=None):
            resp = rng.uniform(size=(stop - start, self.n_components))
            resp /= resp.sum(axis=1, keepdims=True)
            return (resp if good is None else resp[good]).T, None

        return draw


class GivenResponsibilities:
    """Responsibilities fixed in advance, e.g. one-hot k-means labels of a sample.

    Parameters
    ----------
    resp : ndarray of shape (n, K)
    covariance_type : str
    """

    def __init__(self, resp: np.ndarray, covariance_type: str):
        self.resp = np.asarray(resp, dtype=np.float64)
        self.n_components = self.resp.shape[1]
        self.covariance_type = covariance_type

    def for_chunk(self, chunk_index: int) -> GivenResponsibilities:
        return self

    def __call__(self, xc, shift, start, stop, good, workspace=None):
        resp = self.resp[start:stop]
        return (resp if good is None else resp[good]).T, None


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
    mixture uses the quadratic-feature kernel (:mod:`daskgmm._quadratic`) on
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
    n_components = responsibilities.n_components
    assign = responsibilities.for_chunk(chunk_index)
    out = SufficientStats.empty(cov_type, n_components, X.shape[1])
    if sample_weight is not None:
        check_sample_weight_values(np.asarray(sample_weight), f" in row chunk {chunk_index}")
    use_quadratic = (
        isinstance(responsibilities, EStep)
        and cov_type in QUADRATIC_TYPES
        and worthwhile(n_components, X.shape[1])
    )
    if use_quadratic:
        step = quadratic_block_rows(X.shape[1])
    else:
        step = block_rows(n_components, X.shape[1], cov_type)
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
    block = _centred_stats(xc, shift, resp, cov_type, loglik, wsum, ws)
    block.n_bad = n_bad
    block.n_rows += n_bad
    return block


def _bad_block(cov_type, n_components, n_features, n_bad) -> SufficientStats:
    block = SufficientStats.empty(cov_type, n_components, n_features)
    block.n_bad = block.n_rows = n_bad
    return block


def raise_for_bad_rows(stats: SufficientStats) -> None:
    """Raise if a pass met non-finite rows, or if all sample weights were zero."""
    if stats.n_bad:
        raise bad_rows_error(stats.n_bad, stats.bad_chunks)
    if not stats.weight_sum > 0:
        raise ValueError("The sample weights sum to zero; give at least one row a positive weight.")


# --------------------------------------------------------------------------- #
# M-step
# --------------------------------------------------------------------------- #
def _cov_full(stats, nk, reg):
    cov = stats.m2 / nk[:, None, None]
    idx = np.arange(cov.shape[1])
    cov[:, idx, idx] += reg
    return cov


def _cov_tied(stats, nk, reg):
    cov = stats.m2 / nk.sum()
    cov[np.diag_indices_from(cov)] += reg
    return cov


def _cov_diag(stats, nk, reg):
    return stats.m2 / nk[:, None] + reg


def _cov_spherical(stats, nk, reg):
    return _cov_diag(stats, nk, reg).mean(axis=1)


_COVARIANCE_FROM_STATS = {
    "full": _cov_full,
    "tied": _cov_tied,
    "diag": _cov_diag,
    "spherical": _cov_spherical,
}


def m_step(stats: SufficientStats, reg_covar: float):
    """Maximisation step from merged statistics, as scikit-learn computes it.

    ``n_k`` gets scikit-learn's ``10 * eps`` so empty components stay defined;
    weights are normalised by their sum; ``reg_covar`` is added to the diagonal.

    Parameters
    ----------
    stats : SufficientStats
    reg_covar : float

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    covariances : ndarray
    precisions_cholesky : ndarray

    Raises
    ------
    SingularCovarianceError
        If a covariance is not positive definite.
    """
    nk_raw = stats.nk
    nk = nk_raw + 10 * EPS
    weights = nk / nk.sum()
    means = stats.means * (nk_raw / nk)[:, None]
    covariances = _COVARIANCE_FROM_STATS[stats.covariance_type](stats, nk, reg_covar)
    return (
        weights,
        means,
        covariances,
        precision_cholesky(covariances, stats.covariance_type),
    )


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
