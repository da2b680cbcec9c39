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

import logging
import math
from contextlib import contextmanager, nullcontext

import dask.array as da
import numpy as np
from sklearn.utils import check_random_state

from . import _checkpoint
from ._base import _N_COVARIANCE_PARAMETERS, BaseGaussianMixture
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
from ._stats import _M2_SHAPE, EStep, SufficientStats, chunk_stats, m_step
from ._validation import (
    _boolean,
    _integer,
    _real,
    check_feature_count,
    check_feature_names,
    feature_names_of,
    validate_parameters,
)
from .fingerprint import training_data_fingerprint
from .mixture import _performance_report, iteration_statistics
from .model_store import ModelFileError, StoredModel, register_model

logger = logging.getLogger(__name__)

#: Chunks a mini-batch of numpy input is cut into with ``chunk_rows='auto'``.
CHUNKS_PER_BATCH = 8


def _warm_up(name, value):
    if value != "auto":
        _integer(1)(name, value)


def _kappa(name, value):
    _real(0.0)(name, value)
    if not 0.5 < value <= 1.0:
        raise ValueError(f"{name} must lie in (0.5, 1] for stepwise EM to converge, got {value!r}.")


#: Constraints of the parameters that the batch estimator does not have.
ONLINE_CONSTRAINTS = {
    "max_passes": _integer(1),
    "batch_size": _integer(1),
    "t0": _real(0.0),
    "kappa": _kappa,
    "warm_up": _warm_up,
    "final_batch_pass": _boolean,
}


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
    k, d = n_components, n_features
    n_parameters = _N_COVARIANCE_PARAMETERS[covariance_type](k, d) + k * d + k - 1
    return math.ceil(2 * n_parameters)


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


def _chunk_stats_at(block, shared, weight, position):
    """``chunk_stats`` of one chunk of a mini-batch, named by its index in the array."""
    estep, chunk_ids = shared
    return chunk_stats(block, estep, weight, int(chunk_ids[position]))


def batch_statistics(
    rows: RowChunks, chunk_ids, params, covariance_type, split_every=None, nan_policy="raise"
):
    """Merged E-step statistics of the chunks ``chunk_ids`` of ``rows`` (one compute).

    Raises
    ------
    ValueError
        If the rows hold NaN or infinite values (unless ``nan_policy='omit'``), or
        their weights sum to zero.
    """
    weights, means, _, prec_chol = params
    estep = EStep(LogDensity(means, prec_chol, covariance_type, weights))
    batch = RowChunks(
        rows.array,
        [rows.blocks[i] for i in chunk_ids],
        None if rows.weights is None else [rows.weights[i] for i in chunk_ids],
    )
    graph = reduce_chunks(
        batch, _chunk_stats_at, (estep, tuple(chunk_ids)), "daskgmm_estep", split_every
    )
    stats = compute(graph)[0]
    check_bad_rows(stats, nan_policy)
    return stats


#: Online state arrays: name -> expected shape from (K, D, covariance type).
_STATE_SHAPES = {
    "stats_nk": lambda k, d, cov: (k,),
    "stats_means": lambda k, d, cov: (k, d),
    "stats_m2": lambda k, d, cov: _M2_SHAPE[cov](k, d),
}


_PARAMETER_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_")


