"""Variational Bayes for Gaussian mixtures from merged statistics (numpy + scipy only).

The same sufficient statistics as maximum-likelihood EM serve the variational
model (Bishop 2006, section 10.2; scikit-learn's ``BayesianGaussianMixture``):

- the **M-step** maps ``n_k``, the means and the centred second moments to the
  Dirichlet (or stick-breaking Beta) posterior of the weights and the
  Gaussian-Wishart posterior of each component (:func:`variational_m_step`);
- the **E-step** is the Gaussian E-step with a per-component term added, computed
  on the client from K-sized arrays (:func:`variational_log_density`): the
  expected log-weight, ``E[log|Lambda_k|]/2 - D log(nu_k)/2`` and ``-D/(2 beta_k)``;
- the **lower bound** needs ``sum r log r`` of the pass.  Since every row's
  responsibilities sum to 1, ``sum_ik r_ik log r_ik = sum_ik r_ik log p_ik -
  sum_i log sum_k p_ik``: the first term follows from the statistics (a trace
  with the centred moments), the second is the pass's log-likelihood sum
  (:func:`responsibility_entropy`).  No per-row term is needed.

The variational parameters travel as scikit-learn's ``_get_parameters`` orders
them: ``(weight_concentration, mean_precision, means, degrees_of_freedom,
covariances, precisions_cholesky)``; ``weight_concentration`` is a pair of (K,)
arrays for the Dirichlet process, one (K,) array for the Dirichlet distribution.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import betaln, digamma, gammaln

from .covariance import log_det_cholesky, precision_cholesky
from .density import LogDensity
from .mstep import gaussian_estimates
from .priors import Priors
from .stats import SufficientStats


# --------------------------------------------------------------------------- #
# M-step
# --------------------------------------------------------------------------- #
def weight_concentration(nk: np.ndarray, priors: Priors):
    """Posterior of the weights: Beta pairs (stick-breaking) or Dirichlet concentrations."""
    if priors.kind == "dirichlet_process":
        tail = np.hstack((np.cumsum(nk[::-1])[-2::-1], 0.0))
        return (1.0 + nk, priors.weight_concentration + tail)
    return priors.weight_concentration + nk


def _wishart_full(nk, xk, sk, priors, mean_precision):
    diff = xk - priors.mean
    shrink = nk * priors.mean_precision / mean_precision
    cov = priors.covariance + nk[:, None, None] * sk
    cov = cov + shrink[:, None, None] * diff[:, :, None] * diff[:, None, :]
    dof = priors.degrees_of_freedom + nk
    return dof, cov / dof[:, None, None]


def _wishart_tied(nk, xk, sk, priors, mean_precision):
    k = nk.shape[0]
    diff = xk - priors.mean
    cov = (
        priors.covariance
        + sk * nk.sum() / k
        + priors.mean_precision / k * np.dot((nk / mean_precision) * diff.T, diff)
    )
    dof = priors.degrees_of_freedom + nk.sum() / k
    return dof, cov / dof


def _wishart_diag(nk, xk, sk, priors, mean_precision):
    diff = xk - priors.mean
    cov = priors.covariance + nk[:, None] * (
        sk + (priors.mean_precision / mean_precision)[:, None] * np.square(diff)
    )
    dof = priors.degrees_of_freedom + nk
    return dof, cov / dof[:, None]


def _wishart_spherical(nk, xk, sk, priors, mean_precision):
    diff = xk - priors.mean
    cov = priors.covariance + nk * (
        sk + priors.mean_precision / mean_precision * np.mean(np.square(diff), axis=1)
    )
    dof = priors.degrees_of_freedom + nk
    return dof, cov / dof


#: covariance type -> (nk, xk, sk, priors, mean_precision) -> (degrees_of_freedom, covariances)
_WISHART = {
    "full": _wishart_full,
    "tied": _wishart_tied,
    "diag": _wishart_diag,
    "spherical": _wishart_spherical,
}


def variational_m_step(stats: SufficientStats, priors: Priors, reg_covar: float) -> tuple:
    """The variational posterior from a pass's merged statistics.

    Parameters
    ----------
    stats : SufficientStats
    priors : Priors
        Complete (:func:`daskgmm.kernels.priors.complete_priors`).
    reg_covar : float
        Added to the diagonal of the data's covariances before they enter the
        Wishart posterior, as scikit-learn does.

    Returns
    -------
    tuple
        ``(weight_concentration, mean_precision (K,), means (K, D),
        degrees_of_freedom (K,) or float for 'tied', covariances,
        precisions_cholesky)``; covariances are the Wishart scale's inverse
        divided by the degrees of freedom, as in scikit-learn.
    """
    nk, xk, sk = gaussian_estimates(stats, reg_covar)
    concentration = weight_concentration(nk, priors)
    mean_precision = priors.mean_precision + nk
    means = (priors.mean_precision * priors.mean + nk[:, None] * xk) / mean_precision[:, None]
    dof, covariances = _WISHART[stats.covariance_type](nk, xk, sk, priors, mean_precision)
    prec_chol = precision_cholesky(covariances, stats.covariance_type)
    return concentration, mean_precision, means, dof, covariances, prec_chol


# --------------------------------------------------------------------------- #
# E-step
# --------------------------------------------------------------------------- #
def expected_log_weights(concentration, kind: str) -> np.ndarray:
    """``E[log pi_k]`` under the weights' posterior (stick-breaking or Dirichlet)."""
    if kind == "dirichlet_process":
        a, b = concentration
        digamma_sum = digamma(a + b)
        sticks = np.hstack((0.0, np.cumsum(digamma(b) - digamma_sum)[:-1]))
        return digamma(a) - digamma_sum + sticks
    return digamma(concentration) - digamma(np.sum(concentration))


