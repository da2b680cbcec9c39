"""Zarr and xarray in and out: real v3 stores in temporary directories."""

from __future__ import annotations

import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from dask.callbacks import Callback

from daskgmm import GaussianMixture, io
from daskgmm.cli import main as cli_main
from daskgmm.datasets import MixtureTruth, make_mixture, random_mixture

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

K, D = 3, 4


def _params_init(seed=0):
    """Fixed initial parameters so that fits compare exactly."""
    truth = random_mixture(D, K, seed=seed)
    return {
        "weights_init": truth.weights,
        "means_init": truth.means,
        "precisions_init": np.linalg.inv(truth.covariances),
    }


def _model(**kwargs):
    kwargs = {"max_iter": 5, "tol": 0, "random_state": 0, **_params_init(), **kwargs}
    return GaussianMixture(K, **kwargs)


def _assert_same_fit(a, b, rtol=1e-9):
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=rtol)
    np.testing.assert_allclose(a.means_, b.means_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=rtol, atol=1e-12)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=rtol)


@pytest.fixture
def table(tmp_path):
    """A (6000, 4) float32 mixture in a Zarr v3 array (chunks of 1000 rows)."""
    path = tmp_path / "table.zarr"
    X, truth = make_mixture(6000, D, K, chunk_rows=1000, dtype="float32", store=path, seed=3)
    return path, X.compute(), truth


@pytest.fixture
def cube(tmp_path):
    """A (3, 20, 30, 4) cube data(time, y, x, band) in an xarray-written store."""
    path = tmp_path / "cube.zarr"
    data, truth = make_mixture(0, D, K, store=path, cube_shape=(3, 20, 30), dtype="float64", seed=5)
    return path, data, truth


# --------------------------------------------------------------------------- #
# in
# --------------------------------------------------------------------------- #
def test_store_written_chunk_by_chunk_with_truth(table):
    path, _, truth = table
    arr = zarr.open_array(path, mode="r")
    assert arr.metadata.zarr_format == 3
    assert arr.chunks == (1000, D) and arr.dtype == np.float32
    recorded = MixtureTruth.from_attrs(arr.attrs)
    np.testing.assert_allclose(recorded.means, truth.means)
    np.testing.assert_allclose(recorded.covariances, truth.covariances)
    assert arr.attrs["complete"] is True


@pytest.mark.parametrize("kind", ["path", "str", "file_url", "zarr_array", "group"])
def test_fit_from_zarr_equals_fit_from_numpy(table, kind):
    path, X, _ = table
    source = {
        "path": path,
        "str": str(path),
        "file_url": f"file://{path}",
        "zarr_array": zarr.open_array(path, mode="r"),
        "group": None,
    }[kind]
    kwargs = {}
    if kind == "group":
        group = zarr.open_group(path.parent / "grouped.zarr", mode="w")
        group.create_array("values", data=X, chunks=(1000, D))
        group.create_array("other", data=np.zeros(3))
        source, kwargs = group, {"variables": "values"}
        source = io.open_rows(source, **kwargs)
    fitted = _model().fit(source)
    _assert_same_fit(fitted, _model().fit(X))
    labels = fitted.predict(source)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), fitted.predict(X))


def test_memory_url_roundtrip():
    X = np.random.default_rng(0).normal(size=(500, D)).astype("float32")
    zarr.create_array("memory://daskgmm-test/x.zarr", data=X, chunks=(100, D), overwrite=True)
    fitted = _model().fit("memory://daskgmm-test/x.zarr")
    _assert_same_fit(fitted, _model().fit(X))
    view = io.open_rows("memory://daskgmm-test/x.zarr")
    assert view.data.chunks[0] == (100,) * 5


def test_row_chunks_follow_storage_chunks_and_features_merge_once(tmp_path):
    arr = zarr.create_array(
        tmp_path / "nd.zarr", shape=(4, 6, 10, D), chunks=(1, 3, 10, 2), dtype="float32"
    )
    arr[...] = np.arange(arr.size, dtype="float32").reshape(arr.shape)
    view = io.open_rows(arr, feature_axis=-1)
    assert view.data.shape == (240, D)
    assert view.data.chunks == ((30,) * 8, (D,))
    assert view.sample_dims == ("dim_0", "dim_1", "dim_2")
    rows = view.data.compute()
    expected = arr[...].reshape(-1, D)
    assert sorted(map(tuple, rows)) == sorted(map(tuple, expected))
    back = view.to_samples(view.data[:, 0]).compute()
    np.testing.assert_array_equal(back, arr[..., 0])


