"""Covariance algebra per covariance type (numpy/scipy only), and its one shape table.

Shapes follow scikit-learn's conventions::

    covariance_type   covariances / precisions / precisions_cholesky
    'full'            (K, D, D)
    'tied'            (D, D)
    'diag'            (K, D)
    'spherical'       (K,)

``precisions_cholesky`` is scikit-learn's upper-triangular factor ``P`` with
``P @ P.T == inv(covariance)``, so that the Mahalanobis term of a row ``x`` is
``|x @ P - mu @ P|**2``.

Everything that depends on the covariance type's *shape* is declared once, in
:data:`SHAPES`; the algebra dispatches through dicts of functions, never
if-chains.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from ..errors import SingularCovarianceError

#: scikit-learn's message, word for word (it says what to change).
SINGULAR_COVARIANCE_MESSAGE = (
    "Fitting the mixture model failed because some components have ill-defined "
    "empirical covariance (for instance caused by singleton or collapsed samples). "
    "Try to decrease the number of components, increase reg_covar, or scale the "
    "input data."
)


# --------------------------------------------------------------------------- #
# the shape table
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class CovarianceShape:
    """What one covariance type's arrays look like, as functions of (K, D).

    Attributes
    ----------
    parameters : callable
        Shape of ``covariances_``, ``precisions_`` and ``precisions_cholesky_``.
    second_moments : callable
        Shape of the centred second moments of the sufficient statistics (the
        diagonals for 'diag' and 'spherical', one matrix for 'tied').
    free_parameters : callable
        Free covariance parameters (for ``bic`` and the online warm-up).
    block_width : callable
        Columns of the widest float64 temporary per row of a row block.
    """

    parameters: Callable[[int, int], tuple]
    second_moments: Callable[[int, int], tuple]
    free_parameters: Callable[[int, int], float]
    block_width: Callable[[int, int], int]


SHAPES: dict[str, CovarianceShape] = {
    "full": CovarianceShape(
        parameters=lambda k, d: (k, d, d),
        second_moments=lambda k, d: (k, d, d),
        free_parameters=lambda k, d: k * d * (d + 1) / 2.0,
        block_width=lambda k, d: k * (d + 1),
    ),
    "tied": CovarianceShape(
        parameters=lambda k, d: (d, d),
        second_moments=lambda k, d: (d, d),
        free_parameters=lambda k, d: d * (d + 1) / 2.0,
        block_width=lambda k, d: k * (d + 1),
    ),
    "diag": CovarianceShape(
        parameters=lambda k, d: (k, d),
        second_moments=lambda k, d: (k, d),
        free_parameters=lambda k, d: k * d,
        block_width=lambda k, d: 2 * d + 2 * k,
    ),
    "spherical": CovarianceShape(
        parameters=lambda k, d: (k,),
        second_moments=lambda k, d: (k, d),
        free_parameters=lambda k, d: k,
        block_width=lambda k, d: 2 * d + 2 * k,
    ),
}


def n_parameters(covariance_type: str, n_components: int, n_features: int) -> float:
    """Free parameters of a mixture: covariances, means and K - 1 weights."""
    k, d = n_components, n_features
    return SHAPES[covariance_type].free_parameters(k, d) + k * d + k - 1


def information_criteria(
    log_likelihood: float, n_rows: int, n_parameters: float
) -> tuple[float, float]:
    """BIC and AIC of a model whose log-likelihood over ``n_rows`` scored rows is
    ``log_likelihood`` (lower is better); NaN for no rows."""
    if not n_rows:
        return math.nan, math.nan
    return (
        -2 * log_likelihood + n_parameters * math.log(n_rows),
        -2 * log_likelihood + 2 * n_parameters,
    )


# --------------------------------------------------------------------------- #
# covariance -> precision Cholesky factor
# --------------------------------------------------------------------------- #
def _upper_precision_factor(covariance: np.ndarray) -> np.ndarray:
    """Upper-triangular ``P`` with ``P @ P.T == inv(covariance)``; (D, D) -> (D, D)."""
    try:
        cov_chol = linalg.cholesky(covariance, lower=True)
    except linalg.LinAlgError as exc:
        raise SingularCovarianceError(SINGULAR_COVARIANCE_MESSAGE) from exc
    eye = np.eye(covariance.shape[0], dtype=covariance.dtype)
    return linalg.solve_triangular(cov_chol, eye, lower=True).T


def _prec_chol_full(covariances: np.ndarray) -> np.ndarray:
    return np.stack([_upper_precision_factor(c) for c in covariances])


def _prec_chol_vector(covariances: np.ndarray) -> np.ndarray:
    if not np.all(covariances > 0.0):
        raise SingularCovarianceError(SINGULAR_COVARIANCE_MESSAGE)
    return 1.0 / np.sqrt(covariances)


_PREC_CHOL_FROM_COV: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "full": _prec_chol_full,
    "tied": _upper_precision_factor,
    "diag": _prec_chol_vector,
    "spherical": _prec_chol_vector,
}


def precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """Precision Cholesky factors from covariances.

    Parameters
    ----------
    covariances : ndarray
        Shape (K, D, D), (D, D), (K, D) or (K,) for full, tied, diag, spherical.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    ndarray
        Same shape as ``covariances``.

    Raises
    ------
    SingularCovarianceError
        If a covariance is not positive definite.
    """
    return _PREC_CHOL_FROM_COV[covariance_type](np.asarray(covariances, dtype=np.float64))


# --------------------------------------------------------------------------- #
# precision -> precision Cholesky factor (user-supplied precisions_init)
# --------------------------------------------------------------------------- #
def _upper_factor_of_precision(precision: np.ndarray) -> np.ndarray:
    """Upper-triangular ``U`` with ``U @ U.T == precision``; (D, D) -> (D, D)."""
    flipped = precision[::-1, ::-1]
    return linalg.cholesky(flipped, lower=True)[::-1, ::-1].copy()


_PREC_CHOL_FROM_PREC: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "full": lambda p: np.stack([_upper_factor_of_precision(m) for m in p]),
    "tied": _upper_factor_of_precision,
    "diag": np.sqrt,
    "spherical": np.sqrt,
}


def precision_cholesky_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Upper-triangular precision factors ``U`` with ``U @ U.T == precision``.

    Parameters
    ----------
    precisions : ndarray
        Shape as for :func:`precision_cholesky`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    ndarray
        Same shape as ``precisions``.
    """
    return _PREC_CHOL_FROM_PREC[covariance_type](np.asarray(precisions, dtype=np.float64))