def mixture_weights(concentration, kind: str) -> np.ndarray:
    """Posterior-mean weights (scikit-learn's ``weights_``), summing to 1."""
    if kind == "dirichlet_process":
        a, b = concentration
        total = a + b
        weights = a / total * np.hstack((1.0, np.cumprod(b / total)[:-1]))
    else:
        weights = np.asarray(concentration, dtype=np.float64)
    return weights / np.sum(weights)


def _expected_log_det(dof, n_features: int) -> np.ndarray:
    """``sum_d digamma((nu - d) / 2) + D log 2`` per component (or for the tied one)."""
    half = 0.5 * (np.asarray(dof, dtype=np.float64) - np.arange(n_features)[:, None])
    return n_features * math.log(2.0) + np.sum(digamma(half), axis=0)


def variational_log_density(params: tuple, covariance_type: str, kind: str) -> LogDensity:
    """The E-step's per-component log-probabilities under the variational posterior.

    ``log N(x | m_k, (nu_k W_k)^-1) + E[log pi_k] + (E[log|Lambda_k|] -
    D log nu_k - D / beta_k) / 2``: the Gaussian kernels with a per-component
    term, as scikit-learn's ``_estimate_weighted_log_prob``.

    Parameters
    ----------
    params : tuple
        The variational parameters (see the module docstring).
    covariance_type : str
    kind : {'dirichlet_process', 'dirichlet_distribution'}

    Returns
    -------
    LogDensity
    """
    concentration, mean_precision, means, dof, _, prec_chol = params
    n_features = means.shape[1]
    extra = 0.5 * (
        _expected_log_det(dof, n_features)
        - n_features * np.log(dof)
        - n_features / np.asarray(mean_precision)
    )
    log_weights = expected_log_weights(concentration, kind) + extra
    return LogDensity(means, prec_chol, covariance_type, log_weights=log_weights)


# --------------------------------------------------------------------------- #
# lower bound
# --------------------------------------------------------------------------- #
def _quadratic_full(m2, delta, nk, prec_chol):
    precision = prec_chol @ np.swapaxes(prec_chol, 1, 2)
    shift = np.einsum("kd,kde->ke", delta, prec_chol)
    return np.sum(m2 * precision) + np.sum(nk[:, None] * np.square(shift))


def _quadratic_tied(m2, delta, nk, prec_chol):
    shift = delta @ prec_chol
    return np.sum(m2 * (prec_chol @ prec_chol.T)) + np.sum(nk[:, None] * np.square(shift))