def test_feature_axis_first(tmp_path):
    X = np.random.default_rng(1).normal(size=(300, D))
    arr = zarr.create_array(tmp_path / "t.zarr", data=X.T.copy(), chunks=(D, 100))
    view = io.open_rows(arr, feature_axis=0)
    np.testing.assert_array_equal(view.data.compute(), X)


def test_xarray_predictions_keep_dims_and_coords(cube):
    _, data, _ = cube
    model = _model().fit(data)
    labels = model.predict(data)
    proba = model.predict_proba(data)
    scores = model.score_samples(data)
    for out in (labels, proba, scores):
        assert isinstance(out, xr.DataArray)
        assert isinstance(out.data, da.Array)  # lazy
        xr.testing.assert_equal(out.coords["time"], data.coords["time"])
        xr.testing.assert_equal(out.coords["x"], data.coords["x"])
    assert labels.dims == ("time", "y", "x")
    assert proba.dims == ("time", "y", "x", "component")
    np.testing.assert_array_equal(proba["component"].values, np.arange(K))
    rows = data.values.reshape(-1, D)
    np.testing.assert_array_equal(labels.values.ravel(), model.predict(rows))
    np.testing.assert_allclose(proba.values.reshape(-1, K), model.predict_proba(rows), atol=1e-12)
    np.testing.assert_allclose(scores.values.ravel(), model.score_samples(rows), rtol=1e-10)
    assert model.score(data) == pytest.approx(model.score(rows), rel=1e-12)
    assert model.bic(data) == pytest.approx(model.bic(rows), rel=1e-12)


def test_dataset_variables_stacked_as_features(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2, 30, 40, 2))
    ds = xr.Dataset(
        {"red": (("time", "y", "x"), X[..., 0]), "nir": (("time", "y", "x"), X[..., 1])},
        coords={"time": [0, 1], "y": np.arange(30), "x": np.arange(40)},
    ).chunk({"time": 1, "y": 15})
    ds.to_zarr(tmp_path / "ds.zarr", zarr_format=3, consolidated=False)
    view = io.open_rows(tmp_path / "ds.zarr", ["red", "nir"])
    assert view.n_features == 2 and view.feature_names == ["red", "nir"]
    assert view.data.chunks[0] == (600,) * 4
    rows = view.data.compute()
    assert sorted(map(tuple, rows)) == sorted(map(tuple, X.reshape(-1, 2)))
    model = GaussianMixture(2, max_iter=3, random_state=0).fit(view)
    labels = model.predict(view)
    assert labels.dims == ("time", "y", "x")
    assert list(model.feature_names_in_) == ["red", "nir"]
    with pytest.warns(UserWarning, match="fitted with feature names"):  # as scikit-learn
        bare = model.predict(X.reshape(-1, 2))
    np.testing.assert_array_equal(labels.values.ravel(), bare)


def test_masked_cube_omit_equals_fit_of_unmasked_rows(tmp_path):
    """A 4-D cube with a cloud-masked region, read through its fill value."""
    X, _ = make_mixture(4 * 20 * 30, D, K, chunk_rows=600, seed=7)
    cube = X.compute().reshape(4, 20, 30, D).astype("float32")
    cube[1, 5:12, 10:25, :] = -9999.0  # masked region, all bands
    cube[2, 0, 0, 1] = -9999.0  # one masked band of one pixel
    arr = zarr.create_array(
        tmp_path / "masked.zarr",
        data=cube,
        chunks=(1, 10, 30, D),
        fill_value=-9999.0,
        dimension_names=["time", "y", "x", "band"],
    )
    rows = cube.reshape(-1, D)
    good = ~(rows == -9999.0).any(axis=1)
    assert (~good).sum() == 7 * 15 + 1

    with pytest.raises(ValueError, match=r"contains 106 rows with NaN .* nan_policy='omit'"):
        _model().fit(arr)
    fitted = _model(nan_policy="omit").fit(arr)
    _assert_same_fit(fitted, _model().fit(rows[good]), rtol=1e-7)

    labels = fitted.predict(arr)
    assert labels.shape == (4, 20, 30)
    labels = labels.compute()
    assert (labels[1, 5:12, 10:25] == -1).all() and labels[2, 0, 0] == -1
    np.testing.assert_array_equal(labels.reshape(-1)[good], fitted.predict(rows[good]))
    scores = fitted.score_samples(arr).compute()
    assert np.isnan(scores[1, 5:12, 10:25]).all()
    assert fitted.score(arr) == pytest.approx(fitted.score(rows[good]), rel=1e-10)
    # 'auto' init on a sample drops the masked rows rather than raising
    for init in ("kmeans", "random"):
        model = GaussianMixture(
            K, max_iter=2, tol=0.0, nan_policy="omit", init_params=init, random_state=0
        ).fit(arr)
        assert model.n_iter_ == 2 and np.isfinite(model.means_).all()
        assert model.score(arr) == pytest.approx(model.score(rows[good]), rel=1e-10)


