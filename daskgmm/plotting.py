"""Pictures of a fit: the convergence curve, the components over the data, BIC/AIC
against K, the weights of a Bayesian mixture.

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
from typing import TYPE_CHECKING

import numpy as np

from ._typing import ArrayLike, PathLike
from .errors import PlottingUnavailable
from .kernels.geometry import (
    component_covariances,
    ellipse,
    overall_covariance,
    principal_plane,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .estimators.base import BaseGaussianMixture

logger = logging.getLogger(__name__)

#: File name endings the plots can be written as.
FORMATS = (".png", ".svg", ".pdf")
#: Mahalanobis radii of the ellipses drawn around every component.
SIGMAS = (1, 2, 3)
INSTALL_HINT = "pip install 'daskgmm[plot]'"
#: Colour of the bars of the components a Bayesian mixture emptied.
EMPTIED_COLOUR = "0.7"


def available() -> bool:
    """Whether matplotlib can be imported (without importing it).

    Examples
    --------
    >>> from daskgmm import plotting
    >>> plotting.available()            # matplotlib installed (daskgmm[plot])
    True
    """
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


def _is_bayesian(model) -> bool:
    return hasattr(model, "weight_concentration_")


def _convergence(model) -> tuple[list, str, str]:
    """(values, x label, y label) of the model's convergence curve."""
    if getattr(model, "lower_bounds_", None):
        if _is_bayesian(model):
            step = "mini-batch" if hasattr(model, "n_batches_seen_") else "iteration"
            return list(model.lower_bounds_), step, "evidence lower bound (total)"
        return list(model.lower_bounds_), "EM iteration", "mean log-likelihood per sample"
    history = getattr(model, "log_likelihood_history_", None)
    if history:
        return list(history), "mini-batch", "mini-batch mean log-likelihood (before update)"
    return [], "iteration", "mean log-likelihood per sample"


def plot_fit(
    model: BaseGaussianMixture, X_sample: ArrayLike, path: PathLike, title: str | None = None
) -> str:
    """Write the convergence curve and the components over a sample of the data.

    Left: the mean log-likelihood per EM iteration (per mini-batch for an online
    fit).  Right: the sample projected on the two leading principal directions of
    the fitted mixture's overall covariance, coloured by predicted component, with
    each component's mean and its 1-, 2- and 3-sigma ellipses (the component
    covariance projected on that plane).  One-feature models get a histogram with
    the weighted component densities instead.  A Bayesian mixture gets a third
    panel, its weights (:func:`plot_weights`), and only its effective components
    are drawn in the second.

    Parameters
    ----------
    model : fitted GaussianMixture, OnlineGaussianMixture or BayesianGaussianMixture
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

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import GaussianMixture
    >>> from daskgmm.plotting import plot_fit
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> plot_fit(gm, X, "fit.png")
    'fit.png'
    """
    X = np.asarray(X_sample, dtype=np.float64)
    X = X[np.isfinite(X).all(axis=1)]
    bayesian = _is_bayesian(model)
    fig = _figure(17.0 if bayesian else 12.0, 5.0)
    axes = fig.subplots(1, 3 if bayesian else 2, width_ratios=(1, 1.3, 1)[: 3 if bayesian else 2])
    left, right = axes[0], axes[1]
    if bayesian:
        plot_weights(model, axes[2])
    values, xlabel, ylabel = _convergence(model)
    if values:
        left.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) < 40 else "")
    left.set(xlabel=xlabel, ylabel=ylabel, title="convergence")
    left.xaxis.set_major_locator(_integer_ticks())
    left.grid(alpha=0.3)
    labels = model.predict(X) if len(X) else np.zeros(0, dtype=int)
    centre, directions, variances = principal_plane(model)
    colours = [f"C{k % 10}" for k in range(model.n_components)]
    if bayesian:  # the emptied components: no ellipses, no curves
        emptied = np.asarray(model.weights_) < _threshold()
        colours = [None if emptied[k] else c for k, c in enumerate(colours)]
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
            colour = colour or EMPTIED_COLOUR
            ax.scatter(*projected[picked].T, s=3, alpha=0.35, color=colour, linewidths=0)
    covariances = component_covariances(model)
    for k, colour in enumerate(colours):
        if colour is None:
            continue
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
        if colour is None:
            continue
        density = np.exp(-0.5 * ((grid - means[k]) / sd[k]) ** 2) / (sd[k] * math.sqrt(2 * math.pi))
        ax.plot(grid, model.weights_[k] * density, color=colour, label=f"component {k}")
    ax.set(xlabel="feature 0", ylabel="density", title=f"{len(x):,} sampled rows")
    ax.legend(fontsize=8)


def _threshold() -> float:
    """The weight from which a Bayesian mixture's component counts as effective."""
    from .estimators.bayesian_mixture import EFFECTIVE_WEIGHT

    return EFFECTIVE_WEIGHT


