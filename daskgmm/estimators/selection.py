"""Model selection over a grid of mixtures fitted together: ``select_mixture``.

Every model of the grid (each number of components, covariance type and
restart) iterates in the same passes over the data: each pass reads each chunk
once, whatever the number of models (:mod:`daskgmm.estimators.joint`).  One more
pass scores them all for BIC and AIC.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from .._typing import ArrayLike, Data, PathLike
from ..engine.progress import ChunkProgress, FitProgress
from ..errors import SingularCovarianceError
from ..io import training_data_fingerprint
from ..kernels.covariance import information_criteria
from ..kernels.params import COVARIANCE_TYPES, validate_parameters
from ..kernels.stats import SufficientStats
from .batch import BatchMixture
from .gaussian_mixture import GaussianMixture
from .inputs import fit_rows, training_input
from .joint import fit_jointly, model_view, score_runs
from .session import computing, verbose_logging

#: The columns of :attr:`MixtureSelection.table`, in order.
COLUMNS = (
    "n_components",
    "covariance_type",
    "restart",
    "kept",
    "lower_bound",
    "n_iter",
    "converged",
    "mean_log_likelihood",
    "log_likelihood",
    "n_parameters",
    "n_scored",
    "bic",
    "aic",
    "seconds",
    "error",
)
CRITERIA = ("bic", "aic")

logger = logging.getLogger("daskgmm.mixture")


@dataclass
class MixtureSelection:
    """The result of :func:`select_mixture`.

    Attributes
    ----------
    table : list of dict
        One row per model of the grid (keys :data:`COLUMNS`): its number of
        components, covariance type and restart (0-based); ``kept``: whether its
        estimator kept this restart (the highest lower bound, as ``n_init``
        does); ``lower_bound``, ``n_iter``, ``converged`` as the fitted
        attributes; the mean log-likelihood, total log-likelihood, free
        parameters, rows scored, BIC and AIC on the data (a Bayesian model under
        its posterior-mean mixture, as its ``bic`` does); ``seconds``: the wall
        time of the passes the run took part in (runs share passes, so these
        overlap); ``error``: None, or why the run stopped (a singular covariance:
        the other models go on; its scores are NaN).
    estimators : dict
        ``(n_components, covariance_type) -> fitted estimator`` (its kept restart;
        left unfitted if every restart stopped on an error).
    criterion : {'bic', 'aic'}
    best_estimator_ : estimator
        The estimator whose kept restart has the lowest criterion (the fewest
        components among equals).
    best_index_ : int
        That restart's row of ``table``.
    random_state : int
        The seed every estimator of the grid was given: the models of
        ``(K, covariance_type)`` are the restarts of
        ``estimator.set_params(n_components=K, covariance_type=covariance_type,
        n_init=n_init, random_state=random_state)`` fitted alone.
    seconds : float
        Wall time of the whole selection.
    memory : dict
        ``statistics_bytes``: one chunk's statistics for every model (what a pass
        keeps per chunk in its reduction); ``largest_model_bytes``: the largest
        model's.  Per-chunk temporaries are one model's at a time.
    """

    table: list
    estimators: dict
    criterion: str
    best_estimator_: object
    best_index_: int
    random_state: int
    seconds: float
    memory: dict = field(default_factory=dict)

    @property
    def best_(self) -> dict:
        """The best row of :attr:`table`."""
        return self.table[self.best_index_]

    def to_dataframe(self):
        """:attr:`table` as a ``pandas.DataFrame`` (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.table, columns=COLUMNS)


