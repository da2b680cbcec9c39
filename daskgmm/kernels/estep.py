"""The fused E-step of one chunk: rows in, sufficient statistics out.

A chunk is processed in blocks of rows, all centred on one point of the chunk
and computed in float64, whatever the rows' dtype.  Where it can, one compiled
call does the whole chunk without the GIL, in tiles that stay in the core's
cache (:mod:`daskgmm.kernels.tiles`): 'full'/'tied' mixtures with few features
and 'diag'/'spherical' ones.  Otherwise, and for the tiles the compiled kernel
declines, numpy kernels work on blocks (:mod:`daskgmm.kernels.blocks`): the
quadratic-feature kernel (:mod:`daskgmm.kernels.quadratic`) where its
rounding-error bound allows, the whitening kernel elsewhere.  Rows with a
non-finite value are counted and left out; what then happens is the NaN
policy's (:mod:`daskgmm.kernels.nan_policy`).
"""

from __future__ import annotations

import os

import numpy as np

from . import blocks, tiles, xp_estep
from .checks import check_sample_weight_values
from .density import Workspace, block_rows
from .devices import namespace
from .quadratic import QuadraticEStep, quadratic_block_rows, worthwhile
from .responsibilities import EStep, GivenResponsibilities
from .stats import SufficientStats

#: Covariance types whose E-step uses the quadratic-feature kernel.
QUADRATIC_TYPES = ("full", "tied")
#: Whether E-steps run compiled where they can (:mod:`daskgmm.kernels.tiles`);
#: False runs the numpy kernels, the reference the compiled ones are tested against.
#: The environment variable ``DASKGMM_COMPILED=0``, set where the processes start
#: (dask workers included), makes it False: numba then is never imported, which
#: leaves each process about 110 MB more of its memory (numba's compiler and the
#: loaded kernel) at about twice the single-thread E-step time.
USE_COMPILED = os.environ.get("DASKGMM_COMPILED", "1").strip().lower() not in (
    "0",
    "false",
    "no",
    "off",
)


def chunk_stats(
    X: np.ndarray,
    responsibilities,
    sample_weight: np.ndarray | None = None,
    chunk_index: int = 0,
) -> SufficientStats:
    """Statistics of one chunk of rows: the fused E-step of one iteration.

    The rows are centred on one point of the chunk (the mean of its first block)
    and the statistics computed in float64.  Where it can (:func:`tiles.compiles`)
    one compiled call does the whole chunk without the GIL, leaving the tiles it
    declines to the numpy kernels; otherwise the chunk is processed in cache-sized
    blocks merged with :meth:`SufficientStats.merge`: for a 'full' or 'tied'
    mixture the quadratic-feature kernel (:mod:`daskgmm.kernels.quadratic`) on every
    block whose rounding-error bound allows it, the whitening kernel otherwise.
    ``USE_COMPILED = False`` runs the numpy kernels only.  Chunks of another array
    namespace (CuPy on a GPU) go to :func:`daskgmm.kernels.xp_estep.chunk_stats`,
    which keeps them on their device.  Rows with a non-finite
    value are counted and left out.  Under an
    E-step they are found from the per-row log-likelihood, which they make
    non-finite, so clean blocks cost no extra check (a finite row whose density
    overflows counts as bad too).

    Parameters
    ----------
    X : ndarray of shape (n, D), or an array of another namespace (CuPy)
    responsibilities : EStep, RandomResponsibilities or GivenResponsibilities
        What assigns rows to components.
    sample_weight : ndarray of shape (n,), optional
    chunk_index : int
        Position of the chunk among the row chunks; seeds random responsibilities
        and is recorded with any bad rows, for error messages.

    Returns
    -------
    SufficientStats
    """
    if namespace(X) is not None:
        return xp_estep.chunk_stats(X, responsibilities, sample_weight, chunk_index)
    cov_type = responsibilities.covariance_type
    assign = responsibilities.for_chunk(chunk_index)
    out = SufficientStats.empty(cov_type, responsibilities.n_components, X.shape[1])
    if sample_weight is not None:
        check_sample_weight_values(np.asarray(sample_weight), f" in row chunk {chunk_index}")
    use_quadratic, step = _kernel_choice(responsibilities, X.shape[1])
    if USE_COMPILED and tiles.compiles(responsibilities, X.shape[1]):
        compiled = tiles.chunk_stats(X, responsibilities, sample_weight, chunk_index, step)
        if compiled is not None:
            return compiled
    shift = quadratic = None
    n_bad = 0
    workspace = Workspace()
    for start in range(0, X.shape[0], step):
        stop = min(start + step, X.shape[0])
        rows = np.asarray(X[start:stop])
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight[start:stop], dtype=np.float64)
        if shift is None:
            shift = blocks.finite_shift(np.asarray(rows, dtype=np.float64))
            if shift is not None and use_quadratic:
                quadratic = QuadraticEStep(responsibilities.log_density, shift)
        block = None
        if quadratic is not None:
            block = blocks.quadratic_block(quadratic, rows, weights, workspace)
        if block is None:
            block = blocks.general_block(rows, weights, shift, assign, out, start, workspace)
            n_bad += block.n_bad
        out = out.merge(block)
    if n_bad:
        out.bad_chunks = {chunk_index: n_bad}
    return out


def _kernel_choice(responsibilities, n_features: int) -> tuple[bool, int]:
    """Whether the quadratic-feature kernel serves this pass, and the rows per block."""
    cov_type = responsibilities.covariance_type
    n_components = responsibilities.n_components
    use_quadratic = (
        isinstance(responsibilities, EStep)
        and cov_type in QUADRATIC_TYPES
        and worthwhile(n_components, n_features)
    )
    if use_quadratic:
        return True, quadratic_block_rows(n_features)
    return False, block_rows(n_components, n_features, cov_type)


def stats_from_responsibilities(
    X: np.ndarray,
    resp: np.ndarray,
    covariance_type: str,
    sample_weight: np.ndarray | None = None,
) -> SufficientStats:
    """Statistics of in-memory rows under given responsibilities (for initialisation).

    Parameters
    ----------
    X : ndarray of shape (n, D)
    resp : ndarray of shape (n, K)
    covariance_type : str
    sample_weight : ndarray of shape (n,), optional

    Returns
    -------
    SufficientStats
        With ``log_likelihood`` left at 0.
    """
    return chunk_stats(X, GivenResponsibilities(resp, covariance_type), sample_weight)
