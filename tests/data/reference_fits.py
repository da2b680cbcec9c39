"""Fixed-seed fits whose parameters must not change, bit for bit, when code moves.

``python tests/data/reference_fits.py`` (run once with the tree *before* a change
on ``PYTHONPATH``) writes ``reference_fits.npz`` beside this file, and a saved
model and a finished checkpoint of the batch 'full' fit.  ``tests/test_bit_identity.py``
runs the same fits with the code under test and compares.  Both use only the
public API.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference_fits.npz"
SAVED_MODEL = HERE / "model_before_layers"
SAVED_ONLINE_MODEL = HERE / "online_model_before_layers"
CHECKPOINT = HERE / "checkpoint_before_layers"
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
PARAMETERS = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def reference_data() -> np.ndarray:
    """6,000 x 4 rows of four well-separated blobs, the same on every machine."""
    rng = np.random.default_rng(20261204)
    centres = np.array([[0, 0, 0, 0], [6, 0, 2, 0], [0, 7, 0, -3], [5, 5, 5, 5]], float)
    labels = rng.integers(0, 4, size=6000)
    return centres[labels] + rng.standard_normal((6000, 4)) * np.array([1.0, 0.5, 2.0, 1.5])


def batch_estimator(covariance_type: str, init_params: str = "kmeans"):
    from daskgmm import GaussianMixture

    return GaussianMixture(
        4,
        covariance_type=covariance_type,
        init_params=init_params,
        random_state=0,
        chunk_rows=1000,
        n_init=2,
        max_iter=30,
        tol=1e-6,
    )


def online_estimator(covariance_type: str):
    from daskgmm import OnlineGaussianMixture

    return OnlineGaussianMixture(
        4,
        covariance_type=covariance_type,
        random_state=0,
        chunk_rows=500,
        batch_size=1000,
        max_passes=2,
        final_batch_pass=True,
    )


def reference_fits():
    """Name -> fitted estimator, for every covariance type, batch and online."""
    from sklearn.exceptions import ConvergenceWarning

    X = reference_data()
    fits = {}
    for cov in COVARIANCE_TYPES:
        fits[f"batch_{cov}"] = batch_estimator(cov).fit(X)
        with warnings.catch_warnings():  # 30 iterations from random starts: not all converge
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits[f"batch_random_{cov}"] = batch_estimator(cov, "random").fit(X)
        fits[f"online_{cov}"] = online_estimator(cov).fit(X)
    return fits


def flatten(fits) -> dict[str, np.ndarray]:
    """The fitted parameters (and scalar results) of ``fits`` as named arrays."""
    out = {}
    for name, model in fits.items():
        for attr in PARAMETERS:
            out[f"{name}.{attr}"] = getattr(model, attr)
        out[f"{name}.lower_bound_"] = np.asarray(model.lower_bound_)
        if hasattr(model, "n_iter_"):
            out[f"{name}.n_iter_"] = np.asarray(model.n_iter_)
            out[f"{name}.lower_bounds_"] = np.asarray(model.lower_bounds_)
        else:
            out[f"{name}.log_likelihood_history_"] = np.asarray(model.log_likelihood_history_)
    return out


def main() -> None:
    import scipy
    import sklearn

    import daskgmm

    print("writing references with daskgmm from", daskgmm.__file__, file=sys.stderr)
    fits = reference_fits()
    versions = {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}
    np.savez(
        REFERENCE,
        **flatten(fits),
        **{f"version.{k}": np.asarray(v) for k, v in versions.items()},
    )
    fits["batch_full"].save(SAVED_MODEL, overwrite=True)
    fits["online_full"].save(SAVED_ONLINE_MODEL, overwrite=True)
    batch_estimator("full").fit(reference_data(), checkpoint=CHECKPOINT)


if __name__ == "__main__":
    main()
