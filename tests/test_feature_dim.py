"""Named feature dimensions of xarray / Zarr input: honoured, remembered, or refused.

Issue 12: a DataArray ``(band, y, x)`` was fitted with ``x`` as its features, and a
cube with its bands reordered was labelled as if they were in the fitted order.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from sklearn.base import clone

import daskgmm
from daskgmm import GaussianMixture, OnlineGaussianMixture, io

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore:The data type .* does not have a Zarr V3 specification"),
]

BANDS = ["r", "g", "b"]
MEANS = np.array([[0.0, 10.0, 100.0], [5.0, 0.0, 120.0], [10.0, 20.0, 80.0]])
SCALES = np.array([1.0, 2.0, 8.0])


def _init(**kwargs):
    """Fixed initial parameters, so that fits on differently ordered rows agree."""
    return {
        "weights_init": np.full(3, 1 / 3),
        "means_init": MEANS,
        "precisions_init": np.stack([np.diag(1 / SCALES**2)] * 3),
        "max_iter": 10,
        "tol": 0.0,
        "random_state": 0,
        **kwargs,
    }


def _cube(n_y=24, n_x=30, seed=0) -> xr.DataArray:
    """A (y, x, band) reflectance cube of three clusters; bands on very different scales."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=(n_y, n_x))
    values = MEANS[labels] + rng.normal(size=(n_y, n_x, 3)) * SCALES
    return xr.DataArray(
        values,
        dims=("y", "x", "band"),
        coords={"y": np.arange(n_y) * 10.0, "x": np.arange(n_x) * 10.0, "band": BANDS},
        name="reflectance",
    ).chunk({"y": 8, "x": 15})


def _same_labels(got: xr.DataArray, want: xr.DataArray) -> None:
    assert isinstance(got, xr.DataArray)
    np.testing.assert_array_equal(got.transpose(*want.dims).values, want.values)


