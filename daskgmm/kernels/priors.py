"""The priors of a variational Gaussian mixture: checked, and completed from the data.

numpy only.  :class:`Priors` holds what scikit-learn's ``BayesianGaussianMixture``
calls ``weight_concentration_prior_``, ``mean_precision_prior_``, ``mean_prior_``,
``degrees_of_freedom_prior_`` and ``covariance_prior_``.  The user's values are
checked before any pass over the data (:func:`check_priors`, with scikit-learn's
messages); the defaults that depend on the data (the mean of the rows and their
covariance, ``ddof=1`` as ``numpy.cov``) come from the pooled moments of a pass
that reads every row anyway (:func:`pooled_moments` of its statistics,
:func:`complete_priors`), never from a pass of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .checks import as_float_array
from .stats import SufficientStats


@dataclass(frozen=True)
class Priors:
    """The priors of a variational mixture (scikit-learn's ``*_prior_`` attributes).

    Attributes
    ----------
    kind : {'dirichlet_process', 'dirichlet_distribution'}
        ``weight_concentration_prior_type``.
    weight_concentration : float
    mean_precision : float
    mean : ndarray of shape (D,) or None
        None until completed from the data.
    degrees_of_freedom : float
    covariance : ndarray or float or None
        (D, D) for 'full' and 'tied', (D,) for 'diag', a float for 'spherical';
        None until completed from the data.
    """

    kind: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray | None
    degrees_of_freedom: float
    covariance: np.ndarray | float | None

    @property
    def complete(self) -> bool:
        """Whether nothing is left to take from the data."""
        return self.mean is not None and self.covariance is not None


def _check_shape(arr: np.ndarray, shape: tuple, label: str, name: str) -> None:
    if arr.shape != shape:
        raise ValueError(
            f"The parameter '{label}' should have the shape of {shape}, but got "
            f"{arr.shape}; give {name} the shape {shape}, from the data's n_features."
        )


def _covariance_prior_full(value, n_features: int, covariance_type: str) -> np.ndarray:
    arr = as_float_array(value, "covariance_prior")
    shape = (n_features, n_features)
    _check_shape(arr, shape, f"{covariance_type} covariance_prior", "covariance_prior")
    if not (np.allclose(arr, arr.T) and np.all(np.linalg.eigvalsh(arr) > 0.0)):
        raise ValueError(
            f"'{covariance_type} precision' should be symmetric, positive-definite; "
            "covariance_prior is not: give a symmetric positive-definite matrix, or None "
            "for the covariance of the data."
        )
    return arr


def _covariance_prior_diag(value, n_features: int, covariance_type: str) -> np.ndarray:
    arr = as_float_array(value, "covariance_prior")
    _check_shape(arr, (n_features,), f"{covariance_type} covariance_prior", "covariance_prior")
    if np.any(arr <= 0.0):
        raise ValueError(
            f"'{covariance_type} precision' should be positive; covariance_prior has "
            f"{int(np.count_nonzero(arr <= 0.0))} values <= 0."
        )
    return arr


def _covariance_prior_spherical(value, n_features: int, covariance_type: str) -> float:
    arr = as_float_array(value, "covariance_prior")
    if arr.ndim != 0 or not arr > 0.0:
        raise ValueError(
            "A 'spherical' covariance_prior is one positive number (the prior variance); "
            f"got {value!r}."
        )
    return float(arr)


_COVARIANCE_PRIOR = {
    "full": _covariance_prior_full,
    "tied": _covariance_prior_full,
    "diag": _covariance_prior_diag,
    "spherical": _covariance_prior_spherical,
}


def check_priors(estimator, n_features: int) -> Priors:
    """The estimator's priors, checked against the data's ``n_features``.

    Parameters
    ----------
    estimator : BayesianGaussianMixture
        Its ``weight_concentration_prior_type``, ``weight_concentration_prior``,
        ``mean_precision_prior``, ``mean_prior``, ``degrees_of_freedom_prior``,
        ``covariance_prior``, ``covariance_type`` and ``n_components``.
    n_features : int

    Returns
    -------
    Priors
        The data-dependent defaults (``mean``, ``covariance``) left None.

    Raises
    ------
    ValueError
        scikit-learn's messages: a prior of the wrong shape, ``degrees_of_freedom_prior``
        not above ``n_features - 1``, a covariance prior that is not positive definite.
    """
    concentration = estimator.weight_concentration_prior
    if concentration is None:
        concentration = 1.0 / estimator.n_components
    mean = estimator.mean_prior
    if mean is not None:
        mean = as_float_array(mean, "mean_prior")
        _check_shape(mean, (n_features,), "means", "mean_prior")
    dof = estimator.degrees_of_freedom_prior
    if dof is None:
        dof = n_features
    elif not dof > n_features - 1.0:
        raise ValueError(
            "The parameter 'degrees_of_freedom_prior' should be greater than "
            f"{n_features - 1}, but got {dof:.3f}."
        )
    covariance = estimator.covariance_prior
    if covariance is not None:
        check = _COVARIANCE_PRIOR[estimator.covariance_type]
        covariance = check(covariance, n_features, estimator.covariance_type)
    precision = estimator.mean_precision_prior
    return Priors(
        kind=estimator.weight_concentration_prior_type,
        weight_concentration=float(concentration),
        mean_precision=1.0 if precision is None else float(precision),
        mean=mean,
        degrees_of_freedom=float(dof),
        covariance=covariance,
    )


def pooled_moments(stats: SufficientStats) -> tuple[float, np.ndarray, np.ndarray]:
    """Moments of all the rows of a pass, whatever their responsibilities.

    Every row's responsibilities sum to 1, so the components' statistics pooled
    are the rows' own: ``m2 = sum_k M2_k + sum_k n_k (m_k - m)(m_k - m)^T``.

    Parameters
    ----------
    stats : SufficientStats

    Returns
    -------
    weight : float
        Sum of the rows' weights.
    mean : ndarray of shape (D,)
    m2 : ndarray
        Centred second moment: (D, D) from 'full' and 'tied' statistics, its
        diagonal (D,) from 'diag' and 'spherical' ones.
    """
    nk = np.where(stats.nk > 0, stats.nk, 0.0)
    weight = float(nk.sum())
    means = np.where(nk[:, None] > 0, stats.means, 0.0)
    mean = (nk @ means) / weight
    delta = means - mean
    if stats.covariance_type in ("full", "tied"):
        within = stats.m2.sum(axis=0) if stats.covariance_type == "full" else stats.m2
        return weight, mean, within + (delta * nk[:, None]).T @ delta
    return weight, mean, stats.m2.sum(axis=0) + nk @ np.square(delta)


def _covariance_from_moments(weight: float, m2: np.ndarray, covariance_type: str):
    if not weight > 1.0:
        raise ValueError(
            f"The rows' weights sum to {weight:g}; the default covariance_prior (the "
            "covariance of the data, ddof=1) needs more than 1. Pass covariance_prior."
        )
    covariance = m2 / (weight - 1.0)
    if covariance_type in ("full", "tied"):
        return np.atleast_2d(covariance)
    if covariance_type == "spherical":
        return float(covariance.mean())
    return covariance


def complete_priors(priors: Priors, moments: tuple, covariance_type: str) -> Priors:
    """``priors`` with the data's defaults filled in from :func:`pooled_moments`.

    The mean prior defaults to the rows' mean; the covariance prior to their
    covariance (``ddof=1``, as ``numpy.cov``; with sample weights, frequency
    weights: divided by their sum less 1), its diagonal for 'diag' and that
    diagonal's mean for 'spherical', as scikit-learn sets them.
    """
    weight, mean, m2 = moments
    if m2.ndim == 1 and covariance_type in ("full", "tied"):
        raise ValueError("full-covariance priors need 'full' or 'tied' pooled moments")
    fill = {}
    if priors.mean is None:
        fill["mean"] = np.asarray(mean, dtype=np.float64)
    if priors.covariance is None:
        fill["covariance"] = _covariance_from_moments(weight, m2, covariance_type)
    return replace(priors, **fill)


def moments_covariance_type(covariance_type: str) -> str:
    """The statistics whose pooled moments hold a ``covariance_type`` prior: 'full'
    for 'full' and 'tied', 'diag' for 'diag' and 'spherical'."""
    return "full" if covariance_type in ("full", "tied") else "diag"
