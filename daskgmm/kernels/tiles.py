"""A whole chunk's E-step in one compiled call: feature maps, their weights, statistics.

The compiled kernel (:mod:`daskgmm.kernels.compiled`) knows one thing: rows ->
features ``z = [x_i x_j for the given pairs (i, j), x_i, 1]`` of the centred row,
``z @ W^T`` the K weighted log-densities, a softmax, and ``z^T @ r`` accumulated.
Two feature maps make every covariance type but wide 'full'/'tied' ones:

- 'full'/'tied' (:func:`quadratic_compiles`: D <= 32, or D <= 64 with K >= 8):
  all pairs ``i <= j``, the weights of
  :class:`~daskgmm.kernels.quadratic.QuadraticEStep`; tiles whose rounding-error
  bound exceeds its tolerance are declined;
- 'diag'/'spherical': the squares ``x_i^2``: ``-1/2 sum_i L_ki (x_i - a_ki)^2``
  expanded, as the numpy kernel expands it.  Their raw second moments become
  centred ones by subtracting each component's mean term; where that would cancel
  too far (:data:`~daskgmm.kernels.moments.CANCELLATION_LIMIT`) the chunk is left to
  the numpy kernels, which centre on each component's own mean.

Tiles the kernel declines (bad rows, densities that are not finite, the error
bound) are computed by the row-major numpy kernels and merged.

``compute_dtype='float32'`` (on the :class:`EStep`) runs the features and products
in float32 and accumulates in float64.  Its error bound uses float32's epsilon and
a tolerance of :data:`FLOAT32_TOLERANCE` nats (for every covariance type), and
moments whose centring would amplify float32's rounding more than
:data:`FLOAT32_CANCELLATION_LIMIT` times send the chunk to the float64 numpy kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import blocks, density
from .density import LogDensity, Workspace
from .moments import CANCELLATION_LIMIT
from .quadratic import TOLERANCE as QUADRATIC_TOLERANCE
from .quadratic import QuadraticEStep, symmetric_from_pairs
from .responsibilities import EStep
from .stats import SufficientStats

#: Largest rounding error (nats of log-density, a worst-case bound; measured errors
#: are far smaller, see the README) for which a tile is
#: computed in float32 under ``compute_dtype='float32'``; others go to float64.
FLOAT32_TOLERANCE = 1e-2
#: Largest ratio of a moment's subtracted mean term to the centred moment kept in
#: float32 (it multiplies float32's rounding, ~6e-8); beyond, the chunk is float64.
FLOAT32_CANCELLATION_LIMIT = 1e3
_EPS32_OVER_EPS64 = float(np.finfo(np.float32).eps / np.finfo(np.float64).eps)


@dataclass
class FeaturePlan:
    """What the compiled kernel needs for one chunk.

    Attributes
    ----------
    covariance_type : str
    shift : ndarray of shape (D,)
    WT : ndarray of shape (F, K)
        Weights of the features in each component's weighted log-density.
    pairs : tuple of two int64 arrays
        The feature pairs ``(i, j)``.
    bound_terms : ndarray of shape (4, K)
        The rounding-error bound's terms (zeros when there is no bound).
    tolerance : float
    """

    covariance_type: str
    shift: np.ndarray
    WT: np.ndarray
    pairs: tuple
    bound_terms: np.ndarray
    tolerance: float

    @property
    def dtype(self) -> np.dtype:
        """The products' dtype."""
        return self.WT.dtype

    @property
    def n_pairs(self) -> int:
        return len(self.pairs[0])


def quadratic_compiles(n_components: int, n_features: int) -> bool:
    """Whether the compiled kernel takes a 'full'/'tied' mixture: up to 32 features,
    and up to 64 with 8 components or more.

    Measured on one core (time per row of a chunk's statistics, the numpy kernels
    over the compiled one): K=8: D=24 2.1x, D=32 3.3x, D=48 1.2x; K=16: D=32 2.2x,
    D=64 1.8x; K=32, D=64 2.4x; K=2: D=16 1.8x, D=64 1.2x; but K=4, D=64 0.9x and
    K=16, D=96 1.1x (the features, ``8 D^2 / 2`` bytes a row, outgrow the cache).
    """
    return n_features <= 32 or (n_features <= 64 and n_components >= 8)


def compiles(responsibilities, n_features: int) -> bool:
    """Whether the compiled kernel takes this pass's chunks."""
    if not isinstance(responsibilities, EStep):
        return False
    if responsibilities.covariance_type in ("full", "tied"):
        return quadratic_compiles(responsibilities.n_components, n_features)
    return True


