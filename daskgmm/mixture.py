"""``GaussianMixture``: batch EM with one pass over the data per iteration."""

from __future__ import annotations

import logging
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from . import _checkpoint
from ._base import BaseGaussianMixture
from ._engine import (
    RowChunks,
    compute,
    prepare_rows,
    reduce_chunks,
    single_threaded_blas,
    using_scheduler,
)
from ._init import InitialGuess, check_bad_rows, estimator_initial_parameters
from ._kernels import LogDensity
from ._progress import ChunkProgress, FitProgress
from ._stats import EStep, chunk_stats, m_step
from ._validation import (
    check_feature_count,
    feature_names_of,
    validate_parameters,
)
from .fingerprint import training_data_fingerprint
from .model_store import StoredModel, register_model

logger = logging.getLogger(__name__)


@dataclass
class _Run:
    """One initialisation's EM run."""

    params: tuple
    lower_bound: float
    n_iter: int = 0
    converged: bool = False
    lower_bounds: list = field(default_factory=list)


def iteration_statistics(
    rows: RowChunks, params: tuple, covariance_type: str, split_every=None, nan_policy="raise"
):
    """One E-step pass: merged statistics of all rows under ``params`` (one compute).

    Parameters
    ----------
    rows : RowChunks
    params : tuple
        ``(weights, means, covariances, precisions_cholesky)``.
    covariance_type : str
    split_every : int, optional
    nan_policy : {'raise', 'omit'}
        'omit' leaves rows with non-finite values out (the E-step counts them
        anyway, so this costs no extra pass).

    Returns
    -------
    SufficientStats

    Raises
    ------
    ValueError
        If rows hold NaN or infinite values (under 'raise'), or all sample
        weights are zero.
    """
    weights, means, _, prec_chol = params
    estep = EStep(LogDensity(means, prec_chol, covariance_type, weights))
    stats = compute(reduce_chunks(rows, chunk_stats, estep, "daskgmm_estep", split_every))[0]
    check_bad_rows(stats, nan_policy)
    return stats


@contextmanager
def _verbose_logging(verbose: int):
    """Show this module's log lines on stderr during a verbose fit, unless the
    application has configured logging itself."""
    if not verbose or logger.hasHandlers():
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@contextmanager
def _performance_report(path, scheduler=None):
    """distributed's performance report of the block, when a path is given."""
    if path is None:
        yield
        return
    # cluster.py is the one module that imports distributed; import it only here.
    from .cluster import performance_report

    with performance_report(str(path), client=scheduler):
        yield


_RUN_ARRAYS = ("weights", "means", "covariances", "precisions_cholesky")


class _CheckpointSaver:
    """Writes and restores the state of a fit at iteration boundaries.

    The state is: which initialisation runs, its parameters, iteration count,
    lower bounds and convergence, the best run so far, and the random state
    (drawn from only between initialisations), so a resumed fit replays exactly.
    """

    def __init__(self, estimator, rows: RowChunks, path, random_state, training_data):
        self.path = path
        self.random_state = random_state
        if path is None:
            return
        self.fingerprint = _checkpoint.fit_fingerprint(estimator, rows, training_data)

    @staticmethod
    def _pack(prefix: str, run: _Run | None, meta: dict, arrays: dict) -> None:
        if run is None:
            meta[prefix] = None
            return
        meta[prefix] = {
            "lower_bound": run.lower_bound,
            "n_iter": run.n_iter,
            "converged": run.converged,
            "lower_bounds": run.lower_bounds,
        }
        for name, value in zip(_RUN_ARRAYS, run.params, strict=True):
            arrays[f"{prefix}_{name}"] = np.asarray(value, dtype=np.float64)

    @staticmethod
    def _unpack(prefix: str, meta: dict, arrays: dict) -> _Run | None:
        state = meta[prefix]
        if state is None:
            return None
        params = tuple(arrays[f"{prefix}_{name}"] for name in _RUN_ARRAYS)
        return _Run(
            params,
            float(state["lower_bound"]),
            int(state["n_iter"]),
            bool(state["converged"]),
            [float(v) for v in state["lower_bounds"]],
        )

    def save(self, init: int, run: _Run | None, best: _Run | None) -> None:
        """Record that initialisation ``init`` reached ``run`` (None: all done)."""
        if self.path is None:
            return
        random_state, keys = _checkpoint.random_state_parts(self.random_state)
        meta = {
            "fingerprint": self.fingerprint,
            "init": init,
            "random_state": random_state,
        }
        arrays = {"random_state_keys": keys}
        self._pack("run", run, meta, arrays)
        self._pack("best", best, meta, arrays)
        _checkpoint.save(self.path, meta, arrays)

    def restore(self):
        """(best run, first initialisation to run, the run to continue or None)."""
        if self.path is None:
            return None, 0, None
        loaded = _checkpoint.load(self.path, self.fingerprint)
        if loaded is None:
            return None, 0, None
        meta, arrays = loaded
        _checkpoint.restore_random_state(
            self.random_state, meta["random_state"], arrays["random_state_keys"]
        )
        run = self._unpack("run", meta, arrays)
        logger.info(
            "resuming from checkpoint %s: initialisation %d, iteration %d",
            self.path,
            meta["init"] + 1,
            0 if run is None else run.n_iter,
        )
        return self._unpack("best", meta, arrays), int(meta["init"]), run


