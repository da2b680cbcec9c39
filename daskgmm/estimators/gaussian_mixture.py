"""``GaussianMixture``: batch EM with one pass over the data per iteration."""

from __future__ import annotations

import itertools
import logging
import warnings
from contextlib import nullcontext

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ..engine.compute import single_threaded_blas, using_scheduler
from ..engine.init import InitialGuess, estimator_initial_parameters
from ..engine.progress import ChunkProgress, FitProgress
from ..engine.rows import RowChunks
from ..io import training_data_fingerprint
from ..kernels.checks import check_feature_count
from ..kernels.mstep import m_step
from ..kernels.params import validate_parameters
from .base import BaseGaussianMixture
from .em import EMRun, Initialisations, LoopSettings, best_of_initialisations, run_em
from .fit_state import open_checkpoint, pack_run, unpack_run
from .inputs import fit_rows, training_input
from .registry import StoredModel, register_model
from .session import report_of, verbose_logging

logger = logging.getLogger("daskgmm.mixture")


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
    compute_dtype : {'float64', 'float32'}, default='float64'
        The precision of the E-step's products.  'float32' runs the compiled
        kernel's matrix products in float32 (about twice the arithmetic rate, half
        the memory traffic) while every statistic still accumulates in float64;
        rows whose float32 expansion could be off by more than 1e-2 nats of
        log-density, and chunks whose moments would lose float32's digits, are
        computed in float64.  Measured against 'float64' on the benchmark data:
        see the README.  Fits that must match scikit-learn to 1e-7 keep the default.
    feature_dim : str, optional
        The dimension of named input (xarray objects, Zarr stores with dimension
        names) that holds the features.  Default: the one dimension called
        band(s), channel(s), feature(s) or variable(s); other named input is
        refused, listing its dimensions (unnamed arrays: the last axis).  The
        fitted model remembers it (``feature_dim_``): later calls find it by name
        wherever it lies, and take the features by label in the fitted order.

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
    feature_names_in_ : ndarray of str (object), shape (n_features_in_,)
        A DataFrame's string column names, or the string labels of the feature
        dimension of xarray input; absent when the input had none.
    feature_dim_ : str
        The dimension that held the features of named input; absent otherwise.
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
        compute_dtype="float64",
        feature_dim=None,
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
        self.compute_dtype = compute_dtype
        self.feature_dim = feature_dim
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
        with (
            verbose_logging(logger, self.verbose),
            single_threaded_blas(),
            using_scheduler(self.scheduler),
            report_of(performance_report, self.scheduler),
        ):
            training_data, names, feature_dim = self._fit(X, sample_weight, checkpoint)
        self._record_feature_names(names, feature_dim)
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

    def _fit(self, X, sample_weight, checkpoint=None) -> tuple:
        """Fit; returns the training data's fingerprint (taken once, for the
        checkpoint and for ``training_data_``), its feature names and dimension."""
        validate_parameters(self.get_params())
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        source, names, feature_dim = training_input(self, X, continuing=not do_init)
        rows = fit_rows(source, sample_weight, self.chunk_rows, self.n_components)
        training_data = training_data_fingerprint(X)
        guess = InitialGuess.from_estimator(self, rows.n_features)
        if not do_init:
            check_feature_count(rows.n_features, self.n_features_in_, type(self).__name__)
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
        saver = open_checkpoint(self, rows, checkpoint, random_state, training_data)
        start = self._restore(saver, n_init)

        def new_run() -> EMRun:
            if not do_init:
                return EMRun(self._get_parameters(), self.lower_bound_)
            return EMRun(estimator_initial_parameters(self, rows, guess, random_state), -np.inf)

        bar = FitProgress(self.max_iter, n_init=n_init, tol=self.tol) if self.progress else None
        with ChunkProgress(bar) if bar else nullcontext():
            best = best_of_initialisations(
                start,
                new_run,
                lambda run, init, best: self._iterate(rows, run, bar, saver, init, best),
                self.max_iter,
                finished=lambda best: self._save(saver, n_init, None, best),
            )
        if bar:
            state = "converged" if best.converged else "not converged"
            best_of = f", the best of {n_init} initialisations" if n_init > 1 else ""
            bar.close(f"{state} after {best.n_iter} iterations{best_of}")
        self._keep(best)
        return training_data, names, feature_dim

    def _iterate(self, rows: RowChunks, run: EMRun, bar, saver, init: int, best) -> None:
        """EM iterations of one initialisation, checkpointed after each."""
        settings = LoopSettings(
            tol=self.tol,
            split_every=self.split_every,
            nan_policy=self.nan_policy,
            verbose_interval=self.verbose_interval,
            logger=logger,
        )
        steps = itertools.repeat(None, max(self.max_iter - run.n_iter, 0))
        if bar is not None:
            bar.start_init(init, run.n_iter)
        run_em(self, rows, run, steps, settings, lambda r: self._save(saver, init, r, best), bar)

    def _keep(self, best: EMRun) -> None:
        """The best run's parameters and history become the fitted state."""
        if not best.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=4,
            )
        self._set_parameters(*best.params)
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.lower_bound_ = best.lower_bound
        self.lower_bounds_ = best.lower_bounds

    # ------------------------------------------------------- the EM protocol
    def mstep(self, stats, params: tuple) -> tuple:
        """Maximum-likelihood parameters from a pass's statistics."""
        return m_step(stats, self.reg_covar)

    def lower_bound(self, stats, params: tuple, new_params: tuple | None = None) -> float:
        """Mean per-sample log-likelihood of the pass (scikit-learn's lower bound)."""
        return stats.mean_log_likelihood

    # ------------------------------------------------------------ checkpoints
    @staticmethod
    def _save(saver, init: int, run: EMRun | None, best: EMRun | None) -> None:
        """Record that initialisation ``init`` reached ``run`` (None: all done).

        The random state goes with it (drawn from only between initialisations),
        so a resumed fit replays exactly.
        """
        state, arrays = {"init": init}, {}
        pack_run("run", run, state, arrays)
        pack_run("best", best, state, arrays)
        saver.save(state, arrays)

    @staticmethod
    def _restore(saver, n_init: int) -> Initialisations:
        """Where to start: afresh, or where the checkpoint says."""
        loaded = saver.load()
        if loaded is None:
            return Initialisations(n_init)
        state, arrays = loaded
        run = unpack_run("run", state, arrays)
        logger.info(
            "resuming from checkpoint %s: initialisation %d, iteration %d",
            saver.path,
            state["init"] + 1,
            0 if run is None else run.n_iter,
        )
        return Initialisations(n_init, int(state["init"]), run, unpack_run("best", state, arrays))
