"""feature_names_in_: DataFrame column names recorded and checked as scikit-learn does."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import daskgmm
from daskgmm import GaussianMixture, OnlineGaussianMixture
from daskgmm.datasets import write_table

COLUMNS = ["a", "b", "c"]


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 4])
    return pd.DataFrame(X, columns=COLUMNS)


def _messages(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_names_recorded_and_checked_like_sklearn(frame):
    ours = GaussianMixture(2, random_state=0).fit(frame)
    theirs = SkGaussianMixture(2, random_state=0).fit(frame)
    assert ours.feature_names_in_.dtype == object
    np.testing.assert_array_equal(ours.feature_names_in_, theirs.feature_names_in_)

    # same columns: no warning, the same answers as for the bare array
    assert _messages(lambda: ours.predict(frame)) == []
    with pytest.warns(UserWarning, match="was fitted with feature names"):
        bare = ours.predict(frame.to_numpy())
    np.testing.assert_array_equal(ours.predict(frame), bare)
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        assert _messages(lambda m=method: getattr(ours, m)(frame)) == [], method
        # no names: scikit-learn's warning, word for word, once per call
        want = _messages(lambda m=method: getattr(theirs, m)(frame.to_numpy()))
        got = _messages(lambda m=method: getattr(ours, m)(frame.to_numpy()))
        assert got == want == [want[0]], method
    assert "was fitted with feature names" in want[0]

    # other names or another order: scikit-learn's error
    for other in (frame[["b", "a", "c"]], frame.rename(columns={"c": "z"})):
        with pytest.raises(ValueError, match="feature names should match") as mine:
            ours.predict(other)
        with pytest.raises(ValueError, match="feature names should match") as ref:
            theirs.predict(other)
        assert str(mine.value) == str(ref.value)


def test_fit_without_names_warns_for_a_frame_and_refit_forgets_names(frame):
    model = GaussianMixture(2, random_state=0).fit(frame.to_numpy())
    assert not hasattr(model, "feature_names_in_")
    ref = SkGaussianMixture(2, random_state=0).fit(frame.to_numpy())
    assert _messages(lambda: model.predict(frame)) == _messages(lambda: ref.predict(frame))
    assert "fitted without feature names" in _messages(lambda: model.predict(frame))[0]
    model.fit(frame)
    assert list(model.feature_names_in_) == COLUMNS
    model.fit(frame.to_numpy())
    assert not hasattr(model, "feature_names_in_")


def test_mixed_name_types_are_refused_before_fitting(frame):
    mixed = frame.set_axis(["a", 1, "c"], axis=1)
    model = GaussianMixture(2, random_state=0)
    with pytest.raises(TypeError, match="all input features have string names"):
        model.fit(mixed)
    assert not hasattr(model, "means_")
    numbered = frame.set_axis([0, 1, 2], axis=1)  # non-string names: no names, as sklearn
    assert not hasattr(GaussianMixture(2, random_state=0).fit(numbered), "feature_names_in_")


def test_names_survive_save_and_load(frame, tmp_path):
    model = GaussianMixture(2, random_state=0).fit(frame)
    loaded = daskgmm.load(model.save(tmp_path / "m"))
    assert loaded.feature_names_in_.dtype == object
    np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)
    assert _messages(lambda: loaded.predict(frame)) == []
    with pytest.raises(ValueError, match="feature names should match"):
        loaded.predict(frame[["c", "b", "a"]])


def test_online_names_from_the_first_block_on(frame):
    model = OnlineGaussianMixture(2, batch_size=100, random_state=0).partial_fit(frame[:300])
    assert list(model.feature_names_in_) == COLUMNS
    model.partial_fit(frame[300:])
    with pytest.raises(ValueError, match="feature names should match"):
        model.partial_fit(frame[["b", "a", "c"]])
    batches = model.n_batches_seen_
    assert (
        "was fitted with feature names" in _messages(lambda: model.partial_fit(frame.to_numpy()))[0]
    )
    assert model.n_batches_seen_ > batches  # a warning, and the update is made
    fitted = OnlineGaussianMixture(2, batch_size=100, random_state=0).fit(frame)
    assert list(fitted.feature_names_in_) == COLUMNS


def test_stores_are_not_checked_against_frame_names(frame, tmp_path):
    model = GaussianMixture(2, random_state=0).fit(frame)
    store = str(tmp_path / "x.zarr")
    write_table(store, 600, 3, 2, 200, dtype="float64", seed=1)
    assert _messages(lambda: model.predict(store).compute()) == []