@register_model
class GaussianMixture(StoredModel, BaseGaussianMixture):
    """Gaussian mixture fitted by EM over chunked (dask) or in-memory data.

    Parameters, attributes and methods mean what they mean in
    :class:`sklearn.mixture.GaussianMixture`; with the same initial parameters
    the fit agrees with scikit-learn's to about 1e-7 relative.  Each EM iteration
    is one pass over the data: every row chunk is reduced to sufficient
    statistics by a fused E-step, the statistics are merged in a tree, and the
    M-step runs on the client.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    max_iter : int, default=100
        EM iterations (passes over the data) per initialisation.
    n_init : int, default=1
        Initialisations; the best (highest lower bound) is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How initial responsibilities are drawn.  All but 'random' work on a
        random sample of at most ``init_sample_size`` rows.
    weights_init : array-like of shape (n_components,), optional
    means_init : array-like of shape (n_components, n_features), optional
    precisions_init : array-like, optional
        Shape (K, D, D), (D, D), (K, D) or (K,) by covariance type.
    random_state : int, RandomState instance or None
    warm_start : bool, default=False
        Continue from the previous fit's parameters on the next ``fit``.
    verbose : int, default=0
        1 logs each initialisation, 2 each iteration (every ``verbose_interval``).
        Lines go to the ``daskgmm.mixture`` logger; shown on stderr when the
        application has not configured logging.
    verbose_interval : int, default=10
    init_sample_size : int, default=100_000
        Most rows fed to the sample-based initialisers.  With no more rows than
        this the whole data are used, as scikit-learn does.
    chunk_rows : int or 'auto', default='auto'
        Rows per chunk when ``X`` is a numpy array ('auto': several chunks per
        core, at most 64 MiB each).  Dask arrays keep their own row chunks.
    split_every : int, optional
        Fan-in of the tree that merges chunk statistics (default 8).
    nan_policy : {'raise', 'omit'}, default='raise'
        Rows with a NaN or infinite value (cloud masks, fill values): 'raise'
        fails with their count and row chunks; 'omit' leaves them out of the fit
        (found by the E-step, no extra pass), and predictions for them are -1
        (labels) or NaN (probabilities, scores).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
    precisions_ : ndarray
    precisions_cholesky_ : ndarray
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean per-sample log-likelihood from the E-step of the best run's last
        iteration (sample-weighted when ``sample_weight`` is given).
    lower_bounds_ : list of float
        The lower bound at every iteration of the best run.
    n_features_in_ : int
    training_data_ : dict
        Fingerprint of the data of the last ``fit`` (store location, shapes,
        chunks, dtypes, modification state; see
        :func:`daskgmm.fingerprint.data_fingerprint`), saved with the model.

    Notes
    -----
    Differences from scikit-learn, all deliberate: initial weights are
    normalised by their sum (scikit-learn divides by ``n_samples``, so its
    'k-means++' and 'random_from_data' starts have weights that do not sum to 1;
    its issue 24085); second moments are centred and merged in float64 for float32
    data too (its issue 30382); fitted arrays are float64; ``fit`` accepts
    ``sample_weight``.
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        init_sample_size=100_000,
        chunk_rows="auto",
        split_every=None,
        nan_policy="raise",
        progress=False,
        scheduler=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.init_sample_size = init_sample_size
        self.chunk_rows = chunk_rows
        self.split_every = split_every
        self.nan_policy = nan_policy
        self.progress = progress
        self.scheduler = scheduler

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, sample_weight=None, *, checkpoint=None, performance_report=None):
        """Estimate the parameters by EM, one pass over ``X`` per iteration.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            float32 or float64 (integers become float64).  Dask arrays may have
            any row chunking; a chunked feature axis is merged.
        y : ignored
        sample_weight : array-like or dask array of shape (n_samples,), optional
            Non-negative weight of each row's responsibilities.
        checkpoint : path, optional
            A directory where the fit's state is written, atomically, after every
            iteration.  Fitting again with the same checkpoint (same parameters,
            same data) resumes from the last completed iteration and reaches the
            result an uninterrupted fit reaches; after a completed fit it returns
            that result without computing.
        performance_report : path, optional
            Write distributed's HTML performance report of the fit there (needs
            an active ``distributed.Client``).

        Returns
        -------
        self : GaussianMixture
        """
        names = feature_names_of(X)
        with (
            _verbose_logging(self.verbose),
            single_threaded_blas(),
            using_scheduler(self.scheduler),
            _performance_report(performance_report, self.scheduler),
        ):
            training_data = self._fit(X, sample_weight, checkpoint)
        self._record_feature_names(names)
        self.training_data_ = training_data
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then label ``X`` with a final E-step (equal to ``fit(X).predict(X)``).

        Returns
        -------
        labels : ndarray or dask array of shape (n_samples,)
            Lazy for dask input.
        """
        self.fit(X, sample_weight=sample_weight)
        return self.predict(X)

    def _fit(self, X, sample_weight, checkpoint=None) -> dict:
        """Fit; returns the training data's fingerprint (taken once, for the
        checkpoint and for ``training_data_``)."""
        validate_parameters(self.get_params())
        rows = prepare_rows(X, sample_weight, self.chunk_rows, self.n_components)
        training_data = training_data_fingerprint(X)
        guess = InitialGuess.from_estimator(self, rows.n_features)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        if not do_init:
            check_feature_count(rows.n_features, self.n_features_in_)
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)
        logger.info(
            "fitting %d components (%s) to %d x %d rows in %d chunks",
            self.n_components,
            self.covariance_type,
            rows.n_samples,
            rows.n_features,
            rows.n_chunks,
        )
        saver = _CheckpointSaver(self, rows, checkpoint, random_state, training_data)
        best, first_init, resumed = saver.restore()
        bar = FitProgress(n_init * self.max_iter, label="EM") if self.progress else None
        with ChunkProgress(bar) if bar else nullcontext():
            for init in range(first_init, n_init):
                logger.info("Initialization %d", init + 1)
                if resumed is not None:
                    run, resumed = resumed, None
                elif do_init:
                    params = estimator_initial_parameters(self, rows, guess, random_state)
                    run = _Run(params, -np.inf)
                else:
                    run = _Run(self._get_parameters(), self.lower_bound_)
                if self.max_iter == 0:
                    best = _Run(run.params, -np.inf)
                    continue
                self._run_em(
                    rows, run, lambda run, init=init, best=best: saver.save(init, run, best), bar
                )
                if (
                    best is None
                    or run.lower_bound > best.lower_bound
                    or best.lower_bound == -np.inf
                ):
                    best = run
            saver.save(n_init, None, best)
        if bar:
            bar.close("converged" if best.converged else "not converged")
        if not best.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_parameters(*best.params)
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.lower_bound_ = best.lower_bound
        self.lower_bounds_ = best.lower_bounds
        return training_data

    def _run_em(self, rows: RowChunks, run: _Run, after_iteration=None, bar=None) -> None:
        """EM iterations from ``run.params`` until convergence or ``max_iter``.

        A resumed run continues after its last completed iteration.
        """
        start = time.perf_counter()
        for n_iter in range(run.n_iter + 1, self.max_iter + 1):
            if run.converged:
                break
            tick = time.perf_counter()
            previous = run.lower_bound
            stats = iteration_statistics(
                rows, run.params, self.covariance_type, self.split_every, self.nan_policy
            )
            run.params = m_step(stats, self.reg_covar)
            run.lower_bound = stats.mean_log_likelihood
            run.lower_bounds.append(run.lower_bound)
            run.n_iter = n_iter
            change = run.lower_bound - previous
            run.converged = abs(change) < self.tol
            if after_iteration is not None:
                after_iteration(run)
            if bar is not None:
                bar.step(run.lower_bound, change)
            if n_iter % self.verbose_interval == 0:
                logger.debug(
                    "  Iteration %d\t time lapse %.5fs\t ll change %.5f",
                    n_iter,
                    time.perf_counter() - tick,
                    change,
                )
        logger.info(
            "Initialization %s. time lapse %.5fs\t lower bound %.5f",
            "converged" if run.converged else "did not converge",
            time.perf_counter() - start,
            run.lower_bound,
        )
