"""daskgmm: Gaussian mixture models fitted by EM on larger-than-memory Dask arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["GaussianMixture", "OnlineGaussianMixture", "__version__", "load"]
__version__ = "0.1.0"

# The estimators pull in scikit-learn and dask (~1-2 s); they load on first use, so
# that ``daskgmm --help`` and argument errors answer at once.
_LAZY = {
    "GaussianMixture": "mixture",
    "OnlineGaussianMixture": "online",
    "load": "model_store",
}

if TYPE_CHECKING:
    from .mixture import GaussianMixture
    from .model_store import load
    from .online import OnlineGaussianMixture


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
