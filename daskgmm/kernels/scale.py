"""Data too large for float64's squares: found where it happens, named with the cure.

Squared deviations overflow float64 once values reach about 1e154 (its largest
number is about 1.8e308), and sums of many of them sooner.  Left alone, the
overflow shows up far from its cause: as scipy's "array must not contain infs or
NaNs", as a "singular covariance", or as finite rows counted among the rows with
NaN or infinite values (and silently left out under ``nan_policy='omit'``).
Three checks raise :class:`~daskgmm.errors.DataScaleError` instead, each free on
data of ordinary scale:

- :func:`check_sample_scale`: the initialisation sample, before any initialiser
  runs on it;
- :func:`check_overflow_rows`: after a chunk's E-step, only when it counted bad
  rows (rows the E-step found non-finite although all their values are finite);
- :func:`check_finite_statistics`: merged statistics, before an M-step.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataScaleError
from .devices import to_host

#: What to do about it, at the end of every message.
ADVICE = (
    "Scale the data before fitting, e.g. with sklearn.preprocessing.StandardScaler or "
    "by dividing it by a constant (its typical magnitude)."
)


def _largest(X: np.ndarray) -> float:
    """The largest finite absolute value of ``X`` (0 if there is none)."""
    values = np.abs(np.asarray(X, dtype=np.float64))
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else 0.0


def check_sample_scale(X: np.ndarray) -> None:
    """Raise if the squared deviations of the rows ``X`` from their mean overflow.

    Parameters
    ----------
    X : ndarray of shape (n, D)
        Finite rows (the initialisation sample).

    Raises
    ------
    DataScaleError
    """
    with np.errstate(over="ignore", invalid="ignore"):
        X = np.asarray(X, dtype=np.float64)
        squares = np.square(X - X.mean(axis=0)).sum(axis=0)
    if not np.isfinite(squares).all():
        raise DataScaleError(
            f"The data's scale overflows float64: values reach |x| = {_largest(X):.3g}, "
            "and their squared terms (the covariances) exceed float64's largest number "
            f"(about 1.8e308). {ADVICE}"
        )


def check_overflow_rows(X: np.ndarray, stats, chunk_index: int) -> None:
    """Raise if a chunk's E-step counted finite rows as bad: their densities overflowed.

    Costs nothing unless the chunk had bad rows (``stats.n_bad``).

    Parameters
    ----------
    X : ndarray of shape (n, D)
        The chunk's rows (those of another namespace, e.g. CuPy, are copied to
        the host when there were bad rows).
    stats : SufficientStats
        The chunk's statistics, with its count of bad rows.
    chunk_index : int
        Position of the chunk among the row chunks, for the message.

    Raises
    ------
    DataScaleError
    """
    if not stats.n_bad:
        return
    X = to_host(X)
    finite = np.isfinite(X).all(axis=1)
    n_overflow = stats.n_bad - int(np.count_nonzero(~finite))
    if n_overflow <= 0:
        return
    raise DataScaleError(
        f"In row chunk {chunk_index} the densities of {n_overflow} rows whose values are "
        "all finite overflowed float64: the chunk's largest |value| is "
        f"{_largest(X[finite]):.3g}, and squares overflow from about 1e154. Such rows are "
        f"not missing values, so they are not left out. {ADVICE} If only a few values are "
        "this large, check them: they may be errors."
    )


def check_finite_statistics(stats) -> None:
    """Raise if merged statistics overflowed (the second moments or means are not finite).

    Rows with NaN or inf never enter the statistics, so non-finite statistics mean
    that finite values were too large.

    Raises
    ------
    DataScaleError
    """
    if np.isfinite(stats.m2).all() and np.isfinite(stats.means).all():
        return
    raise DataScaleError(
        "The data's scale overflows float64: the weighted sums of squared deviations "
        "(the covariances' statistics) are infinite"
        f" (component means reach |x| = {_largest(stats.means):.3g}). {ADVICE}"
    )