def _messages(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


# --------------------------------------------------------------------------- #
# which dimension holds the features
# --------------------------------------------------------------------------- #
def test_band_first_cube_fits_the_bands_not_x():
    cube = _cube()
    first = cube.transpose("band", "y", "x")
    model = GaussianMixture(3, **_init()).fit(first)
    assert model.n_features_in_ == 3  # not 30 (the x axis)
    assert model.feature_dim_ == "band"
    assert model.feature_names_in_.dtype == object
    assert list(model.feature_names_in_) == BANDS
    last = GaussianMixture(3, **_init()).fit(cube)
    np.testing.assert_allclose(model.means_, last.means_, rtol=1e-9)
    np.testing.assert_allclose(model.covariances_, last.covariances_, rtol=1e-9)


def test_ambiguous_named_dims_are_refused_with_the_dims_listed():
    cube = _cube().rename(band="wavelength", y="row", x="col").transpose("wavelength", ...)
    with pytest.raises(ValueError, match=r"name one with feature_dim") as err:
        GaussianMixture(3, **_init()).fit(cube)
    for dim in ("wavelength", "row", "col"):
        assert repr(dim) in str(err.value)
    with pytest.raises(ValueError, match=r"\['wavelength', 'row', 'col'\]"):
        io.open_rows(cube)
    # named once, on the estimator, the fit takes it; unnamed arrays keep the last axis
    model = GaussianMixture(3, feature_dim="wavelength", **_init()).fit(cube)
    assert model.n_features_in_ == 3 and model.feature_dim_ == "wavelength"
    unnamed = xr.DataArray(_cube().values)  # dims dim_0, dim_1, dim_2
    assert io.open_rows(unnamed).n_features == 3


def test_feature_dim_is_a_parameter():
    model = GaussianMixture(3, feature_dim="band")
    assert model.get_params()["feature_dim"] == "band"
    assert clone(model).feature_dim == "band"
    online = OnlineGaussianMixture(3, feature_dim="band")
    assert clone(online).get_params()["feature_dim"] == "band"
    with pytest.raises(TypeError, match="feature_dim must be None or a string"):
        GaussianMixture(3, feature_dim=2, **_init()).fit(_cube())
    with pytest.raises(ValueError, match=r"Unknown feature_dim 'bands'.*'band'"):
        GaussianMixture(3, feature_dim="bands", **_init()).fit(_cube())


# --------------------------------------------------------------------------- #
# transposed and reordered input
# --------------------------------------------------------------------------- #
def test_transposed_cubes_give_the_same_labels_on_their_own_sample_dims():
    cube = _cube()
    model = GaussianMixture(3, **_init()).fit(cube)
    want = model.predict(cube)
    assert want.dims == ("y", "x")
    for order in (("band", "y", "x"), ("x", "band", "y"), ("x", "y", "band")):
        got = model.predict(cube.transpose(*order))
        assert got.dims == tuple(d for d in order if d != "band")
        _same_labels(got, want)
        proba = model.predict_proba(cube.transpose(*order))
        assert proba.dims == (*got.dims, "component")


def test_reordered_bands_are_put_back_in_the_fitted_order():
    cube = _cube()
    model = GaussianMixture(3, **_init()).fit(cube)
    reordered = cube.sel(band=["b", "g", "r"])
    want = model.predict(cube)
    _same_labels(model.predict(reordered), want)
    _same_labels(model.predict(reordered.transpose("band", "x", "y")), want)
    np.testing.assert_allclose(
        model.predict_proba(reordered).values, model.predict_proba(cube).values, rtol=1e-12
    )
    np.testing.assert_allclose(
        model.score_samples(reordered).values, model.score_samples(cube).values, rtol=1e-12
    )
    for method in ("score", "bic", "aic"):
        got = getattr(model, method)(reordered)
        assert got == pytest.approx(getattr(model, method)(cube), rel=1e-12), method


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score", "bic"])
def test_missing_or_extra_bands_are_named(method):
    cube = _cube()
    model = GaussianMixture(3, **_init()).fit(cube)
    with pytest.raises(ValueError, match=r"missing.*'g'"):
        getattr(model, method)(cube.sel(band=["b", "r"]))
    nir = cube.isel(band=[0]).assign_coords(band=["nir"])
    wider = xr.concat([cube, nir], dim="band")
    with pytest.raises(ValueError, match=r"not seen at fit time.*'nir'"):
        getattr(model, method)(wider)
    renamed = cube.assign_coords(band=["r", "g", "swir"])
    with pytest.raises(ValueError, match=r"'swir'") as err:
        getattr(model, method)(renamed)
    assert "'b'" in str(err.value)


def test_model_remembers_its_feature_dim():
    cube = _cube()
    model = GaussianMixture(3, **_init()).fit(cube.transpose("band", "y", "x"))
    # the dimension is used by name, wherever it lies, without repeating it
    _same_labels(model.predict(cube.transpose("x", "y", "band")), model.predict(cube))
    # a named cube without it is refused, naming the dimension the model expects
    other = cube.rename(band="wavelength")
    with pytest.raises(ValueError, match=r"'band'.*\['y', 'x', 'wavelength'\]"):
        model.predict(other)
    # a dimension no rule would find: named once (here through open_rows), then remembered
    view = io.open_rows(other, feature_dim="wavelength")
    remembering = GaussianMixture(3, **_init()).fit(view)
    assert remembering.feature_dim is None and remembering.feature_dim_ == "wavelength"
    _same_labels(remembering.predict(other.transpose("wavelength", "x", "y")), model.predict(cube))


# --------------------------------------------------------------------------- #
# fits that continue: warm start and partial_fit
# --------------------------------------------------------------------------- #
def test_warm_start_fit_reads_reordered_bands_by_label():
    cube = _cube()
    model = GaussianMixture(3, warm_start=True, **_init(max_iter=2)).fit(cube)
    ref = clone(model).fit(cube)
    model.fit(cube.sel(band=["g", "b", "r"]).transpose("band", "x", "y"))
    ref.fit(cube)
    np.testing.assert_allclose(model.means_, ref.means_, rtol=1e-9)
    assert list(model.feature_names_in_) == BANDS
    with pytest.raises(ValueError, match=r"missing.*'r'"):
        model.fit(cube.sel(band=["g", "b"]))


def test_partial_fit_reads_reordered_bands_by_label():
    cube = _cube(seed=1)
    first, second = cube.isel(y=slice(0, 12)), cube.isel(y=slice(12, None))
    kwargs = {k: v for k, v in _init().items() if k not in ("max_iter", "tol")}
    model = OnlineGaussianMixture(3, batch_size=100, **kwargs).partial_fit(first)
    ref = clone(model).partial_fit(first)
    assert model.feature_dim_ == "band" and list(model.feature_names_in_) == BANDS
    model.partial_fit(second.sel(band=["b", "r", "g"]).transpose("band", "y", "x"))
    ref.partial_fit(second)
    np.testing.assert_allclose(model.means_, ref.means_, rtol=1e-9)
    with pytest.raises(ValueError, match=r"missing.*'g'"):
        model.partial_fit(second.sel(band=["b", "r"]))
    fitted = OnlineGaussianMixture(3, batch_size=100, **kwargs).fit(cube.transpose("band", ...))
    assert fitted.n_features_in_ == 3 and list(fitted.feature_names_in_) == BANDS


# --------------------------------------------------------------------------- #
# saved models, Zarr stores, written predictions
# --------------------------------------------------------------------------- #
def test_saved_model_keeps_feature_names_and_dim(tmp_path):
    cube = _cube()
    model = GaussianMixture(3, **_init()).fit(cube.transpose("band", "y", "x"))
    loaded = daskgmm.load(model.save(tmp_path / "m"))
    assert loaded.feature_dim_ == "band"
    assert loaded.feature_names_in_.dtype == object
    assert list(loaded.feature_names_in_) == BANDS
    _same_labels(loaded.predict(cube.sel(band=["b", "g", "r"])), model.predict(cube))
    with pytest.raises(ValueError, match=r"missing.*'b'"):
        loaded.predict(cube.sel(band=["r", "g"]))


def test_zarr_store_opened_through_xarray_follows_the_same_rules(tmp_path):
    cube = _cube()
    path = tmp_path / "cube.zarr"
    cube.transpose("band", "y", "x").to_dataset().to_zarr(path, zarr_format=3, consolidated=False)
    model = GaussianMixture(3, **_init()).fit(path)  # a store path, xarray metadata
    assert model.n_features_in_ == 3 and model.feature_dim_ == "band"
    assert list(model.feature_names_in_) == BANDS
    want = GaussianMixture(3, **_init()).fit(cube).predict(cube)
    _same_labels(model.predict(path), want)
    opened = xr.open_zarr(path, consolidated=False)["reflectance"]
    _same_labels(model.predict(opened.sel(band=["g", "r", "b"]).transpose("x", ...)), want)
    single = xr.open_dataarray(path, engine="zarr", consolidated=False)
    _same_labels(model.predict(single.transpose("y", "x", "band")), want)
    with pytest.raises(ValueError, match=r"missing.*'r'"):
        model.predict(opened.sel(band=["g", "b"]))
    # a Zarr array whose dimension names say nothing about the features: refused
    plain = zarr.create_array(
        tmp_path / "plain.zarr", data=cube.values, dimension_names=["row", "col", "wl"]
    )
    with pytest.raises(ValueError, match=r"\['row', 'col', 'wl'\].*name one with feature_dim"):
        GaussianMixture(3, **_init()).fit(plain)


def test_write_predictions_checks_and_reorders_bands(tmp_path):
    cube = _cube()
    model = GaussianMixture(3, **_init()).fit(cube)
    want = model.predict(cube)
    out = tmp_path / "labels.zarr"
    with pytest.raises(ValueError, match=r"missing.*'g'"):
        io.write_predictions(model, cube.sel(band=["r", "b"]), out)
    assert not out.exists()
    io.write_predictions(model, cube.sel(band=["b", "g", "r"]).transpose("band", "x", "y"), out)
    written = xr.open_zarr(out, consolidated=False, mask_and_scale=False)["labels"]
    assert written.dims == ("x", "y")
    _same_labels(written, want)
    # the same through a store path with the bands first
    path = tmp_path / "cube.zarr"
    cube.sel(band=["g", "r", "b"]).transpose("band", "y", "x").to_dataset().to_zarr(
        path, zarr_format=3, consolidated=False
    )
    io.write_predictions(model, path, tmp_path / "labels2.zarr")
    back = xr.open_zarr(tmp_path / "labels2.zarr", consolidated=False, mask_and_scale=False)
    _same_labels(back["labels"], want)


def test_dataframe_names_still_behave_as_scikit_learn():
    """Reordering by label is for xarray; a DataFrame's columns keep sklearn's rules."""
    pd = pytest.importorskip("pandas")
    cube = _cube()
    frame = pd.DataFrame(cube.values.reshape(-1, 3), columns=BANDS)
    model = GaussianMixture(3, **_init()).fit(frame)
    assert not hasattr(model, "feature_dim_")
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame[["b", "g", "r"]])
    # a cube with the same labels is read in the model's order
    np.testing.assert_array_equal(
        model.predict(cube.sel(band=["b", "g", "r"])).values.ravel(), model.predict(frame)
    )
    assert _messages(lambda: model.predict(cube.sel(band=["b", "g", "r"]))) == []