def select_mixture(
    X: Data,
    n_components: int | Iterable[int] = range(1, 9),
    *,
    covariance_type: str | Iterable[str] = "full",
    n_init: int = 1,
    criterion: str = "bic",
    estimator: BatchMixture | None = None,
    random_state=None,
    sample_weight: ArrayLike | None = None,
    checkpoint: PathLike | None = None,
) -> MixtureSelection:
    """Fit a grid of mixtures together and pick the best by BIC or AIC.

    Every (number of components, covariance type, restart) of the grid is one
    EM run; all runs iterate in the same passes, so each EM iteration reads each
    chunk once whatever the size of the grid, and runs that converge drop out of
    the later passes.  Each run equals the same model fitted alone, from the same
    initial parameters (drawn from the same random state in the same order), to
    rounding.  One more pass scores every run for BIC and AIC.

    Parameters
    ----------
    X : array-like, dask array, or a source ``daskgmm.io`` opens
        As for ``GaussianMixture.fit``.
    n_components : int or iterable of int, default=range(1, 9)
        The numbers of components to try.
    covariance_type : str or iterable of str, default='full'
        The covariance types to try.
    n_init : int, default=1
        Restarts of each (K, covariance type); each is a row of the table and the
        estimator keeps the one with the highest lower bound.
    criterion : {'bic', 'aic'}, default='bic'
    estimator : GaussianMixture or BayesianGaussianMixture, optional
        The template whose other parameters (``tol``, ``max_iter``,
        ``init_params``, ``reg_covar``, priors, ``chunk_rows``, ...) every model
        shares; default ``GaussianMixture()``.
    random_state : int, RandomState instance or None
        Every estimator of the grid gets the same integer seed (this one, or one
        drawn from it), recorded as ``result.random_state``.
    sample_weight : array-like or dask array of shape (n_samples,), optional
        Weights of the rows in the fits (the scores, as ``score``, are unweighted).
    checkpoint : path, optional
        A directory holding one checkpoint per (K, covariance type): a selection
        run again with the same arguments resumes where it stopped.

    Returns
    -------
    MixtureSelection

    Raises
    ------
    ValueError
        For an empty grid, a K below 1 or above the number of rows, an unknown
        covariance type or criterion, an online estimator, or a ``checkpoint``
        that is a file.

    Examples
    --------
    >>> from daskgmm import select_mixture, datasets
    >>> X, _ = datasets.make_mixture(6_000, n_features=2, n_components=3, chunk_rows=1_000)
    >>> result = select_mixture(X, n_components=range(1, 6), n_init=2, random_state=0)
    >>> result.best_["n_components"], len(result.table)
    (3, 10)
    """
    started = time.perf_counter()
    ks, types, template = _check_grid(n_components, covariance_type, n_init, criterion, estimator)
    if checkpoint is not None and os.path.exists(checkpoint) and not os.path.isdir(checkpoint):
        raise ValueError(
            f"checkpoint {os.fspath(checkpoint)!r} is a file: give a directory, which holds "
            "one checkpoint per (K, covariance type)."
        )
    seed = _seed(random_state)
    estimators = {
        (k, c): clone(template).set_params(
            n_components=k, covariance_type=c, n_init=n_init, random_state=seed, warm_start=False
        )
        for c in types
        for k in ks
    }
    for model in estimators.values():
        validate_parameters(model.get_params())
    with verbose_logging(logger, template.verbose), computing(template.scheduler):
        fits, rows, names, feature_dim, training_data = _fit_grid(
            X, sample_weight, estimators, template, checkpoint
        )
        scores = score_runs(fits, rows, template.nan_policy)
    for fit in fits:
        if fit.best is None:
            continue  # every restart stopped on an error: the table says which
        fit.estimator._keep(fit.best)
        fit.estimator._record_feature_names(names, feature_dim)
        fit.estimator.training_data_ = training_data
    table = _table(fits, scores)
    best = _best_row(table, criterion)
    memory = _memory(fits, rows.n_features)
    logger.info(
        "%d models fitted together; one chunk's statistics for all take %d bytes",
        len(table),
        memory["statistics_bytes"],
    )
    chosen = table[best]
    return MixtureSelection(
        table=table,
        estimators=estimators,
        criterion=criterion,
        best_estimator_=estimators[(chosen["n_components"], chosen["covariance_type"])],
        best_index_=best,
        random_state=seed,
        seconds=time.perf_counter() - started,
        memory=memory,
    )


def _as_tuple(value, kind) -> tuple:
    if isinstance(value, kind):
        return (value,)
    return tuple(value)


