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
    """A covariance estimate is not positive definite."""


class DataScaleError(ValueError):
    """The data's values are so large that their squares overflow float64."""


class DataReadError(ValueError):
    """A chunk of the input cannot be read (damaged) or is missing; names store and chunk."""


def _not_fitted_error() -> type:
    import sklearn.exceptions

    class NotFittedError(sklearn.exceptions.NotFittedError):
        """The estimator is used before ``fit``.

        A subclass of scikit-learn's ``NotFittedError`` (so also of ``ValueError``
        and ``AttributeError``): code that catches scikit-learn's catches it.
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
    """A model directory is missing, tampered with, or from an incompatible version."""


class CheckpointMismatchError(ValueError):
    """The checkpoint belongs to another fit (other parameters or other data)."""


class DiskFullError(OSError):
    """An output could not be written: no space left on the device (``errno.ENOSPC``)."""


# --------------------------------------------------------------------------- #
# clusters
# --------------------------------------------------------------------------- #
class ClusterConnectionError(ConnectionError):
    """The scheduler could not be reached; the message names the address."""


class SchedulerConnectionError(ConnectionError):
    """The dask scheduler went away during a computation; names its address."""


# --------------------------------------------------------------------------- #
# plots
# --------------------------------------------------------------------------- #
class PlottingUnavailable(ImportError):
    """matplotlib is not installed."""


# --------------------------------------------------------------------------- #
# pipelines
# --------------------------------------------------------------------------- #
class SpecError(ValueError):
    """A pipeline spec is malformed; the message names the key (``input.store``)."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


class SourceChangedError(ValueError):
    """The source of an online pipeline changed other than by appending rows."""


class PipelineBusy(RuntimeError):
    """Another run of the same pipeline holds its lock.

    Attributes
    ----------
    holder : dict
        What the holder wrote: ``pid``, ``host``, ``run_id``, ``start`` (may be
        empty if it has just taken the lock).
    record : RunRecord or None
        The ``busy`` record written for the run that gave up (set by the runner).
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
    """

    def __init__(self, message: str, record):
        super().__init__(message)
        self.record = record


# --------------------------------------------------------------------------- #
# command line
# --------------------------------------------------------------------------- #
class UsageError(ValueError):
    """Bad usage or bad input; the message says what to change (exit code 2)."""


class NotConvergedExit(RuntimeError):
    """``--require-converged`` and the fit did not converge (exit code 3)."""