# --------------------------------------------------------------------------- #
# precision Cholesky factor -> precisions, covariances, log-determinant
# --------------------------------------------------------------------------- #
_PRECISIONS_FROM_CHOL: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "full": lambda p: p @ np.swapaxes(p, -1, -2),
    "tied": lambda p: p @ p.T,
    "diag": np.square,
    "spherical": np.square,
}


def precisions_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """Precisions ``P @ P.T`` (or ``P**2``) from their Cholesky factors; same shape."""
    return _PRECISIONS_FROM_CHOL[covariance_type](prec_chol)


def _covariance_from_upper_factor(factor: np.ndarray) -> np.ndarray:
    inverse = linalg.solve_triangular(factor, np.eye(factor.shape[0]), lower=False)
    return inverse.T @ inverse


_COVARIANCES_FROM_CHOL: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "full": lambda p: np.stack([_covariance_from_upper_factor(m) for m in p]),
    "tied": _covariance_from_upper_factor,
    "diag": lambda p: 1.0 / np.square(p),
    "spherical": lambda p: 1.0 / np.square(p),
}


def covariances_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """Covariances ``inv(P @ P.T)`` from precision Cholesky factors; same shape."""
    return _COVARIANCES_FROM_CHOL[covariance_type](prec_chol)


_LOG_DET: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "full": lambda p, d: np.log(np.diagonal(p, axis1=1, axis2=2)).sum(axis=1),
    "tied": lambda p, d: np.log(np.diagonal(p)).sum(),
    "diag": lambda p, d: np.log(p).sum(axis=1),
    "spherical": lambda p, d: d * np.log(p),
}


def log_det_cholesky(prec_chol: np.ndarray, covariance_type: str, n_features: int):
    """Log-determinant of each precision Cholesky factor.

    Returns
    -------
    ndarray of shape (K,), or a scalar for 'tied'
        ``log det P`` = half the log-determinant of the precision.
    """
    return _LOG_DET[covariance_type](prec_chol, n_features)
