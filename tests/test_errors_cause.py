"""Errors that point at their cause, and nothing lost (issue 12).

A damaged or missing Zarr chunk, a checkpoint path that is not a checkpoint, data
whose squares overflow float64, model files that are a file, claim enormous
arrays or hold out-of-range parameters, a pipeline writing into its own input, a
full disk while writing predictions, and saving over a model without asking.
Every store here is a real Zarr store on disk; the exit codes come from real
``daskgmm`` processes.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr
from _support import run_cli

import daskgmm
import daskgmm.kernels.estep as estep_module
from daskgmm import GaussianMixture, OnlineGaussianMixture
from daskgmm.errors import (
    CheckpointMismatchError,
    DataReadError,
    DataScaleError,
    DiskFullError,
    ModelFileError,
    SpecError,
)
from daskgmm.io import open_rows, write_predictions
from daskgmm.pipeline.spec import parse_spec
from daskgmm.store.model_files import metadata_checksum

ROOT = Path(__file__).resolve().parents[1]


def _table(path: Path, n=400, chunk=100, seed=0) -> np.ndarray:
    X = np.random.default_rng(seed).normal(size=(n, 3))
    X[: n // 2] += 6.0
    zarr.create_array(str(path), shape=X.shape, chunks=(chunk, 3), dtype="f8")[:] = X
    return X


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _cube(path: Path, seed=0) -> None:
    """A (time, y, x, band) xarray-style group, zstd chunks of one time step."""
    group = zarr.open_group(str(path), mode="w")
    values = np.random.default_rng(seed).normal(size=(4, 10, 10, 3))
    values[:2] += 5.0
    arr = group.create_array(
        "data",
        shape=values.shape,
        chunks=(1, 10, 10, 3),
        dtype="f8",
        fill_value=0.0,
        dimension_names=["time", "y", "x", "band"],
    )
    arr[:] = values


# --------------------------------------------------------------------------- #
# a damaged or missing chunk
# --------------------------------------------------------------------------- #
def test_a_damaged_chunk_is_named_with_its_store_and_file(tmp_path):
    store = tmp_path / "table.zarr"
    _table(store)
    _truncate(store / "c" / "1" / "0")
    with pytest.raises(DataReadError) as info:
        GaussianMixture(2, random_state=0).fit(str(store))
    message = str(info.value)
    assert str(store) in message and "'c/1/0'" in message
    assert str(store / "c" / "1" / "0") in message  # the file
    assert "Zstd" in message and "damaged" in message


def test_a_damaged_chunk_of_an_xarray_group_is_named(tmp_path):
    store = tmp_path / "cube.zarr"
    _cube(store)
    _truncate(store / "data" / "c" / "2" / "0" / "0" / "0")
    view = open_rows(str(store), "data", feature_dim="band")
    with pytest.raises(DataReadError, match=r"chunk 'c/2/0/0/0'.*Zarr array 'data'"):
        GaussianMixture(2, random_state=0).fit(view)


def test_a_damaged_chunk_is_named_on_a_local_cluster(tmp_path):
    from daskgmm.cluster import start_local_cluster

    store = tmp_path / "table.zarr"
    _table(store)
    _truncate(store / "c" / "2" / "0")
    client = start_local_cluster(n_workers=1, threads_per_worker=1, processes=True)
    try:
        with pytest.raises(DataReadError, match=r"chunk 'c/2/0'.*Zstd"):
            GaussianMixture(2, random_state=0).fit(str(store))
    finally:
        client.close()


def test_a_missing_chunk_whose_fill_value_looks_like_data_is_named(tmp_path):
    store = tmp_path / "table.zarr"
    _table(store)
    (store / "c" / "2" / "0").unlink()  # fill value 0: it would read as zeros
    with pytest.raises(DataReadError) as info:
        GaussianMixture(2, random_state=0).fit(str(store))
    message = str(info.value)
    assert "'c/2/0'" in message and "missing" in message and str(store) in message
    assert "fill_value=None" in message
    # asked to read everything as data, the fit reads it as zarr does (zeros)
    GaussianMixture(2, random_state=0).fit(open_rows(str(store), fill_value=None))
    # asked to read zeros as missing, the NaN policy sees the rows
    with pytest.raises(ValueError, match="100 rows with NaN"):
        GaussianMixture(2, random_state=0).fit(open_rows(str(store), fill_value=0.0))


def test_a_missing_chunk_of_an_xarray_group_is_named(tmp_path):
    store = tmp_path / "cube.zarr"
    _cube(store)
    (store / "data" / "c" / "1" / "0" / "0" / "0").unlink()
    view = open_rows(str(store), "data", feature_dim="band")
    with pytest.raises(DataReadError, match=r"chunk 'c/1/0/0/0'.*is missing"):
        GaussianMixture(2, random_state=0).fit(view)


def test_the_command_line_names_a_damaged_chunk_and_exits_2(tmp_path):
    store = tmp_path / "table.zarr"
    _table(store)
    _truncate(store / "c" / "3" / "0")
    done = run_cli("fit", store, "-k", "2", "--model", tmp_path / "m", cwd=tmp_path, code=None)
    assert done.returncode == 2, done.stderr
    assert "'c/3/0'" in done.stderr and str(store) in done.stderr
    assert "unexpected" not in done.stderr
    assert not (tmp_path / "m").exists()


# --------------------------------------------------------------------------- #
# a checkpoint path that is not a checkpoint
# --------------------------------------------------------------------------- #
def _listing(path: Path) -> dict:
    return {str(p.relative_to(path)): p.stat().st_mtime_ns for p in path.rglob("*")}


def test_the_input_store_is_refused_as_a_checkpoint(tmp_path):
    store = tmp_path / "table.zarr"
    _table(store)
    before = _listing(store)
    model = GaussianMixture(2, random_state=0)
    with pytest.raises(CheckpointMismatchError) as info:
        model.fit(str(store), checkpoint=store)
    message = str(info.value)
    assert "not a daskgmm checkpoint" in message and "Zarr store" in message
    assert "delete" not in message
    # a checkpoint inside the store (select's DIR/k2) is refused too
    with pytest.raises(CheckpointMismatchError, match="inside"):
        model.fit(str(store), checkpoint=store / "k2")
    assert _listing(store) == before


def test_a_directory_of_other_files_is_refused_as_a_checkpoint(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    X = np.random.default_rng(0).normal(size=(200, 2))
    with pytest.raises(CheckpointMismatchError) as info:
        GaussianMixture(2, random_state=0).fit(X, checkpoint=folder)
    assert "not a daskgmm checkpoint" in str(info.value)
    assert "delete" not in str(info.value)
    assert (folder / "notes.txt").read_text() == "mine"
    # an empty directory is a new checkpoint
    (tmp_path / "empty").mkdir()
    GaussianMixture(2, random_state=0).fit(X, checkpoint=tmp_path / "empty")
    assert (tmp_path / "empty" / "state.json").is_file()


def test_the_command_line_refuses_the_input_store_as_checkpoint(tmp_path):
    store = tmp_path / "table.zarr"
    _table(store)
    before = _listing(store)
    done = run_cli(
        "fit", store, "-k", "2", "--model", tmp_path / "m", "--checkpoint", store,
        cwd=tmp_path, code=None,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "not a daskgmm checkpoint" in done.stderr and "delete" not in done.stderr
    assert _listing(store) == before


# --------------------------------------------------------------------------- #
# data whose squares overflow float64
# --------------------------------------------------------------------------- #
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings on the way
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_data_scaled_to_1e200_is_refused_with_the_cure(init_params, cov_type):
    X = np.random.default_rng(0).normal(size=(2000, 3)) * 1e200
    model = GaussianMixture(2, covariance_type=cov_type, init_params=init_params, random_state=0)
    with pytest.raises(DataScaleError, match=r"overflows float64.*StandardScaler"):
        model.fit(X)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("nan_policy", ["raise", "omit"])
@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_a_huge_finite_outlier_is_not_silently_left_out(
    monkeypatch, compiled, nan_policy, cov_type
):
    monkeypatch.setattr(estep_module, "USE_COMPILED", compiled)
    X = np.random.default_rng(0).normal(size=(20_000, 4))
    X[12_345] = 1e200  # in row chunk 2 of 5,000-row chunks
    precisions = np.stack([np.eye(4)] * 2) if cov_type == "full" else np.ones((2, 4))
    model = GaussianMixture(
        2,
        covariance_type=cov_type,
        nan_policy=nan_policy,
        chunk_rows=5000,
        weights_init=[0.5, 0.5],
        means_init=[[0.0] * 4, [1.0] * 4],
        precisions_init=precisions,
    )
    with pytest.raises(DataScaleError, match=r"row chunk 2 .*1e\+200.*StandardScaler"):
        model.fit(X)


# --------------------------------------------------------------------------- #
# loading a model
# --------------------------------------------------------------------------- #
@pytest.fixture
def saved(tmp_path) -> Path:
    X = np.random.default_rng(0).normal(size=(300, 3))
    return GaussianMixture(2, random_state=0).fit(X).save(tmp_path / "m")


def _reseal(path: Path, meta: dict, arrays: bytes | None = None) -> None:
    """Write a model's files back with checksums that match (a consistent forgery)."""
    if arrays is not None:
        (path / "arrays.npz").write_bytes(arrays)
        meta["arrays_sha256"] = hashlib.sha256(arrays).hexdigest()
    meta["metadata_sha256"] = metadata_checksum(meta)
    (path / "model.json").write_text(json.dumps(meta))


