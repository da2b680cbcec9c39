"""``predict``, ``predict_proba`` and ``score_samples`` rows in the rows' own namespace.

The counterparts of :mod:`daskgmm.kernels.answers` for chunks that are not numpy
(CuPy on a GPU), which hands them here: the weighted log-densities are computed
on the rows' device in float64 (:class:`~daskgmm.kernels.xp_density.DeviceDensity`,
rows centred on the mean of the model's means, as the numpy kernel does), and
the answers stay there.  (The NaN policy's wrapper,
:func:`daskgmm.kernels.nan_policy.finite_rows_only`, checks such rows there too.)
"""

from __future__ import annotations

from .density import LogDensity
from .devices import namespace
from .xp_density import DeviceDensity, block_rows, centred, log_sum_exp


def weighted_log_prob(X, log_density: LogDensity):
    """``log(weight_k) + log N(x | k)`` of every row, component-major: (K, n) float64."""
    xp = namespace(X)
    density = DeviceDensity.of(log_density, X)
    shift = density.asarray(log_density.means.mean(axis=0))
    centres = density.centres(shift)
    step = block_rows(log_density.n_components, log_density.n_features)
    n = X.shape[0]
    blocks = (X[start : min(start + step, n), :] for start in range(0, n, step))
    parts = [density.log_prob(centred(xp, rows, shift, xp.float64), centres) for rows in blocks]
    if not parts:
        return xp.zeros((log_density.n_components, 0), dtype=xp.float64, device=density.device)
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)


def predict_rows(X, log_density: LogDensity):
    """Most probable component per row; (n, D) -> (n,) int64."""
    xp = namespace(X)
    return xp.astype(xp.argmax(weighted_log_prob(X, log_density), axis=0), xp.int64)


def proba_rows(X, log_density: LogDensity):
    """Posterior responsibilities per row; (n, D) -> (n, K)."""
    xp = namespace(X)
    return xp.matrix_transpose(log_sum_exp(xp, weighted_log_prob(X, log_density))[0])


def score_rows(X, log_density: LogDensity):
    """Log-density of the mixture per row; (n, D) -> (n,)."""
    return log_sum_exp(namespace(X), weighted_log_prob(X, log_density))[1]


def prediction_rows(X, log_density: LogDensity):
    """Probabilities, log-density and label of each row from one E-step.

    Returns
    -------
    array of shape (n, K + 2), float64
        Columns ``0..K-1`` the probabilities, ``K`` the log-density, ``K+1`` the label.
    """
    xp = namespace(X)
    wlp = weighted_log_prob(X, log_density)
    resp, lse = log_sum_exp(xp, wlp)
    label = xp.astype(xp.argmax(wlp, axis=0), xp.float64)
    return xp.matrix_transpose(xp.concat([resp, lse[None, :], label[None, :]], axis=0))
