"""Every estimator parameter's constraint, declared once (numpy only).

The estimators validate their ``get_params()`` here in ``fit``; the command line
and pipeline specs check the same table, so a constraint is never restated.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from .devices import check_device

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
NAN_POLICIES = ("raise", "omit")
COMPUTE_DTYPES = ("float64", "float32")
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
ONLINE_VB_METHODS = ("memoized", "svi")


def _integer(low: int, high: float = np.inf, allow_none: bool = False) -> Callable:
    def check(name, value):
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {value!r}.")
        if not low <= value <= high:
            bound = f">= {low}" if high == np.inf else f"in [{low}, {high}]"
            raise ValueError(f"{name} must be {bound}, got {value!r}.")

    return check


def _real(low: float, allow_none: bool = False) -> Callable:
    def check(name, value):
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}.")
        if not (np.isfinite(value) and value >= low):
            raise ValueError(f"{name} must be a finite number >= {low}, got {value!r}.")

    return check


def _positive(allow_none: bool = False) -> Callable:
    def check(name, value):
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number > 0 or None, got {value!r}.")
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0 or None, got {value!r}.")

    return check


def _covariance_prior(name, value):
    """None, an array (checked against the data in ``kernels.priors``) or a number > 0."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        _positive()(name, value)


def _one_of(options: tuple) -> Callable:
    def check(name, value):
        if value not in options:
            raise ValueError(f"{name} must be one of {list(options)}, got {value!r}.")

    return check


def _boolean(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}.")


def _random_state(name, value):
    ok = value is None or isinstance(value, (numbers.Integral, np.random.RandomState))
    if isinstance(value, bool) or not ok:
        raise TypeError(
            f"{name} must be None, an int or a numpy.random.RandomState, got {value!r}."
        )


def _optional_string(name, value):
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be None or a string (a dimension name), got {value!r}.")


def _anything(name, value):
    return None


def _chunk_rows(name, value):
    if value == "auto":
        return
    _integer(1)(name, value)


def _warm_up(name, value):
    if value != "auto":
        _integer(1)(name, value)


def _kappa(name, value):
    _real(0.0)(name, value)
    if not 0.5 < value <= 1.0:
        raise ValueError(f"{name} must lie in (0.5, 1] for stepwise EM to converge, got {value!r}.")


#: Parameter name -> check(name, value); raises TypeError or ValueError.
PARAMETER_CONSTRAINTS: dict[str, Callable] = {
    "n_components": _integer(1),
    "covariance_type": _one_of(COVARIANCE_TYPES),
    "tol": _real(0.0),
    "reg_covar": _real(0.0),
    "max_iter": _integer(0),
    "n_init": _integer(1),
    "init_params": _one_of(INIT_PARAMS),
    "weights_init": _anything,  # checked against the data's shape in checks.check_initial_*
    "means_init": _anything,
    "precisions_init": _anything,
    "random_state": _random_state,
    "warm_start": _boolean,
    "verbose": _integer(0),
    "verbose_interval": _integer(1),
    "init_sample_size": _integer(1),
    "chunk_rows": _chunk_rows,
    "split_every": _integer(2, allow_none=True),
    "progress": _boolean,
    "scheduler": _anything,  # whatever dask.compute(scheduler=...) accepts
    "nan_policy": _one_of(NAN_POLICIES),
    "compute_dtype": _one_of(COMPUTE_DTYPES),
    "device": lambda name, value: check_device(value),  # None, 'cuda' or 'cuda:N'
    "feature_dim": _optional_string,  # the dimension of named (xarray, Zarr) input
    # variational Bayes (the array-valued priors are checked against the data's shape
    # in kernels.priors)
    "weight_concentration_prior_type": _one_of(PRIOR_TYPES),
    "weight_concentration_prior": _positive(allow_none=True),
    "mean_precision_prior": _positive(allow_none=True),
    "mean_prior": _anything,
    "degrees_of_freedom_prior": _positive(allow_none=True),
    "covariance_prior": _covariance_prior,
    # stepwise (online) EM
    "max_passes": _integer(1),
    "batch_size": _integer(1),
    "t0": _real(0.0),
    "kappa": _kappa,
    "warm_up": _warm_up,
    "final_batch_pass": _boolean,
    # streaming variational Bayes
    "method": _one_of(ONLINE_VB_METHODS),
}


def validate_parameters(params: dict) -> None:
    """Check constructor parameters against :data:`PARAMETER_CONSTRAINTS`.

    Parameters
    ----------
    params : dict
        ``estimator.get_params()``.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter and the allowed values.
    """
    for name, value in params.items():
        PARAMETER_CONSTRAINTS.get(name, _anything)(name, value)