def _with_header(npz: bytes, key: str, shape: tuple) -> bytes:
    """The archive with ``key``'s .npy header claiming ``shape`` (data unchanged)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(npz)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == f"{key}.npy":
                arr = np.load(io.BytesIO(data))
                head = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    head, {"descr": arr.dtype.str, "fortran_order": False, "shape": shape}
                )
                data = head.getvalue() + arr.tobytes()
            dst.writestr(info.filename, data)
    return out.getvalue()


def test_loading_a_file_is_a_model_file_error(saved, tmp_path):
    with pytest.raises(ModelFileError, match="is a file, not a model directory"):
        daskgmm.load(saved / "model.json")
    with pytest.raises(ModelFileError, match="is a file"):
        daskgmm.store.read_metadata(saved / "arrays.npz")


@pytest.mark.parametrize("in_manifest", [False, True], ids=["header", "header+manifest"])
def test_an_enormous_array_header_is_refused_before_allocating(saved, in_manifest):
    meta = json.loads((saved / "model.json").read_text())
    enormous = (10**12, 3)
    npz = _with_header((saved / "arrays.npz").read_bytes(), "fitted__means_", enormous)
    if in_manifest:
        meta["arrays"]["fitted__means_"]["shape"] = list(enormous)
    _reseal(saved, meta, npz)
    with pytest.raises(ModelFileError, match="fitted__means_"):
        daskgmm.load(saved)


@pytest.mark.parametrize(("name", "value"), [("reg_covar", -1.0), ("n_init", 0), ("max_iter", -1)])
def test_out_of_range_parameters_in_model_json_are_refused(saved, name, value):
    meta = json.loads((saved / "model.json").read_text())
    meta["params"][name] = value
    _reseal(saved, meta)
    with pytest.raises(ModelFileError, match=name):
        daskgmm.load(saved)


def test_save_refuses_an_existing_model_unless_overwrite(saved):
    model = daskgmm.load(saved)
    stamp = (saved / "model.json").read_text()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(saved)
    assert (saved / "model.json").read_text() == stamp
    model.save(saved, overwrite=True)
    assert daskgmm.load(saved).means_.tolist() == model.means_.tolist()
    online = OnlineGaussianMixture(2, random_state=0).fit(np.eye(40, 3) + np.arange(40)[:, None])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        online.save(saved)


# --------------------------------------------------------------------------- #
# a pipeline writing into its own input
# --------------------------------------------------------------------------- #
def _spec(directory: str) -> dict:
    return {
        "pipeline": {"mode": "refit"},
        "input": {"store": "table.zarr"},
        "model": {"n_components": 2},
        "output": {"directory": directory},
    }


@pytest.mark.parametrize("directory", ["table.zarr", "table.zarr/out", "link/out", "link"])
def test_a_pipeline_output_inside_its_input_store_is_refused(tmp_path, directory):
    _table(tmp_path / "table.zarr")
    os.symlink(tmp_path / "table.zarr", tmp_path / "link")
    with pytest.raises(SpecError, match=r"^output\.directory: .*input store"):
        parse_spec(_spec(directory), tmp_path / "spec.toml")
    # beside the store is fine
    parse_spec(_spec("out"), tmp_path / "spec.toml")


# --------------------------------------------------------------------------- #
# a full disk while writing predictions
# --------------------------------------------------------------------------- #
@pytest.fixture
def disk_full_after(monkeypatch):
    """Make zarr's local writes fail with ENOSPC after ``n`` of them (the lowest
    level: the function that writes a key's bytes to its file)."""
    from zarr.storage import _local

    real_put = _local._put
    state = {"left": None}

    def put(path, value, *args, **kwargs):
        if state["left"] is not None:
            if state["left"] <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            state["left"] -= 1
        return real_put(path, value, *args, **kwargs)

    monkeypatch.setattr(_local, "_put", put)

    def arm(n):
        state["left"] = n

    yield arm
    state["left"] = None


