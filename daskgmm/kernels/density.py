"""Gaussian log-densities of row blocks, softmax and the per-row answers (numpy only).

:class:`LogDensity` turns a model's parameters once into the matrices its row
kernel needs; :func:`weighted_log_prob` runs it over cache-sized blocks (the
reference of the compiled :func:`daskgmm.kernels.tiles.weighted_log_prob`, which
:mod:`daskgmm.kernels.answers` uses for ``predict`` and the like).  Nothing here
imports dask.
"""

from __future__ import annotations

import math

import numpy as np

from .covariance import SHAPES, log_det_cholesky

#: Bytes of the widest per-block temporary, (rows, K*(D+1)) float64 for 'full'; rows
#: are processed in blocks of this size so the products stay in cache.
BLOCK_BYTES = 1 << 22
LOG_2PI = math.log(2.0 * math.pi)
#: Log-probabilities (relative to a row's largest) below this are treated as -inf.
UNDERFLOW = -700.0


# --------------------------------------------------------------------------- #
# log-densities
# --------------------------------------------------------------------------- #
class Workspace:
    """Scratch arrays reused from one block of rows to the next.

    A block's temporaries are a few hundred KiB to a few MiB each.  Allocating them
    afresh for every block means an ``mmap``/``munmap`` and fresh page faults per
    temporary wherever glibc's dynamic mmap threshold is off, as in distributed
    workers, whose nanny sets ``MALLOC_TRIM_THRESHOLD_``: measured 3.8x slower.
    Arrays handed out under a name stay valid until that name is asked for again.
    """

    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple) -> np.ndarray:
        """An uninitialised float64 array of ``shape``, reusing the buffer ``name``."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size)
        return buffer[:size].reshape(shape)


class LogDensity:
    """Per-component Gaussian log-densities, prepared once for many row blocks.

    The parameters are turned once into the matrices that the row kernel needs
    (for 'full' the K factors side by side, so that one matrix product of width
    K*D serves all components).  Rows are centred on a per-block ``shift`` before
    any product, which keeps float32 data and data far from the origin accurate.

    Parameters
    ----------
    means : ndarray of shape (K, D)
    prec_chol : ndarray
        Precision Cholesky factors, shape per covariance type.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    weights : ndarray of shape (K,), optional
        Mixture weights; when given, :meth:`__call__` adds ``log(weights)``.
    log_weights : ndarray of shape (K,), optional
        Per-component terms added instead of ``log(weights)`` (the variational
        E-step's expected log-weights and precision corrections).
    """

    def __init__(self, means, prec_chol, covariance_type, weights=None, log_weights=None):
        self.covariance_type = covariance_type
        self.means = np.asarray(means, dtype=np.float64)
        self.prec_chol = np.asarray(prec_chol, dtype=np.float64)
        n_components, n_features = self.means.shape
        self.n_components = n_components
        self.n_features = n_features
        offset = log_det_cholesky(self.prec_chol, covariance_type, n_features)
        offset = np.broadcast_to(offset - 0.5 * n_features * LOG_2PI, (n_components,))
        if weights is not None:
            with np.errstate(divide="ignore"):
                offset = offset + np.log(np.asarray(weights, dtype=np.float64))
        if log_weights is not None:
            offset = offset + np.asarray(log_weights, dtype=np.float64)
        self.offset = np.ascontiguousarray(offset)
        _PREPARE[covariance_type](self)

    def __call__(
        self, X: np.ndarray, shift: np.ndarray, workspace: Workspace | None = None
    ) -> np.ndarray:
        """Log-densities (plus log-weights, if given) of rows ``X``.

        Parameters
        ----------
        X : ndarray of shape (n, D), float64
            Rows already centred: ``X = rows - shift``.
        shift : ndarray of shape (D,)
            What was subtracted from the rows.
        workspace : Workspace, optional
            Scratch arrays to reuse; the result then lives in it too.

        Returns
        -------
        ndarray of shape (n, K)
        """
        workspace = workspace if workspace is not None else Workspace()
        maha = _MAHALANOBIS[self.covariance_type](self, X, shift, workspace)
        maha *= -0.5
        maha += self.offset
        return maha


def _prepare_full(ld: LogDensity) -> None:
    # (K, D, D) -> (D, K*D): column block k is P_k, so one product whitens the rows
    # for all K components at once.
    ld.stacked = np.ascontiguousarray(
        np.transpose(ld.prec_chol, (1, 0, 2)).reshape(ld.n_features, -1)
    )
    # mu_k @ P_k side by side: (K*D,)
    ld.centres = np.einsum(
        "kd,dke->ke", ld.means, ld.stacked.reshape(ld.n_features, ld.n_components, -1)
    ).reshape(-1)


def _prepare_tied(ld: LogDensity) -> None:
    # The shared factor repeated K times: the same kernel as 'full'.
    ld.stacked = np.ascontiguousarray(np.tile(ld.prec_chol, (1, ld.n_components)))
    ld.centres = (ld.means @ ld.prec_chol).reshape(-1)


def _prepare_diag(ld: LogDensity) -> None:
    ld.precisions = np.square(ld.prec_chol)  # (K, D)


def _prepare_spherical(ld: LogDensity) -> None:
    ld.precisions = np.square(ld.prec_chol)  # (K,)


def _mahalanobis_stacked(ld: LogDensity, X: np.ndarray, shift: np.ndarray, ws: Workspace):
    """|x P_k - mu_k P_k|^2 for all k with one product; 'full' and 'tied'.

    A column of ones carries the offsets ``(mu_k - shift) P_k`` into the product, and
    the squared norms of the K residual blocks are row-wise dot products, so the
    (n, K*D) residual is written once and never squared into a second array.
    """
    n, d = X.shape
    k = ld.n_components
    augmented = ws.array("augmented", (n, d + 1))
    augmented[:, :d] = X
    augmented[:, d] = 1.0
    weights = np.empty((d + 1, ld.stacked.shape[1]))
    weights[:d] = ld.stacked
    weights[d] = shift @ ld.stacked - ld.centres
    y = np.matmul(augmented, weights, out=ws.array("whitened", (n, k * d))).reshape(n * k, d)
    return np.einsum("ij,ij->i", y, y, out=ws.array("maha", (n * k,))).reshape(n, k)


def _mahalanobis_diag(ld: LogDensity, X: np.ndarray, shift: np.ndarray, ws: Workspace):
    n, k = X.shape[0], ld.n_components
    means = ld.means - shift
    prec = ld.precisions
    squares = np.square(X, out=ws.array("squares", X.shape))
    out = np.matmul(squares, prec.T, out=ws.array("maha", (n, k)))
    out += np.matmul(X, -2.0 * (means * prec).T, out=ws.array("linear", (n, k)))
    out += (np.square(means) * prec).sum(axis=1)
    return out


def _mahalanobis_spherical(ld: LogDensity, X: np.ndarray, shift: np.ndarray, ws: Workspace):
    n, k = X.shape[0], ld.n_components
    means = ld.means - shift
    out = np.matmul(X, -2.0 * means.T, out=ws.array("maha", (n, k)))
    out += np.einsum("nd,nd->n", X, X, out=ws.array("norms", (n,)))[:, None]
    out += np.square(means).sum(axis=1)
    out *= ld.precisions
    return out


_PREPARE = {
    "full": _prepare_full,
    "tied": _prepare_tied,
    "diag": _prepare_diag,
    "spherical": _prepare_spherical,
}
_MAHALANOBIS = {
    "full": _mahalanobis_stacked,
    "tied": _mahalanobis_stacked,
    "diag": _mahalanobis_diag,
    "spherical": _mahalanobis_spherical,
}


def softmax_columns(resp: np.ndarray):
    """Softmax over the components of component-major log-probabilities, in place.

    Parameters
    ----------
    resp : ndarray of shape (K, n)
        Log-probabilities; overwritten with the probabilities.

    Returns
    -------
    resp : ndarray of shape (K, n)
        The same array: probabilities, NaN for rows that are all ``-inf`` or hold NaN.
    lse : ndarray of shape (n,)
        Per row ``log(sum(exp(.)))``; not finite for such rows.
    """
    top = resp.max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        resp -= top
        # Probabilities below exp(-700) ~ 1e-304 become exact zeros: as subnormal
        # numbers (and through the products of the statistics) they cost x86 CPUs
        # ~100 cycles per operation, and no sum of weights can see them.
        np.putmask(resp, resp < UNDERFLOW, -np.inf)
        np.exp(resp, out=resp)
        total = resp.sum(axis=0)
        resp /= total
        lse = np.log(total)
    lse += top
    return resp, lse


def softmax_components(a: np.ndarray, out: np.ndarray | None = None):
    """Softmax over components and log-sum-exp, with one ``exp``.

    Works component-major: a (K, n) copy of ``a`` turns the reductions over K
    into K-way elementwise operations on rows of length n, several times faster
    than reducing short rows.

    Parameters
    ----------
    a : ndarray of shape (n, K)
    out : ndarray of shape (K, n), optional
        Where to write the probabilities.

    Returns
    -------
    resp : ndarray of shape (K, n)
        Probabilities; NaN for rows that are all ``-inf`` or hold NaN.
    lse : ndarray of shape (n,)
        Row-wise ``log(sum(exp(a)))``; not finite for such rows.
    """
    resp = np.ascontiguousarray(a.T) if out is None else out
    if out is not None:
        np.copyto(resp, a.T)
    return softmax_columns(resp)


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """Row-wise ``log(sum(exp(a), axis=1))``, stable; (n, K) -> (n,).

    Rows whose entries are all ``-inf`` give ``-inf``; rows with NaN give NaN.
    """
    top = a.max(axis=1)
    safe_top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(np.exp(a - safe_top[:, None]).sum(axis=1))
    out += safe_top
    return out


def block_rows(n_components: int, n_features: int, covariance_type: str = "full") -> int:
    """Rows per cache block for the row kernels (at least 256)."""
    width = SHAPES[covariance_type].block_width(n_components, max(n_features, 1))
    return int(max(256, BLOCK_BYTES // (8 * width)))


def weighted_log_prob(X: np.ndarray, log_density: LogDensity) -> np.ndarray:
    """``log(weight_k) + log N(x | k)`` for every row, in cache-sized blocks.

    Rows are centred on the mean of the model's means before any product.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    log_density : LogDensity
        Prepared with weights.

    Returns
    -------
    ndarray of shape (n, K), float64
    """
    n = X.shape[0]
    out = np.empty((n, log_density.n_components))
    shift = log_density.means.mean(axis=0)
    step = block_rows(log_density.n_components, log_density.n_features, log_density.covariance_type)
    for start in range(0, n, step):
        rows = np.asarray(X[start : start + step], dtype=np.float64) - shift
        out[start : start + step] = log_density(rows, shift)
    return out
