"""The M-step of maximum likelihood EM, from merged statistics (numpy only)."""

from __future__ import annotations

import numpy as np

from .covariance import precision_cholesky
from .scale import check_finite_statistics
from .stats import SufficientStats

EPS = float(np.finfo(np.float64).eps)


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


def gaussian_estimates(stats: SufficientStats, reg_covar: float):
    """``n_k``, means and covariances of the responsibility-weighted rows, as
    scikit-learn's ``_estimate_gaussian_parameters`` gives them.

    ``n_k`` gets scikit-learn's ``10 * eps``, so empty components stay defined;
    ``reg_covar`` is added to the diagonal.

    Parameters
    ----------
    stats : SufficientStats
    reg_covar : float

    Returns
    -------
    nk : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    covariances : ndarray
        Shape per covariance type: (K, D, D), (D, D), (K, D) or (K,).

    Raises
    ------
    DataScaleError
        If the statistics overflowed (data of too large a scale).
    """
    check_finite_statistics(stats)
    nk = stats.nk + 10 * EPS
    means = stats.means * (stats.nk / nk)[:, None]
    covariances = _COVARIANCE_FROM_STATS[stats.covariance_type](stats, nk, reg_covar)
    return nk, means, covariances


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
    DataScaleError
        If the statistics overflowed (data of too large a scale).
    """
    nk, means, covariances = gaussian_estimates(stats, reg_covar)
    weights = nk / nk.sum()
    return (
        weights,
        means,
        covariances,
        precision_cholesky(covariances, stats.covariance_type),
    )
