"""``OnlineGaussianMixture``: stepwise (mini-batch) EM, and ``partial_fit`` for streams.

The estimator runs the one EM loop (:mod:`daskgmm.estimators.em`) over a schedule
of mini-batches; its ``mstep`` blends each mini-batch's statistics into the
running statistics (:mod:`daskgmm.estimators.stepwise`) before maximising.
"""

from __future__ import annotations

import functools
import logging
from typing import Self

import numpy as np
from sklearn.utils import check_random_state

from .._typing import ArrayLike, Data, PathLike
from ..engine.init import InitialGuess, estimator_initial_parameters
from ..engine.passes import run_pass
from ..engine.rows import RowChunks
from ..io import is_source, training_data_fingerprint
from ..kernels.checks import check_feature_count, check_feature_names
from ..kernels.mstep import m_step
from ..kernels.params import validate_parameters
from . import online_state
from .base import BaseGaussianMixture
from .em import EMRun, LoopSettings, run_em
from .fit_state import open_checkpoint
from .inputs import mini_batch_rows, training_input
from .registry import StoredModel, register_model
from .session import report_of, stepwise_computing
from .stepwise import blend, mini_batches, step_size, warm_up_rows

logger = logging.getLogger("daskgmm.online")


@register_model
class OnlineGaussianMixture(StoredModel, BaseGaussianMixture):
    """Gaussian mixture fitted by stepwise (online, mini-batch) EM.

    For data too large to pass over many times and for data that keeps arriving.
    ``fit`` makes ``max_passes`` passes over the chunks in a shuffled order,
    updating the model after every mini-batch; ``partial_fit`` updates it with a
    new block of rows.  Prediction, scoring, ``bic``, ``aic`` and ``sample``
    behave as :class:`daskgmm.GaussianMixture`'s.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance at every M-step.
    max_passes : int, default=2
        Passes over the data made by ``fit``.
    batch_size : int, default=20_000
        Rows per mini-batch, rounded to whole row chunks (at least one).  The
        chunks of one mini-batch are processed in parallel with one ``compute``.
    t0 : float, default=1.0
        Offset of the step-size schedule ``(t + t0) ** -kappa``.
    kappa : float, default=0.6
        Decay of the step size, in (0.5, 1].
    warm_up : int or 'auto', default='auto'
        Rows (rounded up to whole mini-batches) whose statistics are averaged
        under the initial parameters before the first M-step.  'auto': twice
        the number of free parameters (2,446 rows for K=8, D=16, 'full'), so that
        the first M-step is well posed; with the default ``batch_size`` that is
        the first batch.
    final_batch_pass : bool, default=False
        End ``fit`` with one exact batch EM iteration over all the data (one more
        pass).
    init_params, weights_init, means_init, precisions_init, random_state, \
init_sample_size, chunk_rows, split_every
        As for :class:`daskgmm.GaussianMixture`, except that ``chunk_rows='auto'``
        cuts numpy input into chunks of ``batch_size / 8`` rows (a mini-batch
        spreads over up to 8 cores; the same batches on every machine).  ``fit``
        initialises from the data; the first ``partial_fit`` from its block.
        ``random_state`` also shuffles the chunk order of every pass.
    nan_policy, scheduler
        As for :class:`daskgmm.GaussianMixture`: 'omit' leaves rows with NaN/inf
        out of every mini-batch (no extra pass); ``scheduler`` picks where to compute.
    compute_dtype, feature_dim
        As for :class:`daskgmm.GaussianMixture` (default 'float64', None).
    progress : bool, default=False
        One line on stderr over the mini-batches: batches done, the running mean
        log-likelihood and its change, and the share of the current batch's chunks.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_, n_features_in_,
    feature_names_in_, feature_dim_
        As for :class:`daskgmm.GaussianMixture`.
    lower_bound_ : float
        The running mean log-likelihood: the mini-batches' mean log-likelihoods
        blended with the same weights as the statistics.
    log_likelihood_history_ : list of float
        Mean log-likelihood of every mini-batch, evaluated under the model
        *before* it was updated with that batch (a progressive validation score).
    n_batches_seen_ : int
        Mini-batches since initialisation (the ``t`` of the step-size schedule).
    n_samples_seen_ : int
        Rows since initialisation (the final batch pass not counted).
    warm_up_batches_ : int or None
        Mini-batches the warm-up took (None while it lasts).
    n_passes_ : int
        Passes over the data made by the last ``fit``.
    training_data_ : dict
        Fingerprint of the data of the last ``fit`` or ``partial_fit`` call (see
        :func:`daskgmm.io.data_fingerprint`), saved with the model.

    Examples
    --------
    >>> from daskgmm import OnlineGaussianMixture, datasets
    >>> X, _ = datasets.make_mixture(10_000, n_features=2, n_components=2, chunk_rows=1_000)
    >>> OnlineGaussianMixture(2, batch_size=2_000).fit(X).partial_fit(X[:2_000]).n_samples_seen_
    22000
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        reg_covar=1e-6,
        max_passes=2,
        batch_size=20_000,
        t0=1.0,
        kappa=0.6,
        warm_up="auto",
        final_batch_pass=False,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
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
        self.reg_covar = reg_covar
        self.max_passes = max_passes
        self.batch_size = batch_size
        self.t0 = t0
        self.kappa = kappa
        self.warm_up = warm_up
        self.final_batch_pass = final_batch_pass
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.init_sample_size = init_sample_size
        self.chunk_rows = chunk_rows
        self.split_every = split_every
        self.nan_policy = nan_policy
        self.compute_dtype = compute_dtype
        self.feature_dim = feature_dim
        self.progress = progress
        self.scheduler = scheduler

    # ------------------------------------------------------------------ fitting
    def _rows(self, X, sample_weight, n_components=None) -> RowChunks:
        """Row chunks of ``X`` for mini-batches (:func:`.inputs.mini_batch_rows`)."""
        return mini_batch_rows(X, sample_weight, self.chunk_rows, self.batch_size, n_components)

    def _initialise(self, rows: RowChunks, random_state) -> None:
        """Initial parameters from ``rows`` (or the given ones); empty online state."""
        self._set_initial_parameters(rows, random_state)
        self._online_stats = None
        self.lower_bound_ = -np.inf
        self.log_likelihood_history_ = []
        self.n_batches_seen_ = 0
        self.n_samples_seen_ = 0
        self.warm_up_batches_ = None

    def _set_initial_parameters(self, rows: RowChunks, random_state) -> None:
        """The initial parameters: from ``rows``, or the given ``*_init``."""
        guess = InitialGuess.from_estimator(self, rows.n_features)
        self._set_parameters(*estimator_initial_parameters(self, rows, guess, random_state))

    # ------------------------------------------------------- the EM protocol
    def mstep(self, stats, params: tuple) -> tuple:
        """Blend a mini-batch's statistics into the running ones, then maximise.

        During the warm-up the statistics are averaged (``gamma = 1 / t``) and the
        parameters stay; an M-step that raises (a singular covariance) changes
        nothing.
        """
        s_hat = stats.normalised()
        t = self.n_batches_seen_ + 1
        warm_up_batches = self.warm_up_batches_
        gamma = 1.0 / t if warm_up_batches is None else step_size(t, self.t0, self.kappa)
        blended = blend(self._online_stats, s_hat, gamma)
        n_samples = self.n_samples_seen_ + stats.n_rows
        if warm_up_batches is None and n_samples >= warm_up_rows(
            self.warm_up, self.n_components, self.n_features_in_, self.covariance_type
        ):
            warm_up_batches = t
        new_params = None if warm_up_batches is None else m_step(blended, self.reg_covar)
        if new_params is not None:
            self._set_parameters(*new_params)
        self._online_stats = blended
        self.n_batches_seen_ = t
        self.n_samples_seen_ = n_samples
        self.warm_up_batches_ = warm_up_batches
        self.log_likelihood_history_.append(stats.mean_log_likelihood)
        self.lower_bound_ = blended.log_likelihood
        logger.debug(
            "batch %d: %d rows, step %.4f, batch mean log-likelihood %.5f",
            t,
            stats.n_rows,
            gamma,
            stats.mean_log_likelihood,
        )
        return self._get_parameters()

    def lower_bound(self, stats, params: tuple, new_params: tuple | None = None) -> float:
        """The running mean log-likelihood, blended as the statistics are."""
        return self.lower_bound_

    def _run(self, rows: RowChunks, steps, after_step=None, saver=None, n_steps=None) -> None:
        """Stepwise-EM updates, one per mini-batch of ``steps``, by the EM loop."""
        settings = LoopSettings(
            split_every=self.split_every,
            nan_policy=self.nan_policy,
            verbose_interval=None,
            logger=logger,
            checkpoint=saver is not None and saver.path is not None,
            n_steps=n_steps,
        )
        run = EMRun(self._get_parameters(), self.lower_bound_)
        run_em(self, rows, run, steps, settings, after_step, self._bar)

    def fit(
        self,
        X: Data,
        y: object = None,
        sample_weight: ArrayLike | None = None,
        *,
        checkpoint: PathLike | None = None,
        performance_report: PathLike | None = None,
    ) -> Self:
        """Fit by stepwise EM: ``max_passes`` shuffled passes over the row chunks.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like or dask array of shape (n_samples,), optional
        checkpoint : path, optional
            A directory where the fit's state (model, online statistics, place in
            the pass, random state) is written, atomically, after every
            mini-batch.  Fitting again with the same checkpoint (same parameters,
            same data) resumes after the last completed mini-batch and reaches the
            result an uninterrupted fit reaches; after a completed fit it returns
            that result without computing.
        performance_report : path, optional
            Write distributed's HTML performance report of the fit there (needs
            an active ``distributed.Client``).

        Returns
        -------
        self : OnlineGaussianMixture

        Examples
        --------
        >>> import dask.array as da, daskgmm
        >>> X = da.random.default_rng(0).normal(size=(4_000, 2), chunks=(500, 2))
        >>> gm = daskgmm.OnlineGaussianMixture(2, batch_size=1_000, random_state=0).fit(X)
        >>> gm.n_passes_, gm.n_batches_seen_, gm.means_.shape
        (2, 8, (2, 2))
        """
        with report_of(performance_report, self.scheduler):
            training_data, names, feature_dim = self._fit(X, sample_weight, checkpoint)
        self._record_feature_names(names, feature_dim)
        self.training_data_ = training_data
        return self

    def _fit(self, X, sample_weight, checkpoint) -> tuple:
        """Fit; returns the training data's fingerprint (taken once, for the
        checkpoint and for ``training_data_``), its feature names and dimension."""
        validate_parameters(self.get_params())
        source, names, feature_dim = training_input(self, X, continuing=False)
        rows = self._rows(source, sample_weight, self.n_components)
        training_data = training_data_fingerprint(X)
        random_state = check_random_state(self.random_state)
        chunk_rows = rows.array.chunks[0]
        n_batches = len(mini_batches(np.arange(rows.n_chunks), chunk_rows, self.batch_size))
        saver = open_checkpoint(self, rows, checkpoint, random_state, training_data)
        with stepwise_computing(self, n_batches * self.max_passes):
            place = online_state.restore_checkpoint(self, saver)
            if place is None:
                self._initialise(rows, random_state)
                place = (1, None, 0)
            position = []
            steps = self._schedule(rows, random_state, place, position)
            left = n_batches * self.max_passes - self.n_batches_seen_  # for the time left
            save = functools.partial(online_state.save_checkpoint, self, saver)
            self._run(rows, steps, lambda run: save(*position), saver, left)
            if self.final_batch_pass and place[0] <= self.max_passes + 1:
                self._batch_em_pass(rows)
                online_state.save_checkpoint(self, saver, self.max_passes + 2, None, 0)
        self.n_passes_ = self.max_passes + int(self.final_batch_pass)
        return training_data, names, feature_dim

    def _schedule(self, rows: RowChunks, random_state, place: tuple, position: list):
        """The mini-batches (chunk indices) of the passes left, from ``place`` =
        (pass, its chunk order or None, mini-batches of it done).

        Each pass's chunk order is drawn from ``random_state`` when the pass
        begins; ``position`` holds ``(pass, order, done)`` after the batch last
        yielded, for the checkpoint.
        """
        first_pass, order, done = place
        for n_pass in range(first_pass, self.max_passes + 1):
            if order is None:
                order = self._pass_order(rows, random_state)
            batches = mini_batches(order, rows.array.chunks[0], self.batch_size)
            for index in range(done, len(batches)):
                position[:] = (n_pass, order, index + 1)
                yield batches[index]
            order, done = None, 0
            logger.info(
                "pass %d: %d batches, running mean log-likelihood %.5f",
                n_pass,
                self.n_batches_seen_,
                self.lower_bound_,
            )

    def _pass_order(self, rows: RowChunks, random_state) -> np.ndarray:
        """A pass's chunk order, drawn from ``random_state`` when the pass begins."""
        return random_state.permutation(rows.n_chunks)

    def _batch_em_pass(self, rows: RowChunks) -> None:
        """One exact batch EM iteration over all rows; its statistics become the state."""
        stats = run_pass(
            rows,
            self.estep(self._get_parameters()),
            split_every=self.split_every,
            nan_policy=self.nan_policy,
        )
        self._online_stats = stats.normalised()
        self._set_parameters(*m_step(self._online_stats, self.reg_covar))
        self.lower_bound_ = stats.mean_log_likelihood

    def partial_fit(
        self, X: Data, y: object = None, sample_weight: ArrayLike | None = None
    ) -> Self:
        """Update the model with one new block of rows.

        The block is split into mini-batches of ``batch_size`` rows (whole
        chunks) taken in row order, each one stepwise-EM update.  The first call
        initialises the model from the block (or from the given initial
        parameters).

        ``X`` (numpy or dask, ``n_rows`` rows), ``y`` and ``sample_weight`` are
        as for :meth:`fit`; returns ``self``.

        Examples
        --------
        >>> import numpy as np, daskgmm
        >>> gm = daskgmm.OnlineGaussianMixture(2, batch_size=500, random_state=0)
        >>> for block in np.random.default_rng(0).normal(size=(3, 1_000, 2)):  # one a day
        ...     gm = gm.partial_fit(block)
        >>> gm.n_batches_seen_, gm.n_samples_seen_
        (6, 3000)
        """
        validate_parameters(self.get_params())
        first = not hasattr(self, "n_batches_seen_")
        source, names, feature_dim = training_input(self, X, continuing=not first)
        if not first and not is_source(X):
            check_feature_names(self, X)
        rows = self._rows(source, sample_weight, self.n_components if first else None)
        if not first:
            check_feature_count(rows.n_features, self.n_features_in_, type(self).__name__)
        batches = mini_batches(np.arange(rows.n_chunks), rows.array.chunks[0], self.batch_size)
        with stepwise_computing(self, len(batches)):
            if first:
                self._initialise(rows, check_random_state(self.random_state))
            self._run(rows, batches)
        if first:
            self._record_feature_names(names, feature_dim)
        self.training_data_ = training_data_fingerprint(X)
        return self

    # --------------------------------------------------------------- storage
    def _extra_state(self) -> tuple[dict, dict]:
        """The online statistics, for :mod:`daskgmm.store.model_files`."""
        return online_state.extra_state(self)

    def _restore_extra_state(self, meta: dict, arrays: dict) -> None:
        """Inverse of :meth:`_extra_state`; checks shapes against the parameters."""
        online_state.restore_extra_state(self, meta, arrays)
