"""daskgmm: Gaussian mixture models fitted by EM on larger-than-memory Dask arrays."""

from .mixture import GaussianMixture
from .model_store import load
from .online import OnlineGaussianMixture

__all__ = ["GaussianMixture", "OnlineGaussianMixture", "__version__", "load"]
__version__ = "0.1.0"
