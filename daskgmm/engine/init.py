"""Initial parameters over chunked data, never loading the whole dataset.

``kmeans``, ``k-means++`` and ``random_from_data`` work on a bounded random sample
of rows (all rows, in order, when there are no more than ``init_sample_size``: then
the result is scikit-learn's for the same ``random_state``).  ``random`` draws
responsibilities blockwise, seeded per chunk, in one pass.  User-supplied
``weights_init``, ``means_init`` and ``precisions_init`` replace what was computed,
as in scikit-learn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..kernels.checks import (
    check_initial_means,
    check_initial_precisions,
    check_initial_weights,
    check_sample_weight_values,
)
from ..kernels.covariance import covariances_from_cholesky, precision_cholesky_from_precisions
from ..kernels.estep import chunk_stats, stats_from_responsibilities
from ..kernels.mstep import m_step
from ..kernels.nan_policy import check_bad_rows, check_sample_rows, chunk_counts
from ..kernels.priors import moments_covariance_type, pooled_moments
from ..kernels.responsibilities import OneComponent, RandomResponsibilities
from ..kernels.scale import check_sample_scale
from .passes import pass_graph, run_pass
from .rows import RowChunks, gather_rows

logger = logging.getLogger("daskgmm._init")


@dataclass
class InitialGuess:
    """What the user supplied, validated (None where not supplied)."""

    weights: np.ndarray | None
    means: np.ndarray | None
    precisions: np.ndarray | None

    @property
    def complete(self) -> bool:
        return self.weights is not None and self.means is not None and self.precisions is not None

    @classmethod
    def from_estimator(cls, estimator, n_features: int) -> InitialGuess:
        """Validate an estimator's ``weights_init``, ``means_init`` and ``precisions_init``."""
        k = estimator.n_components
        weights, means, precisions = (
            estimator.weights_init,
            estimator.means_init,
            estimator.precisions_init,
        )
        return cls(
            None if weights is None else check_initial_weights(weights, k),
            None if means is None else check_initial_means(means, k, n_features),
            None
            if precisions is None
            else check_initial_precisions(precisions, estimator.covariance_type, k, n_features),
        )


def sample_rows(
    rows: RowChunks,
    size: int,
    random_state: np.random.RandomState,
    nan_policy: str = "raise",
    moments: str | None = None,
):
    """A bounded random sample of rows, gathered from the chunks in one pass.

    All rows, in order, when there are no more than ``size``.  Non-finite values
    in the sample raise at once, naming their row chunks (under
    ``nan_policy='omit'`` those rows are dropped from the sample).  The sample is
    drawn once per fit and kept on ``rows`` for the next initialisations; fits
    sharing ``rows.init_cache`` (a joint fit) that draw the same rows share one
    gather.

    With ``moments`` ('full' or 'diag') the same pass also takes the moments of
    all the rows (the variational priors' defaults) and keeps them on ``rows``
    (``rows.data_moments``): with a sample of every row, from the sample; else
    by a reduction over every chunk computed with the gather, so that each chunk
    is read once for both.

    Returns
    -------
    X : ndarray of shape (n, D)
    weights : ndarray of shape (n,) or None
    """
    if rows.init_sample is not None and (moments is None or rows.data_moments is not None):
        return rows.init_sample
    n = rows.n_samples
    if n <= size:
        indices, key = np.arange(n), ("sample", None, nan_policy)
    else:
        seed = random_state.randint(np.iinfo(np.int32).max)
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(n, size=size, replace=False))
        key = ("sample", (int(seed), size), nan_policy)
    cached = rows.init_cache.get(key)
    if moments is not None and n > size:
        known = _cached_moments(rows.init_cache, moments)
        if known is None or cached is None:
            graph = pass_graph(rows, OneComponent(moments), prefix="daskgmm_init")
            X, weights, stats = gather_rows(rows, indices, also=graph)
            check_bad_rows(stats, nan_policy)
            known = rows.init_cache[("moments", moments)] = pooled_moments(stats)
            cached = None
        rows.data_moments = known
    if cached is None:
        if moments is None or n <= size:
            X, weights = gather_rows(rows, indices)
        cached = rows.init_cache[key] = _checked_sample(
            rows, X, weights, indices, n > size, nan_policy
        )
    X, weights = cached
    if moments is not None and n <= size:
        rows.data_moments = pooled_moments(chunk_stats(X, OneComponent(moments), weights))
    rows.init_sample = (X, weights)
    return X, weights