def _quadratic_diag(m2, delta, nk, prec_chol):
    return np.sum(np.square(prec_chol) * (m2 + nk[:, None] * np.square(delta)))


def _quadratic_spherical(m2, delta, nk, prec_chol):
    return np.sum(np.square(prec_chol) * np.sum(m2 + nk[:, None] * np.square(delta), axis=1))


#: covariance type -> sum_k sum_i r_ik |(x_i - mu_k) P_k|^2 from the centred statistics
_QUADRATIC = {
    "full": _quadratic_full,
    "tied": _quadratic_tied,
    "diag": _quadratic_diag,
    "spherical": _quadratic_spherical,
}


def responsibility_entropy(stats: SufficientStats, log_density: LogDensity) -> float:
    """``sum_ik w_i r_ik log r_ik`` of a pass, from its statistics alone.

    ``log r_ik = log p_ik - log sum_j p_ij`` and ``sum_k r_ik = 1``, so the sum is
    ``sum_k sum_i w_i r_ik log p_ik`` minus the pass's log-likelihood sum.  The
    first term is ``sum_k n_k c_k - 1/2 tr(P_k P_k^T (M2_k + n_k d_k d_k^T))``,
    with ``c_k`` the component's offset and ``d_k = m_k - mu_k``: exact in the
    centred statistics, whatever the data's offset.

    Parameters
    ----------
    stats : SufficientStats
        Of the pass whose responsibilities ``log_density`` gave.
    log_density : LogDensity
        The E-step's densities (means, precision factors, per-component offsets).

    Returns
    -------
    float
        At most 0 (to rounding).
    """
    nk = stats.nk
    used = nk > 0
    delta = np.where(used[:, None], stats.means - log_density.means, 0.0)
    quadratic = _QUADRATIC[stats.covariance_type](stats.m2, delta, nk, log_density.prec_chol)
    constant = np.sum(np.where(used, nk * log_density.offset, 0.0))
    return float(constant - 0.5 * quadratic - stats.log_likelihood)


def log_dirichlet_norm(concentration: np.ndarray) -> float:
    """Log of the Dirichlet distribution's normalising constant."""
    return float(gammaln(np.sum(concentration)) - np.sum(gammaln(concentration)))


def log_wishart_norm(dof, log_det_precisions_chol, n_features: int) -> np.ndarray:
    """Log of the Wishart normalising constant (without the ``log pi`` term), per component."""
    dof = np.asarray(dof, dtype=np.float64)
    return -(
        dof * log_det_precisions_chol
        + dof * n_features * 0.5 * math.log(2.0)
        + np.sum(gammaln(0.5 * (dof - np.arange(n_features)[:, None])), axis=0)
    )


def variational_lower_bound(
    entropy: float, params: tuple, covariance_type: str, kind: str
) -> float:
    """The evidence lower bound, up to constants, as scikit-learn computes it.

    Parameters
    ----------
    entropy : float
        ``sum r log r`` of the pass (:func:`responsibility_entropy`).
    params : tuple
        The variational parameters after the M-step.
    covariance_type : str
    kind : {'dirichlet_process', 'dirichlet_distribution'}

    Returns
    -------
    float
        Total over the rows (not per row), as scikit-learn's ``lower_bound_``.
    """
    concentration, mean_precision, means, dof, _, prec_chol = params
    n_components, n_features = means.shape
    log_det = log_det_cholesky(prec_chol, covariance_type, n_features)
    log_det = log_det - 0.5 * n_features * np.log(dof)
    wishart = log_wishart_norm(dof, log_det, n_features)
    if covariance_type == "tied":
        log_wishart = n_components * float(np.squeeze(wishart))
    else:
        log_wishart = float(np.sum(wishart))
    if kind == "dirichlet_process":
        log_norm_weight = -float(np.sum(betaln(concentration[0], concentration[1])))
    else:
        log_norm_weight = log_dirichlet_norm(concentration)
    return (
        -entropy
        - log_wishart
        - log_norm_weight
        - 0.5 * n_features * float(np.sum(np.log(mean_precision)))
    )
