"""Type aliases of the public signatures (the package ships ``py.typed``).

The data an estimator or :func:`daskgmm.io.open_rows` accepts can be many things;
these aliases name them once.  The array libraries are imported for type checkers
only (``typing.TYPE_CHECKING``): importing this module imports none of them.

=====================  ==========================================================
``PathLike``           a path: ``str`` or ``os.PathLike``
``ArrayLike``          rows in memory or lazy: numpy, dask, xarray, Zarr, a store path
``Rows``               what has rows of features ready (a :class:`daskgmm.io.RowView`)
``Data``               ``ArrayLike`` or ``Rows``: an estimator's ``X``
``Answer``             per-row answers: numpy, dask (lazy) or an xarray DataArray
``RandomStateLike``    ``None``, a seed or a ``numpy.random.RandomState``
``Mixture``            what a fitted mixture offers the layers below the estimators
=====================  ==========================================================
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol, TypeAlias, Union

if TYPE_CHECKING:
    import dask.array
    import numpy as np
    import xarray
    import zarr

PathLike: TypeAlias = Union[str, "os.PathLike[str]"]
ArrayLike: TypeAlias = Union[
    "np.ndarray",
    "dask.array.Array",
    "xarray.DataArray",
    "xarray.Dataset",
    "zarr.Array",
    "zarr.Group",
    str,
    "os.PathLike[str]",
]


class Rows(Protocol):
    """Rows of features ready for an estimator (:class:`daskgmm.io.RowView` is one)."""

    @property
    def data(self) -> dask.array.Array: ...

    @property
    def n_features(self) -> int: ...


class Mixture(Protocol):
    """A fitted Gaussian mixture, as the layers below the estimators see it."""

    n_components: int
    covariance_type: str
    weights_: np.ndarray
    means_: np.ndarray
    covariances_: np.ndarray


Data: TypeAlias = ArrayLike | Rows
Answer: TypeAlias = Union["np.ndarray", "dask.array.Array", "xarray.DataArray"]
RandomStateLike: TypeAlias = Union[int, "np.random.RandomState", None]

__all__ = ["Answer", "ArrayLike", "Data", "Mixture", "PathLike", "RandomStateLike", "Rows"]
