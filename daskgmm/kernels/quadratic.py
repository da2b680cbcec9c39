"""The E-step of 'full' and 'tied' mixtures as two matrix products (numpy only).

A component's weighted log-density is a quadratic polynomial of the row::

    log w_k + log N(x | mu_k, S_k) = -1/2 (x - a_k)^T L_k (x - a_k) + c_k

with ``x`` the row centred on the chunk's shift, ``a_k = mu_k - shift`` and
``L_k = P_k P_k^T`` the precision.  Expanded, it is a linear function of the
row's *quadratic features* ``z = [x_i x_j (i <= j), x_i, 1]``, ``D(D+1)/2 + D + 1``
numbers.  So for a block of rows, feature-major ``Z`` of shape (F, n):

- ``W @ Z`` (K, F) x (F, n) gives all K log-densities, component-major, ready for
  the softmax: ``K (D(D+1)/2 + D + 1)`` multiply-adds per row instead of the
  ``K D (D + 1)`` of whitening the row with each triangular ``P_k`` (which BLAS
  cannot do as one product without multiplying the zeros);
- ``Z @ R^T`` (F, n) x (n, K) gives, in one product, every statistic the M-step
  needs: the raw second moments ``sum r x_i x_j``, the first moments and ``n_k``.

About half the arithmetic of the whitening kernel, but the features take
``8 F`` bytes per row, so the gain shrinks as D grows and vanishes for few
components.  Measured (one thread, CPU time of a chunk's statistics, whitening
over quadratic): K=8: D=8 2.1x, 12 1.7x, 16 1.5x, 20 1.3x, 24 1.2x, 32 0.7-0.9x;
D=16: K=2 0.8x, K=32 2.0x; K=16, D=64 0.9-1.0x.  :func:`worthwhile` encodes that.
The price is conditioning: the expanded form adds terms as large as
``|x|^2 |L_k|`` that cancel, where whitening only meets ``|P_k^T (x - a_k)|``.
Each block therefore checks a bound on the rounding error of the expansion
(:attr:`QuadraticEStep.tolerance` nats of log-density) and is left to the
whitening kernel when the bound is exceeded: rows far, in units of the tightest
component's spread, from the chunk's centre.  Blocks with non-finite rows also
go to the general kernel, which accounts for them.
"""

from __future__ import annotations

import math

import numpy as np

from .density import BLOCK_BYTES, LogDensity, Workspace, softmax_columns

#: Largest rounding error (nats of log-density, a bound, not an estimate) for which
#: a block of rows uses the quadratic-feature kernel.
TOLERANCE = 1e-9
EPS = float(np.finfo(np.float64).eps)


def feature_count(n_features: int) -> int:
    """Quadratic features of a row of ``n_features`` values: pairs, values and 1."""
    return n_features * (n_features + 1) // 2 + n_features + 1


#: Widest rows and fewest components for which the quadratic kernel is used.
MAX_FEATURES = 24
MIN_COMPONENTS = 4


def worthwhile(n_components: int, n_features: int) -> bool:
    """Whether the quadratic kernel is expected to beat whitening (see above)."""
    return n_features <= MAX_FEATURES and n_components >= MIN_COMPONENTS


