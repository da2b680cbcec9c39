"""Every exception daskgmm raises of its own, in one module.

:class:`NotFittedError` subclasses scikit-learn's (an ``except
sklearn.exceptions.NotFittedError`` catches it).  It is made on first use
(:func:`__getattr__`): importing scikit-learn costs a process about 90 MB, and
the chunk tasks that dask workers run import this module but never need it.

Each error's message says what to change.  The classes are re-exported where
users meet them (``daskgmm.cluster.SchedulerConnectionError``,
``daskgmm.pipeline.PipelineBusy``, ...); they are defined only here.
"""

from __future__ import annotations


# --------------------------------------------------------------------------- #
# model and data
# --------------------------------------------------------------------------- #
class SingularCovarianceError(ValueError):
    """A covariance estimate is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import GaussianMixture
    >>> X = np.zeros((10, 2))                      # every row the same point
    >>> GaussianMixture(2, reg_covar=0, init_params="random").fit(X)
    Traceback (most recent call last):
        ...
    daskgmm.errors.SingularCovarianceError: Fitting the mixture model failed ...
    """


class DataScaleError(ValueError):
    """The data's values are so large that their squares overflow float64.

    Examples
    --------
    >>> import numpy as np
    >>> from daskgmm import GaussianMixture
    >>> GaussianMixture(1).fit(np.full((10, 2), 1e200))
    Traceback (most recent call last):
        ...
    daskgmm.errors.DataScaleError: The data's scale overflows float64: ...
    """


class DataReadError(ValueError):
    """A chunk of the input cannot be read (damaged) or is missing; names store and chunk.

    Examples
    --------
    >>> from daskgmm.errors import DataReadError
    >>> issubclass(DataReadError, ValueError)      # raised by the pass that reads the chunk
    True
    """


def _not_fitted_error() -> type:
    import sklearn.exceptions

    class NotFittedError(sklearn.exceptions.NotFittedError):
        """The estimator is used before ``fit``.

        A subclass of scikit-learn's ``NotFittedError`` (so also of ``ValueError``
        and ``AttributeError``): code that catches scikit-learn's catches it.

        Examples
        --------
        >>> from daskgmm import GaussianMixture
        >>> GaussianMixture().predict([[0.0]])
        Traceback (most recent call last):
            ...
        daskgmm.errors.NotFittedError: This GaussianMixture instance is not fitted yet. ...
        """

    NotFittedError.__module__ = __name__
    NotFittedError.__qualname__ = "NotFittedError"
    return NotFittedError


def __getattr__(name: str):
    """``NotFittedError``, made (and kept) on first use; see the module docstring."""
    if name == "NotFittedError":
        globals()[name] = error = _not_fitted_error()
        return error
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- #
# files
# --------------------------------------------------------------------------- #
class ModelFileError(ValueError):
    """A model directory is missing, tampered with, or from an incompatible version.

    Examples
    --------
    >>> import daskgmm
    >>> daskgmm.load("no-such-model")
    Traceback (most recent call last):
        ...
    daskgmm.errors.ModelFileError: no-such-model holds no model.json; ...
    """


class CheckpointMismatchError(ValueError):
    """The checkpoint belongs to another fit (other parameters or other data).

    Examples
    --------
    >>> from daskgmm.errors import CheckpointMismatchError
    >>> issubclass(CheckpointMismatchError, ValueError)  # fit(X, checkpoint=...) of another fit
    True
    """


class DiskFullError(OSError):
    """An output could not be written: no space left on the device (``errno.ENOSPC``).

    Examples
    --------
    >>> import errno
    >>> from daskgmm.errors import DiskFullError
    >>> DiskFullError(errno.ENOSPC, "no space left writing predictions").errno == errno.ENOSPC
    True
    """


