"""daskgmm: Gaussian mixture models fitted by EM on larger-than-memory Dask arrays."""

from .mixture import GaussianMixture

__all__ = ["GaussianMixture", "__version__"]
__version__ = "0.1.0"
