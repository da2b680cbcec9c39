"""The array-namespace path (CuPy chunks on a GPU), run on every machine through
``array-api-strict``.

array-api-strict arrays on its non-CPU device ``device1`` refuse numpy
conversion as CuPy arrays do ("Implicit conversion to a NumPy array is not
allowed"), refuse numpy dtypes and out-of-bounds slices: a stray ``np.`` call on
the rows fails here as it would on the GPU.  Dask carries such chunks when the
arrays are made with ``map_blocks(..., meta=...)`` (their dtype is then the
namespace's own); joining chunks needs ``concatenate_lookup`` registered for
them (dask registers CuPy's itself).

The kernels are compared with the numpy kernels, the fits with the same fits on
numpy chunks (to 1e-7, as the GPU path must equal the CPU path), and the answers
with the numpy answers.  ``tests/test_gpu.py`` runs the same on CuPy where a GPU is.
"""

from __future__ import annotations

import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pytest

xps = pytest.importorskip("array_api_strict")

from daskgmm import BayesianGaussianMixture, GaussianMixture  # noqa: E402
from daskgmm.kernels import devices, estep, xp_estep  # noqa: E402
from daskgmm.kernels.covariance import precision_cholesky  # noqa: E402
from daskgmm.kernels.density import LogDensity  # noqa: E402
from daskgmm.kernels.responsibilities import (  # noqa: E402
    EStep,
    OneComponent,
    RandomResponsibilities,
)

DEVICE = xps.Device("device1")
CPU = xps.Device("CPU_DEVICE")
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
pytestmark = [
    pytest.mark.filterwarnings("ignore:You are comparing a array_api_strict dtype"),
    # numpy under array-api-strict warns on the NaN rows (the numpy kernels silence
    # them with np.errstate; CuPy never warns)
    pytest.mark.filterwarnings("ignore::RuntimeWarning:array_api_strict"),
]


@pytest.fixture(scope="module", autouse=True)
def _dask_joins_strict_chunks():
    from dask.array.dispatch import concatenate_lookup

    concatenate_lookup.register(
        type(xps.asarray(0.0)), lambda seq, axis=0: xps.concat(list(seq), axis=axis)
    )
    with dask.config.set(scheduler="sync"):
        yield


def on_device(x):
    return xps.asarray(np.asarray(x), device=DEVICE)


def host(x):
    return np.asarray(x.to_device(CPU))


def strict_chunks(X: np.ndarray, rows: int) -> da.Array:
    return da.from_array(X, chunks=(rows, X.shape[1])).map_blocks(
        on_device, meta=on_device(np.empty((0, 0)))
    )


def blobs(n=4000, d=3, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-4.0, 0, 1], [0, 4, -1], [4, -2, 0]])[:, :d]
    X = np.concatenate([rng.normal(c, 1.0 + i * 0.3, (n // 3, d)) for i, c in enumerate(centres)])
    return rng.permutation(X) + offset


def log_density(cov_type, k=3, d=4, seed=1):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) + 100.0
    covariances = {
        "full": np.stack([np.eye(d) * (1.0 + i) + 0.2 for i in range(k)]),
        "tied": np.eye(d) * 2.0 + 0.3,
        "diag": rng.uniform(1.0, 3.0, size=(k, d)),
        "spherical": rng.uniform(1.0, 3.0, size=k),
    }[cov_type]
    weights = np.linspace(1.0, 2.0, k) / np.linspace(1.0, 2.0, k).sum()
    return LogDensity(means, precision_cholesky(covariances, cov_type), cov_type, weights)


def assert_stats_equal(ours, reference, rtol=1e-10):
    for name in ("nk", "means", "m2"):
        a, b = getattr(ours, name), getattr(reference, name)
        scale = np.abs(b).max()
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=name)
    assert ours.log_likelihood == pytest.approx(reference.log_likelihood, rel=rtol, abs=1e-12)
    assert ours.weight_sum == pytest.approx(reference.weight_sum, rel=1e-12)
    assert (ours.n_rows, ours.n_bad, ours.bad_chunks) == (
        reference.n_rows,
        reference.n_bad,
        reference.bad_chunks,
    )


# --------------------------------------------------------------------------- #
# the chunk kernels
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("kind", ["estep", "one", "random"])
@pytest.mark.parametrize("weighted", [False, True])
def test_chunk_stats_equal_the_numpy_kernels(cov_type, kind, weighted):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 4)) * 3.0 + 100.0  # far from the origin
    X[[7, 1500], [2, 0]] = [np.nan, np.inf]
    weights = rng.uniform(0.5, 2.0, size=3000) if weighted else None
    responsibilities = {
        "estep": lambda: EStep(log_density(cov_type)),
        "one": lambda: OneComponent("full" if cov_type in ("full", "tied") else "diag"),
        "random": lambda: RandomResponsibilities(5, 3, cov_type),
    }[kind]()
    reference = estep.chunk_stats(X, responsibilities, weights, 4)
    ours = estep.chunk_stats(on_device(X), responsibilities, weights, 4)  # dispatched
    assert_stats_equal(ours, reference)
    assert ours.n_bad == 2 and ours.bad_chunks == {4: 2}
    assert isinstance(ours.m2, np.ndarray) and ours.m2.dtype == np.float64


