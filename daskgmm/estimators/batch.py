"""Batch EM over row chunks: the ``fit`` that ``GaussianMixture`` and
``BayesianGaussianMixture`` share.

:class:`BatchMixture` runs the one EM loop (:mod:`daskgmm.estimators.em`) once per
initialisation, one pass over the data per iteration, checkpointed after each,
and keeps the best run.  A subclass supplies the model through the EM protocol
(``estep``, ``mstep``, ``lower_bound``) and a few hooks:

``_start_fit(n_features)``          check what the user gave, before any pass
``_initial_params(rows, rng, random_stats)``  the parameters one initialisation starts from
``_needs_initial_pass()``           whether they come from the data
``_set_run_parameters(params)``     a run's parameters become the fitted state
``_get_parameters()``               the fitted state as a run's parameters
``_pack_params`` / ``_unpack_params``   a run's parameters as named arrays
``_fit_state`` / ``_restore_fit_state``  more of the fit in its checkpoint
"""

from __future__ import annotations

import logging
import warnings
from contextlib import nullcontext
from typing import Self

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._typing import Answer, ArrayLike, Data, PathLike
from ..engine import init as initialisation
from ..engine.compute import single_threaded_blas, using_scheduler
from ..engine.progress import ChunkProgress, FitProgress
from ..engine.rows import RowChunks
from ..io import training_data_fingerprint
from ..kernels.checks import check_feature_count
from ..kernels.params import validate_parameters
from .base import BaseGaussianMixture
from .em import EMRun, Initialisations
from .fit_state import RUN_ARRAYS, open_checkpoint, unpack_run
from .inputs import fit_rows, training_input
from .joint import ModelFit, fit_jointly
from .session import report_of, verbose_logging

logger = logging.getLogger("daskgmm.mixture")