# --------------------------------------------------------------------------- #
# clusters
# --------------------------------------------------------------------------- #
class ClusterConnectionError(ConnectionError):
    """The scheduler could not be reached; the message names the address.

    Examples
    --------
    >>> from daskgmm.errors import ClusterConnectionError
    >>> issubclass(ClusterConnectionError, ConnectionError)  # raised by cluster.connect
    True
    """


class SchedulerConnectionError(ConnectionError):
    """The dask scheduler went away during a computation; names its address.

    Examples
    --------
    >>> from daskgmm.errors import SchedulerConnectionError
    >>> issubclass(SchedulerConnectionError, ConnectionError)
    True
    """


# --------------------------------------------------------------------------- #
# plots
# --------------------------------------------------------------------------- #
class PlottingUnavailable(ImportError):
    """matplotlib is not installed.

    Examples
    --------
    >>> from daskgmm.errors import PlottingUnavailable
    >>> issubclass(PlottingUnavailable, ImportError)    # pip install 'daskgmm[plot]'
    True
    """


# --------------------------------------------------------------------------- #
# pipelines
# --------------------------------------------------------------------------- #
class SpecError(ValueError):
    """A pipeline spec is malformed; the message names the key (``input.store``).

    Examples
    --------
    >>> from daskgmm.pipeline import SpecError
    >>> from daskgmm.pipeline.spec import parse_spec
    >>> parse_spec({}, "spec.toml")
    Traceback (most recent call last):
        ...
    daskgmm.errors.SpecError: ...
    """

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


class SourceChangedError(ValueError):
    """The source of an online pipeline changed other than by appending rows.

    Examples
    --------
    >>> from daskgmm.errors import SourceChangedError
    >>> issubclass(SourceChangedError, ValueError)   # rows rewritten under an online pipeline
    True
    """


class PipelineBusy(RuntimeError):
    """Another run of the same pipeline holds its lock.

    Attributes
    ----------
    holder : dict
        What the holder wrote: ``pid``, ``host``, ``run_id``, ``start`` (may be
        empty if it has just taken the lock).
    record : RunRecord or None
        The ``busy`` record written for the run that gave up (set by the runner).

    Examples
    --------
    >>> from daskgmm.errors import PipelineBusy
    >>> print(PipelineBusy("daily", {}))
    pipeline 'daily' is already running (another process); this run did nothing. ...
    """

    def __init__(self, name: str, holder: dict, waited: float | None = None):
        self.holder = holder
        self.record = None
        who = (
            f"pid {holder.get('pid')} on {holder.get('host')}, run {holder.get('run_id')}, "
            f"started {holder.get('start')}"
            if holder.get("pid")
            else "another process"
        )
        waited_text = f" after waiting {waited:g} s" if waited else ""
        super().__init__(
            f"pipeline {name!r} is already running ({who}){waited_text}; this run did "
            "nothing. Run again later, or pass --wait to wait for it."
        )


class NotConvergedError(RuntimeError):
    """``require_converged`` and the batch fit did not converge; nothing was published.

    Attributes
    ----------
    record : RunRecord
        The run's record (status ``not-converged``).

    Examples
    --------
    >>> from daskgmm.errors import NotConvergedError
    >>> NotConvergedError("did not converge", record=None).record is None
    True
    """

    def __init__(self, message: str, record):
        super().__init__(message)
        self.record = record


# --------------------------------------------------------------------------- #
# command line
# --------------------------------------------------------------------------- #
class UsageError(ValueError):
    """Bad usage or bad input; the message says what to change (exit code 2).

    Examples
    --------
    >>> from daskgmm.errors import UsageError
    >>> issubclass(UsageError, ValueError)      # the command line prints it and exits 2
    True
    """


class NotConvergedExit(RuntimeError):
    """``--require-converged`` and the fit did not converge (exit code 3).

    Examples
    --------
    >>> from daskgmm.errors import NotConvergedExit
    >>> issubclass(NotConvergedExit, RuntimeError)   # daskgmm fit --require-converged: exit 3
    True
    """
