"""The estimators, all driven by one EM loop.

==================  =============================================================
``em``              the ONE EM loop (steps, convergence, n_init) and its protocol
``base``            what every fitted mixture answers: predict, score, bic, sample
``batch``           the batch ``fit`` (n_init runs, checkpoints) the next two share
``joint``           batch models fitted together: one pass per iteration for all
``selection``       ``select_mixture``: a grid of models fitted together, BIC/AIC
``gaussian_mixture``  ``GaussianMixture``: batch EM, one pass per iteration
``bayesian_mixture``  ``BayesianGaussianMixture``: variational Bayes, one pass per iteration
``online``          ``OnlineGaussianMixture``: stepwise EM and ``partial_fit``
``online_bayesian``   ``OnlineBayesianGaussianMixture``: memoized online VB or SVI
``stepwise``        step sizes, warm-up, mini-batches, blending of statistics
``online_state``    the online estimator's state in checkpoints and model files
``online_bayesian_state``  the memo (memoized VB) and running statistics (SVI)
``fit_state``       checkpoint fingerprints and the runs they hold
``inputs``          training input as row chunks
``session``         logging, BLAS threads, scheduler, progress and report of a fit
``registry``        model classes for saving and loading
==================  =============================================================
"""

from .bayesian_mixture import BayesianGaussianMixture
from .gaussian_mixture import GaussianMixture
from .online import OnlineGaussianMixture
from .online_bayesian import OnlineBayesianGaussianMixture
from .registry import MODEL_CLASSES, load
from .selection import MixtureSelection, select_mixture

__all__ = [
    "MODEL_CLASSES",
    "BayesianGaussianMixture",
    "GaussianMixture",
    "MixtureSelection",
    "OnlineBayesianGaussianMixture",
    "OnlineGaussianMixture",
    "load",
    "select_mixture",
]