def test_cli_predict_and_score_read_the_input_for_the_model(tmp_path):
    """``daskgmm score``/``predict`` read INPUT on the model's feature dimension (no
    --feature-dim again) and take its labelled features in the model's order."""
    import json

    from _support import run_cli

    def cli(*args):
        return run_cli(*args, cwd=tmp_path)

    cube = _cube().rename(band="wl")
    fitted_on = tmp_path / "fit.zarr"
    cube.to_dataset().to_zarr(fitted_on, zarr_format=3, consolidated=False)
    shuffled = tmp_path / "shuffled.zarr"
    reordered = cube.sel(wl=["b", "r", "g"]).transpose("wl", "x", "y")
    reordered.to_dataset().to_zarr(shuffled, zarr_format=3, consolidated=False)

    cli("fit", fitted_on, "-k", 3, "--feature-dim", "wl", "--model", "m", "--random-state", 0)
    model = daskgmm.load(tmp_path / "m")  # the CLI's fit, as the library loads it
    assert model.feature_dim_ == "wl" and list(model.feature_names_in_) == BANDS
    got = json.loads(cli("score", "m", shuffled, "--json").stdout)
    assert got["mean_log_likelihood"] == pytest.approx(model.score(cube), rel=1e-10)
    cli("predict", "m", shuffled, "--out", "labels.zarr")
    labels = xr.open_zarr(tmp_path / "labels.zarr", consolidated=False)["labels"]
    _same_labels(labels.load(), model.predict(cube).load())
