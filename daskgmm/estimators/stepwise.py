"""``OnlineGaussianMixture``: stepwise (mini-batch) EM, and ``partial_fit`` for streams.

Stepwise EM (Cappé & Moulines 2009; Liang & Klein 2009) keeps per-sample-normalised
sufficient statistics ``s``.  Each mini-batch (a group of row chunks, computed in
parallel with one ``compute`` and reduced like a batch iteration) gives its own
normalised statistics ``s_hat`` under the current parameters, and::

    s <- (1 - g_t) * s + g_t * s_hat        g_t = (t + t0) ** -kappa

followed by an M-step.  Statistics are blended, never parameters.  A warm-up
averages the first batches plainly (``g_t = 1 / t``) under the initial parameters
until they hold ``warm_up`` rows; the first M-step follows them.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels.covariance import n_parameters
from ..kernels.stats import SufficientStats

#: Chunks a mini-batch of numpy input is cut into with ``chunk_rows='auto'``.
CHUNKS_PER_BATCH = 8


def step_size(t: int, t0: float, kappa: float) -> float:
    """Weight ``(t + t0) ** -kappa`` (at most 1) of the ``t``-th mini-batch (1-based)
    in the running statistics after the warm-up."""
    return min(1.0, (t + t0) ** -kappa)


def warm_up_rows(warm_up, n_components: int, n_features: int, covariance_type: str) -> int:
    """Rows to average before the first M-step.

    ``'auto'``: twice the number of free parameters of the model, so that the
    first M-step is well posed.
    """
    if warm_up != "auto":
        return int(warm_up)
    return math.ceil(2 * n_parameters(covariance_type, n_components, n_features))


def mini_batches(order: np.ndarray, row_chunks: tuple, batch_size: int) -> list[np.ndarray]:
    """Group chunk indices, in ``order``, into mini-batches of about ``batch_size`` rows.

    The batch size is rounded to a whole number of chunks (at least one) of the
    array's mean chunk length.

    Parameters
    ----------
    order : ndarray of int
        Chunk indices in the order they are to be visited.
    row_chunks : tuple of int
        Rows per chunk.
    batch_size : int

    Returns
    -------
    list of ndarray of int
    """
    mean_rows = sum(row_chunks) / len(row_chunks)
    per_batch = max(1, round(batch_size / mean_rows))
    return [order[i : i + per_batch] for i in range(0, len(order), per_batch)]


def revisiting_order(
    partition: np.ndarray, row_chunks: tuple, batch_size: int, random_state
) -> np.ndarray:
    """A pass's chunk order that visits fixed mini-batches in a random order.

    The mini-batches are those of ``partition`` (:func:`mini_batches`); their
    order is drawn from ``random_state``, the last, shorter one (if any) kept
    last, so that :func:`mini_batches` of the returned order gives the same
    groups of chunks again, every pass (memoized variational Bayes revisits them).

    Parameters
    ----------
    partition : ndarray of int
        A fixed order of all chunk indices.
    row_chunks : tuple of int
    batch_size : int
    random_state : numpy.random.RandomState

    Returns
    -------
    ndarray of int
    """
    groups = mini_batches(partition, row_chunks, batch_size)
    n_full = len(groups) - int(len(groups[-1]) < len(groups[0]))
    order = random_state.permutation(n_full)
    return np.concatenate([groups[i] for i in order] + groups[n_full:])


def blend(running: SufficientStats | None, batch: SufficientStats, gamma: float):
    """``(1 - gamma) * running + gamma * batch`` of per-sample statistics.

    The blend of the raw moments is exactly Chan's merge of the two, each scaled
    by its weight; the first batch (or ``gamma >= 1``) replaces the running
    statistics.
    """
    if running is None or gamma >= 1.0:
        return batch
    return running.scaled(1.0 - gamma).merge(batch.scaled(gamma))