def quadratic_block_rows(n_features: int) -> int:
    """Rows per block so that a block's features take about ``BLOCK_BYTES``."""
    return int(max(256, BLOCK_BYTES // (8 * feature_count(n_features))))


def symmetric_from_pairs(pair_sums: np.ndarray, upper: tuple) -> np.ndarray:
    """Symmetric matrices from their upper triangles.

    Parameters
    ----------
    pair_sums : ndarray of shape (..., P)
        The entries ``(i, j), i <= j`` in the order of ``upper``.
    upper : tuple of two int arrays of shape (P,)
        ``numpy.triu_indices(D)``.

    Returns
    -------
    ndarray of shape (..., D, D)
    """
    d = int(upper[0].max()) + 1
    out = np.empty((*pair_sums.shape[:-1], d, d))
    out[..., upper[0], upper[1]] = pair_sums
    out[..., upper[1], upper[0]] = pair_sums
    return out


class QuadraticEStep:
    """Responsibilities and statistics of row blocks centred on one ``shift``.

    Parameters
    ----------
    log_density : LogDensity
        'full' or 'tied' parameters, prepared with weights.
    shift : ndarray of shape (D,)
        The chunk's centring point.
    """

    def __init__(self, log_density: LogDensity, shift: np.ndarray):
        k, d = log_density.n_components, log_density.n_features
        self.n_components, self.n_features = k, d
        self.covariance_type = log_density.covariance_type
        self.shift = np.asarray(shift, dtype=np.float64)
        self.upper = np.triu_indices(d)
        self.n_pairs = len(self.upper[0])
        self.width = feature_count(d)
        prec_chol = log_density.prec_chol
        if prec_chol.ndim == 2:  # tied: one factor for every component
            prec_chol = np.broadcast_to(prec_chol, (k, d, d))
        precision = prec_chol @ np.swapaxes(prec_chol, 1, 2)  # (K, D, D)
        centres = log_density.means - self.shift  # a_k, (K, D)
        pulled = np.einsum("kij,kj->ki", precision, centres)  # L_k a_k
        constant = np.einsum("ki,ki->k", centres, pulled)  # a_k^T L_k a_k
        # -1/2 (x^T L x - 2 a^T L x + a^T L a) + offset, as weights of the features
        pair_weight = -precision  # off-diagonal pairs appear twice in x^T L x
        diagonal = np.arange(d)
        pair_weight[:, diagonal, diagonal] *= 0.5
        weights = np.empty((k, self.width))
        weights[:, : self.n_pairs] = pair_weight[:, self.upper[0], self.upper[1]]
        weights[:, self.n_pairs : self.n_pairs + d] = pulled
        weights[:, -1] = log_density.offset - 0.5 * constant
        self.weights = weights
        # |terms| <= r2 |L|_F / 2 + r |L a| + a^T L a / 2 for a row of squared norm r2
        self._quadratic = 0.5 * np.sqrt((precision**2).sum(axis=(1, 2)))
        self._linear = np.sqrt((pulled**2).sum(axis=1))
        self._constant = 0.5 * np.abs(constant)
        self._error_per_term = math.sqrt(self.width) * EPS

    @property
    def tolerance(self) -> float:
        """Nats of log-density the rounding of the expansion may cost a block."""
        return TOLERANCE

    def bound_terms(self) -> np.ndarray:
        """The error bound's terms as one (4, K) array, for the compiled kernel: rows
        quadratic, linear, constant per component; ``[3, 0]`` the error per term."""
        terms = np.zeros((4, self.n_components))
        terms[0], terms[1], terms[2] = self._quadratic, self._linear, self._constant
        terms[3, 0] = self._error_per_term
        return terms

    def error_bound(self, largest_squared_norm: float) -> float:
        """Bound on the rounding error of the expansion for rows up to that norm."""
        r2 = largest_squared_norm
        terms = self._quadratic * r2 + self._linear * math.sqrt(r2) + self._constant
        return float(self._error_per_term * terms.max())

    def features(self, rows: np.ndarray, workspace: Workspace) -> np.ndarray | None:
        """Quadratic features (F, n) of ``rows - shift``; None if the rows need the
        general kernel (a non-finite value, or the error bound above tolerance)."""
        d, pairs = self.n_features, self.n_pairs
        z = workspace.array("quadratic", (self.width, rows.shape[0]))
        centred = z[pairs : pairs + d]
        np.subtract(rows.T, self.shift[:, None], out=centred)
        norms = workspace.array("norms", (rows.shape[0],))
        np.einsum("ij,ij->j", centred, centred, out=norms)
        largest = float(norms.max())
        if not math.isfinite(largest) or self.error_bound(largest) > TOLERANCE:
            return None
        start = 0
        for i in range(d):
            np.multiply(centred[i], centred[i:], out=z[start : start + d - i])
            start += d - i
        z[-1] = 1.0
        return z

    def block_stats(self, z: np.ndarray, weights: np.ndarray | None, workspace: Workspace):
        """E-step statistics of one block from its features.

        Parameters
        ----------
        z : ndarray of shape (F, n)
            From :meth:`features`.
        weights : ndarray of shape (n,), optional
            Sample weights.
        workspace : Workspace

        Returns
        -------
        tuple or None
            ``(nk, first, raw, log_likelihood, weight_sum)``: responsibility sums
            (K,), first moments of the centred rows (K, D), raw second moments
            of the centred rows, (K, D, D), or for 'tied' (D, D) summed over the
            components; None when a row's density is not finite.
        """
        n = z.shape[1]
        log_prob = workspace.array("log_prob", (self.n_components, n))
        np.matmul(self.weights, z, out=log_prob)
        resp, lse = softmax_columns(log_prob)
        if not np.isfinite(lse).all():
            return None
        if weights is None:
            log_likelihood, weight_sum = float(lse.sum()), float(n)
        else:
            resp *= weights
            log_likelihood, weight_sum = float(lse @ weights), float(weights.sum())
        d, pairs = self.n_features, self.n_pairs
        # first moments and n_k of every component: (D + 1, n) x (n, K)
        lower = z[pairs:] @ resp.T
        if self.covariance_type == "tied":
            # one second moment for all components: the rows' total responsibility
            # (their weight) is all it needs, a product with a vector
            row_weight = np.ones(n) if weights is None else weights
            raw = symmetric_from_pairs(z[:pairs] @ row_weight, self.upper)
        else:
            raw = symmetric_from_pairs((z[:pairs] @ resp.T).T, self.upper)  # (K, D, D)
        first = np.ascontiguousarray(lower[:d].T)
        return lower[d].copy(), first, raw, log_likelihood, weight_sum