def plot_weights(model: BaseGaussianMixture, ax: Axes | None = None) -> Axes:
    """Draw a mixture's weights as bars, in component order, on a log scale.

    The components whose weight reaches the threshold of
    ``n_effective_components_`` (``EFFECTIVE_WEIGHT`` = 1e-2 of
    :mod:`daskgmm.estimators.bayesian_mixture`, drawn as a dashed line) have the
    colours :func:`plot_fit` gives them (``C0``, ``C1``, ...); the components the
    prior emptied are grey (:data:`EMPTIED_COLOUR`).  Each bar is labelled with
    its weight.

    Parameters
    ----------
    model : fitted mixture
        A ``BayesianGaussianMixture`` (any fitted mixture with ``weights_`` works).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure's (``ax.figure``; save it with
        ``ax.figure.savefig(path)``).

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on: one bar per component (``ax.patches``), height its weight.

    Raises
    ------
    PlottingUnavailable
        Without matplotlib.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import BayesianGaussianMixture
    >>> from daskgmm.plotting import plot_weights
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (500, 2)), rng.normal(5, 1, (500, 2))])
    >>> bgm = BayesianGaussianMixture(n_components=5, random_state=0).fit(X)
    >>> ax = plot_weights(bgm)
    >>> len(ax.patches)                           # one bar per component
    5
    >>> ax.figure.savefig("weights.png")
    """
    threshold = _threshold()
    weights = np.asarray(model.weights_, dtype=np.float64)
    if ax is None:
        ax = _figure(max(5.0, 0.5 * len(weights) + 2.0), 4.0).subplots()
    effective = weights >= threshold
    colours = [f"C{k % 10}" if on else EMPTIED_COLOUR for k, on in enumerate(effective)]
    positions = np.arange(len(weights))
    bars = ax.bar(positions, weights, color=colours, edgecolor="black", linewidth=0.5)
    ax.bar_label(bars, labels=[f"{w:.2g}" for w in weights], fontsize=7, padding=2)
    floor = min(float(weights[weights > 0].min(initial=threshold)), threshold) / 10.0
    ax.set_yscale("log")
    ax.set_ylim(floor, 1.5)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1.0)
    ax.annotate(
        f"threshold {threshold:g}",
        (1.0, threshold),
        xycoords=("axes fraction", "data"),
        xytext=(-4, 3),
        textcoords="offset points",
        ha="right",
        fontsize=8,
    )
    ax.set_xticks(positions)
    ax.set(
        xlabel="component",
        ylabel="weight (log scale)",
        title=f"weights: {int(effective.sum())} of {len(weights)} components effective "
        f"(grey: emptied)",
    )
    ax.grid(alpha=0.3, axis="y")
    return ax


def _restart_spread(table: Sequence[dict]) -> list:
    """Each K's restarts' BIC above its lowest (empty lists where unknown)."""
    spread = []
    for row in table:
        bics = np.asarray(row.get("restarts_bic") or [row["bic"]], dtype=np.float64)
        spread.append(bics - np.nanmin(bics) if np.isfinite(bics).any() else bics[:0])
    return spread


def _draw_restarts(ax, ks: np.ndarray, spread: list) -> None:
    """Every restart's BIC above the best restart's of its K, as points."""
    for k, above in zip(ks, spread, strict=True):
        ax.plot(np.full(above.shape, k), above, "o", color="C0", alpha=0.5, markersize=5)
    ax.set(ylabel="BIC above the\nbest restart")
    ax.grid(alpha=0.3)


def plot_selection(table: Sequence[dict], path: PathLike, criterion: str = "bic") -> str:
    """Write BIC and AIC against the number of components, the best K marked.

    Parameters
    ----------
    table : sequence of dict
        One per K with keys ``k``, ``bic`` and ``aic`` (what ``daskgmm select``
        writes); with ``restarts_bic`` (each restart's BIC, ``--n-init``) a
        second panel shows how far each restart's BIC lies above its K's best.
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

    Examples
    --------
    >>> from daskgmm.plotting import plot_selection
    >>> table = [{"k": k, "bic": b, "aic": a} for k, b, a in [(1, 30.0, 28.0), (2, 20.0, 17.0),
    ...                                                         (3, 22.0, 16.0)]]
    >>> plot_selection(table, "bic.png")
    'bic.png'
    """
    if criterion not in ("bic", "aic"):
        raise ValueError(f"criterion must be 'bic' or 'aic', got {criterion!r}.")
    ks = np.array([row["k"] for row in table])
    spread = _restart_spread(table)
    restarts = any(above.size > 1 for above in spread)
    fig = _figure(7.0, 6.5 if restarts else 4.5)
    if restarts:
        ax, below = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
        _draw_restarts(below, ks, spread)
        below.set(xlabel="number of components K")
    else:
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
    ax.set(ylabel="criterion (lower is better)")
    if not restarts:
        ax.set(xlabel="number of components K")
    ax.set_xticks(ks)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(os.fspath(path), dpi=110)
    logger.info("wrote %s", path)
    return os.fspath(path)
