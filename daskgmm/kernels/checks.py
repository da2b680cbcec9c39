"""Checks of data, sample weights, initial parameters and fitted state.

In-memory data go through scikit-learn's own validators
(``sklearn.utils.validation.check_array``, ``check_is_fitted``), so they are
converted and refused as scikit-learn does (sparse input, complex numbers,
object arrays of numbers).  Dask arrays are checked on their metadata only
(shape, dtype) with the same wording; anything that needs the data itself is
checked during the first pass over it.  Messages say what to change, in
scikit-learn's words where it has them.  (scikit-learn's validators are the one
non-numpy/scipy import of the kernels, here only, and imported where they are
called: the chunk tasks on dask workers import this module for its sample-weight
check, and scikit-learn would cost each worker about 90 MB.)
"""

from __future__ import annotations

import warnings

import numpy as np

from .covariance import SHAPES
from .devices import host_dtype


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
            "Reshape your data: use X.reshape(-1, 1) for one feature or X.reshape(1, -1) "
            "for one sample"
            if len(shape) < 2
            else "Flatten the sample dimensions into rows, e.g. X.reshape(-1, X.shape[-1])"
        )
        raise ValueError(
            f"Expected a 2-D array of shape (n_samples, n_features), got {len(shape)}-D "
            f"with shape {shape}. {hint}."
        )
    dtype = host_dtype(dtype)  # CuPy's dtypes are numpy's; other namespaces' by name
    if dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: X has dtype {dtype}; pass real numbers, e.g. "
            "X.real or abs(X)."
        )
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
        raise ValueError(
            f"Found array with {n_features} feature(s) (shape={tuple(shape)}) while a "
            "minimum of 1 is required; pass data with at least one feature column."
        )
    if n_components is not None and n_samples < max(n_components, 2):
        raise ValueError(
            f"Expected n_samples >= n_components (and at least 2 samples), but got "
            f"n_components = {n_components}, n_samples = {n_samples}; reduce "
            "n_components or supply more rows."
        )


def check_numpy_data(X, estimator=None, n_components: int | None = None):
    """In-memory data as a numpy array, validated by scikit-learn's ``check_array``.

    Sparse input raises a TypeError (densify it with ``X.toarray()``), complex
    numbers and strings a ValueError; object arrays of numbers and DataFrames
    become numpy arrays.  NaN and infinite values pass: the ``nan_policy`` of
    the pass decides about them.  Then :func:`check_data_shape`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Not a dask array (its values would be read).
    estimator : estimator, optional
        Named in scikit-learn's messages.
    n_components : int, optional
        When fitting: the data need at least this many rows.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        Of a numeric dtype (integers and booleans stay; objects become float64).
    """
    from sklearn.utils.validation import check_array

    X = check_array(
        X,
        accept_sparse=False,
        dtype="numeric",
        ensure_all_finite=False,
        allow_nd=True,
        estimator=estimator,
        input_name="X",
    )
    check_data_shape(X.shape, X.dtype, n_components)
    return X


def check_feature_count(n_features: int, expected: int, name: str = "the model") -> None:
    """Raise if data for predict/score has another feature count than the fit.

    ``name``: the estimator's class name, as scikit-learn's message has it.
    """
    if n_features != expected:
        raise ValueError(
            f"X has {n_features} features, but {name} is expecting {expected} features "
            "as input; pass data with the same columns as at fit time."
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


_NOT_FITTED = (
    "This %(name)s instance is not fitted yet. Call 'fit' with appropriate arguments "
    "before using this estimator."
)


def check_is_fitted(estimator) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has been fitted.

    scikit-learn's ``check_is_fitted`` on ``means_``, with its message (plus
    ``partial_fit`` where the estimator has it); the error is daskgmm's
    :class:`~daskgmm.errors.NotFittedError`, a subclass of scikit-learn's.
    """
    import sklearn.exceptions
    import sklearn.utils.validation

    from ..errors import NotFittedError

    message = _NOT_FITTED
    if hasattr(estimator, "partial_fit"):
        message += " 'partial_fit' fits it too."
    try:
        sklearn.utils.validation.check_is_fitted(estimator, "means_", msg=message)
    except sklearn.exceptions.NotFittedError as exc:
        raise NotFittedError(str(exc)) from None


# --------------------------------------------------------------------------- #
# user-supplied initial parameters
# --------------------------------------------------------------------------- #
# Messages begin as scikit-learn's (``sklearn.mixture``) and then say what to change.
def as_float_array(value, name: str) -> np.ndarray:
    """``value`` as a float64 array, finite (scikit-learn's ``check_array``); errors name it."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers.") from exc
    from sklearn.utils.validation import check_array

    # finiteness as scikit-learn checks it ("Input means_init contains NaN.")
    return check_array(arr, ensure_2d=False, allow_nd=True, ensure_min_samples=0, input_name=name)


def _check_shape(arr: np.ndarray, shape: tuple, label: str, name: str) -> None:
    if arr.shape != shape:
        raise ValueError(
            f"The parameter '{label}' should have the shape of {shape}, but got "
            f"{arr.shape}; give {name} the shape {shape}, from n_components and the "
            "data's n_features."
        )


def check_initial_weights(weights, n_components: int) -> np.ndarray:
    """Validate ``weights_init``: shape (K,), in [0, 1], summing to 1."""
    arr = as_float_array(weights, "weights_init")
    _check_shape(arr, (n_components,), "weights", "weights_init")
    if np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got min value "
            f"{arr.min():.5f}, max value {arr.max():.5f}; weights_init are the initial "
            "proportions of the components."
        )
    if abs(arr.sum() - 1.0) > 1e-8:
        raise ValueError(
            "The parameter 'weights' should be normalized, but got sum(weights) = "
            f"{arr.sum():.5f}; divide weights_init by its sum."
        )
    return arr


def check_initial_means(means, n_components: int, n_features: int) -> np.ndarray:
    """Validate ``means_init``: shape (K, D), finite."""
    arr = as_float_array(means, "means_init")
    _check_shape(arr, (n_components, n_features), "means", "means_init")
    return arr


def _check_positive(arr: np.ndarray, covariance_type: str) -> None:
    if np.any(arr <= 0):
        raise ValueError(
            f"'{covariance_type} precision' should be positive; precisions_init has "
            f"{int(np.count_nonzero(arr <= 0))} values <= 0."
        )


def _check_spd(arr: np.ndarray, covariance_type: str) -> None:
    mats = arr.reshape((-1, *arr.shape[-2:]))
    for i, mat in enumerate(mats):
        symmetric = np.allclose(mat, mat.T)
        if not symmetric or np.linalg.eigvalsh(mat).min() <= 0:
            which = f"component {i} of " if covariance_type == "full" else ""
            raise ValueError(
                f"'{covariance_type} precision' should be symmetric, positive-definite; "
                f"{which}precisions_init is not."
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
    arr = as_float_array(precisions, "precisions_init")
    expected = SHAPES[covariance_type].parameters(n_components, n_features)
    _check_shape(arr, expected, f"{covariance_type} precision", "precisions_init")
    _PRECISION_CHECK[covariance_type](arr, covariance_type)
    return arr
