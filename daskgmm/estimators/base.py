"""What every fitted Gaussian mixture can do, whichever way it was fitted.

:class:`BaseGaussianMixture` holds the fitted state (``weights_``, ``means_``,
``covariances_``, ``precisions_``, ``precisions_cholesky_``) and answers with it:
predict, predict_proba, score_samples, score, bic, aic, sample.  Numpy input gives
numpy results; dask input gives lazy dask arrays (scores are computed).
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state

from .._typing import Answer, Data
from ..engine.compute import compute
from ..engine.passes import map_rows
from ..engine.rows import as_dask_array, is_device_array, like_chunks_of, on_device, on_host
from ..io import is_source, rows_for_model
from ..kernels.answers import (
    predict_rows,
    prediction_rows,
    proba_rows,
    score_rows,
)
from ..kernels.checks import (
    check_data_shape,
    check_feature_count,
    check_feature_names,
    check_is_fitted,
    check_numpy_data,
)
from ..kernels.covariance import n_parameters, precisions_from_cholesky
from ..kernels.density import LogDensity
from ..kernels.nan_policy import LABEL_FILL, finite_rows_only
from ..kernels.responsibilities import EStep
from ..kernels.sampling import draw_components

_predict_rows = finite_rows_only(predict_rows, LABEL_FILL)
_proba_rows = finite_rows_only(proba_rows, np.nan)
_score_rows = finite_rows_only(score_rows, np.nan)
_prediction_rows = finite_rows_only(prediction_rows, np.nan)


class BaseGaussianMixture(DensityMixin, BaseEstimator):
    """Fitted-model behaviour shared by the batch and online estimators."""

    def __sklearn_clone__(self):
        """An unfitted copy with the same parameters (``sklearn.base.clone``).

        As scikit-learn's clone, except that a ``distributed.Client`` given as
        ``scheduler`` is shared, not deep-copied (a client cannot be copied): the
        copies compute on the same cluster, e.g. in ``GridSearchCV``.
        """
        from sklearn.base import clone

        params = self.get_params(deep=False)
        scheduler = params.pop("scheduler", None)
        copied = {name: clone(value, safe=False) for name, value in params.items()}
        return type(self)(**copied, scheduler=scheduler)

    # ------------------------------------------------------------------ state
    def _set_parameters(self, weights, means, covariances, precisions_cholesky) -> None:
        """Store fitted parameters as float64 numpy arrays and derive precisions_."""
        self.weights_ = np.asarray(weights, dtype=np.float64)
        self.means_ = np.asarray(means, dtype=np.float64)
        self.covariances_ = np.asarray(covariances, dtype=np.float64)
        self.precisions_cholesky_ = np.asarray(precisions_cholesky, dtype=np.float64)
        self.precisions_ = precisions_from_cholesky(self.precisions_cholesky_, self.covariance_type)
        self.n_features_in_ = self.means_.shape[1]

    def _record_feature_names(self, names, feature_dim=None) -> None:
        """``feature_names_in_`` and ``feature_dim_`` from a fit's input (each
        removed when the input had none)."""
        for attribute, value in (("feature_names_in_", names), ("feature_dim_", feature_dim)):
            if value is None:
                self.__dict__.pop(attribute, None)
            else:
                setattr(self, attribute, value)

    def _get_parameters(self) -> tuple:
        return self.weights_, self.means_, self.covariances_, self.precisions_cholesky_

    def estep(self, params: tuple) -> EStep:
        """The E-step under ``params`` = (weights, means, covariances, precisions_cholesky):
        the first method of the EM protocol (:mod:`daskgmm.estimators.em`)."""
        weights, means, _, prec_chol = params
        log_density = LogDensity(means, prec_chol, self.covariance_type, weights)
        return EStep(log_density, getattr(self, "compute_dtype", "float64"))

    def _log_density(self) -> LogDensity:
        return LogDensity(
            self.means_, self.precisions_cholesky_, self.covariance_type, self.weights_
        )

    def _rows_for_prediction(self, X):
        """Validate X against the fit; return it as numpy or as a row-chunked dask array.

        Stores, zarr arrays and xarray objects (see ``daskgmm.io``) come back as
        their rows, a dask array: read on the model's feature dimension, their
        features in the model's order by label (``daskgmm.io.rows_for_model``).
        """
        return self._prediction_input(X, names=False)[0]

    def _prediction_input(self, X, names: bool = True):
        """``(rows, view)``: validated rows, and the ``io.RowView`` they came from
        (None for numpy and dask input).  ``names``: compare a DataFrame's column
        names with ``feature_names_in_`` as scikit-learn does."""
        check_is_fitted(self)
        view = None
        if is_source(X):
            view = rows_for_model(self, X)
            X = view.data
        elif names:
            check_feature_names(self, X)
        name = type(self).__name__
        if isinstance(X, da.Array) or is_device_array(X):  # CuPy: answered on its device
            check_data_shape(X.shape, X.dtype)
            check_feature_count(X.shape[1], self.n_features_in_, name)
            return (X if is_device_array(X) else as_dask_array(X)), view
        X = check_numpy_data(X, estimator=self)  # scikit-learn's check_array
        check_feature_count(X.shape[1], self.n_features_in_, name)
        return X, view

    def _apply_rows(self, X, row_func, n_columns, dtype, name=None, names=True, density=None):
        rows, view = self._prediction_input(X, names)
        density = self._log_density() if density is None else density
        shared = (density, getattr(self, "nan_policy", "raise"))
        if not isinstance(rows, da.Array):
            return row_func(rows, shared)
        moved = on_device(rows, getattr(self, "device", None))
        out = like_chunks_of(rows, map_rows(moved, row_func, shared, n_columns, dtype))
        if view is None:
            return out
        attrs = {"_FillValue": LABEL_FILL} if name == "labels" else None
        return view.to_samples(out, name=name, attrs=attrs)

    def _predictions(self, rows: da.Array, labels: bool, proba: bool, log_density: bool) -> dict:
        """Lazy per-row outputs of one E-step per chunk, for writing several at once.

        Parameters
        ----------
        rows : dask.array.Array of shape (n_samples, n_features)
        labels, proba, log_density : bool
            Which outputs: as :meth:`predict` (int64, -1 for omitted rows),
            :meth:`predict_proba` and :meth:`score_samples` give them.

        Returns
        -------
        dict
            Name ('labels', 'proba', 'log_density') -> dask array of row chunks.
        """
        rows = on_device(self._rows_for_prediction(rows), getattr(self, "device", None))
        k = self.n_components
        shared = (self._log_density(), getattr(self, "nan_policy", "raise"))
        table = on_host(map_rows(rows, _prediction_rows, shared, k + 2, np.float64))
        out = {}
        if labels:
            label = table[:, k + 1]
            out["labels"] = da.where(da.isnan(label), LABEL_FILL, label).astype(np.int64)
        if proba:
            out["proba"] = table[:, :k]
        if log_density:
            out["log_density"] = table[:, k]
        return out

    # ---------------------------------------------------------------- answers
    def predict(self, X: Data) -> Answer:
        """Most probable component of each sample.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray or dask array of shape (n_samples,), int64
            Lazy for dask input.

        Examples
        --------
        >>> import numpy as np, daskgmm
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> gm = daskgmm.GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> gm.predict(X[:3]).shape
        (3,)
        >>> bool(gm.predict(X[:1])[0] == gm.predict_proba(X[:1]).argmax())
        True
        """
        return self._apply_rows(X, _predict_rows, None, np.int64, "labels")

    def predict_proba(self, X: Data) -> Answer:
        """Posterior probability of each component for each sample.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray or dask array of shape (n_samples, n_components)
            Lazy for dask input.

        Examples
        --------
        >>> import numpy as np, daskgmm
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> gm = daskgmm.GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> proba = gm.predict_proba(X[:3])
        >>> proba.shape
        (3, 2)
        >>> np.allclose(proba.sum(axis=1), 1)
        True
        """
        return self._apply_rows(X, _proba_rows, self.n_components, np.float64, "proba")

    def score_samples(self, X: Data) -> Answer:
        """Log-likelihood of each sample under the mixture.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray or dask array of shape (n_samples,)
            Lazy for dask input.

        Examples
        --------
        >>> import numpy as np, daskgmm
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> gm = daskgmm.GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> gm.score_samples(X[:3]).shape
        (3,)
        """
        return self._apply_rows(X, _score_rows, None, np.float64, "log_density")

    def _plug_in_density(self) -> LogDensity:
        """The mixture density that ``bic`` and ``aic`` score with."""
        return self._log_density()

    def _mean_score(self, X, plug_in: bool = False) -> tuple[float, int]:
        """Mean log-likelihood of the scored rows and their number (one compute).

        Rows omitted under ``nan_policy='omit'`` count in neither.  ``plug_in``:
        under :meth:`_plug_in_density` (for the information criteria).
        """
        return self._mean_scores(X, (plug_in,))[0]

    def _mean_scores(self, X, plug_ins=(False, True)) -> list[tuple[float, int]]:
        """:meth:`_mean_score` under each of several densities, in one compute: the
        rows are read once for all of them."""
        rows, _ = self._prediction_input(X)
        sums = []
        for plug_in in plug_ins:
            density = self._plug_in_density() if plug_in else None
            scores = self._apply_rows(
                rows, _score_rows, None, np.float64, names=False, density=density
            )
            xp = da if isinstance(scores, da.Array) else np
            finite = xp.isfinite(scores)
            sums += [xp.where(finite, scores, 0.0).sum(), finite.sum()]
        if any(isinstance(value, da.Array) for value in sums):
            sums = compute(*sums)
        out = []
        for total, n in zip(sums[::2], sums[1::2], strict=True):
            n = int(n)
            out.append(((float(total) / n if n else float("nan")), n))
        return out

    def score(self, X: Data, y: object = None) -> float:
        """Mean per-sample log-likelihood of ``X`` (computed).

        Parameters
        ----------
        X : array-like, dask array or a source ``daskgmm.io`` opens
        y : ignored

        Returns
        -------
        float
            Over the rows that are not omitted (``nan_policy='omit'``).

        Examples
        --------
        >>> import numpy as np, daskgmm
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> gm = daskgmm.GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> bool(np.isclose(gm.score(X), gm.score_samples(X).mean()))
        True
        """
        return self._mean_score(X)[0]

    def _n_parameters(self) -> int:
        """Number of free parameters of the model."""
        k, d = self.means_.shape
        return int(n_parameters(self.covariance_type, k, d))

    def bic(self, X: Data) -> float:
        """Bayesian information criterion on ``X``; lower is better.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np, daskgmm
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> gm = daskgmm.GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> isinstance(gm.bic(X), float)
        True
        """
        mean, n = self._mean_score(X, plug_in=True)
        return -2 * mean * n + self._n_parameters() * math.log(n)

    def aic(self, X: Data) -> float:
        """Akaike information criterion on ``X``; lower is better.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np, daskgmm
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> gm = daskgmm.GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> bool(gm.aic(X) < gm.bic(X))  # BIC charges more per parameter here
        True
        """
        mean, n = self._mean_score(X, plug_in=True)
        return -2 * mean * n + 2 * self._n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture (as scikit-learn draws them).

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each sample, sorted.

        Examples
        --------
        >>> import numpy as np, daskgmm
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> gm = daskgmm.GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> X_new, y_new = gm.sample(5)
        >>> X_new.shape, y_new.shape
        ((5, 2), (5,))
        """
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples}. The sampling requires at "
                "least one sample; pass n_samples >= 1."
            )
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        parts = draw_components(self.covariance_type, rng, self.means_, self.covariances_, counts)
        labels = np.concatenate([np.full(int(c), k, dtype=np.int64) for k, c in enumerate(counts)])
        return np.vstack(parts), labels