@pytest.mark.parametrize("source", ["table", "cube"])
def test_a_full_disk_is_named_and_a_retry_needs_no_overwrite(tmp_path, disk_full_after, source):
    if source == "table":
        _table(tmp_path / "in.zarr", n=2000, chunk=250)
        inp = {"source": str(tmp_path / "in.zarr")}
    else:
        _cube(tmp_path / "in.zarr")
        inp = {"source": str(tmp_path / "in.zarr"), "variables": "data", "feature_dim": "band"}
    view = open_rows(inp["source"], inp.get("variables"), feature_dim=inp.get("feature_dim"))
    model = GaussianMixture(2, random_state=0).fit(view)
    out = tmp_path / "labels.zarr"
    disk_full_after(4)
    with pytest.raises(DiskFullError) as info:
        write_predictions(model, **inp, store=str(out), proba=True)
    assert info.value.errno == errno.ENOSPC
    assert str(out) in str(info.value) and "Free some space" in str(info.value)
    disk_full_after(None)
    write_predictions(model, **inp, store=str(out), proba=True)  # no overwrite=True
    group = zarr.open_group(str(out), mode="r")
    assert group.attrs["daskgmm_complete"] is True
    # only the first sample dimension is chunked: rows are in reshape(-1) order
    labels = np.asarray(group["labels"][:]).reshape(-1)
    np.testing.assert_array_equal(labels, np.asarray(model.predict(view.data)))
    assert np.isfinite(np.asarray(group["proba"][:])).all()


def test_cli_reports_a_full_disk_as_such(tmp_path, disk_full_after, capsys):
    """``daskgmm predict`` on a full disk: the error says so (not 'unexpected'), in
    the --json error object too, and the retry needs no --overwrite."""
    import json

    from daskgmm.cli import main

    _table(tmp_path / "in.zarr", n=2000, chunk=250)
    GaussianMixture(2, random_state=0).fit(str(tmp_path / "in.zarr")).save(tmp_path / "m")
    args = ["predict", tmp_path / "m", tmp_path / "in.zarr", "--out", tmp_path / "p.zarr"]
    capsys.readouterr()
    disk_full_after(2)
    assert main([*args, "--json", "--no-progress"]) == 1
    error = json.loads(capsys.readouterr().out)
    assert error["category"] == "disk-full" and error["kind"] == "DiskFullError"
    assert "unexpected" not in error["error"] and "Free some space" in error["error"]
    disk_full_after(None)
    assert main([*args, "--no-progress"]) == 0
