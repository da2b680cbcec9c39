"""``GaussianMixture``: batch EM with one pass over the data per iteration."""

from __future__ import annotations

import logging

from ..engine.init import InitialGuess, estimator_initial_parameters
from ..engine.rows import RowChunks
from ..kernels.mstep import m_step
from .batch import BatchMixture
from .registry import StoredModel, register_model

logger = logging.getLogger("daskgmm.mixture")


@register_model
class GaussianMixture(StoredModel, BatchMixture):
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
        They iterate together: each pass reads each chunk once for all the runs
        still iterating (a converged run drops out), so restarts do not multiply
        the reads; each run is the one it would be alone.
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
    device : {None, 'cuda', 'cuda:N'}, default=None
        Where the chunks are computed.  None leaves them where they are: numpy
        chunks on the CPU, CuPy chunks (``da.from_array(cupy_array)``,
        ``da.from_zarr(store).map_blocks(cupy.asarray)``) on their GPU.  'cuda'
        moves each chunk to the GPU as it is read (needs ``daskgmm[gpu]``, i.e.
        CuPy); the statistics alone come back to the host for the M-step.  On a
        GPU ``compute_dtype='float32'`` runs the whitening in float32, the sums
        in float64.  ``predict``, ``predict_proba`` and ``score_samples`` return
        arrays on the input's device.
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
    feature_names_in_ : ndarray of str (object), shape (n_features,)
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

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from daskgmm import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (500, 2)), rng.normal(5, 1, (500, 2))])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> gm.weights_.shape, gm.means_.shape, gm.covariances_.shape
    ((2,), (2, 2), (2, 2, 2))
    >>> np.sort(gm.means_[:, 0]).round()
    array([-5.,  5.])
    >>> gm.converged_
    True

    A dask array (or a Zarr store's path, or an xarray object) is fitted chunk by
    chunk, one pass per iteration; its predictions stay lazy:

    >>> Xd = da.from_array(X, chunks=250)
    >>> labels = GaussianMixture(n_components=2, random_state=0).fit(Xd).predict(Xd)
    >>> labels.shape, labels.chunks[0]
    ((1000,), (250, 250, 250, 250))
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
        self.device = device
        self.feature_dim = feature_dim
        self.progress = progress
        self.scheduler = scheduler

    # ------------------------------------------------------- the EM protocol
    def mstep(self, stats, params: tuple) -> tuple:
        """Maximum-likelihood parameters from a pass's statistics."""
        return m_step(stats, self.reg_covar)

    def lower_bound(self, stats, params: tuple, new_params: tuple | None = None) -> float:
        """Mean per-sample log-likelihood of the pass (scikit-learn's lower bound)."""
        return stats.mean_log_likelihood

    # ------------------------------------------------------ the batch fit's hooks
    def _start_fit(self, n_features: int) -> None:
        """Check ``weights_init``, ``means_init`` and ``precisions_init`` before any pass."""
        self._guess = InitialGuess.from_estimator(self, n_features)

    def _initial_params(self, rows: RowChunks, random_state, random_stats=None) -> tuple:
        """Initial parameters of one initialisation (``random_stats``: its random
        responsibilities' statistics, from a shared pass)."""
        return estimator_initial_parameters(self, rows, self._guess, random_state, random_stats)

    def _needs_initial_pass(self) -> bool:
        """Whether the data give initial parameters (not all of them were given)."""
        return not self._guess.complete

    def _set_run_parameters(self, params: tuple) -> None:
        self._set_parameters(*params)
