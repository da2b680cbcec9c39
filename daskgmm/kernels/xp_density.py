"""Gaussian log-densities of row blocks in any array namespace (CuPy on a GPU).

The array-namespace counterpart of :class:`daskgmm.kernels.density.LogDensity`:
the same prepared parameters (means, precision Cholesky factors, the
per-component ``offset``) copied once to the rows' device, and a row kernel that
whitens a block for every component by one batched matrix product::

    y_k = (x - shift) P_k - (mu_k - shift) P_k        (K, n, D)
    log p_k(x) = offset_k - |y_k|^2 / 2                (K, n)

followed by a stable log-sum-exp over the components.  Only the namespace's own
functions are called on the rows (no numpy), so the rows stay on their device;
:mod:`daskgmm.kernels.xp_estep` and :mod:`daskgmm.kernels.xp_answers` use it.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from .density import LogDensity
from .devices import device_of, xp_dtype

#: Elements of the widest (K, rows, D) temporary of one row block (2**25: 256 MiB in
#: float64); blocks have at least :data:`MIN_BLOCK_ROWS` rows.
BLOCK_ELEMENTS = 1 << 25
MIN_BLOCK_ROWS = 1024
#: float32 products over rows are summed in float32 over this many rows only, and
#: those partial sums in float64 (a float32 sum of n terms errs by about
#: sqrt(n) * 6e-8: measured 5.5e-6 relative over 20,000 rows, 1e-6 over 256).
SEGMENT_ROWS = 256

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def block_rows(n_components: int, n_features: int) -> int:
    """Rows per block of the namespace kernels: (K, rows, D) temporaries in bounds."""
    return max(MIN_BLOCK_ROWS, BLOCK_ELEMENTS // max(1, n_components * n_features))


class DeviceDensity:
    """A :class:`LogDensity`'s parameters on the device of some rows.

    Parameters
    ----------
    log_density : LogDensity
    xp : module
        The rows' array namespace.
    device : object
        The rows' device.
    dtype : numpy dtype
        The compute dtype of the whitening products (float64 or float32); the
        means and offsets stay float64.
    """

    def __init__(self, log_density: LogDensity, xp, device, dtype):
        self.xp = xp
        self.device = device
        self.covariance_type = log_density.covariance_type
        self.n_components = log_density.n_components
        self.n_features = log_density.n_features
        self.dtype = xp_dtype(xp, dtype)
        self.f64 = xp.float64
        self.means = self.asarray(log_density.means)
        self.offset = self.asarray(log_density.offset)
        factor = log_density.prec_chol
        self.factor64 = self.asarray(factor)
        self.factor = self.asarray(factor, dtype)

    @classmethod
    def of(cls, log_density: LogDensity, like, dtype=np.float64) -> DeviceDensity:
        """The (cached) parameters of ``log_density`` on the device of the array ``like``."""
        from .devices import namespace

        xp = namespace(like)
        device = device_of(like)
        key = (xp.__name__, str(device), np.dtype(dtype).name)
        with _CACHE_LOCK:
            per_density = _CACHE.setdefault(log_density, {})
            found = per_density.get(key)
        if found is None:
            found = cls(log_density, xp, device, dtype)
            with _CACHE_LOCK:
                per_density[key] = found
        return found

    def asarray(self, values, dtype=np.float64):
        """A host array copied to the device, in ``dtype``."""
        values = np.ascontiguousarray(values, dtype=dtype)
        return self.xp.asarray(values, dtype=xp_dtype(self.xp, dtype), device=self.device)

    def centres(self, shift):
        """``(mu_k - shift) P_k`` for the kernel, float64 -> compute dtype: (K, D)."""
        relative = self.means - shift[None, :]
        centres = _CENTRES[self.covariance_type](self.xp, relative, self.factor64)
        return self.xp.astype(centres, self.dtype)

    def whitened(self, xc, centres):
        """Whitened residuals of centred rows ``xc`` (n, D) for every component: (K, n, D)."""
        return _WHITENED[self.covariance_type](self.xp, xc, self.factor) - centres[:, None, :]

    def log_prob(self, xc, centres):
        """Weighted log-densities, component-major: (K, n) in the compute dtype."""
        y = self.whitened(xc, centres)
        maha = self.xp.sum(y * y, axis=-1)
        return maha * -0.5 + self.xp.astype(self.offset, self.dtype)[:, None]


#: covariance type -> centres(xp, means - shift (K, D), factor): (K, D)
_CENTRES = {
    "full": lambda xp, rel, p: xp.matmul(rel[:, None, :], p)[:, 0, :],
    "tied": lambda xp, rel, p: xp.matmul(rel, p),
    "diag": lambda xp, rel, p: rel * p,
    "spherical": lambda xp, rel, p: rel * p[:, None],
}
#: covariance type -> whiten(xp, centred rows (n, D), factor): (K, n, D), or (1, n, D)
#: for 'tied' (one factor for all components; the centres broadcast it)
_WHITENED = {
    "full": lambda xp, xc, p: xp.matmul(xc[None, :, :], p),
    "tied": lambda xp, xc, p: xp.matmul(xc, p)[None, :, :],
    "diag": lambda xp, xc, p: xc[None, :, :] * p[:, None, :],
    "spherical": lambda xp, xc, p: xc[None, :, :] * p[:, None, None],
}


def log_sum_exp(xp, wlp):
    """Softmax over the components and log-sum-exp of (K, n) log-probabilities.

    Returns
    -------
    resp : (K, n)
        Probabilities; NaN for rows that are all ``-inf`` or hold NaN.
    lse : (n,)
        Per row ``log(sum(exp(.)))`` in float64; not finite for such rows.
    """
    top = xp.max(wlp, axis=0)
    safe = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
    exp = xp.exp(wlp - safe[None, :])
    total = xp.sum(exp, axis=0)
    resp = exp / total[None, :]
    lse = xp.astype(xp.log(total), xp.float64, copy=False) + xp.astype(safe, xp.float64)
    return resp, lse


def row_products(xp, left, right):
    """Sum over the rows of ``left_r^T right_r``, added in float64.

    Parameters
    ----------
    left : array of shape (..., n, P)
    right : array of shape (..., n, Q)
        Batch dimensions broadcast.

    Returns
    -------
    array of shape (..., P, Q), float64
        float64 inputs by one product; float32 inputs by products over segments
        of :data:`SEGMENT_ROWS` rows whose results are added in float64.
    """
    n = left.shape[-2]
    if left.dtype == xp.float64 or n <= SEGMENT_ROWS:
        return xp.astype(xp.matmul(xp.matrix_transpose(left), right), xp.float64)
    whole = n - n % SEGMENT_ROWS
    out = 0.0
    if whole < n:
        tail = xp.matmul(xp.matrix_transpose(left[..., whole:, :]), right[..., whole:, :])
        out = xp.astype(tail, xp.float64)
    segments = []
    for x in (left, right):
        head = x[..., :whole, :]
        segments.append(
            xp.reshape(head, (*x.shape[:-2], whole // SEGMENT_ROWS, SEGMENT_ROWS, x.shape[-1]))
        )
    parts = xp.matmul(xp.matrix_transpose(segments[0]), segments[1])  # (..., segments, P, Q)
    return xp.sum(xp.astype(parts, xp.float64), axis=-3) + out


def centred(xp, rows, shift, dtype):
    """``rows - shift`` computed in float64, returned in the compute ``dtype``."""
    return xp.astype(xp.astype(rows, xp.float64, copy=False) - shift[None, :], dtype, copy=False)