def _quadratic_plan(log_density: LogDensity, shift: np.ndarray, dtype) -> FeaturePlan:
    quadratic = QuadraticEStep(log_density, shift)
    bound_terms, tolerance = quadratic.bound_terms(), quadratic.tolerance
    if dtype == np.float32:
        bound_terms[3, 0] *= _EPS32_OVER_EPS64
        tolerance = FLOAT32_TOLERANCE
    return FeaturePlan(
        log_density.covariance_type,
        quadratic.shift,
        np.ascontiguousarray(quadratic.weights.T, dtype=dtype),
        tuple(np.asarray(u, dtype=np.int64) for u in quadratic.upper),
        bound_terms,
        tolerance,
    )


def _diagonal_plan(
    log_density: LogDensity, shift: np.ndarray, dtype, bounded: bool = False
) -> FeaturePlan:
    """The 'diag'/'spherical' feature map.  In float64 the E-step keeps the numpy
    kernel's expansion, which has no bound; ``bounded`` (per-row answers) and
    float32 bound ``|terms| <= r2 |L|/2 + r |L a| + a^T L a / 2`` as the quadratic
    kernel does, with the tolerance of the dtype."""
    k, d = log_density.n_components, log_density.n_features
    precisions = np.broadcast_to(log_density.precisions.reshape(k, -1), (k, d))
    centres = log_density.means - shift
    weights = np.empty((k, 2 * d + 1))
    weights[:, :d] = -0.5 * precisions
    weights[:, d : 2 * d] = precisions * centres
    constant = 0.5 * (precisions * np.square(centres)).sum(axis=1)
    weights[:, -1] = log_density.offset - constant
    diagonal = np.arange(d, dtype=np.int64)
    bound_terms, tolerance = np.zeros((4, k)), np.inf
    if dtype == np.float32 or bounded:
        bound_terms[0] = 0.5 * np.sqrt(np.square(precisions).sum(axis=1))
        bound_terms[1] = np.sqrt(np.square(precisions * centres).sum(axis=1))
        bound_terms[2] = constant
        bound_terms[3, 0] = np.sqrt(2 * d + 1) * np.finfo(dtype).eps
        tolerance = FLOAT32_TOLERANCE if dtype == np.float32 else QUADRATIC_TOLERANCE
    return FeaturePlan(
        log_density.covariance_type,
        np.asarray(shift, dtype=np.float64),
        np.ascontiguousarray(weights.T, dtype=dtype),
        (diagonal, diagonal),
        bound_terms,
        tolerance,
    )


def _pair_moments(plan: FeaturePlan, acc: np.ndarray):
    """'full'/'tied' raw second moments (K, D, D) or (D, D) from the pair sums."""
    pair_sums = acc[: plan.n_pairs]
    if plan.covariance_type == "tied":
        return symmetric_from_pairs(pair_sums.sum(axis=1), plan.pairs)
    return symmetric_from_pairs(pair_sums.T, plan.pairs)


def _stats(plan: FeaturePlan, acc: np.ndarray, sums: np.ndarray) -> SufficientStats | None:
    """Statistics from the accumulated ``z^T r`` (F, K); None where centring the
    diagonal moments would cancel too far."""
    d, n_pairs = len(plan.shift), plan.n_pairs
    nk = acc[-1].copy()
    first = np.ascontiguousarray(acc[n_pairs : n_pairs + d].T)
    totals = (float(sums[0]), float(sums[1]), int(sums[2]))
    nk_safe = np.where(nk > 0, nk, 1.0)
    mean_term = np.square(first) / nk_safe[:, None]
    if plan.covariance_type in ("full", "tied"):
        stats = blocks.moments_to_stats(plan, nk, first, _pair_moments(plan, acc), *totals)
        if plan.dtype == np.float32 and _cancels(stats, mean_term, FLOAT32_CANCELLATION_LIMIT):
            return None
        return stats
    m2 = acc[:n_pairs].T - mean_term
    limit = FLOAT32_CANCELLATION_LIMIT if plan.dtype == np.float32 else CANCELLATION_LIMIT
    if np.any(mean_term > limit * np.abs(m2)):
        return None
    means = first / nk_safe[:, None] + plan.shift
    return SufficientStats(plan.covariance_type, nk, means, m2, *totals)


def _cancels(stats: SufficientStats, mean_term: np.ndarray, limit: float) -> bool:
    """Whether a 'full'/'tied' centred diagonal lost more than ``limit`` to its mean term."""
    if stats.covariance_type == "tied":
        return bool(np.any(mean_term.sum(axis=0) > limit * np.abs(np.diagonal(stats.m2))))
    diagonal = np.diagonal(stats.m2, axis1=1, axis2=2)
    return bool(np.any(mean_term > limit * np.abs(diagonal)))


_PLANS = {
    "full": _quadratic_plan,
    "tied": _quadratic_plan,
    "diag": _diagonal_plan,
    "spherical": _diagonal_plan,
}


