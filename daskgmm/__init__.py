"""daskgmm: Gaussian mixture models fitted by EM on larger-than-memory Dask arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__

__all__ = [
    "BayesianGaussianMixture",
    "GaussianMixture",
    "MixtureSelection",
    "OnlineBayesianGaussianMixture",
    "OnlineGaussianMixture",
    "__version__",
    "load",
    "select_mixture",
]

# The estimators pull in scikit-learn and dask (~1-2 s); they load on first use, so
# that ``daskgmm --help`` and argument errors answer at once.
_LAZY = {
    "BayesianGaussianMixture": "estimators",
    "GaussianMixture": "estimators",
    "OnlineBayesianGaussianMixture": "estimators",
    "OnlineGaussianMixture": "estimators",
    "load": "estimators",
    "MixtureSelection": "estimators",
    "select_mixture": "estimators",
}

if TYPE_CHECKING:
    from .estimators import (
        BayesianGaussianMixture,
        GaussianMixture,
        MixtureSelection,
        OnlineBayesianGaussianMixture,
        OnlineGaussianMixture,
        load,
        select_mixture,
    )


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
