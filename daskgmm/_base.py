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

from ._engine import as_dask_array, compute, map_rows
from ._kernels import (
    LogDensity,
    precisions_from_cholesky,
    predict_rows,
    proba_rows,
    score_rows,
)
from ._validation import (
    bad_rows_error,
    check_data_shape,
    check_feature_count,
    check_is_fitted,
)


def _finite_rows_only(row_func):
    """Wrap a row kernel so that rows with NaN or inf raise instead of giving garbage.

    Under ``map_blocks`` the chunk index arrives as ``block_id`` and is named in the
    error; the check costs one ``isfinite`` over the block.
    """

    def checked(X, log_density, block_id=None):
        bad = ~np.isfinite(X).all(axis=1)
        if bad.any():
            chunks = {} if block_id is None else {block_id[0]: int(bad.sum())}
            raise bad_rows_error(int(bad.sum()), chunks, action="predicting or scoring")
        return row_func(X, log_density)

    checked.__name__ = row_func.__name__
    return checked


_predict_rows = _finite_rows_only(predict_rows)
_proba_rows = _finite_rows_only(proba_rows)
_score_rows = _finite_rows_only(score_rows)

_N_COVARIANCE_PARAMETERS = {
    "full": lambda k, d: k * d * (d + 1) / 2.0,
    "tied": lambda k, d: d * (d + 1) / 2.0,
    "diag": lambda k, d: k * d,
    "spherical": lambda k, d: k,
}


class BaseGaussianMixture(DensityMixin, BaseEstimator):
    """Fitted-model behaviour shared by the batch and online estimators."""

    # ------------------------------------------------------------------ state
    def _set_parameters(self, weights, means, covariances, precisions_cholesky) -> None:
        """Store fitted parameters as float64 numpy arrays and derive precisions_."""
        self.weights_ = np.asarray(weights, dtype=np.float64)
        self.means_ = np.asarray(means, dtype=np.float64)
        self.covariances_ = np.asarray(covariances, dtype=np.float64)
        self.precisions_cholesky_ = np.asarray(precisions_cholesky, dtype=np.float64)
        self.precisions_ = precisions_from_cholesky(self.precisions_cholesky_, self.covariance_type)
        self.n_features_in_ = self.means_.shape[1]

    def _get_parameters(self) -> tuple:
        return self.weights_, self.means_, self.covariances_, self.precisions_cholesky_

    def _log_density(self) -> LogDensity:
        return LogDensity(
            self.means_, self.precisions_cholesky_, self.covariance_type, self.weights_
        )

    def _rows_for_prediction(self, X):
        """Validate X against the fit; return it as numpy or as a row-chunked dask array."""
        check_is_fitted(self)
        if isinstance(X, da.Array):
            check_data_shape(X.shape, X.dtype)
            check_feature_count(X.shape[1], self.n_features_in_)
            return as_dask_array(X)
        X = np.asarray(X)
        check_data_shape(X.shape, X.dtype)
        check_feature_count(X.shape[1], self.n_features_in_)
        return X

    def _apply_rows(self, X, row_func, n_columns, dtype):
        rows = self._rows_for_prediction(X)
        if isinstance(rows, da.Array):
            return map_rows(rows, row_func, self._log_density(), n_columns, dtype)
        return row_func(rows, self._log_density())

    # ---------------------------------------------------------------- answers
    def predict(self, X):
        """Most probable component of each sample.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray or dask array of shape (n_samples,), int64
            Lazy for dask input.
        """
        return self._apply_rows(X, _predict_rows, None, np.int64)

    def predict_proba(self, X):
        """Posterior probability of each component for each sample.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray or dask array of shape (n_samples, n_components)
            Lazy for dask input.
        """
        return self._apply_rows(X, _proba_rows, self.n_components, np.float64)

    def score_samples(self, X):
        """Log-likelihood of each sample under the mixture.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray or dask array of shape (n_samples,)
            Lazy for dask input.
        """
        return self._apply_rows(X, _score_rows, None, np.float64)

    def score(self, X, y=None) -> float:
        """Mean per-sample log-likelihood of ``X`` (computed).

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        scores = self.score_samples(X)
        if isinstance(scores, da.Array):
            return float(compute(scores.mean())[0])
        return float(scores.mean())

    def _n_parameters(self) -> int:
        """Number of free parameters of the model."""
        k, d = self.means_.shape
        cov_params = _N_COVARIANCE_PARAMETERS[self.covariance_type](k, d)
        return int(cov_params + k * d + k - 1)

    def bic(self, X) -> float:
        """Bayesian information criterion on ``X``; lower is better.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        n = X.shape[0]
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X) -> float:
        """Akaike information criterion on ``X``; lower is better.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        return -2 * self.score(X) * X.shape[0] + 2 * self._n_parameters()

    def sample(self, n_samples: int = 1):
        """Draw samples from the fitted mixture (as scikit-learn draws them).

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each sample, sorted.
        """
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1 to draw samples, got {n_samples}.")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        n_features = self.means_.shape[1]
        if self.covariance_type == "full":
            parts = [
                rng.multivariate_normal(mean, cov, int(c))
                for mean, cov, c in zip(self.means_, self.covariances_, counts, strict=True)
            ]
        elif self.covariance_type == "tied":
            parts = [
                rng.multivariate_normal(mean, self.covariances_, int(c))
                for mean, c in zip(self.means_, counts, strict=True)
            ]
        else:
            parts = [
                mean + rng.standard_normal(size=(c, n_features)) * np.sqrt(cov)
                for mean, cov, c in zip(self.means_, self.covariances_, counts, strict=True)
            ]
        labels = np.concatenate([np.full(int(c), k, dtype=np.int64) for k, c in enumerate(counts)])
        return np.vstack(parts), labels
