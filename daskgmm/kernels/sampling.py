"""Samples drawn from a fitted mixture, as scikit-learn draws them (numpy only)."""

from __future__ import annotations

import numpy as np


def _draw_full(rng, means, covariances, counts) -> list:
    return [
        rng.multivariate_normal(mean, cov, int(c))
        for mean, cov, c in zip(means, covariances, counts, strict=True)
    ]


def _draw_tied(rng, means, covariance, counts) -> list:
    return [
        rng.multivariate_normal(mean, covariance, int(c))
        for mean, c in zip(means, counts, strict=True)
    ]


def _draw_axis_aligned(rng, means, covariances, counts) -> list:
    """'diag' (variances (K, D)) and 'spherical' (one variance per component, (K,))."""
    n_features = means.shape[1]
    return [
        mean + rng.standard_normal(size=(c, n_features)) * np.sqrt(cov)
        for mean, cov, c in zip(means, covariances, counts, strict=True)
    ]


#: covariance type -> draw(rng, means_, covariances_, counts) -> list of (c_k, D) arrays,
#: as scikit-learn draws them
_DRAW = {
    "full": _draw_full,
    "tied": _draw_tied,
    "diag": _draw_axis_aligned,
    "spherical": _draw_axis_aligned,
}


def draw_components(covariance_type: str, rng, means, covariances, counts) -> list:
    """Samples of each component, as ``GaussianMixture.sample`` draws them.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    rng : numpy.random.RandomState
    means : ndarray of shape (K, D)
    covariances : ndarray
        ``covariances_`` of the model.
    counts : ndarray of int, shape (K,)
        Samples to draw from each component.

    Returns
    -------
    list of ndarray
        K arrays of shape (counts[k], D).
    """
    return _DRAW[covariance_type](rng, means, covariances, counts)