def _check_grid(n_components, covariance_type, n_init, criterion, estimator) -> tuple:
    """The grid's K values and covariance types, and the template; clear errors."""
    template = GaussianMixture() if estimator is None else estimator
    if not isinstance(template, BatchMixture):
        raise ValueError(
            "select_mixture fits batch estimators (GaussianMixture, BayesianGaussianMixture); "
            f"got {type(template).__name__}.  Online estimators make one pass per mini-batch "
            "and do not share passes: fit them one after another."
        )
    ks = _as_tuple(n_components, numbers.Integral)
    if not ks:
        raise ValueError("n_components is empty: give at least one number of components.")
    bad = [k for k in ks if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1]
    if bad:
        raise ValueError(f"n_components must be integers >= 1; got {bad!r}.")
    types = _as_tuple(covariance_type, str)
    if not types:
        raise ValueError("covariance_type is empty: give at least one covariance type.")
    unknown = [c for c in types if c not in COVARIANCE_TYPES]
    if unknown:
        raise ValueError(
            f"Unknown covariance_type {unknown!r}; choose from {list(COVARIANCE_TYPES)}."
        )
    for name, values in (("n_components", ks), ("covariance_type", types)):
        if len(set(values)) != len(values):
            raise ValueError(f"{name} lists a value twice: {list(values)!r}.")
    if not isinstance(n_init, numbers.Integral) or isinstance(n_init, bool) or n_init < 1:
        raise ValueError(f"n_init must be an integer >= 1; got {n_init!r}.")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be 'bic' or 'aic'; got {criterion!r}.")
    return tuple(int(k) for k in ks), types, template


def _seed(random_state) -> int:
    """The one integer seed of every estimator of the grid."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _fit_grid(X, sample_weight, estimators: dict, template, checkpoint) -> tuple:
    """Open the input once, check it against the grid, fit every model together."""
    source, names, feature_dim = training_input(template, X, continuing=False)
    k_max = max(k for k, _ in estimators)
    rows = fit_rows(
        source, sample_weight, template.chunk_rows, None, getattr(template, "device", None)
    )
    if k_max > rows.n_samples:
        raise ValueError(
            f"n_components goes up to {k_max}, but the data have {rows.n_samples} rows: "
            f"give at most {rows.n_samples} components."
        )
    training_data = training_data_fingerprint(X)
    fits = []
    for (k, c), model in estimators.items():
        path = None if checkpoint is None else os.path.join(os.fspath(checkpoint), f"{c}-k{k}")
        fits.append(model._model_fit(model_view(rows), path, training_data))
    bar = None
    if template.progress:
        label = f"select, {len(estimators) * template.n_init} models together"
        bar = FitProgress(template.max_iter, label=label, tol=template.tol)
    with ChunkProgress(bar) if bar else nullcontext():
        fit_jointly(fits, rows, bar, isolate=(SingularCovarianceError,))
    if bar:
        bar.close(f"{len(fits)} estimators fitted")
    return fits, rows, names, feature_dim, training_data


def _table(fits: list, scores: dict) -> list[dict]:
    """One row per run, in grid order."""
    table = []
    for fit in fits:
        model = fit.estimator
        for member in fit.members:
            run = member.run
            failed = {"n_scored": 0, "log_likelihood": math.nan, "n_parameters": 0}
            score = scores.get(id(member), failed)
            n, total, p = score["n_scored"], score["log_likelihood"], score["n_parameters"]
            row = {
                "n_components": model.n_components,
                "covariance_type": model.covariance_type,
                "restart": member.init,
                "kept": run is fit.best,
                "lower_bound": float(run.lower_bound),
                "n_iter": int(run.n_iter),
                "converged": bool(run.converged),
                "mean_log_likelihood": total / n if n else math.nan,
                "log_likelihood": total,
                "n_parameters": p,
                "n_scored": n,
                **dict(zip(("bic", "aic"), information_criteria(total, n, p), strict=True)),
                "seconds": round(member.seconds, 3),
                "error": member.error,
            }
            table.append(row)
    return table


def _best_row(table: list[dict], criterion: str) -> int:
    """The kept restart with the lowest criterion (the fewest components among equals)."""
    kept = [i for i, row in enumerate(table) if row["kept"] and math.isfinite(row[criterion])]
    if not kept:
        raise ValueError(f"No model gave a finite {criterion.upper()}; check the data.")
    return min(kept, key=lambda i: (table[i][criterion], table[i]["n_components"]))


def _statistics_bytes(model, n_features: int) -> int:
    """Bytes of one chunk's statistics of ``model`` (its ``nk``, means and moments)."""
    shapes = SufficientStats.shapes(model.covariance_type, model.n_components, n_features)
    return 8 * sum(math.prod(shape) for shape in shapes.values())


def _memory(fits: list, n_features: int) -> dict:
    """Bytes of one chunk's statistics: all runs', and the largest run's."""
    sizes = [_statistics_bytes(fit.estimator, n_features) for fit in fits for _ in fit.members]
    return {"statistics_bytes": int(sum(sizes)), "largest_model_bytes": int(max(sizes, default=0))}
