"""Saved models: the training-data fingerprint, exact round trips, and files that are refused.

(More refusal cases — schema version, class, JSON, checksum, parameters, online
counters, wrong shapes — are in tests/test_online.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import dask.array as da
import numpy as np
import pytest

import daskgmm
from daskgmm import GaussianMixture, OnlineGaussianMixture
from daskgmm.datasets import write_table
from daskgmm.errors import ModelFileError
from daskgmm.io import data_fingerprint, open_rows, training_data_fingerprint
from daskgmm.store import metadata_checksum, read_metadata


@pytest.fixture
def store(tmp_path):
    write_table(tmp_path / "data.zarr", 3000, 3, 2, 500, dtype="float64", seed=3)
    return str(tmp_path / "data.zarr")


def test_round_trip_keeps_the_fingerprint_and_predictions_exactly(store, tmp_path):
    model = GaussianMixture(2, covariance_type="diag", random_state=0).fit(open_rows(store))
    path = model.save(tmp_path / "m")
    loaded = daskgmm.load(path)
    assert loaded.training_data_ == model.training_data_
    fp = loaded.training_data_
    assert fp["kind"] == "zarr" and fp["location"] == os.path.realpath(store)
    assert fp["arrays"][""]["chunks"] == [500, 3] and fp["files"]["n_files"] == 7
    assert fp["rows"]["n_samples"] == 3000 and fp["recorded"]
    X = np.asarray(open_rows(store).data)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    assert read_metadata(path)["fitted"]["training_data_"] == fp


def test_fingerprints_of_numpy_dask_and_online_fits(rng):
    X = rng.normal(size=(400, 2))
    model = GaussianMixture(2, random_state=0).fit(X)
    assert model.training_data_["sha256"] == hashlib.sha256(X.tobytes()).hexdigest()
    assert model.training_data_["shape"] == [400, 2]
    dX = da.from_array(X, chunks=(100, 2))
    online = OnlineGaussianMixture(2, batch_size=100, random_state=0).fit(dX)
    assert online.training_data_["kind"] == "dask"
    assert online.training_data_["chunks"] == [100, 2]  # regular: the shape tells the rest
    online.partial_fit(X[:200])
    assert online.training_data_["shape"] == [200, 2]  # the last block seen


def test_dask_chunking_is_recorded_compactly_and_exactly():
    def chunks(*row_chunks):
        return data_fingerprint(da.zeros((sum(row_chunks), 3), chunks=(row_chunks, 3)))["chunks"]

    assert chunks(*[1000] * 10_000, 7) == [1000, 3]  # 10,001 chunks, regular
    assert chunks(5, 9, 2) == [[5, 9, 2], 3]
    many = chunks(*[3, 4] * 50)
    assert many[0]["count"] == 100 and len(many[0]["sha256"]) == 64
    assert many != chunks(*[4, 3] * 50)  # same count and total, other sizes


def test_fingerprint_tells_a_rewritten_store(store):
    # files an hour old, so that a rewrite shows on filesystems with coarse timestamps
    an_hour_ago = time.time() - 3600
    for root, _, files in os.walk(store):
        for name in files:
            os.utime(os.path.join(root, name), (an_hour_ago, an_hour_ago))
    before = data_fingerprint(store)
    assert data_fingerprint(store) == before
    write_table(store, 3000, 3, 2, 500, dtype="float64", seed=4, overwrite=True)
    after = data_fingerprint(store)
    assert after["arrays"] == before["arrays"]
    assert after["files"]["modified_ns"] > before["files"]["modified_ns"]


def test_a_source_that_cannot_be_described_does_not_fail_the_fit(tmp_path, caplog):
    fp = training_data_fingerprint(str(tmp_path / "nothing.zarr"))
    assert fp["kind"] == "str" and "No Zarr store" in fp["error"]
    assert "could not fingerprint" in caplog.text


def _rewrite(path, arrays: dict, manifest_edit=None) -> None:
    """Write ``arrays`` and fix the checksum (and, optionally, the manifest)."""
    np.savez(path / "arrays.npz", **arrays)
    meta = json.loads((path / "model.json").read_text())
    meta["arrays_sha256"] = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()
    if manifest_edit:
        manifest_edit(meta["arrays"])
    meta["metadata_sha256"] = metadata_checksum(meta)
    (path / "model.json").write_text(json.dumps(meta))


@pytest.fixture
def saved(rng, tmp_path):
    X = np.concatenate([rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 5])
    path = GaussianMixture(2, random_state=0).fit(X).save(tmp_path / "m")
    with np.load(path / "arrays.npz") as npz:
        arrays = dict(npz)
    return path, arrays


def test_wrong_dtype_is_refused_even_with_a_matching_checksum(saved):
    path, arrays = saved
    arrays["fitted__means_"] = arrays["fitted__means_"].astype(np.float32)
    _rewrite(path, arrays)
    with pytest.raises(ModelFileError, match="manifest says"):
        daskgmm.load(path)

    def declare_float32(manifest):
        manifest["fitted__means_"]["dtype"] = "float32"

    _rewrite(path, arrays, declare_float32)
    with pytest.raises(ModelFileError, match="float32"):
        daskgmm.load(path)


def test_object_arrays_are_never_unpickled(saved):
    path, arrays = saved
    arrays["fitted__means_"] = np.array([{"x": 1}, None], dtype=object)

    def declare_object(manifest):
        manifest["fitted__means_"]["dtype"] = "object"

    _rewrite(path, arrays, declare_object)
    with pytest.raises(ModelFileError, match="cannot be read safely"):
        daskgmm.load(path)


def test_arrays_outside_the_manifest_are_refused(saved):
    path, arrays = saved
    arrays["fitted__extra_"] = np.zeros(2)
    _rewrite(path, arrays)
    with pytest.raises(ModelFileError, match="do not match the manifest"):
        daskgmm.load(path)


def test_malformed_fingerprint_is_refused(saved):
    path, _ = saved
    meta = json.loads((path / "model.json").read_text())
    meta["fitted"]["training_data_"] = "somewhere"
    meta["metadata_sha256"] = metadata_checksum(meta)
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="training_data_"):
        daskgmm.load(path)


def test_read_metadata_checks_the_schema_version(saved):
    path, _ = saved
    assert read_metadata(path)["class"] == "GaussianMixture"
    meta = json.loads((path / "model.json").read_text())
    meta["schema_version"] = 3
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="schema version 3"):
        read_metadata(path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["params"].update(reg_covar=0.1),
        lambda m: m["fitted"].update(converged_=not m["fitted"]["converged_"]),
        lambda m: m["fitted"].update(lower_bound_=m["fitted"]["lower_bound_"] + 1e-12),
        lambda m: m.update(created="2020-01-01T00:00:00+00:00"),
        lambda m: m.pop("metadata_sha256"),
    ],
    ids=["parameter", "fitted-flag", "fitted-value", "created", "checksum-removed"],
)
def test_edited_metadata_is_refused(saved, edit):
    path, _ = saved
    meta = json.loads((path / "model.json").read_text())
    assert meta["metadata_sha256"] == metadata_checksum(meta)
    edit(meta)
    (path / "model.json").write_text(json.dumps(meta, indent=4))
    with pytest.raises(ModelFileError, match="does not match its own checksum"):
        daskgmm.load(path)
    with pytest.raises(ModelFileError, match="does not match its own checksum"):
        read_metadata(path)


def test_reformatted_metadata_still_loads(saved):
    # the checksum is of the content, not of the file's layout
    path, _ = saved
    before = daskgmm.load(path)
    meta = json.loads((path / "model.json").read_text())
    (path / "model.json").write_text(json.dumps(dict(reversed(meta.items())), indent=2))
    np.testing.assert_array_equal(daskgmm.load(path).means_, before.means_)


def test_schema_1_models_without_a_metadata_checksum_still_load(saved):
    path, _ = saved
    before = daskgmm.load(path)
    meta = json.loads((path / "model.json").read_text())
    del meta["metadata_sha256"]
    meta["schema_version"] = 1
    (path / "model.json").write_text(json.dumps(meta))
    after = daskgmm.load(path)
    np.testing.assert_array_equal(after.predict(before.means_), before.predict(before.means_))
    np.testing.assert_array_equal(after.precisions_cholesky_, before.precisions_cholesky_)