def test_small_chunks_and_chunks_of_bad_rows():
    ld = log_density("full")
    X = np.full((5, 4), np.nan)
    stats = estep.chunk_stats(on_device(X), EStep(ld), None, 9)
    assert (stats.n_rows, stats.n_bad, stats.bad_chunks, stats.weight_sum) == (5, 5, {9: 5}, 0)
    one_row = np.random.default_rng(0).normal(size=(1, 4)) + 100.0
    assert_stats_equal(
        estep.chunk_stats(on_device(one_row), EStep(ld)), estep.chunk_stats(one_row, EStep(ld))
    )


def test_rows_are_processed_in_blocks(monkeypatch):
    """Several blocks per chunk give the chunk's statistics (the GPU's chunks are large)."""
    from daskgmm.kernels import xp_density

    X = np.random.default_rng(3).normal(size=(5000, 4)) + 100.0
    ld = log_density("full")
    reference = estep.chunk_stats(X, EStep(ld))
    monkeypatch.setattr(xp_density, "MIN_BLOCK_ROWS", 700)
    monkeypatch.setattr(xp_density, "BLOCK_ELEMENTS", 700 * 12)
    assert xp_density.block_rows(3, 4) == 700
    assert_stats_equal(estep.chunk_stats(on_device(X), EStep(ld)), reference)


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
def test_float32_compute_error_against_float64(cov_type):
    """compute_dtype='float32': the whitening in float32, the sums in float64.

    Measured (printed with ``-s``), relative to the largest value: n_k 7e-9 to
    3.6e-7, means 5e-10 to 5e-9, second moments 3e-8 to 3.5e-7, log-likelihood 2e-8
    to 4e-8 (float32 sums over all 20,000 rows would make the moments' 5.5e-6).
    """
    X32 = (np.random.default_rng(4).normal(size=(20000, 4)) * 3.0 + 100.0).astype(np.float32)
    ld = log_density(cov_type)
    reference = estep.chunk_stats(X32.astype(np.float64), EStep(ld))  # the same values
    ours = xp_estep.chunk_stats(on_device(X32), EStep(ld, "float32"))
    errors = {}
    for name in ("nk", "means", "m2"):
        a, b = getattr(ours, name), getattr(reference, name)
        errors[name] = float(np.abs(a - b).max() / np.abs(b).max())
    errors["log_likelihood"] = abs(ours.log_likelihood / reference.log_likelihood - 1)
    print(f"float32 vs float64 ({cov_type}): {errors}")
    assert max(errors.values()) < 2e-6
    assert max(errors.values()) > 0  # float32 really ran


