"""The consistency check of a loaded mixture: shapes, dtypes, finiteness, weights."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ..kernels.covariance import SHAPES
from ..kernels.params import COVARIANCE_TYPES


def check_mixture(model, path: Path) -> None:
    """The fitted parameters are finite float64 arrays of consistent shapes."""
    cov_type = model.covariance_type
    if cov_type not in COVARIANCE_TYPES:
        raise ModelFileError(f"{path}: unknown covariance_type {cov_type!r}")
    means = getattr(model, "means_", None)
    if not isinstance(means, np.ndarray) or means.ndim != 2:
        raise ModelFileError(f"{path}: no fitted means_ of shape (n_components, n_features)")
    k, d = means.shape
    if k != model.n_components:
        raise ModelFileError(f"{path}: means_ has {k} rows but n_components={model.n_components}")
    cov_shape = SHAPES[cov_type].parameters(k, d)
    covariance_names = ("covariances_", "precisions_", "precisions_cholesky_")
    expected = {"weights_": (k,), "means_": (k, d), **dict.fromkeys(covariance_names, cov_shape)}
    for name, shape in expected.items():
        arr = getattr(model, name, None)
        if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != np.float64:
            got = repr(arr) if not isinstance(arr, np.ndarray) else f"{arr.dtype}{arr.shape}"
            raise ModelFileError(f"{path}: {name} should be float64{shape}, got {got}")
        if not np.isfinite(arr).all():
            raise ModelFileError(f"{path}: {name} holds NaN or infinite values")
    if model.n_features_in_ != d:
        raise ModelFileError(f"{path}: n_features_in_ does not match means_")
    names = getattr(model, "feature_names_in_", None)
    if names is not None and len(names) != d:
        raise ModelFileError(f"{path}: feature_names_in_ has {len(names)} names for {d} features")
    if not math.isclose(float(model.weights_.sum()), 1.0, abs_tol=1e-8):
        raise ModelFileError(f"{path}: weights_ do not sum to 1")
    training_data = getattr(model, "training_data_", {})
    if not isinstance(training_data, dict):
        raise ModelFileError(f"{path}: training_data_ should be a JSON object (a fingerprint)")
