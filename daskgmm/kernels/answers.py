"""What ``predict``, ``predict_proba`` and ``score_samples`` compute per chunk.

Each starts from the weighted log-densities of the rows: by the compiled kernel
(:func:`daskgmm.kernels.tiles.weighted_log_prob`, the tiles its rounding-error
bound declines by numpy) unless :data:`daskgmm.kernels.estep.USE_COMPILED` is
False, by :func:`daskgmm.kernels.density.weighted_log_prob` then.  Rows of another
array namespace (CuPy on a GPU) go to :mod:`daskgmm.kernels.xp_answers`, and their
answers stay on their device.
"""

from __future__ import annotations

import numpy as np

from . import estep, tiles, xp_answers
from .density import LogDensity, logsumexp_rows, softmax_components
from .density import weighted_log_prob as numpy_weighted_log_prob
from .devices import namespace


def _weighted_log_prob(X: np.ndarray, log_density: LogDensity) -> np.ndarray:
    if estep.USE_COMPILED:
        return tiles.weighted_log_prob(X, log_density)
    return numpy_weighted_log_prob(X, log_density)


def predict_rows(X: np.ndarray, log_density: LogDensity) -> np.ndarray:
    """Most probable component per row; (n, D) -> (n,) int64."""
    if namespace(X) is not None:
        return xp_answers.predict_rows(X, log_density)
    return _weighted_log_prob(X, log_density).argmax(axis=1)


def proba_rows(X: np.ndarray, log_density: LogDensity) -> np.ndarray:
    """Posterior responsibilities per row; (n, D) -> (n, K)."""
    if namespace(X) is not None:
        return xp_answers.proba_rows(X, log_density)
    return softmax_components(_weighted_log_prob(X, log_density))[0].T


def score_rows(X: np.ndarray, log_density: LogDensity) -> np.ndarray:
    """Log-density of the mixture per row; (n, D) -> (n,)."""
    if namespace(X) is not None:
        return xp_answers.score_rows(X, log_density)
    return logsumexp_rows(_weighted_log_prob(X, log_density))


def prediction_rows(X: np.ndarray, log_density: LogDensity) -> np.ndarray:
    """Probabilities, log-density and label of each row from one E-step.

    Each column equals what :func:`proba_rows`, :func:`score_rows` and
    :func:`predict_rows` give, bit for bit.

    Returns
    -------
    ndarray of shape (n, K + 2), float64
        Columns ``0..K-1`` the probabilities, ``K`` the log-density, ``K+1`` the label.
    """
    if namespace(X) is not None:
        return xp_answers.prediction_rows(X, log_density)
    wlp = _weighted_log_prob(X, log_density)
    k = log_density.n_components
    out = np.empty((X.shape[0], k + 2))
    out[:, k] = logsumexp_rows(wlp)
    out[:, k + 1] = wlp.argmax(axis=1)
    out[:, :k] = softmax_components(wlp)[0].T
    return out