# --------------------------------------------------------------------------- #
# fits and answers on dask arrays of such chunks
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_equals_the_cpu_path(cov_type):
    X = blobs(offset=50.0)
    kwargs = dict(covariance_type=cov_type, init_params="random", random_state=0, tol=1e-10)
    cpu = GaussianMixture(3, max_iter=25, **kwargs).fit(da.from_array(X, chunks=(1000, 3)))
    ours = GaussianMixture(3, max_iter=25, **kwargs).fit(strict_chunks(X, 1000))
    assert ours.n_iter_ == cpu.n_iter_ >= 10
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        a, b = getattr(ours, name), getattr(cpu, name)
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-7 * np.abs(b).max(), err_msg=name)
    assert ours.lower_bound_ == pytest.approx(cpu.lower_bound_, rel=1e-7)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_bayesian_fit_equals_the_cpu_path():
    X = blobs()
    kwargs = dict(n_components=4, random_state=0, max_iter=20, tol=1e-10)
    cpu = BayesianGaussianMixture(**kwargs).fit(da.from_array(X, chunks=(1000, 3)))
    ours = BayesianGaussianMixture(**kwargs).fit(strict_chunks(X, 1000))
    np.testing.assert_allclose(ours.weights_, cpu.weights_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.means_, cpu.means_, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(ours.covariances_, cpu.covariances_, rtol=1e-7, atol=1e-7)
    assert ours.lower_bound_ == pytest.approx(cpu.lower_bound_, rel=1e-7)


def test_answers_stay_on_the_device_and_equal_the_cpu_answers():
    X = blobs()
    X[5] = np.nan
    gm = GaussianMixture(3, random_state=0, nan_policy="omit").fit(X)
    rows = strict_chunks(X, 1000)
    labels, proba, scores = gm.predict(rows), gm.predict_proba(rows), gm.score_samples(rows)
    for lazy in (labels, proba, scores):
        assert type(lazy._meta) is type(on_device(0.0))
        assert lazy.compute().device == DEVICE
    np.testing.assert_array_equal(host(labels.compute()), gm.predict(X))
    np.testing.assert_allclose(host(proba.compute()), gm.predict_proba(X), atol=1e-12)
    np.testing.assert_allclose(host(scores.compute()), gm.score_samples(X), rtol=1e-12)
    assert host(labels.compute())[5] == -1 and np.isnan(host(scores.compute())[5])


def test_nan_rows_raise_naming_their_chunk():
    X = blobs()
    gm = GaussianMixture(3, random_state=0).fit(X)
    X[2500] = np.nan
    with pytest.raises(ValueError, match=r"1 rows with NaN.*row chunks 2 \(1 rows\)"):
        gm.predict(strict_chunks(X, 1000)).compute()
    with pytest.raises(ValueError, match=r"1 rows with NaN.*row chunks 2 \(1 rows\)"):
        GaussianMixture(3, random_state=0).fit(strict_chunks(X, 1000))


def test_an_in_memory_device_array_is_fitted_and_answered_on_its_device():
    X = blobs()
    cpu = GaussianMixture(3, random_state=0, chunk_rows=1000).fit(X)
    ours = GaussianMixture(3, random_state=0, chunk_rows=1000).fit(on_device(X))
    np.testing.assert_allclose(ours.means_, cpu.means_, rtol=1e-7)
    labels = ours.predict(on_device(X))
    assert labels.device == DEVICE
    np.testing.assert_array_equal(host(labels), cpu.predict(X))
    assert ours.training_data_["kind"] == "device"


def test_device_option_moves_chunks_and_brings_answers_back(monkeypatch):
    """device='cuda' through a stand-in mover (array-api-strict's device1 for the GPU)."""
    moved = []

    def mover(x, index):
        moved.append(type(x))
        return on_device(x)

    monkeypatch.setitem(devices.MOVERS, "cuda", mover)
    X = blobs()
    cpu = GaussianMixture(3, random_state=0, chunk_rows=1000).fit(X)
    ours = GaussianMixture(3, random_state=0, chunk_rows=1000, device="cuda").fit(X)
    assert np.ndarray in moved  # the chunks were moved as they were read
    np.testing.assert_allclose(ours.covariances_, cpu.covariances_, rtol=1e-7)
    Xd = da.from_array(X, chunks=(1000, 3))
    labels = ours.predict(Xd)
    assert isinstance(labels._meta, np.ndarray)  # back on the input's device: the host
    np.testing.assert_array_equal(labels.compute(), cpu.predict(X))
    assert ours.score(Xd) == pytest.approx(cpu.score(X), rel=1e-12)


def test_device_parameter_is_checked():
    with pytest.raises(ValueError, match="device must be None"):
        GaussianMixture(device="tpu").fit(blobs())
    with pytest.raises(TypeError, match="device must be None or a string"):
        BayesianGaussianMixture(device=0).fit(blobs())
    assert GaussianMixture(device="cuda:1").get_params()["device"] == "cuda:1"


def test_write_predictions_computes_on_the_device_and_writes_from_the_host(tmp_path, monkeypatch):
    """The table of answers is made on the device ('cuda' through a stand-in mover)
    and brought to the host chunk by chunk as it is written.  (A source of
    array-api-strict chunks itself is not opened by ``daskgmm.io``: their dtype is
    not numpy's, whereas CuPy's is; ``tests/test_gpu.py`` writes from CuPy chunks.)"""
    zarr = pytest.importorskip("zarr")
    from daskgmm import io

    seen = []
    real = devices.to_host

    def to_host(x):
        seen.append(type(x))
        return real(x)

    monkeypatch.setitem(devices.MOVERS, "cuda", lambda x, index: on_device(x))
    monkeypatch.setattr("daskgmm.engine.rows.to_host", to_host)
    X = blobs()
    gm = GaussianMixture(3, random_state=0, device="cuda").fit(X)
    source = da.from_array(X, chunks=(1000, 3))
    io.write_predictions(gm, source, tmp_path / "out.zarr", proba=True, log_density=True)
    assert type(on_device(0.0)) in seen
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    np.testing.assert_array_equal(group["labels"][:], gm.predict(X))
    np.testing.assert_allclose(group["proba"][:], gm.predict_proba(X), atol=1e-7)
    np.testing.assert_allclose(group["log_density"][:], gm.score_samples(X), rtol=1e-12)


def test_import_daskgmm_imports_neither_cupy_nor_array_api_compat():
    code = (
        "import sys, daskgmm, daskgmm.kernels.estep, daskgmm.kernels.answers\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('cupy', 'array_api_compat', 'array_api_strict')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
