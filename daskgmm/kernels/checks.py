"""Checks of data, sample weights, initial parameters and fitted state (numpy only).

Array checks here see numpy arrays or array metadata (shape, dtype); anything
that needs the data itself is checked during the first pass over it.  Messages
say what to change.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import NotFittedError
from .covariance import SHAPES


def check_data_shape(shape: tuple, dtype, n_components: int | None = None) -> None:
    """Check the shape and dtype of data before any pass over it.

    Parameters
    ----------
    shape : tuple
        ``X.shape`` (may hold NaN for dask arrays of unknown chunk sizes).
    dtype : numpy dtype
    n_components : int, optional
        When fitting: the data need at least this many rows.

    Raises
    ------
    ValueError
    """
    if len(shape) != 2:
        hint = (
            "use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample"
            if len(shape) == 1
            else "flatten the sample dimensions into rows, e.g. X.reshape(-1, X.shape[-1])"
        )
        raise ValueError(
            f"Expected a 2-D array of shape (n_samples, n_features), got {len(shape)}-D "
            f"with shape {shape}; {hint}."
        )
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        raise ValueError(
            f"X has dtype {dtype}, which is not a real number type; convert it with "
            "X.astype('float64') (or 'float32') after removing non-numeric values."
        )
    n_samples, n_features = shape
    if not np.isfinite(n_samples):
        raise ValueError(
            "X has unknown chunk sizes along the rows; call X.compute_chunk_sizes() "
            "or build it with known chunks."
        )
    if n_features < 1:
        raise ValueError(f"X has {n_features} features; at least one is required.")
    if n_components is not None and n_samples < max(n_components, 2):
        raise ValueError(
            f"Expected n_samples >= n_components (and at least 2 samples), but got "
            f"n_components = {n_components}, n_samples = {n_samples}; reduce "
            "n_components or supply more rows."
        )


def check_feature_count(n_features: int, expected: int) -> None:
    """Raise if data for predict/score has another feature count than the fit."""
    if n_features != expected:
        raise ValueError(
            f"X has {n_features} features, but the model was fitted with {expected} "
            "features; pass data with the same columns as at fit time."
        )


def feature_names_of(X) -> np.ndarray | None:
    """Column names of a DataFrame-like ``X``, as scikit-learn's ``feature_names_in_``.

    An object array of the names when they are all strings, None for input
    without columns or with non-string names.  Mixed string and non-string names
    raise, as in scikit-learn.
    """
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return None
    names = list(columns)
    kinds = {isinstance(name, str) for name in names}
    if kinds == {True}:
        return np.asarray(names, dtype=object)
    if kinds == {True, False}:
        raise TypeError(
            "Feature names are only supported if all input features have string names, "
            f"but the input has {sorted({type(n).__name__ for n in names})} names; "
            "convert them all to strings, e.g. X.columns = X.columns.astype(str)."
        )
    return None


def check_feature_names(estimator, X) -> None:
    """Compare the column names of ``X`` with those seen at fit time, as scikit-learn.

    A warning when only one of them has names, a ValueError naming the
    differences when both have and they differ.
    """
    fitted = getattr(estimator, "feature_names_in_", None)
    given = feature_names_of(X)
    cls = type(estimator).__name__
    if fitted is None and given is None:
        return
    if given is None:
        warnings.warn(
            f"X does not have valid feature names, but {cls} was fitted with feature names",
            UserWarning,
            stacklevel=3,
        )
        return
    if fitted is None:
        warnings.warn(
            f"X has feature names, but {cls} was fitted without feature names",
            UserWarning,
            stacklevel=3,
        )
        return
    if len(fitted) == len(given) and np.array_equal(fitted, given):
        return
    message = "The feature names should match those that were passed during fit.\n"
    unseen = sorted(set(given) - set(fitted))
    missing = sorted(set(fitted) - set(given))
    for title, names in (
        ("Feature names unseen at fit time", unseen),
        ("Feature names seen at fit time, yet now missing", missing),
    ):
        if names:
            message += f"{title}:\n" + "".join(f"- {name}\n" for name in names[:5])
            message += "- ...\n" if len(names) > 5 else ""
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)


def check_sample_weight_values(sample_weight: np.ndarray, where: str = "") -> None:
    """Raise if sample weights are negative or not finite."""
    bad = ~np.isfinite(sample_weight) | (sample_weight < 0)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        raise ValueError(
            f"sample_weight has {n_bad} negative or non-finite values{where}; "
            "weights must be finite and >= 0."
        )


def check_sample_weight_shape(shape: tuple, n_samples: int) -> None:
    """Raise unless ``shape == (n_samples,)``."""
    if tuple(shape) != (n_samples,):
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), one weight per row of X, "
            f"got shape {tuple(shape)}."
        )


def check_is_fitted(estimator) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has been fitted."""
    if not hasattr(estimator, "means_"):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet; call 'fit' "
            "(or 'partial_fit') with training data before using this method."
        )


# --------------------------------------------------------------------------- #
# user-supplied initial parameters
# --------------------------------------------------------------------------- #
def _as_float_array(value, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers.") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def _check_shape(arr: np.ndarray, shape: tuple, name: str) -> None:
    if arr.shape != shape:
        raise ValueError(
            f"{name} should have shape {shape} (from n_components and the data's "
            f"n_features), but got {arr.shape}."
        )


def check_initial_weights(weights, n_components: int) -> np.ndarray:
    """Validate ``weights_init``: shape (K,), in [0, 1], summing to 1."""
    arr = _as_float_array(weights, "weights_init")
    _check_shape(arr, (n_components,), "weights_init")
    if np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(
            f"weights_init must lie in [0, 1], got min {arr.min():.5g}, max {arr.max():.5g}."
        )
    if abs(arr.sum() - 1.0) > 1e-8:
        raise ValueError(f"weights_init must sum to 1, got {arr.sum():.10g}; divide it by its sum.")
    return arr


def check_initial_means(means, n_components: int, n_features: int) -> np.ndarray:
    """Validate ``means_init``: shape (K, D), finite."""
    arr = _as_float_array(means, "means_init")
    _check_shape(arr, (n_components, n_features), "means_init")
    return arr


def _check_positive(arr: np.ndarray, covariance_type: str) -> None:
    if np.any(arr <= 0):
        raise ValueError(f"precisions_init ('{covariance_type}') must be positive.")


def _check_spd(arr: np.ndarray, covariance_type: str) -> None:
    mats = arr.reshape((-1, *arr.shape[-2:]))
    for i, mat in enumerate(mats):
        symmetric = np.allclose(mat, mat.T)
        if not symmetric or np.linalg.eigvalsh(mat).min() <= 0:
            which = f" component {i}" if covariance_type == "full" else ""
            raise ValueError(
                f"precisions_init ('{covariance_type}'){which} must be symmetric and "
                "positive definite."
            )


_PRECISION_CHECK = {
    "full": _check_spd,
    "tied": _check_spd,
    "diag": _check_positive,
    "spherical": _check_positive,
}


def check_initial_precisions(
    precisions, covariance_type: str, n_components: int, n_features: int
) -> np.ndarray:
    """Validate ``precisions_init`` for its covariance type (shape, positivity)."""
    arr = _as_float_array(precisions, "precisions_init")
    expected = SHAPES[covariance_type].parameters(n_components, n_features)
    _check_shape(arr, expected, f"precisions_init ('{covariance_type}')")
    _PRECISION_CHECK[covariance_type](arr, covariance_type)
    return arr
