"""Fixed-seed fits give the parameters the code gave before the re-layering, bit for bit.

The references (``tests/data/reference_fits.npz``, a saved batch model, a saved
online model and a finished checkpoint) were written by
``tests/data/reference_fits.py`` with the tree of commit 92442c1, before the
package was re-laid into layers.  The fits run the numpy kernels, which that code
had; the compiled quadratic kernel that came later sums in another order
(``tests/test_compiled.py`` holds it to the numpy kernels' statistics, 1e-12).
Bits depend on numpy's, scipy's and BLAS's builds: with the versions the
references were made with, equality is exact; with others the comparison falls
back to 1e-12 relative.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys

import numpy as np
import pytest
import scipy
import sklearn

import daskgmm

_spec = importlib.util.spec_from_file_location(
    "reference_fits", __import__("pathlib").Path(__file__).parent / "data" / "reference_fits.py"
)
reference_fits = importlib.util.module_from_spec(_spec)
sys.modules["reference_fits"] = reference_fits
_spec.loader.exec_module(reference_fits)


@pytest.fixture(scope="module")
def reference():
    with np.load(reference_fits.REFERENCE, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _same_stack(reference) -> bool:
    versions = {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}
    return all(str(reference[f"version.{k}"]) == v for k, v in versions.items())


@pytest.fixture(scope="module")
def numpy_kernels():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("daskgmm.kernels.estep.USE_COMPILED", False)
        yield


@pytest.fixture(scope="module")
def fits(numpy_kernels):
    return reference_fits.reference_fits()


def test_fixed_seed_fits_are_bit_identical(fits, reference):
    got = reference_fits.flatten(fits)
    expected = {k: v for k, v in reference.items() if not k.startswith("version.")}
    assert sorted(got) == sorted(expected)
    exact = _same_stack(reference)
    for name, value in expected.items():
        if exact:
            assert np.array_equal(got[name], value), f"{name} differs from the reference"
        else:  # another numpy/scipy/BLAS build: rounding may differ
            np.testing.assert_allclose(got[name], value, rtol=1e-12, err_msg=name)


def test_a_model_saved_before_loads_with_its_parameters(fits):
    for path, name in (
        (reference_fits.SAVED_MODEL, "batch_full"),
        (reference_fits.SAVED_ONLINE_MODEL, "online_full"),
    ):
        model = daskgmm.load(path)
        assert type(model).__name__ == type(fits[name]).__name__
        for attr in reference_fits.PARAMETERS:
            assert np.array_equal(getattr(model, attr), getattr(fits[name], attr)), attr
    online = daskgmm.load(reference_fits.SAVED_ONLINE_MODEL)
    assert online._online_stats is not None
    assert online.n_batches_seen_ == fits["online_full"].n_batches_seen_


def test_a_checkpoint_written_before_resumes_to_the_finished_fit(
    fits, numpy_kernels, tmp_path, monkeypatch
):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(reference_fits.CHECKPOINT, checkpoint)
    computed = []
    monkeypatch.setattr(
        "daskgmm.engine.passes.compute", lambda *g: computed.append(g) or pytest.fail("computed")
    )
    model = reference_fits.batch_estimator("full").fit(
        reference_fits.reference_data(), checkpoint=checkpoint
    )
    assert computed == []
    for attr in reference_fits.PARAMETERS:
        assert np.array_equal(getattr(model, attr), getattr(fits["batch_full"], attr)), attr
    assert model.n_iter_ == fits["batch_full"].n_iter_
