"""Pictures of a fit: the convergence curve, the components over the data, BIC/AIC against K.

matplotlib is an optional dependency (``pip install 'daskgmm[plot]'``), imported
only inside the functions that draw.  Figures are built with
``matplotlib.figure.Figure`` and saved directly, so no pyplot state and no
global backend change is involved (safe in notebooks and servers alike).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from collections.abc import Sequence

import numpy as np

from .errors import PlottingUnavailable

logger = logging.getLogger(__name__)

#: File name endings the plots can be written as.
FORMATS = (".png", ".svg", ".pdf")
#: Mahalanobis radii of the ellipses drawn around every component.
SIGMAS = (1, 2, 3)
INSTALL_HINT = "pip install 'daskgmm[plot]'"


def available() -> bool:
    """Whether matplotlib can be imported (without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlottingUnavailable(f"plotting needs matplotlib: {INSTALL_HINT}") from exc
    return Figure(figsize=(width, height), layout="constrained")


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def component_covariances(model) -> np.ndarray:
    """Full (K, D, D) covariance matrices of a fitted model, whatever its covariance type."""
    k, d = model.means_.shape
    cov = np.asarray(model.covariances_, dtype=np.float64)
    expand = {
        "full": lambda: cov,
        "tied": lambda: np.broadcast_to(cov, (k, d, d)),
        "diag": lambda: cov[:, :, None] * np.eye(d),
        "spherical": lambda: cov[:, None, None] * np.eye(d),
    }
    return np.array(expand[model.covariance_type]())


def overall_covariance(model) -> np.ndarray:
    """Covariance (D, D) of the fitted mixture as a whole.

    ``sum_k w_k (S_k + (m_k - m)(m_k - m)^T)`` with ``m = sum_k w_k m_k``.
    """
    spread = model.means_ - model.weights_ @ model.means_
    total = np.einsum("k,kij->ij", model.weights_, component_covariances(model))
    return total + np.einsum("k,ki,kj->ij", model.weights_, spread, spread)


def principal_plane(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, the two leading principal directions and their variances of the mixture.

    The directions are the leading eigenvectors of :func:`overall_covariance`.

    Returns
    -------
    centre : ndarray of shape (D,)
    directions : ndarray of shape (D, 2)
        Orthonormal columns (a single column when D = 1).
    variances : ndarray of shape (2,) or (1,)
    """
    centre = model.weights_ @ model.means_
    values, vectors = np.linalg.eigh(overall_covariance(model))
    order = np.argsort(values)[::-1][: min(2, len(values))]
    return centre, vectors[:, order], values[order]


def ellipse(mean2: np.ndarray, cov2: np.ndarray, radius: float, n_points: int = 100):
    """Points (n_points, 2) of the ellipse ``(x - mean)^T cov^-1 (x - mean) = radius^2``."""
    values, vectors = np.linalg.eigh(cov2)
    angles = np.linspace(0.0, 2.0 * math.pi, n_points)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return mean2 + radius * (circle * np.sqrt(np.maximum(values, 0.0))) @ vectors.T


def _convergence(model) -> tuple[list, str, str]:
    """(values, x label, y label) of the model's convergence curve."""
    if getattr(model, "lower_bounds_", None):
        return list(model.lower_bounds_), "EM iteration", "mean log-likelihood per sample"
    history = getattr(model, "log_likelihood_history_", None)
    if history:
        return list(history), "mini-batch", "mini-batch mean log-likelihood (before update)"
    return [], "iteration", "mean log-likelihood per sample"


def plot_fit(model, X_sample, path, title: str | None = None) -> str:
    """Write the convergence curve and the components over a sample of the data.

    Left: the mean log-likelihood per EM iteration (per mini-batch for an online
    fit).  Right: the sample projected on the two leading principal directions of
    the fitted mixture's overall covariance, coloured by predicted component, with
    each component's mean and its 1-, 2- and 3-sigma ellipses (the component
    covariance projected on that plane).  One-feature models get a histogram with
    the weighted component densities instead.

    Parameters
    ----------
    model : fitted GaussianMixture or OnlineGaussianMixture
    X_sample : array-like of shape (n_rows, n_features)
        A few thousand rows; rows with NaN or inf are left out.
    path : str or os.PathLike
        ``.png``, ``.svg`` or ``.pdf``.
    title : str, optional

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    PlottingUnavailable
        Without matplotlib.
    """
    X = np.asarray(X_sample, dtype=np.float64)
    X = X[np.isfinite(X).all(axis=1)]
    fig = _figure(12.0, 5.0)
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
    values, xlabel, ylabel = _convergence(model)
    if values:
        left.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) < 40 else "")
    left.set(xlabel=xlabel, ylabel=ylabel, title="convergence")
    left.xaxis.set_major_locator(_integer_ticks())
    left.grid(alpha=0.3)
    labels = model.predict(X) if len(X) else np.zeros(0, dtype=int)
    centre, directions, variances = principal_plane(model)
    colours = [f"C{k % 10}" for k in range(model.n_components)]
    if directions.shape[1] == 1:
        _draw_one_feature(right, model, X[:, 0] if len(X) else X.ravel(), colours)
    else:
        _draw_plane(right, model, X, labels, centre, directions, variances, colours)
    fig.suptitle(title or _default_title(model))
    fig.savefig(os.fspath(path), dpi=110)
    logger.info("wrote %s", path)
    return os.fspath(path)