def _cached_moments(cache: dict, moments: str):
    """The data's moments of kind ``moments`` gathered before: 'diag' ones also
    from 'full' ones (their diagonal)."""
    if ("moments", moments) in cache:
        return cache[("moments", moments)]
    if moments == "diag" and ("moments", "full") in cache:
        weight, mean, m2 = cache[("moments", "full")]
        return weight, mean, np.diagonal(m2).copy()
    return None


def _checked_sample(rows, X, weights, indices, sampled: bool, nan_policy: str):
    """The gathered sample with its weights and rows checked (bad weights raise;
    non-finite rows raise or are dropped by ``nan_policy``)."""
    scope = " (at least; seen among the rows sampled for initialisation)" if sampled else ""
    if weights is not None:
        bad = ~np.isfinite(weights) | (weights < 0)
        if bad.any():
            chunks = list(chunk_counts(indices[bad], rows.array.chunks[0]))
            label = "row chunk" if len(chunks) == 1 else "row chunks"
            check_sample_weight_values(weights, f"{scope} in {label} {', '.join(map(str, chunks))}")
        if not weights.sum() > 0:
            raise ValueError(
                "The sample weights of the rows sampled for initialisation sum to zero; give "
                "more rows a positive weight or increase init_sample_size."
            )
    return check_sample_rows(X, weights, indices, rows.array.chunks[0], scope, nan_policy)


def _one_hot(n: int, k: int, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    resp = np.zeros((n, k))
    resp[rows, columns] = 1.0
    return resp


def _resp_kmeans(X, weights, k, random_state):
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=k, n_init=1, random_state=random_state).fit(X, sample_weight=weights)
    return _one_hot(X.shape[0], k, np.arange(X.shape[0]), labels.labels_)


def _resp_kmeans_plusplus(X, weights, k, random_state):
    from sklearn.cluster import kmeans_plusplus

    _, indices = kmeans_plusplus(X, k, random_state=random_state, sample_weight=weights)
    return _one_hot(X.shape[0], k, indices, np.arange(k))


def _resp_random_from_data(X, weights, k, random_state):
    indices = random_state.choice(X.shape[0], size=k, replace=False)
    return _one_hot(X.shape[0], k, indices, np.arange(k))


_SAMPLE_INITIALISERS = {
    "kmeans": _resp_kmeans,
    "k-means++": _resp_kmeans_plusplus,
    "random_from_data": _resp_random_from_data,
}


def _stats_from_sample(
    rows, init_params, k, covariance_type, sample_size, random_state, nan_policy, moments
):
    X, weights = sample_rows(rows, sample_size, random_state, nan_policy, moments)
    if X.shape[0] < k:
        raise ValueError(
            f"Only {X.shape[0]} finite rows were found in the initialisation sample for "
            f"n_components={k}; increase init_sample_size, reduce n_components, or remove "
            "rows with NaN/inf values."
        )
    check_sample_scale(X)
    logger.debug("init %s on a sample of %d rows", init_params, X.shape[0])
    resp = _SAMPLE_INITIALISERS[init_params](X, weights, k, random_state)
    return stats_from_responsibilities(X, resp, covariance_type, weights)


def random_responsibilities(
    n_components: int, covariance_type: str, random_state: np.random.RandomState
) -> RandomResponsibilities:
    """The random responsibilities of one ``init_params='random'`` start (draws
    its seed from ``random_state``); a pass over the rows turns them into the
    initial statistics, and one pass serves the starts of many fits."""
    seed = int(random_state.randint(np.iinfo(np.int32).max))
    return RandomResponsibilities(seed, n_components, covariance_type)


