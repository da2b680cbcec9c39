"""``daskgmm.plotting.plot_weights``: the drawn bars are the model's weights, the
emptied components grey, the threshold drawn (Agg backend, no display)."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from matplotlib.colors import to_rgba  # noqa: E402

from daskgmm import BayesianGaussianMixture, GaussianMixture  # noqa: E402
from daskgmm.estimators.bayesian_mixture import EFFECTIVE_WEIGHT  # noqa: E402
from daskgmm.plotting import EMPTIED_COLOUR, plot_fit, plot_weights  # noqa: E402


@pytest.fixture(scope="module")
def three_clusters() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    return np.concatenate([c + rng.normal(size=(300, 2)) for c in centres])


@pytest.fixture(scope="module")
def model(three_clusters) -> BayesianGaussianMixture:
    return BayesianGaussianMixture(
        7, weight_concentration_prior=0.01, random_state=0, max_iter=500
    ).fit(three_clusters)


def test_bars_are_the_weights_and_the_emptied_components_are_grey(model):
    weights = model.weights_
    effective = weights >= EFFECTIVE_WEIGHT
    assert effective.sum() == model.n_effective_components_ == 3  # the prior emptied 4
    ax = plot_weights(model)
    bars = ax.patches
    assert len(bars) == model.n_components
    np.testing.assert_array_equal([bar.get_height() for bar in bars], weights)
    np.testing.assert_array_equal([bar.get_x() + bar.get_width() / 2 for bar in bars], range(7))
    for k, bar in enumerate(bars):  # component order; plot_fit's colours for effective ones
        want = f"C{k % 10}" if effective[k] else EMPTIED_COLOUR
        assert bar.get_facecolor() == to_rgba(want), k
    lines = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert [tuple(line.get_ydata()) for line in lines] == [(EFFECTIVE_WEIGHT, EFFECTIVE_WEIGHT)]
    assert ax.get_yscale() == "log"
    low, high = ax.get_ylim()
    assert low < weights[weights > 0].min() and high > weights.max()  # every bar visible
    assert ax.get_title() == "weights: 3 of 7 components effective (grey: emptied)"
    labels = [text.get_text() for text in ax.texts if text.get_text() in _labels(weights)]
    assert labels == _labels(weights)


def _labels(weights) -> list[str]:
    return [f"{w:.2g}" for w in weights]


def test_draws_on_a_given_axes_and_saves(model, tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    assert plot_weights(model, ax=ax) is ax
    assert len(ax.patches) == 7
    own = plot_weights(model)  # its own figure
    own.figure.savefig(tmp_path / "w.png")
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


def test_a_gaussian_mixture_has_no_emptied_components(three_clusters):
    gm = GaussianMixture(3, random_state=0).fit(three_clusters)
    ax = plot_weights(gm)
    np.testing.assert_array_equal([bar.get_height() for bar in ax.patches], gm.weights_)
    assert [bar.get_facecolor() for bar in ax.patches] == [to_rgba(f"C{k}") for k in range(3)]


def test_plot_fit_of_a_bayesian_model_adds_the_weights_panel(
    model, three_clusters, tmp_path, monkeypatch
):
    import daskgmm.plotting as plotting

    drawn = []

    def recording(model, ax=None):
        drawn.append(ax)
        return plot_weights(model, ax)

    monkeypatch.setattr(plotting, "plot_weights", recording)
    plot_fit(model, three_clusters, tmp_path / "fit.png")
    png = (tmp_path / "fit.png").read_bytes()
    assert int.from_bytes(png[16:20], "big") == 17 * 110  # three panels, 17 inches at 110 dpi
    (ax,) = drawn
    convergence, plane, weights = ax.figure.axes
    assert weights is ax
    np.testing.assert_array_equal([bar.get_height() for bar in ax.patches], model.weights_)
    # only the 3 effective components get their 3 ellipses and a mean marker
    assert len(plane.lines) == 3 * (3 + 1)
    assert convergence.get_ylabel() == "evidence lower bound (total)"
    np.testing.assert_array_equal(convergence.lines[0].get_ydata(), model.lower_bounds_)