class BatchMixture(BaseGaussianMixture):
    """Batch EM over row chunks, ``n_init`` runs together, checkpoints (see the module
    docstring)."""

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: Data,
        y: object = None,
        sample_weight: ArrayLike | None = None,
        *,
        checkpoint: PathLike | None = None,
        performance_report: PathLike | None = None,
    ) -> Self:
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
        self : estimator

        Examples
        --------
        >>> import dask.array as da
        >>> from daskgmm import GaussianMixture
        >>> X = da.random.default_rng(0).normal(size=(2_000, 3), chunks=(500, 3))
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> gm.means_.shape, gm.covariances_.shape, gm.converged_
        ((2, 3), (2, 3, 3), True)
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

    def fit_predict(
        self, X: Data, y: object = None, sample_weight: ArrayLike | None = None
    ) -> Answer:
        """Fit, then label ``X`` with a final E-step (equal to ``fit(X).predict(X)``).

        Returns
        -------
        labels : ndarray or dask array of shape (n_samples,)
            Lazy for dask input.

        Examples
        --------
        >>> import numpy as np
        >>> from daskgmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(-5, 1, (500, 2)), rng.normal(5, 1, (500, 2))])
        >>> labels = GaussianMixture(n_components=2, random_state=0).fit_predict(X)
        >>> labels.shape, np.bincount(labels).tolist()
        ((1000,), [500, 500])
        """
        self.fit(X, sample_weight=sample_weight)
        return self.predict(X)

    def _fit(self, X, sample_weight, checkpoint=None) -> tuple:
        """Fit; returns the training data's fingerprint (taken once, for the
        checkpoint and for ``training_data_``), its feature names and dimension."""
        validate_parameters(self.get_params())
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        source, names, feature_dim = training_input(self, X, continuing=not do_init)
        rows = fit_rows(
            source, sample_weight, self.chunk_rows, self.n_components, getattr(self, "device", None)
        )
        training_data = training_data_fingerprint(X)
        if not do_init:
            check_feature_count(rows.n_features, self.n_features_in_, type(self).__name__)
        logger.info(
            "fitting %d components (%s) to %d x %d rows in %d chunks",
            self.n_components,
            self.covariance_type,
            rows.n_samples,
            rows.n_features,
            rows.n_chunks,
        )
        fit = self._model_fit(rows, checkpoint, training_data, fresh=do_init)
        n_init = fit.n_init
        bar = None
        if self.progress:
            label = "EM" if n_init == 1 else f"EM, {n_init} initialisations together"
            bar = FitProgress(self.max_iter, label=label, tol=self.tol)
        with ChunkProgress(bar) if bar else nullcontext():
            (fit,) = fit_jointly([fit], rows, bar)
        best = fit.best
        if bar:
            state = "converged" if best.converged else "not converged"
            best_of = f", the best of {n_init} initialisations" if n_init > 1 else ""
            bar.close(f"{state} after {best.n_iter} iterations{best_of}")
        self._keep(best)
        return training_data, names, feature_dim

    def _model_fit(self, rows: RowChunks, checkpoint, training_data: dict, fresh: bool = True):
        """This model's part in a joint fit (:mod:`.joint`): checked, with its
        random state, checkpoint and where it starts; ``rows`` is its own."""
        self._start_fit(rows.n_features)
        random_state = check_random_state(self.random_state)
        saver = open_checkpoint(self, rows, checkpoint, random_state, training_data)
        start = self._restore(saver, self.n_init if fresh else 1)
        return ModelFit(self, rows, random_state, saver, start, fresh_run=fresh)

    def _random_start(self, random_state):
        """The random responsibilities of an ``init_params='random'`` start (a
        pass shared with the other starts computes them), or None when the
        start needs no such pass."""
        if self.init_params != "random" or not self._needs_initial_pass():
            return None
        return initialisation.random_responsibilities(
            self.n_components, self.covariance_type, random_state
        )

    def _needs_initial_pass(self) -> bool:
        """Whether initial parameters come from the data (not all given)."""
        return True

    def _keep(self, best: EMRun) -> None:
        """The best run's parameters and history become the fitted state."""
        if not best.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=4,
            )
        self._set_run_parameters(best.params)
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.lower_bound_ = best.lower_bound
        self.lower_bounds_ = best.lower_bounds

    # ------------------------------------------------------------ checkpoints
    def _restore(self, saver, n_init: int) -> Initialisations:
        """Where to start: afresh, or where the checkpoint says (written by
        :func:`.joint.fit_jointly`: every run of the fit; or, before runs were
        fitted together, the one in progress)."""
        loaded = saver.load()
        if loaded is None:
            return Initialisations(n_init)
        state, arrays = loaded
        self._restore_fit_state(arrays)
        if "runs" in state:
            runs = [
                unpack_run(f"run{i}", state, arrays, self._unpack_params)
                for i in range(int(state["runs"]))
            ]
        else:
            run = unpack_run("run", state, arrays, self._unpack_params)
            runs = [] if run is None else [run]
        logger.info(
            "resuming from checkpoint %s: initialisation %d, iteration %s",
            saver.path,
            state["init"] + 1,
            ", ".join(str(run.n_iter) for run in runs) or 0,
        )
        best = unpack_run("best", state, arrays, self._unpack_params)
        return Initialisations(n_init, int(state["init"]), runs, best)

    # ------------------------------------------------ a run's parameters, named
    def _pack_params(self, params: tuple) -> dict:
        """A run's parameters as named float64 arrays (for its checkpoint)."""
        return dict(zip(RUN_ARRAYS, params, strict=True))

    def _unpack_params(self, arrays: dict) -> tuple:
        """Inverse of :meth:`_pack_params`."""
        return tuple(arrays[name] for name in RUN_ARRAYS)

    def _fit_state(self) -> dict:
        """Arrays of the fit (beyond its runs) that a resumed fit needs."""
        return {}

    def _restore_fit_state(self, arrays: dict) -> None:
        """Inverse of :meth:`_fit_state`."""
