"""scikit-learn's estimator checks (``check_estimator``) on both estimators.

Every check of ``sklearn.utils.estimator_checks.parametrize_with_checks`` runs;
the ones daskgmm does not pass are declared through scikit-learn's own
mechanism (``expected_failed_checks``), each with its reason, and run as strict
xfails: a declared failure that starts passing fails the suite, so the list
stays true.
"""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.exceptions
from scipy import sparse
from sklearn.utils.estimator_checks import (
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

from daskgmm import (
    BayesianGaussianMixture,
    GaussianMixture,
    OnlineBayesianGaussianMixture,
    OnlineGaussianMixture,
)
from daskgmm.errors import NotFittedError

#: Two components (one would make several checks trivial), a fixed seed.
ESTIMATORS = [
    GaussianMixture(n_components=2, max_iter=20, random_state=0),
    OnlineGaussianMixture(n_components=2, random_state=0),
    BayesianGaussianMixture(n_components=2, max_iter=20, random_state=0),
    OnlineBayesianGaussianMixture(n_components=2, random_state=0),
]

_KMEANS_START = (
    "the 'kmeans' start (sklearn.cluster.KMeans with sample_weight) is not the same "
    "with weights as with repeated rows, so neither is the fit; scikit-learn declares "
    "the same expected failure for KMeans itself. From a given start weights equal "
    "repeats: test_sample_weights_equal_repeated_rows_from_a_given_start"
)

#: check name -> why daskgmm does not pass it (the same for every estimator).
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": _KMEANS_START,
}


def expected_failed_checks(estimator) -> dict[str, str]:
    """scikit-learn's hook: the checks expected to fail for ``estimator``, with reasons."""
    return dict(EXPECTED_FAILED_CHECKS)


@parametrize_with_checks(
    ESTIMATORS, expected_failed_checks=expected_failed_checks, xfail_strict=True
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls", [GaussianMixture, OnlineGaussianMixture])
def test_sample_weights_equal_repeated_rows_from_a_given_start(cls):
    """The declared failure's check passes once the k-means start is taken out."""
    n_features, k = 30, 2  # the check's data: 15 rows of 30 features
    estimator = cls(
        n_components=k,
        weights_init=[0.5, 0.5],
        means_init=np.random.RandomState(1).rand(k, n_features),
        precisions_init=np.stack([np.eye(n_features)] * k),
    )
    check_sample_weight_equivalence_on_dense_data(cls.__name__, estimator)


# --------------------------------------------------------------------------- #
# the behaviours the checks found missing, each on its own
# --------------------------------------------------------------------------- #
def test_not_fitted_error_is_sklearns():
    assert issubclass(NotFittedError, sklearn.exceptions.NotFittedError)
    assert issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, AttributeError)
    with pytest.raises(sklearn.exceptions.NotFittedError, match="is not fitted yet"):
        GaussianMixture(2).predict(np.ones((3, 2)))


@pytest.mark.parametrize("cls", [GaussianMixture, OnlineGaussianMixture])
@pytest.mark.parametrize(
    "container", [sparse.csr_matrix, sparse.csr_array, sparse.coo_matrix], ids=lambda c: c.__name__
)
def test_sparse_input_raises_type_error_saying_densify(cls, container):
    X = container(np.eye(6))
    with pytest.raises(TypeError, match=r"Sparse data was passed for X.*\.toarray\(\)"):
        cls(2, random_state=0).fit(X)
    model = cls(2, random_state=0).fit(np.random.RandomState(0).rand(20, 6))
    with pytest.raises(TypeError, match=r"Sparse data was passed for X.*\.toarray\(\)"):
        model.predict(X)


@pytest.mark.parametrize("cls", [GaussianMixture, OnlineGaussianMixture])
def test_object_array_of_numbers_is_converted(cls):
    X = np.random.RandomState(0).rand(40, 3)
    fitted = cls(2, random_state=0).fit(X)
    from_objects = cls(2, random_state=0).fit(X.astype(object))
    np.testing.assert_array_equal(from_objects.means_, fitted.means_)
    np.testing.assert_array_equal(from_objects.predict(X.astype(object)), fitted.predict(X))
    bad = X.astype(object)
    bad[0, 0] = {"not": "a number"}
    with pytest.raises(TypeError, match=r"argument must be .*a real number"):
        cls(2).fit(bad)