def test_xarray_fill_value_decoded(tmp_path):
    values = np.random.default_rng(4).normal(size=(50, 40, D))
    values[:5, :, :] = -1.0
    da_ = xr.DataArray(values, dims=("y", "x", "band"), name="v")
    da_.encoding["_FillValue"] = -1.0
    da_.to_dataset().to_zarr(tmp_path / "f.zarr", zarr_format=3, consolidated=False)
    view = io.open_rows(tmp_path / "f.zarr", feature_dim="band")
    assert int(np.isnan(view.data.compute()).any(axis=1).sum()) == 5 * 40
    # undecoded data carrying the attribute are masked too
    raw = xr.DataArray(values, dims=("y", "x", "band"), attrs={"_FillValue": -1.0})
    assert int(np.isnan(io.open_rows(raw).data.compute()).any(axis=1).sum()) == 5 * 40
    # zarr's default fill value 0 is data, not missing (the chunk written: a chunk
    # left out because it holds only the fill value is refused, tests/test_errors_cause.py)
    zeros = zarr.create_array(
        tmp_path / "z.zarr", data=np.zeros((10, D)), config={"write_empty_chunks": True}
    )
    assert not np.isnan(io.open_rows(zeros).data.compute()).any()


def test_integer_store_with_fill_value(tmp_path):
    data = np.random.default_rng(5).integers(0, 100, size=(200, D)).astype("int16")
    data[:7, 0] = -1
    zarr.create_array(tmp_path / "i.zarr", data=data, chunks=(50, D), fill_value=-1)
    view = io.open_rows(tmp_path / "i.zarr")
    assert view.data.dtype == np.float64
    assert int(np.isnan(view.data.compute()).any(axis=1).sum()) == 7


# --------------------------------------------------------------------------- #
# out
# --------------------------------------------------------------------------- #
def test_write_predictions_xarray_cube(cube, tmp_path):
    path, data, _ = cube
    model = _model().fit(data)
    out = tmp_path / "pred.zarr"
    attrs = io.write_predictions(model, path, out, proba=True, log_density=True)
    assert attrs["daskgmm_complete"] is True
    assert attrs["n_components"] == K and attrs["covariance_type"] == "full"
    assert attrs["model_id"] and attrs["created"]
    group = zarr.open_group(out, mode="r")
    assert group["labels"].dtype == np.int8 and group["labels"].attrs["_FillValue"] == -1
    assert group["labels"].chunks == (1, 20, 30)
    assert group["proba"].dtype == np.float32
    back = xr.open_zarr(out, consolidated=False, mask_and_scale=False)
    xr.testing.assert_equal(back["time"], data["time"])
    np.testing.assert_array_equal(back["labels"].values, model.predict(data).values)
    np.testing.assert_allclose(back["proba"].values, model.predict_proba(data).values, atol=1e-6)
    np.testing.assert_allclose(back["log_density"].values, model.score_samples(data).values)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        io.write_predictions(model, path, out)

    # rewrite one time step in place
    other = _model(max_iter=1).fit(data)
    io.write_predictions(
        other, data.isel(time=[1]), out, proba=True, log_density=True, region={"time": slice(1, 2)}
    )
    back = xr.open_zarr(out, consolidated=False, mask_and_scale=False)
    np.testing.assert_array_equal(back["labels"][1].values, other.predict(data).values[1])
    np.testing.assert_array_equal(back["labels"][0].values, model.predict(data).values[0])
    assert zarr.open_group(out, mode="r").attrs["daskgmm_complete"] is True


