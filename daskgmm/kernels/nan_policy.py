"""The NaN policy, in one place: what rows with a NaN or infinite value do (numpy only).

Fitting: the E-step of every pass counts such rows (and leaves them out of the
statistics) at no extra cost; after the pass :func:`check_bad_rows` raises,
naming their row chunks, under ``nan_policy='raise'``, and under ``'omit'``
only when nothing is left to fit.  Initialisation samples are checked by
:func:`check_sample_rows`.  Predicting: :func:`finite_rows_only` wraps a row
kernel so that such rows raise, or get a fill value (:data:`LABEL_FILL` for
labels, NaN for probabilities and scores).
"""

from __future__ import annotations

import numpy as np

from .devices import namespace

#: Label of a row omitted under ``nan_policy='omit'``.
LABEL_FILL = -1


def bad_rows_error(
    n_bad: int, bad_chunks: dict, scope: str = "", action: str = "fitting"
) -> ValueError:
    """The error for rows with NaN or infinite values: how many, in which chunks.

    Parameters
    ----------
    n_bad : int
    bad_chunks : dict
        Row-chunk index -> number of bad rows (may be empty for in-memory data).
    scope : str
        Inserted after "values", e.g. " (among the sampled rows)".
    action : str
        What the rows get in the way of ("fitting", "predicting").
    """
    chunks = sorted(bad_chunks)
    listed = ", ".join(f"{c} ({bad_chunks[c]} rows)" for c in chunks[:10])
    more = f" and {len(chunks) - 10} more" if len(chunks) > 10 else ""
    where = f", in row chunks {listed}{more}" if chunks else ""
    return ValueError(
        f"X contains {n_bad} rows with NaN or infinite values{scope}{where}; "
        f"remove or impute them before {action}, or pass nan_policy='omit' to leave "
        "them out."
    )


def check_rows_left(n_bad: int, weight_sum: float) -> None:
    """Under ``nan_policy='omit'``: raise if no row with positive weight is left."""
    if not weight_sum > 0:
        raise ValueError(
            f"No rows are left to fit: {n_bad} rows with NaN or infinite values were "
            "omitted and the remaining rows have zero total weight; check the data's "
            "mask or fill value."
        )


def chunk_counts(row_indices: np.ndarray, row_chunks: tuple) -> dict:
    """Row-chunk index -> how many of ``row_indices`` fall in it."""
    chunk_of_row = np.searchsorted(np.cumsum(row_chunks), row_indices, side="right")
    chunks, counts = np.unique(chunk_of_row, return_counts=True)
    return {int(c): int(n) for c, n in zip(chunks, counts, strict=True)}


def check_bad_rows(stats, nan_policy: str = "raise") -> None:
    """After a pass: raise for non-finite rows unless ``nan_policy='omit'``.

    Under 'omit' the rows were already left out of the statistics by the E-step;
    only a pass with nothing left raises.  Under either policy a pass whose
    sample weights sum to zero raises.

    Parameters
    ----------
    stats : SufficientStats
        The merged statistics of the pass.
    nan_policy : {'raise', 'omit'}
    """
    if nan_policy == "omit" and stats.n_bad:
        check_rows_left(stats.n_bad, stats.weight_sum)
        return
    if stats.n_bad:
        raise bad_rows_error(stats.n_bad, stats.bad_chunks)
    if not stats.weight_sum > 0:
        raise ValueError("The sample weights sum to zero; give at least one row a positive weight.")


def check_sample_rows(X, weights, indices, row_chunks, scope: str, nan_policy: str):
    """An initialisation sample's rows under the NaN policy: raise, or drop the bad ones.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    weights : ndarray of shape (n,) or None
    indices : ndarray of shape (n,)
        Where the rows sit in the data (to name their row chunks).
    row_chunks : tuple of int
    scope : str
        Inserted into the error message after "values".
    nan_policy : {'raise', 'omit'}

    Returns
    -------
    X, weights
        Without the rows that hold NaN or inf, under 'omit'.
    """
    finite = np.isfinite(X).all(axis=1)
    if finite.all():
        return X, weights
    if nan_policy == "omit":
        return X[finite], (None if weights is None else weights[finite])
    bad_chunks = chunk_counts(indices[~finite], row_chunks)
    raise bad_rows_error(int((~finite).sum()), bad_chunks, scope)


def finite_rows_only(row_func, fill):
    """Wrap a row kernel for rows with NaN or inf: raise, or give them ``fill``.

    The kernel's shared argument is ``(log_density, nan_policy)``.  Under
    ``nan_policy='raise'`` such rows raise (under ``map_blocks`` the chunk index
    arrives as ``block_id`` and is named in the error); under 'omit' they get
    ``fill`` (-1 for labels, NaN for probabilities and scores), as when they were
    left out of the fit.  The check costs one ``isfinite`` over the block.  Rows
    of another array namespace (CuPy) are checked and filled on their device.
    """

    def checked(X, shared, block_id=None):
        log_density, nan_policy = shared
        if namespace(X) is not None:
            return _checked_on_device(row_func, X, log_density, nan_policy, fill, block_id)
        bad = ~np.isfinite(X).all(axis=1)
        if not bad.any():
            return row_func(X, log_density)
        if nan_policy != "omit":
            chunks = {} if block_id is None else {block_id[0]: int(bad.sum())}
            raise bad_rows_error(int(bad.sum()), chunks, action="predicting or scoring")
        good = row_func(X[~bad], log_density)
        out = np.full((X.shape[0], *good.shape[1:]), fill, dtype=good.dtype)
        out[~bad] = good
        return out

    checked.__name__ = row_func.__name__
    return checked


def _checked_on_device(row_func, X, log_density, nan_policy: str, fill, block_id):
    """:func:`finite_rows_only` for rows of another array namespace, on their device:
    under 'omit' the bad rows are computed as zeros, then given ``fill``."""
    xp = namespace(X)
    bad = xp.logical_not(xp.all(xp.isfinite(X), axis=1))
    n_bad = int(xp.sum(xp.astype(bad, xp.int64)))
    if not n_bad:
        return row_func(X, log_density)
    if nan_policy != "omit":
        chunks = {} if block_id is None else {block_id[0]: n_bad}
        raise bad_rows_error(n_bad, chunks, action="predicting or scoring")
    out = row_func(xp.where(bad[:, None], xp.zeros_like(X), X), log_density)
    mask = bad if out.ndim == 1 else bad[:, None]
    return xp.where(mask, xp.full_like(out, fill), out)
