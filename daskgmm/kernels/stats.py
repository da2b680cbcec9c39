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

from .covariance import SHAPES


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

    @staticmethod
    def shapes(covariance_type: str, n_components: int, n_features: int) -> dict:
        """Shapes of the arrays ``nk``, ``means`` and ``m2`` by field name."""
        k, d = n_components, n_features
        return {"nk": (k,), "means": (k, d), "m2": SHAPES[covariance_type].second_moments(k, d)}

    @classmethod
    def empty(cls, covariance_type: str, n_components: int, n_features: int):
        """Statistics of no rows."""
        shapes = cls.shapes(covariance_type, n_components, n_features)
        return cls(covariance_type, *(np.zeros(shapes[name]) for name in ("nk", "means", "m2")))

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


_M2_CROSS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "full": lambda c, dl: c[:, None, None] * dl[:, :, None] * dl[:, None, :],
    "tied": lambda c, dl: (dl * c[:, None]).T @ dl,
    "diag": lambda c, dl: c[:, None] * np.square(dl),
    "spherical": lambda c, dl: c[:, None] * np.square(dl),
}
