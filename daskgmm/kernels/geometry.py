"""The geometry of a fitted mixture that the plots draw: covariances as full matrices,
the mixture's overall covariance, its principal plane, and the ellipses of components.

Numpy only.  The public names are importable from :mod:`daskgmm.plotting`, where the
API reference lists them.
"""

from __future__ import annotations

import math

import numpy as np

from .._typing import Mixture


def component_covariances(model: Mixture) -> np.ndarray:
    """Full (K, D, D) covariance matrices of a fitted model, whatever its covariance type.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (200, 3)), rng.normal(5, 1, (200, 3))])
    >>> gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    >>> from daskgmm.plotting import component_covariances
    >>> covariances = component_covariances(gm)       # 'diag' (2, 3) made (2, 3, 3)
    >>> covariances.shape, bool(np.allclose(covariances[0], np.diag(gm.covariances_[0])))
    ((2, 3, 3), True)
    """
    k, d = model.means_.shape
    cov = np.asarray(model.covariances_, dtype=np.float64)
    expand = {
        "full": lambda: cov,
        "tied": lambda: np.broadcast_to(cov, (k, d, d)),
        "diag": lambda: cov[:, :, None] * np.eye(d),
        "spherical": lambda: cov[:, None, None] * np.eye(d),
    }
    return np.array(expand[model.covariance_type]())


def overall_covariance(model: Mixture) -> np.ndarray:
    """Covariance (D, D) of the fitted mixture as a whole.

    ``sum_k w_k (S_k + (m_k - m)(m_k - m)^T)`` with ``m = sum_k w_k m_k``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (200, 3)), rng.normal(5, 1, (200, 3))])
    >>> gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    >>> from daskgmm.plotting import overall_covariance
    >>> overall_covariance(gm).shape
    (3, 3)
    >>> bool(np.allclose(overall_covariance(gm), np.cov(X.T, bias=True), atol=0.1))
    True
    """
    spread = model.means_ - model.weights_ @ model.means_
    total = np.einsum("k,kij->ij", model.weights_, component_covariances(model))
    return total + np.einsum("k,ki,kj->ij", model.weights_, spread, spread)


def principal_plane(
    model: Mixture,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, the two leading principal directions and their variances of the mixture.

    The directions are the leading eigenvectors of :func:`overall_covariance`.

    Returns
    -------
    centre : ndarray of shape (D,)
    directions : ndarray of shape (D, 2)
        Orthonormal columns (a single column when D = 1).
    variances : ndarray of shape (2,) or (1,)

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (200, 3)), rng.normal(5, 1, (200, 3))])
    >>> gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    >>> from daskgmm.plotting import principal_plane
    >>> centre, directions, variances = principal_plane(gm)
    >>> centre.shape, directions.shape, variances.shape
    ((3,), (3, 2), (2,))
    >>> bool(variances[0] >= variances[1])
    True
    """
    centre = model.weights_ @ model.means_
    values, vectors = np.linalg.eigh(overall_covariance(model))
    order = np.argsort(values)[::-1][: min(2, len(values))]
    return centre, vectors[:, order], values[order]


def ellipse(mean2: np.ndarray, cov2: np.ndarray, radius: float, n_points: int = 100) -> np.ndarray:
    """Points (n_points, 2) of the ellipse ``(x - mean)^T cov^-1 (x - mean) = radius^2``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm.plotting import ellipse
    >>> points = ellipse(np.zeros(2), np.diag([4.0, 1.0]), radius=1, n_points=5)
    >>> points.shape
    (5, 2)
    >>> np.abs(points).max(axis=0).round(6)
    array([2., 1.])
    """
    values, vectors = np.linalg.eigh(cov2)
    angles = np.linspace(0.0, 2.0 * math.pi, n_points)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return mean2 + radius * (circle * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