class _OnlineCheckpoint:
    """Writes and restores a stepwise-EM fit between mini-batches.

    The state is the model (parameters, online statistics, counters, history),
    the pass and the number of its mini-batches done, that pass's chunk order,
    and the random state after drawing it, so a resumed fit replays exactly.
    Pass ``max_passes + 1`` with nothing done means only the final batch pass is
    left; ``max_passes + 2`` means the fit is complete.
    """

    def __init__(self, estimator, rows: RowChunks, path, random_state, training_data):
        self.estimator = estimator
        self.path = path
        self.random_state = random_state
        if path is None:
            return
        self.fingerprint = _checkpoint.fit_fingerprint(estimator, rows, training_data)

    def save(self, n_pass: int, order, done: int) -> None:
        """Record that ``done`` mini-batches of pass ``n_pass`` (in ``order``) are done."""
        if self.path is None:
            return
        model = self.estimator
        random_state, keys = _checkpoint.random_state_parts(self.random_state)
        stats_meta, stats_arrays = model._extra_state()
        meta = {
            "fingerprint": self.fingerprint,
            "pass": n_pass,
            "done": done,
            "random_state": random_state,
            "lower_bound": model.lower_bound_,
            "log_likelihood_history": model.log_likelihood_history_,
            "n_batches_seen": model.n_batches_seen_,
            "n_samples_seen": model.n_samples_seen_,
            "warm_up_batches": model.warm_up_batches_,
            "stats": stats_meta,
        }
        arrays = {"random_state_keys": keys, **stats_arrays}
        arrays.update({name: getattr(model, name) for name in _PARAMETER_ARRAYS})
        if order is not None:
            arrays["order"] = np.asarray(order)
        _checkpoint.save(self.path, meta, arrays)

    def restore(self):
        """``(pass, order or None, mini-batches done)`` to continue from, or None."""
        if self.path is None:
            return None
        loaded = _checkpoint.load(self.path, self.fingerprint)
        if loaded is None:
            return None
        meta, arrays = loaded
        model = self.estimator
        _checkpoint.restore_random_state(
            self.random_state, meta["random_state"], arrays["random_state_keys"]
        )
        model._set_parameters(*(arrays[name] for name in _PARAMETER_ARRAYS))
        model.lower_bound_ = float(meta["lower_bound"])
        model.log_likelihood_history_ = [float(v) for v in meta["log_likelihood_history"]]
        model.n_batches_seen_ = int(meta["n_batches_seen"])
        model.n_samples_seen_ = int(meta["n_samples_seen"])
        model.warm_up_batches_ = meta["warm_up_batches"]
        model._restore_extra_state(
            meta["stats"], {k: v for k, v in arrays.items() if k.startswith("stats_")}
        )
        logger.info(
            "resuming from checkpoint %s: pass %d, %d mini-batches done",
            self.path,
            meta["pass"],
            meta["done"],
        )
        return int(meta["pass"]), arrays.get("order"), int(meta["done"])


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
    progress : bool, default=False
        One line on stderr over the mini-batches: batches done, the running mean
        log-likelihood and its change, and the share of the current batch's chunks.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_, n_features_in_
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
        :func:`daskgmm.fingerprint.data_fingerprint`), saved with the model.
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
        self.progress = progress
        self.scheduler = scheduler

    # ------------------------------------------------------------------ fitting
    def _validate(self) -> None:
        params = self.get_params()
        validate_parameters(params)
        for name, check in ONLINE_CONSTRAINTS.items():
            check(name, params[name])

    def _rows(self, X, sample_weight, n_components=None) -> RowChunks:
        """Row chunks of ``X``; numpy input is cut into ``CHUNKS_PER_BATCH`` chunks
        per mini-batch (``chunk_rows='auto'``).  Not per core: the mini-batches, and
        so the fit, must not depend on the machine."""
        chunk_rows = self.chunk_rows
        if chunk_rows == "auto" and not isinstance(X, da.Array):
            chunk_rows = max(1, math.ceil(self.batch_size / CHUNKS_PER_BATCH))
        rows = prepare_rows(X, sample_weight, chunk_rows, n_components)
        largest = max(rows.array.chunks[0])
        if largest > 2 * self.batch_size:
            logger.warning(
                "row chunks of up to %d rows are larger than batch_size=%d: each chunk is "
                "one mini-batch; rechunk the rows for more updates per pass",
                largest,
                self.batch_size,
            )
        return rows

    def _initialise(self, rows: RowChunks, random_state) -> None:
        """Initial parameters from ``rows`` (or the given ones); empty online state."""
        guess = InitialGuess.from_estimator(self, rows.n_features)
        params = estimator_initial_parameters(self, rows, guess, random_state)
        self._set_parameters(*params)
        self._online_stats = None
        self.lower_bound_ = -np.inf
        self.log_likelihood_history_ = []
        self.n_batches_seen_ = 0
        self.n_samples_seen_ = 0
        self.warm_up_batches_ = None

    def _step(self, rows: RowChunks, chunk_ids) -> None:
        """One stepwise-EM update from the chunks ``chunk_ids`` of ``rows``."""
        stats = batch_statistics(
            rows,
            chunk_ids,
            self._get_parameters(),
            self.covariance_type,
            self.split_every,
            self.nan_policy,
        )
        s_hat = stats.normalised()
        t = self.n_batches_seen_ + 1
        warm_up_batches = self.warm_up_batches_
        gamma = 1.0 / t if warm_up_batches is None else step_size(t, self.t0, self.kappa)
        if self._online_stats is None or gamma >= 1.0:
            blended = s_hat
        else:
            blended = self._online_stats.scaled(1.0 - gamma).merge(s_hat.scaled(gamma))
        n_samples = self.n_samples_seen_ + stats.n_rows
        if warm_up_batches is None and n_samples >= warm_up_rows(
            self.warm_up, self.n_components, self.n_features_in_, self.covariance_type
        ):
            warm_up_batches = t
        # the M-step may raise (singular covariance): change nothing before it
        params = None if warm_up_batches is None else m_step(blended, self.reg_covar)
        if params is not None:
            self._set_parameters(*params)
        self._online_stats = blended
        self.n_batches_seen_ = t
        self.n_samples_seen_ = n_samples
        self.warm_up_batches_ = warm_up_batches
        self.log_likelihood_history_.append(stats.mean_log_likelihood)
        change = blended.log_likelihood - self.lower_bound_
        self.lower_bound_ = blended.log_likelihood
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.step(self.lower_bound_, change)
        logger.debug(
            "batch %d: %d rows, step %.4f, batch mean log-likelihood %.5f",
            t,
            stats.n_rows,
            gamma,
            stats.mean_log_likelihood,
        )

    def fit(self, X, y=None, sample_weight=None, *, checkpoint=None, performance_report=None):
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
        """
        names = feature_names_of(X)
        with _performance_report(performance_report, self.scheduler):
            training_data = self._fit(X, sample_weight, checkpoint)
        self._record_feature_names(names)
        self.training_data_ = training_data
        return self

    def _fit(self, X, sample_weight, checkpoint) -> dict:
        """Fit; returns the training data's fingerprint (taken once, for the
        checkpoint and for ``training_data_``)."""
        self._validate()
        rows = self._rows(X, sample_weight, self.n_components)
        training_data = training_data_fingerprint(X)
        random_state = check_random_state(self.random_state)
        chunk_rows = rows.array.chunks[0]
        n_batches = len(mini_batches(np.arange(rows.n_chunks), chunk_rows, self.batch_size))
        saver = _OnlineCheckpoint(self, rows, checkpoint, random_state, training_data)
        with self._computing(n_batches * self.max_passes):
            place = saver.restore()
            if place is None:
                self._initialise(rows, random_state)
                place = (1, None, 0)
            first_pass, order, done = place
            for n_pass in range(first_pass, self.max_passes + 1):
                if order is None:
                    order = random_state.permutation(rows.n_chunks)
                batches = mini_batches(order, chunk_rows, self.batch_size)
                for index in range(done, len(batches)):
                    self._step(rows, batches[index])
                    saver.save(n_pass, order, index + 1)
                order, done = None, 0
                logger.info(
                    "pass %d: %d batches, running mean log-likelihood %.5f",
                    n_pass,
                    self.n_batches_seen_,
                    self.lower_bound_,
                )
            if self.final_batch_pass and first_pass <= self.max_passes + 1:
                self._batch_em_pass(rows)
                saver.save(self.max_passes + 2, None, 0)
        self.n_passes_ = self.max_passes + int(self.final_batch_pass)
        return training_data

    def _batch_em_pass(self, rows: RowChunks) -> None:
        """One exact batch EM iteration over all rows; its statistics become the state."""
        stats = iteration_statistics(
            rows, self._get_parameters(), self.covariance_type, self.split_every, self.nan_policy
        )
        self._online_stats = stats.normalised()
        self._set_parameters(*m_step(self._online_stats, self.reg_covar))
        self.lower_bound_ = stats.mean_log_likelihood

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one new block of rows.

        The block is split into mini-batches of ``batch_size`` rows (whole
        chunks) taken in row order, each one stepwise-EM update.  The first call
        initialises the model from the block (or from the given initial
        parameters).

        ``X`` (numpy or dask, ``n_rows`` rows), ``y`` and ``sample_weight`` are
        as for :meth:`fit`; returns ``self``.
        """
        self._validate()
        first = not hasattr(self, "n_batches_seen_")
        names = feature_names_of(X)
        if not first:
            check_feature_names(self, X)
        rows = self._rows(X, sample_weight, self.n_components if first else None)
        if not first:
            check_feature_count(rows.n_features, self.n_features_in_)
        batches = mini_batches(np.arange(rows.n_chunks), rows.array.chunks[0], self.batch_size)
        with self._computing(len(batches)):
            if first:
                self._initialise(rows, check_random_state(self.random_state))
            for chunk_ids in batches:
                self._step(rows, chunk_ids)
        if first:
            self._record_feature_names(names)
        self.training_data_ = training_data_fingerprint(X)
        return self

    @contextmanager
    def _computing(self, n_batches: int):
        """Single-threaded BLAS, the chosen scheduler and, with ``progress``, the bar."""
        self._bar = FitProgress(n_batches, label="online EM") if self.progress else None
        try:
            with (
                single_threaded_blas(),
                using_scheduler(self.scheduler),
                ChunkProgress(self._bar) if self._bar else nullcontext(),
            ):
                yield
        finally:
            if self._bar is not None:
                self._bar.close(f"{self.n_batches_seen_} mini-batches seen")
            self._bar = None

    # --------------------------------------------------------------- storage
    def _extra_state(self) -> tuple[dict, dict]:
        """The online statistics, for :mod:`daskgmm.model_store`."""
        s = self._online_stats
        if s is None:
            return {"has_stats": False}, {}
        meta = {
            "has_stats": True,
            "stats_log_likelihood": s.log_likelihood,
            "stats_weight_sum": s.weight_sum,
            "stats_n_rows": s.n_rows,
        }
        arrays = {"stats_nk": s.nk, "stats_means": s.means, "stats_m2": s.m2}
        return meta, arrays

    def _restore_extra_state(self, meta: dict, arrays: dict) -> None:
        """Inverse of :meth:`_extra_state`; checks shapes against the parameters."""
        if not meta.get("has_stats"):
            if arrays:
                raise ModelFileError("online statistics present but 'has_stats' is false")
            self._online_stats = None
            return
        counters = [getattr(self, n, None) for n in ("n_batches_seen_", "n_samples_seen_")]
        if not all(isinstance(v, int) and v >= 0 for v in counters):
            raise ModelFileError("online counters n_batches_seen_/n_samples_seen_ are missing")
        warm = getattr(self, "warm_up_batches_", None)
        if not (warm is None or (isinstance(warm, int) and 0 < warm <= counters[0])):
            raise ModelFileError("online counter warm_up_batches_ is malformed")
        k, d = self.means_.shape
        for name, shape in _STATE_SHAPES.items():
            expected = shape(k, d, self.covariance_type)
            if name not in arrays or arrays[name].shape != expected:
                got = arrays[name].shape if name in arrays else "nothing"
                raise ModelFileError(
                    f"online state {name!r} should have shape {expected}, got {got}"
                )
        scalars = [meta.get(n) for n in ("stats_log_likelihood", "stats_weight_sum")]
        if not all(isinstance(v, float) and math.isfinite(v) for v in scalars):
            raise ModelFileError("online state scalars are missing or not finite")
        self._online_stats = SufficientStats(
            self.covariance_type,
            arrays["stats_nk"],
            arrays["stats_means"],
            arrays["stats_m2"],
            scalars[0],
            scalars[1],
            int(meta.get("stats_n_rows", 0)),
        )