def _default_title(model) -> str:
    k, d = model.means_.shape
    return f"{type(model).__name__}: {k} components ({model.covariance_type}), {d} features"


def _draw_plane(ax, model, X, labels, centre, directions, variances, colours) -> None:
    projected = (X - centre) @ directions
    for k, colour in enumerate(colours):
        picked = labels == k
        if picked.any():
            ax.scatter(*projected[picked].T, s=3, alpha=0.35, color=colour, linewidths=0)
    covariances = component_covariances(model)
    for k, colour in enumerate(colours):
        mean2 = (model.means_[k] - centre) @ directions
        cov2 = directions.T @ covariances[k] @ directions
        for radius, style in zip(SIGMAS, ("-", "--", ":"), strict=True):
            ax.plot(*ellipse(mean2, cov2, radius).T, style, color=colour, linewidth=1.2)
        ax.plot(*mean2, "x", color="black", markersize=7)
        ax.annotate(str(k), mean2, textcoords="offset points", xytext=(4, 4), fontsize=9)
    share = variances / max(float(np.trace(overall_covariance(model))), np.finfo(float).tiny)
    ax.set(
        xlabel=f"principal direction 1 ({share[0]:.0%} of the variance)",
        ylabel=f"principal direction 2 ({share[1]:.0%})",
        title=f"{len(X):,} sampled rows; components with 1, 2, 3 sigma ellipses",
    )
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)


def _draw_one_feature(ax, model, x, colours) -> None:
    if len(x):
        ax.hist(x, bins=60, density=True, color="0.8")
    sd = np.sqrt(component_covariances(model)[:, 0, 0])
    means = model.means_[:, 0]
    grid = np.linspace((means - 4 * sd).min(), (means + 4 * sd).max(), 400)
    for k, colour in enumerate(colours):
        density = np.exp(-0.5 * ((grid - means[k]) / sd[k]) ** 2) / (sd[k] * math.sqrt(2 * math.pi))
        ax.plot(grid, model.weights_[k] * density, color=colour, label=f"component {k}")
    ax.set(xlabel="feature 0", ylabel="density", title=f"{len(x):,} sampled rows")
    ax.legend(fontsize=8)


def plot_selection(table: Sequence[dict], path, criterion: str = "bic") -> str:
    """Write BIC and AIC against the number of components, the best K marked.

    Parameters
    ----------
    table : sequence of dict
        One per K with keys ``k``, ``bic`` and ``aic`` (what ``daskgmm select``
        writes).
    path : str or os.PathLike
    criterion : {'bic', 'aic'}
        The criterion whose minimum is marked.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    PlottingUnavailable
        Without matplotlib.
    """
    if criterion not in ("bic", "aic"):
        raise ValueError(f"criterion must be 'bic' or 'aic', got {criterion!r}.")
    ks = np.array([row["k"] for row in table])
    fig = _figure(7.0, 4.5)
    ax = fig.subplots()
    for name, marker in (("bic", "o"), ("aic", "s")):
        values = np.array([row[name] for row in table], dtype=np.float64)
        ax.plot(ks, values, marker=marker, label=name.upper())
        if name == criterion and np.isfinite(values).any():
            best = int(np.nanargmin(values))
            ax.plot(
                ks[best],
                values[best],
                "*",
                markersize=16,
                color="black",
                label=f"best K = {ks[best]} by {name.upper()}",
            )
    ax.set(xlabel="number of components K", ylabel="criterion (lower is better)")
    ax.set_xticks(ks)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(os.fspath(path), dpi=110)
    logger.info("wrote %s", path)
    return os.fspath(path)
