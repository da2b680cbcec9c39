"""``OnlineBayesianGaussianMixture``: variational Bayes on mini-batches, and ``partial_fit``.

The model is :class:`BayesianGaussianMixture`'s (its E-step, posterior, priors,
answers); the fitting is :class:`OnlineGaussianMixture`'s (mini-batches of row
chunks, one pass of the one EM loop per mini-batch, shuffled passes, checkpoints,
``partial_fit``).  Only the ``mstep`` differs: the mini-batch's statistics become
global statistics by memoized online VB or by SVI
(:mod:`daskgmm.estimators.online_bayesian_state`), then the variational M-step.
"""

from __future__ import annotations

import logging
from typing import Self

import numpy as np

from .._typing import ArrayLike, Data
from ..engine.passes import run_pass
from ..engine.rows import RowChunks
from ..kernels.variational import responsibility_entropy, variational_lower_bound
from ..kernels.variational import variational_m_step as posterior
from . import online_bayesian_state as state
from .bayesian_mixture import BayesianGaussianMixture
from .online import OnlineGaussianMixture
from .registry import register_model
from .stepwise import revisiting_order

logger = logging.getLogger("daskgmm.online")


@register_model
class OnlineBayesianGaussianMixture(BayesianGaussianMixture, OnlineGaussianMixture):
    """Variational Bayesian Gaussian mixture fitted on mini-batches, for data too
    large to pass over many times and for data that keep arriving.

    The model, its parameters, priors, attributes and answers are those of
    :class:`daskgmm.BayesianGaussianMixture`; ``fit`` makes ``max_passes``
    passes over the row chunks, updating the posterior after every mini-batch,
    and ``partial_fit`` updates it with a new block of rows, as
    :class:`daskgmm.OnlineGaussianMixture` does.

    Parameters
    ----------
    n_components : int, default=1
        The most components the posterior may use.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    method : {'memoized', 'svi'}, default='memoized'
        'memoized': memoized online variational Bayes (Hughes & Sudderth 2013).
        ``fit`` cuts the chunks once into fixed mini-batches and visits them in
        a new random order every pass; each mini-batch's statistics are kept and
        replaced when it is visited again, and the posterior follows from all of
        them merged.  No learning rate; after one pass the lower bound is that of
        all the data and never decreases; one mini-batch holding all the data is
        batch variational Bayes.  Memory: the statistics of every mini-batch
        (``n_components * n_features**2`` floats each for 'full').
        'svi': stochastic variational inference (Hoffman et al. 2013): a
        natural-gradient step of size ``(t + t0) ** -kappa`` after every
        mini-batch, the blend of the per-row statistics scaled to the data's
        rows; the chunks are reshuffled into new mini-batches every pass.
        Memoized reaches batch variational Bayes's lower bound in fewer passes
        on every data set of ``benchmarks/bench_bayesian.py``.
    reg_covar : float, default=1e-6
    max_passes : int, default=2
        Passes over the data made by ``fit``.
    batch_size : int, default=20_000
        Rows per mini-batch, rounded to whole row chunks (at least one).
    t0 : float, default=1.0
    kappa : float, default=0.6
        The step size ``(t + t0) ** -kappa`` of the ``t``-th mini-batch
        ('svi' only); ``kappa`` in (0.5, 1].
    final_batch_pass : bool, default=False
        End ``fit`` with one batch variational iteration over all the data (one
        more pass); its lower bound is then that of batch variational Bayes's
        next iteration from the streaming posterior.
    init_params, weight_concentration_prior_type, weight_concentration_prior, \
mean_precision_prior, mean_prior, degrees_of_freedom_prior, covariance_prior
        As for :class:`daskgmm.BayesianGaussianMixture`.  The priors' data
        defaults (the mean and covariance of the rows) come from the
        initialisation's pass over the data in ``fit``, from the first block in
        ``partial_fit``.
    random_state, init_sample_size, chunk_rows, split_every, nan_policy, \
compute_dtype, feature_dim, progress, scheduler
        As for :class:`daskgmm.OnlineGaussianMixture`.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_, \
weight_concentration_prior_, weight_concentration_, mean_precision_prior_, \
mean_precision_, mean_prior_, degrees_of_freedom_prior_, degrees_of_freedom_, \
covariance_prior_, n_effective_components_, n_features_in_, feature_names_in_, \
feature_dim_
        As for :class:`daskgmm.BayesianGaussianMixture`.
    lower_bound_ : float
        After the last mini-batch, a total over the rows as the batch model's.
        'memoized': the evidence lower bound of the rows seen, each mini-batch
        under the responsibilities of its last visit (exact; after the first
        pass, of all the data).  'svi': the blended estimate of the bound.
    lower_bounds_ : list of float
        ``lower_bound_`` after every mini-batch.
    log_likelihood_history_, n_batches_seen_, n_samples_seen_, n_passes_, \
training_data_
        As for :class:`daskgmm.OnlineGaussianMixture`.
    warm_up_batches_ : None
        There is no warm-up: the priors make every M-step well posed.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import OnlineBayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (500, 2)), rng.normal(5, 1, (500, 2))])
    >>> X = rng.permutation(X)
    >>> bgm = OnlineBayesianGaussianMixture(5, batch_size=250, random_state=0).fit(X)
    >>> bgm.n_batches_seen_, len(bgm.lower_bounds_), bgm.means_.shape   # 2 passes of 4
    (8, 8, (5, 2))
    >>> svi = OnlineBayesianGaussianMixture(5, method="svi", batch_size=250, random_state=0)
    >>> svi.fit(X).predict(X[:3]).shape
    (3,)
    """

    #: Fitted attributes saved by :meth:`_extra_state` rather than as plain values.
    _state_attributes = (
        "weight_concentration_",
        "mean_precision_",
        "degrees_of_freedom_",
        "lower_bounds_",
    )

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        method="memoized",
        reg_covar=1e-06,
        max_passes=2,
        batch_size=20_000,
        t0=1.0,
        kappa=0.6,
        final_batch_pass=False,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
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
        self.method = method
        self.reg_covar = reg_covar
        self.max_passes = max_passes
        self.batch_size = batch_size
        self.t0 = t0
        self.kappa = kappa
        self.final_batch_pass = final_batch_pass
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
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
    def _set_initial_parameters(self, rows: RowChunks, random_state) -> None:
        """The priors checked (before any pass), then the batch model's initial
        posterior; the priors' data defaults from the same pass."""
        self._start_fit(rows.n_features)
        self._set_run_parameters(self._initial_params(rows, random_state))

    def _initialise(self, rows: RowChunks, random_state) -> None:
        """Initial posterior from ``rows``; empty memo and running statistics."""
        super()._initialise(rows, random_state)
        self._memo = {}
        self._online_entropy = 0.0
        self._data_rows = 0
        self._partition = None
        self._batch_key = None
        self.lower_bounds_ = []

    def _schedule(self, rows: RowChunks, random_state, place: tuple, position: list):
        """The online estimator's schedule; each mini-batch's first chunk is its
        key in the memo, and the data's rows scale SVI's statistics."""
        self._data_rows = rows.n_samples
        for chunk_ids in super()._schedule(rows, random_state, place, position):
            self._batch_key = int(np.min(chunk_ids))
            yield chunk_ids

    def _pass_order(self, rows: RowChunks, random_state) -> np.ndarray:
        """'memoized': the fixed mini-batches (drawn at the first pass) in a new
        order; 'svi': the chunks reshuffled."""
        if self.method != "memoized":
            return super()._pass_order(rows, random_state)
        if self._partition is None:
            self._partition = random_state.permutation(rows.n_chunks)
        return revisiting_order(
            self._partition, rows.array.chunks[0], self.batch_size, random_state
        )

    def partial_fit(
        self, X: Data, y: object = None, sample_weight: ArrayLike | None = None
    ) -> Self:
        """Update the posterior with one new block of rows.

        The block is split into mini-batches of ``batch_size`` rows (whole
        chunks) taken in row order.  'memoized': each mini-batch's statistics
        are added to those of the rows seen before (exact streaming variational
        Bayes); 'svi': a step scaled to all the rows seen so far.  The first call
        initialises the model, and the priors' data defaults, from the block.

        ``X`` (numpy or dask, ``n_rows`` rows), ``y`` and ``sample_weight`` are
        as for :meth:`fit`; returns ``self``.

        Examples
        --------
        >>> import numpy as np
        >>> from daskgmm import OnlineBayesianGaussianMixture
        >>> bgm = OnlineBayesianGaussianMixture(4, batch_size=500, random_state=0)
        >>> rng = np.random.default_rng(0)
        >>> for block in range(3):
        ...     bgm = bgm.partial_fit(rng.normal(size=(1_000, 2)))
        >>> bgm.n_samples_seen_, bgm.weights_.shape
        (3000, (4,))
        """
        if hasattr(self, "_memo"):
            self._memo = state.fold(self._memo)
        self._batch_key = None
        return super().partial_fit(X, y, sample_weight)

    # ------------------------------------------------------- the EM protocol
    def mstep(self, stats, params: tuple) -> tuple:
        """The posterior after a mini-batch: its statistics and ``sum r log r``
        (under ``params``) made global by the method, then the variational M-step."""
        entropy = responsibility_entropy(stats, self._variational_density(params))
        if self._batch_key is None:
            self._data_rows += stats.n_rows
        total, total_entropy = state.UPDATES[self.method](self, stats, entropy, self._batch_key)
        new_params = self._posterior(total, total_entropy)
        self.lower_bounds_.append(self.lower_bound_)
        self.n_batches_seen_ += 1
        self.n_samples_seen_ += stats.n_rows
        self.log_likelihood_history_.append(stats.mean_log_likelihood)
        logger.debug(
            "batch %d (%s): %d rows, lower bound %.6g",
            self.n_batches_seen_,
            self.method,
            stats.n_rows,
            self.lower_bound_,
        )
        return new_params

    def lower_bound(self, stats, params: tuple, new_params: tuple) -> float:
        """The lower bound the last :meth:`mstep` reached."""
        return self.lower_bound_

    def _posterior(self, stats, entropy: float) -> tuple:
        """The variational M-step from global statistics; its lower bound."""
        new_params = posterior(stats, self._priors, self.reg_covar)
        self._set_run_parameters(new_params)
        self.lower_bound_ = variational_lower_bound(
            entropy, new_params, self.covariance_type, self.weight_concentration_prior_type
        )
        return new_params

    def _batch_em_pass(self, rows: RowChunks) -> None:
        """One batch variational iteration over all rows; its statistics become the state."""
        params = self._get_parameters()
        stats = run_pass(
            rows, self.estep(params), split_every=self.split_every, nan_policy=self.nan_policy
        )
        entropy = responsibility_entropy(stats, self._variational_density(params))
        if self.method == "memoized":
            self._memo = {0: (stats, entropy)}
        else:
            self._online_stats = stats.scaled(1.0 / stats.n_rows)
            self._online_entropy = entropy / stats.n_rows
        self._posterior(stats, entropy)
        self.lower_bounds_.append(self.lower_bound_)

    # --------------------------------------------------------------- storage
    def _extra_state(self) -> tuple[dict, dict]:
        """The posterior's arrays, the memo or running statistics, the priors'
        data defaults and the partition, for model files and checkpoints."""
        meta, arrays = super()._extra_state()
        more_meta, more_arrays = state.extra_state(self)
        return {**meta, **more_meta}, {**arrays, **more_arrays}

    def _restore_extra_state(self, meta: dict, arrays: dict) -> None:
        """Inverse of :meth:`_extra_state`; checks shapes against the parameters."""
        super()._restore_extra_state(meta, arrays)
        state.restore_extra_state(self, meta, arrays)