def test_write_predictions_plain_array_with_omitted_rows(tmp_path):
    X = np.random.default_rng(6).normal(size=(1000, D))
    X[10:20, 2] = np.nan
    arr = zarr.create_array(tmp_path / "x.zarr", data=X, chunks=(250, D))
    model = _model(nan_policy="omit").fit(arr)
    out = tmp_path / "pred.zarr"
    io.write_predictions(model, arr, out, proba=True)
    group = zarr.open_group(out, mode="r")
    labels = group["labels"][...]
    assert labels.dtype == np.int8 and (labels[10:20] == -1).all()
    np.testing.assert_array_equal(labels, model.predict(X))
    assert np.isnan(group["proba"][10:20]).all()
    # region write into the existing arrays
    io.write_predictions(model, X[:250], out, region=(slice(0, 250),))
    np.testing.assert_array_equal(group["labels"][...], labels)


def test_write_predictions_runs_one_estep_per_chunk_for_all_outputs(tmp_path):
    X = np.random.default_rng(8).normal(size=(1000, D))
    X[[3, 600], 1] = np.nan
    arr = zarr.create_array(tmp_path / "x.zarr", data=X, chunks=(250, D))
    model = _model(nan_policy="omit").fit(arr)
    started = []

    class Count(Callback):
        def _pretask(self, key, dsk, state):
            name = key[0] if isinstance(key, tuple) else key
            started.append(name.split("-")[0])

    out = tmp_path / "pred.zarr"
    with Count():
        io.write_predictions(model, arr, out, proba=True, log_density=True)
    assert started.count("daskgmm_predict") == 4  # one per chunk, not one per output
    group = zarr.open_group(out, mode="r")
    np.testing.assert_array_equal(group["labels"][...], model.predict(X))
    np.testing.assert_array_equal(group["proba"][...], model.predict_proba(X).astype(np.float32))
    np.testing.assert_array_equal(group["log_density"][...], model.score_samples(X))


def test_failed_write_is_not_left_looking_complete(tmp_path):
    X = np.random.default_rng(7).normal(size=(1000, D))
    model = _model().fit(X)
    X[900, 0] = np.nan  # under nan_policy='raise' the last chunk fails
    arr = zarr.create_array(tmp_path / "x.zarr", data=X, chunks=(100, D))
    out = tmp_path / "pred.zarr"
    with pytest.raises(ValueError, match="NaN"):
        io.write_predictions(model, arr, out)
    assert not out.exists()  # nothing left behind: writing again needs no overwrite


def test_label_dtype():
    assert io.label_dtype(8) == np.int8
    assert io.label_dtype(128) == np.int8
    assert io.label_dtype(129) == np.int16
    assert io.label_dtype(40_000) == np.int32


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #
def test_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="No Zarr store"):
        GaussianMixture(2).fit(tmp_path / "nope.zarr")


def test_missing_variable(cube, tmp_path):
    path, data, _ = cube
    with pytest.raises(ValueError, match=r"Variable\(s\) \['nir'\] not found.*\['data'\]"):
        io.open_rows(path, "nir")
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    group.create_array("a", data=np.zeros((5, 2)))
    group.create_array("b", data=np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"Array 'c' not found .* \['a', 'b'\]"):
        io.open_rows(group, "c")
    with pytest.raises(ValueError, match="has 2 data variables"):
        io.open_rows(xr.Dataset({"a": data, "b": data}))


def test_unknown_feature_dim(cube):
    path, _, _ = cube
    with pytest.raises(ValueError, match=r"Unknown feature_dim 'bands'.*'band'"):
        io.open_rows(path, feature_dim="bands")


def test_non_numeric_data(tmp_path):
    names = xr.DataArray(np.array([["a", "b"], ["c", "d"]]), dims=("s", "f"))
    with pytest.raises(ValueError, match="not a real number type"):
        GaussianMixture(1).fit(names)
    arr = zarr.create_array(tmp_path / "b.zarr", shape=(4, 2), dtype="complex128")
    with pytest.raises(ValueError, match="not a real number type"):
        io.open_rows(arr)