def initial_statistics(
    rows: RowChunks,
    *,
    n_components: int,
    covariance_type: str,
    init_params: str,
    random_state: np.random.RandomState,
    init_sample_size: int,
    split_every: int | None = None,
    nan_policy: str = "raise",
    data_moments: bool = False,
    random_stats=None,
):
    """Statistics of the initial responsibilities, and (on request) the data's moments.

    Parameters
    ----------
    rows : RowChunks
    n_components, covariance_type, init_params
        As the estimator's parameters.
    random_state : numpy.random.RandomState
        Shared with the rest of the fit (consumed as scikit-learn consumes it).
    init_sample_size : int
        At most this many rows feed the sample-based initialisers.
    split_every : int, optional
        Fan-in of the reduction tree for ``init_params='random'``.
    nan_policy : {'raise', 'omit'}
        What rows with non-finite values do: raise, or be left out.
    data_moments : bool
        Also return the moments of all rows, ``(weight, mean, m2)``
        (:func:`daskgmm.kernels.priors.pooled_moments`: m2 (D, D) for 'full' and
        'tied', (D,) otherwise), from the same pass: the 'random' pass's
        statistics pooled, or the sample's gather (:func:`sample_rows`).  Taken
        once per fit (kept on ``rows``), so that every initialisation sees the
        same.
    random_stats : SufficientStats, optional
        For ``init_params='random'``: the statistics of this start's
        :func:`random_responsibilities`, computed already (in a pass shared with
        other starts); without them the seed is drawn and the pass run here.

    Returns
    -------
    stats : SufficientStats
    moments : tuple or None
    """
    moments = None
    if init_params == "random":
        stats = random_stats
        if stats is None:
            spec = random_responsibilities(n_components, covariance_type, random_state)
            stats = run_pass(
                rows, spec, prefix="daskgmm_init", split_every=split_every, nan_policy=nan_policy
            )
        if data_moments and rows.data_moments is None:
            rows.data_moments = pooled_moments(stats)
    else:
        if data_moments:
            moments = moments_covariance_type(covariance_type)
        stats = _stats_from_sample(
            rows,
            init_params,
            n_components,
            covariance_type,
            init_sample_size,
            random_state,
            nan_policy,
            moments,
        )
    return stats, (rows.data_moments if data_moments else None)


def initial_parameters(
    rows: RowChunks,
    *,
    n_components: int,
    covariance_type: str,
    init_params: str,
    reg_covar: float,
    guess: InitialGuess,
    random_state: np.random.RandomState,
    init_sample_size: int,
    split_every: int | None = None,
    nan_policy: str = "raise",
    random_stats=None,
):
    """Initial weights, means, covariances and precision Cholesky factors.

    Parameters
    ----------
    rows : RowChunks
    reg_covar : float
    guess : InitialGuess
        Validated user-supplied parameters.
    n_components, covariance_type, init_params, random_state, init_sample_size,
    split_every, nan_policy, random_stats
        As :func:`initial_statistics`.

    Returns
    -------
    tuple of ndarray
        ``(weights, means, covariances, precisions_cholesky)``.
    """
    weights = means = covariances = prec_chol = None
    if not guess.complete:
        stats, _ = initial_statistics(
            rows,
            n_components=n_components,
            covariance_type=covariance_type,
            init_params=init_params,
            random_state=random_state,
            init_sample_size=init_sample_size,
            split_every=split_every,
            nan_policy=nan_policy,
            random_stats=random_stats,
        )
        weights, means, covariances, prec_chol = m_step(stats, reg_covar)
    if guess.weights is not None:
        weights = guess.weights
    if guess.means is not None:
        means = guess.means
    if guess.precisions is not None:
        prec_chol = precision_cholesky_from_precisions(guess.precisions, covariance_type)
        covariances = covariances_from_cholesky(prec_chol, covariance_type)
    return weights, means, covariances, prec_chol


def estimator_initial_parameters(
    estimator, rows: RowChunks, guess: InitialGuess, random_state, random_stats=None
):
    """:func:`initial_parameters` with an estimator's ``n_components``,
    ``covariance_type``, ``init_params``, ``reg_covar``, ``init_sample_size``,
    ``split_every`` and ``nan_policy`` (``'raise'`` if it has none)."""
    return initial_parameters(
        rows,
        n_components=estimator.n_components,
        covariance_type=estimator.covariance_type,
        init_params=estimator.init_params,
        reg_covar=estimator.reg_covar,
        guess=guess,
        random_state=random_state,
        init_sample_size=estimator.init_sample_size,
        split_every=estimator.split_every,
        nan_policy=getattr(estimator, "nan_policy", "raise"),
        random_stats=random_stats,
    )