def chunk_stats(X, responsibilities, sample_weight, chunk_index: int, step: int):
    """A chunk's statistics by the compiled kernel, what it declines by numpy.

    Under ``compute_dtype='float32'`` the rows float32 declines (its error bound,
    or moments that would cancel) are first computed compiled in float64.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    responsibilities : EStep
    sample_weight : ndarray of shape (n,) or None
    chunk_index : int
    step : int
        Rows of the chunk's first block, whose finite rows' mean centres the chunk
        (as in the numpy kernels), and the most rows the numpy kernels take at once.

    Returns
    -------
    SufficientStats or None
        None when the numpy kernels must do the chunk: its first block has no
        finite row, or its diagonal moments cancel too far.
    """
    X = np.asarray(X)
    shift = blocks.finite_shift(np.asarray(X[:step], dtype=np.float64))
    if shift is None:
        return None
    weights = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    rows = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    dtype = responsibilities.compute_dtype
    out, left = _compiled_pass(rows, weights, shift, responsibilities, dtype)
    if dtype == np.float32 and (out is None or left.any()):
        left = np.ones(len(rows), dtype=bool) if out is None else left
        more, still = _compiled_pass(
            rows[left], None if weights is None else weights[left], shift, responsibilities,
            np.dtype(np.float64),
        )  # fmt: skip
        if more is None:
            return None
        out = more if out is None else out.merge(more)
        left[np.flatnonzero(left)[~still]] = False
    if out is None:
        return None
    return _merge_declined(out, rows, weights, left, step, shift, responsibilities, chunk_index)


def _compiled_pass(rows, weights, shift, responsibilities, dtype):
    """``(statistics or None, mask of the rows declined)`` of one compiled call."""
    from .compiled import TILE, quadratic_tiles

    plan = _PLANS[responsibilities.covariance_type](responsibilities.log_density, shift, dtype)
    acc = np.zeros(plan.WT.shape)
    sums = np.zeros(3)
    skipped = np.zeros(-(-rows.shape[0] // TILE), dtype=np.bool_)
    quadratic_tiles(
        rows, np.empty(0) if weights is None else weights, plan.shift, plan.WT, *plan.pairs,
        plan.bound_terms, plan.tolerance, acc, sums, skipped, np.empty((0, acc.shape[1])),
    )  # fmt: skip
    return _stats(plan, acc, sums), np.repeat(skipped, TILE)[: rows.shape[0]]


def _merge_declined(out, rows, weights, left, step, shift, responsibilities, chunk_index):
    """Merge into ``out`` the rows the compiled kernel declined, computed row-major in
    runs of consecutive rows of at most ``step``."""
    if not left.any():
        return out
    assign = responsibilities.for_chunk(chunk_index)
    workspace = Workspace()
    n_bad = 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], left.view(np.int8), [0]])))
    for run_start, run_stop in zip(edges[::2], edges[1::2], strict=True):
        for start in range(int(run_start), int(run_stop), step):
            stop = min(start + step, int(run_stop))
            block_weights = None if weights is None else weights[start:stop]
            block = blocks.general_block(
                rows[start:stop], block_weights, shift, assign, out, start, workspace
            )
            n_bad += block.n_bad
            out = out.merge(block)
    if n_bad:
        out.bad_chunks = {chunk_index: n_bad}
    return out


def weighted_log_prob(X: np.ndarray, log_density: LogDensity) -> np.ndarray:
    """``log(weight_k) + log N(x | k)`` for every row: the compiled expansion where
    its rounding-error bound allows (:data:`~daskgmm.kernels.quadratic.TOLERANCE`
    nats), :func:`daskgmm.kernels.density.weighted_log_prob` for the other tiles
    and for what the kernel does not take ('full'/'tied' beyond
    :func:`quadratic_compiles`).

    Rows are centred on the mean of the model's means, as the numpy kernel centres
    them.

    Parameters
    ----------
    X : ndarray of shape (n, D)
        Finite rows.
    log_density : LogDensity
        Prepared with weights.

    Returns
    -------
    ndarray of shape (n, K), float64
    """
    from .compiled import TILE, quadratic_tiles

    covariance_type = log_density.covariance_type
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if covariance_type in ("full", "tied") and not quadratic_compiles(
        log_density.n_components, log_density.n_features
    ):
        return density.weighted_log_prob(X, log_density)
    shift = log_density.means.mean(axis=0)
    if covariance_type in ("full", "tied"):
        plan = _quadratic_plan(log_density, shift, np.dtype(np.float64))
    else:
        plan = _diagonal_plan(log_density, shift, np.dtype(np.float64), bounded=True)
    out = np.empty((X.shape[0], log_density.n_components))
    skipped = np.zeros(-(-X.shape[0] // TILE), dtype=np.bool_)
    unused = np.zeros(plan.WT.shape), np.zeros(3)  # acc, sums: not used for log_prob
    quadratic_tiles(
        X, np.empty(0), plan.shift, plan.WT, *plan.pairs, plan.bound_terms, plan.tolerance,
        *unused, skipped, out,
    )  # fmt: skip
    if skipped.any():
        left = np.repeat(skipped, TILE)[: X.shape[0]]
        out[left] = density.weighted_log_prob(X[left], log_density)
    return out
