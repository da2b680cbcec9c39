"""``BayesianGaussianMixture``: variational Bayes with one pass over the data per iteration."""

from __future__ import annotations

import logging

import numpy as np

from ..engine.init import initial_statistics
from ..engine.rows import RowChunks
from ..errors import ModelFileError
from ..kernels.density import LogDensity
from ..kernels.priors import Priors, check_priors, complete_priors, pooled_moments
from ..kernels.responsibilities import EStep
from ..kernels.variational import (
    mixture_weights,
    responsibility_entropy,
    variational_log_density,
    variational_lower_bound,
    variational_m_step,
)
from .batch import BatchMixture
from .registry import StoredModel, register_model

logger = logging.getLogger("daskgmm.mixture")

#: The variational parameters of a run, in scikit-learn's ``_get_parameters`` order.
VARIATIONAL_ARRAYS = (
    "weight_concentration",
    "mean_precision",
    "means",
    "degrees_of_freedom",
    "covariances",
    "precisions_cholesky",
)
#: Components whose weight is below this do not count in :attr:`n_effective_components_`.
EFFECTIVE_WEIGHT = 1e-2


@register_model
class BayesianGaussianMixture(StoredModel, BatchMixture):
    """Variational Bayesian Gaussian mixture over chunked (dask) or in-memory data.

    Parameters, attributes and methods mean what they mean in
    :class:`sklearn.mixture.BayesianGaussianMixture`; from the same initial
    responsibilities the fit agrees with scikit-learn's to about 1e-7 relative.
    A Dirichlet-process prior (the default) leaves the components the data do not
    need with weights near 0, so ``n_components`` is an upper bound on K.

    Each iteration is one pass over the data: the chunks are reduced to the same
    sufficient statistics as :class:`GaussianMixture` (under the variational
    E-step, whose extra terms are K numbers computed on the client), the
    statistics are merged in a tree, and the Dirichlet/Gauss-Wishart posterior is
    computed from them on the client.  The lower bound's ``sum r log r`` comes from
    the same statistics (:func:`daskgmm.kernels.variational.responsibility_entropy`).
    The priors' data defaults (the mean and covariance of ``X``) come from the
    initialisation's pass, not from a pass of their own.

    Parameters
    ----------
    n_components : int, default=1
        The most components the posterior may use.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (a total over the
        rows, as in scikit-learn).
    reg_covar : float, default=1e-6
        Added to the diagonal of the data's covariance in each component.
    max_iter : int, default=100
        Iterations (passes over the data) per initialisation.
    n_init : int, default=1
        Initialisations; the one with the highest lower bound is kept.
        They iterate together: each pass reads each chunk once for all the runs
        still iterating (a converged run drops out), so restarts do not multiply
        the reads; each run is the one it would be alone.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How initial responsibilities are drawn.  All but 'random' work on a
        random sample of at most ``init_sample_size`` rows.
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, \
default='dirichlet_process'
        Stick-breaking (Dirichlet process) or Dirichlet-distribution prior on the weights.
    weight_concentration_prior : float > 0, optional
        Default ``1 / n_components``.  Smaller values leave more components empty.
    mean_precision_prior : float > 0, optional
        Default 1.
    mean_prior : array-like of shape (n_features,), optional
        Default: the mean of the data.
    degrees_of_freedom_prior : float > n_features - 1, optional
        Default ``n_features``.
    covariance_prior : float or array-like, optional
        (D, D) for 'full' and 'tied', (D,) for 'diag', a float for 'spherical'.
        Default: the covariance of the data (``ddof=1``; with sample weights,
        frequency weights), its diagonal, or its diagonal's mean.
    random_state : int, RandomState instance or None
    warm_start : bool, default=False
        Continue from the previous fit's posterior on the next ``fit``.
    verbose : int, default=0
    verbose_interval : int, default=10
    init_sample_size, chunk_rows, split_every, nan_policy, compute_dtype, device, \
feature_dim, progress, scheduler
        As in :class:`GaussianMixture`.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Posterior-mean weights.
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        The Wishart scale's inverse over the degrees of freedom (scikit-learn's).
    precisions_, precisions_cholesky_ : ndarray
    weight_concentration_prior_ : float
    weight_concentration_ : tuple of two ndarrays of shape (n_components,), or ndarray
        The Beta posteriors of the sticks ('dirichlet_process') or the Dirichlet
        posterior ('dirichlet_distribution').
    mean_precision_prior_ : float
    mean_precision_ : ndarray of shape (n_components,)
    mean_prior_ : ndarray of shape (n_features,)
    degrees_of_freedom_prior_ : float
    degrees_of_freedom_ : ndarray of shape (n_components,), or float for 'tied'
    covariance_prior_ : float or ndarray
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The evidence lower bound (up to constants, as scikit-learn's) after the
        best run's last iteration: a total over the rows.
    lower_bounds_ : list of float
    n_features_in_ : int
    n_effective_components_ : int
        Components whose weight is at least ``EFFECTIVE_WEIGHT`` (1e-2).
    feature_names_in_, feature_dim_, training_data_
        As in :class:`GaussianMixture`.

    Notes
    -----
    As for :class:`GaussianMixture`, the moments are centred and merged in
    float64, so offset and float32 data keep their digits; ``fit`` accepts
    ``sample_weight`` (each row's responsibilities weighted, in the bound too).
    ``score_samples`` and ``score`` are scikit-learn's: the log of the sum of the
    variational per-component terms.  ``bic`` and ``aic`` use the mixture with the
    posterior-mean parameters (``weights_``, ``means_``, ``covariances_``).

    Examples
    --------
    Two clusters, five components allowed: the posterior empties three.

    >>> import numpy as np
    >>> from daskgmm import BayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (500, 2)), rng.normal(5, 1, (500, 2))])
    >>> bgm = BayesianGaussianMixture(n_components=5, random_state=0).fit(X)
    >>> bgm.n_effective_components_, bgm.weights_.shape, bgm.means_.shape
    (2, (5,), (5, 2))
    >>> np.sort(bgm.weights_)[-2:].round(2)
    array([0.5, 0.5])
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
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        init_sample_size=100_000,
        chunk_rows="auto",
        split_every=None,
        nan_policy="raise",
        compute_dtype="float64",
        device=None,
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
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.init_sample_size = init_sample_size
        self.chunk_rows = chunk_rows
        self.split_every = split_every
        self.nan_policy = nan_policy
        self.compute_dtype = compute_dtype
        self.device = device
        self.feature_dim = feature_dim
        self.progress = progress
        self.scheduler = scheduler

    # ------------------------------------------------------ the batch fit's hooks
    def _start_fit(self, n_features: int) -> None:
        """Check the priors against the data's width, before any pass."""
        self._priors = check_priors(self, n_features)

    def _initial_params(self, rows: RowChunks, random_state, random_stats=None) -> tuple:
        """The posterior from the initial responsibilities; the priors' data
        defaults from the moments of the same pass (``random_stats``: the
        statistics of its random responsibilities, from a shared pass)."""
        stats, moments = initial_statistics(
            rows,
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            init_params=self.init_params,
            random_state=random_state,
            init_sample_size=self.init_sample_size,
            split_every=self.split_every,
            nan_policy=self.nan_policy,
            data_moments=not self._priors.complete,
            random_stats=random_stats,
        )
        if not self._priors.complete:
            self._priors = complete_priors(self._priors, moments, self.covariance_type)
        return variational_m_step(stats, self._priors, self.reg_covar)

    def _set_run_parameters(self, params: tuple) -> None:
        """The variational parameters, the priors and what follows from them."""
        (
            concentration,
            mean_precision,
            means,
            dof,
            covariances,
            prec_chol,
        ) = params
        if self.weight_concentration_prior_type == "dirichlet_process":
            concentration = tuple(np.asarray(c, dtype=np.float64) for c in concentration)
        self.weight_concentration_ = concentration
        self.mean_precision_ = np.asarray(mean_precision, dtype=np.float64)
        self.degrees_of_freedom_ = (
            float(dof) if self.covariance_type == "tied" else np.asarray(dof, dtype=np.float64)
        )
        weights = mixture_weights(concentration, self.weight_concentration_prior_type)
        self._set_parameters(weights, means, covariances, prec_chol)
        self.n_effective_components_ = int(np.count_nonzero(self.weights_ >= EFFECTIVE_WEIGHT))
        priors = self._priors
        self.weight_concentration_prior_ = priors.weight_concentration
        self.mean_precision_prior_ = priors.mean_precision
        self.mean_prior_ = priors.mean
        self.degrees_of_freedom_prior_ = priors.degrees_of_freedom
        self.covariance_prior_ = priors.covariance

    def _get_parameters(self) -> tuple:
        return (
            self.weight_concentration_,
            self.mean_precision_,
            self.means_,
            self.degrees_of_freedom_,
            self.covariances_,
            self.precisions_cholesky_,
        )

    def _pack_params(self, params: tuple) -> dict:
        named = dict(zip(VARIATIONAL_ARRAYS, params, strict=True))
        named["weight_concentration"] = np.asarray(named["weight_concentration"])
        return named

    def _unpack_params(self, arrays: dict) -> tuple:
        params = [arrays[name] for name in VARIATIONAL_ARRAYS]
        if self.weight_concentration_prior_type == "dirichlet_process":
            params[0] = (params[0][0], params[0][1])
        return tuple(params)

    def _fit_state(self) -> dict:
        """The priors' data defaults, so that a resumed fit needs no pass for them."""
        priors = getattr(self, "_priors", None)
        if priors is None or not priors.complete:
            return {}
        return {"prior_mean": priors.mean, "prior_covariance": np.asarray(priors.covariance)}

    def _restore_fit_state(self, arrays: dict) -> None:
        if "prior_mean" in arrays:
            covariance = arrays["prior_covariance"]
            self._priors = Priors(
                self._priors.kind,
                self._priors.weight_concentration,
                self._priors.mean_precision,
                np.asarray(arrays["prior_mean"]),
                self._priors.degrees_of_freedom,
                float(covariance) if covariance.ndim == 0 else covariance,
            )

    # ------------------------------------------------------- the EM protocol
    def estep(self, params: tuple) -> EStep:
        """The variational E-step under ``params``: Gaussian kernels with K extra terms."""
        return EStep(self._variational_density(params), self.compute_dtype)

    def mstep(self, stats, params: tuple) -> tuple:
        """The posterior from a pass's statistics (the priors' data defaults from
        the same pass when a warm start has not taken them yet)."""
        if not self._priors.complete:
            self._priors = complete_priors(
                self._priors, pooled_moments(stats), self.covariance_type
            )
        return variational_m_step(stats, self._priors, self.reg_covar)

    def lower_bound(self, stats, params: tuple, new_params: tuple) -> float:
        """The evidence lower bound after the step (scikit-learn's ``_compute_lower_bound``)."""
        entropy = responsibility_entropy(stats, self._variational_density(params))
        return variational_lower_bound(
            entropy, new_params, self.covariance_type, self.weight_concentration_prior_type
        )

    def _weights_of(self, params: tuple) -> np.ndarray:
        """The posterior-mean weights of a run's parameters (for progress records)."""
        return mixture_weights(params[0], self.weight_concentration_prior_type)

    def _variational_density(self, params: tuple) -> LogDensity:
        return variational_log_density(
            params, self.covariance_type, self.weight_concentration_prior_type
        )

    # ---------------------------------------------------------------- answers
    def _log_density(self) -> LogDensity:
        """What ``predict``, ``predict_proba`` and ``score_samples`` use, as in scikit-learn."""
        return self._variational_density(self._get_parameters())

    def _plug_in_density(self) -> LogDensity:
        """The mixture with the posterior-mean parameters (``bic``, ``aic``)."""
        return LogDensity(
            self.means_, self.precisions_cholesky_, self.covariance_type, self.weights_
        )

    # ------------------------------------------------------------ model files
    #: Fitted attributes saved by :meth:`_extra_state` rather than as plain values.
    _state_attributes = ("weight_concentration_",)

    def _extra_state(self) -> tuple[dict, dict]:
        """``weight_concentration_`` (a pair of arrays for the Dirichlet process)."""
        return {}, {"weight_concentration": np.asarray(self.weight_concentration_)}

    def _restore_extra_state(self, meta: dict, arrays: dict) -> None:
        concentration = arrays.get("weight_concentration")
        k = self.n_components
        process = self.weight_concentration_prior_type == "dirichlet_process"
        if concentration is None or concentration.shape != ((2, k) if process else (k,)):
            raise ModelFileError(
                "the saved model's weight_concentration_ is missing or of the wrong shape"
            )
        self.weight_concentration_ = (
            (concentration[0], concentration[1]) if process else concentration
        )