def test_feature_count_differs_at_predict(table, tmp_path):
    path, _, _ = table
    model = _model().fit(path)
    other = zarr.create_array(tmp_path / "o.zarr", data=np.zeros((10, D + 1)))
    with pytest.raises(ValueError, match="has 5 features, but GaussianMixture is expecting 4"):
        model.predict(other)
    with pytest.raises(ValueError, match="has 5 features"):
        io.write_predictions(model, other, tmp_path / "p.zarr")


def test_nan_policy_validated():
    with pytest.raises(ValueError, match=r"nan_policy must be one of \['raise', 'omit'\]"):
        GaussianMixture(2, nan_policy="drop").fit(np.zeros((10, 2)))


def test_all_rows_omitted():
    X = np.full((20, 2), np.nan)
    with pytest.raises(ValueError, match="No rows are left to fit: 20 rows"):
        GaussianMixture(2, nan_policy="omit", init_params="random").fit(X)


# --------------------------------------------------------------------------- #
# CLI and layering
# --------------------------------------------------------------------------- #
def test_cli_make_data_table_and_cube(tmp_path, capsys):
    table = tmp_path / "t.zarr"
    code = cli_main(
        [
            "make-data", str(table), "--n-samples", "5000", "--n-features", "3",
            "--n-components", "2", "--chunks", "1000", "--dtype", "float32", "--seed", "1",
        ]
    )  # fmt: skip
    assert code == 0 and "5,000 x 3 float32" in capsys.readouterr().out
    arr = zarr.open_array(table, mode="r")
    assert arr.shape == (5000, 3) and arr.chunks == (1000, 3)
    assert len(arr.attrs["true_weights"]) == 2
    cube = tmp_path / "c.zarr"
    args = ["make-data", str(cube), "--cube-shape", "2,10,12", "--chunks", "1,5,12"]
    assert cli_main(args) == 0
    ds = xr.open_zarr(cube, consolidated=False)
    assert ds["data"].dims == ("time", "y", "x", "band")
    assert ds["data"].shape == (2, 10, 12, 16)
    assert cli_main(args) == 2  # exists
    assert "pass --overwrite" in capsys.readouterr().err


def test_io_stays_lazy_and_layered():
    # (dask.array itself imports xarray in this dask version; zarr stays out)
    code = (
        "import sys, daskgmm, daskgmm.engine.passes, daskgmm.io, daskgmm.datasets;"
        "assert 'zarr' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rows_already_in_order_add_no_transpose_task(tmp_path):
    """A table whose features are on its last axis is read with no per-chunk
    identity transpose (a task per chunk in every pass); other orders move the axis."""
    table = zarr.create_array(str(tmp_path / "t.zarr"), shape=(400, 3), chunks=(100, 3), dtype="f8")
    table[:] = np.arange(1200.0).reshape(400, 3)
    rows = io.open_rows(str(tmp_path / "t.zarr")).data
    assert not [name for name in rows.dask.layers if name.startswith("transpose")]
    np.testing.assert_array_equal(rows.compute(), table[:])
    cube = xr.DataArray(np.arange(24.0).reshape(3, 2, 4), dims=("band", "y", "x"))
    moved = io.open_rows(cube).data
    assert [name for name in moved.dask.layers if name.startswith("transpose")]
    np.testing.assert_array_equal(moved.compute(), cube.values.reshape(3, -1).T)


def test_failed_write_waits_for_the_chunk_writes_still_running(tmp_path, monkeypatch):
    """A chunk that fails while others are being written: the writes still running end
    before the output is removed, so nothing is left behind (dask raises the first
    error while the tasks already started run on)."""
    import time

    from zarr.storage import _local

    X = np.random.default_rng(7).normal(size=(1200, D))
    model = _model().fit(X)
    X[1150, 0] = np.nan  # the last chunk fails at once, under nan_policy='raise'
    arr = zarr.create_array(tmp_path / "x.zarr", data=X, chunks=(100, D))
    real_put = _local._put

    def slow_put(path, value, *args, **kwargs):
        if "pred.zarr" in str(path) and "/c/" in str(path):
            time.sleep(0.3)  # chunk writes take a while
        return real_put(path, value, *args, **kwargs)

    monkeypatch.setattr(_local, "_put", slow_put)
    out = tmp_path / "pred.zarr"
    with dask.config.set(scheduler="threads", num_workers=4):
        with pytest.raises(ValueError, match="NaN"):
            io.write_predictions(model, arr, out, proba=True)
    time.sleep(0.5)  # any write still running has landed by now
    assert not out.exists()
