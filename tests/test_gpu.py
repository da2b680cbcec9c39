"""CuPy chunks on a GPU: fit, predict and write from device memory (skipped without one).

The same checks as ``tests/test_array_namespace.py`` (which runs everywhere, on
array-api-strict), on the real thing: CuPy arrays in dask arrays, the
``device='cuda'`` option, and CuPy-backed dask arrays read from Zarr.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
try:
    HAS_GPU = cupy.cuda.runtime.getDeviceCount() > 0
except cupy.cuda.runtime.CUDARuntimeError:
    HAS_GPU = False
pytestmark = pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")

from daskgmm import GaussianMixture  # noqa: E402

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(autouse=True)
def _threads():
    with dask.config.set(scheduler="threads"):
        yield


def blobs(n=30_000, d=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(4, d))
    X = np.concatenate([rng.normal(c, 1.0 + i * 0.2, (n // 4, d)) for i, c in enumerate(centres)])
    return rng.permutation(X) + 20.0


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
def test_fit_on_cupy_chunks_equals_the_cpu_fit(cov_type):
    X = blobs()
    kwargs = dict(covariance_type=cov_type, random_state=0, tol=1e-9, max_iter=30)
    cpu = GaussianMixture(4, **kwargs).fit(da.from_array(X, chunks=(5000, 4)))
    gpu = GaussianMixture(4, **kwargs).fit(da.from_array(cupy.asarray(X), chunks=(5000, 4)))
    assert gpu.n_iter_ == cpu.n_iter_
    for name in ("weights_", "means_", "covariances_"):
        a, b = getattr(gpu, name), getattr(cpu, name)
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-7 * np.abs(b).max(), err_msg=name)
    assert gpu.lower_bound_ == pytest.approx(cpu.lower_bound_, rel=1e-7)


def test_answers_stay_on_the_gpu():
    X = blobs()
    gm = GaussianMixture(4, random_state=0).fit(X)
    rows = da.from_array(cupy.asarray(X), chunks=(5000, 4))
    labels, proba, scores = gm.predict(rows), gm.predict_proba(rows), gm.score_samples(rows)
    for lazy in (labels, proba, scores):
        assert isinstance(lazy._meta, cupy.ndarray)
        assert isinstance(lazy.compute(), cupy.ndarray)
    np.testing.assert_array_equal(labels.compute().get(), gm.predict(X))
    np.testing.assert_allclose(proba.compute().get(), gm.predict_proba(X), atol=1e-10)
    np.testing.assert_allclose(scores.compute().get(), gm.score_samples(X), rtol=1e-10)
    assert isinstance(gm.predict(cupy.asarray(X)), cupy.ndarray)
    assert gm.score(rows) == pytest.approx(gm.score(X), rel=1e-10)


def test_device_option_moves_numpy_chunks():
    X = blobs()
    cpu = GaussianMixture(4, random_state=0, chunk_rows=5000).fit(X)
    gpu = GaussianMixture(4, random_state=0, chunk_rows=5000, device="cuda").fit(X)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-7)
    labels = gpu.predict(da.from_array(X, chunks=5000))
    assert isinstance(labels._meta, np.ndarray)  # on the input's device
    np.testing.assert_array_equal(labels.compute(), cpu.predict(X))


def test_float32_compute_error_on_the_gpu():
    X = blobs()
    rows = da.from_array(cupy.asarray(X.astype(np.float32)), chunks=(5000, 4))
    f64 = GaussianMixture(4, random_state=0, max_iter=20, tol=0).fit(X.astype(np.float32))
    f32 = GaussianMixture(4, random_state=0, max_iter=20, tol=0, compute_dtype="float32")
    f32.fit(rows)
    error = np.abs(f32.means_ - f64.means_).max() / np.abs(f64.means_).max()
    print(f"float32 on the GPU vs float64 on the CPU, means after 20 iterations: {error:.2e}")
    assert error < 1e-4


def test_zarr_chunks_mapped_to_cupy_and_predictions_written(tmp_path):
    zarr = pytest.importorskip("zarr")
    from daskgmm import io

    X = blobs()
    da.from_array(X, chunks=(5000, 4)).to_zarr(str(tmp_path / "rows.zarr"))
    rows = da.from_zarr(str(tmp_path / "rows.zarr")).map_blocks(cupy.asarray)
    gm = GaussianMixture(4, random_state=0).fit(rows)
    np.testing.assert_allclose(gm.means_, GaussianMixture(4, random_state=0).fit(X).means_, 1e-7)
    io.write_predictions(gm, rows, tmp_path / "out.zarr", log_density=True)
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    np.testing.assert_array_equal(group["labels"][:], gm.predict(X))
