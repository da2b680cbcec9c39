"""N-D data seen as rows of feature values, with what it takes to go back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import dask.array as da
import numpy as np

from ..engine.samples import unflatten_samples
from .lazy import _xarray

if TYPE_CHECKING:
    import xarray


@dataclass
class RowView:
    """N-D data seen as rows of feature values, with what it takes to go back.

    Attributes
    ----------
    data : dask.array.Array of shape (n_samples, n_features)
        One row chunk per block of the sample axes (aligned with the storage
        chunks), in block order.  Fill values are NaN.
    sample_dims : tuple of str
        Names of the sample dimensions (``dim_0``... for unnamed arrays).
    sample_chunks : tuple of tuples
        Chunks of the sample dimensions of the source.
    coords : dict
        xarray coordinates that lie on the sample dimensions (xarray sources).
    is_xarray : bool
        Whether predictions come back as DataArrays.
    feature_names : list or None
        The labels of the features (the feature dimension's coordinate).
    attrs : dict
        The source's attributes.
    source : dict or None
        Where the rows were read from, for stores opened by path or URL:
        ``{"location": ..., "variables": ...}`` (recorded in saved models'
        training-data fingerprints).
    feature_dim : str or None
        The dimension that held the features (None for unnamed and 1-D data).

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from daskgmm import io
    >>> cube = xr.DataArray(np.zeros((2, 3, 4)), dims=("y", "x", "band"))
    >>> view = io.open_rows(cube, feature_dim="band")
    >>> view.data.shape, view.sample_shape, view.n_features
    ((6, 4), (2, 3), 4)
    """

    data: da.Array
    sample_dims: tuple
    sample_chunks: tuple
    coords: dict = field(default_factory=dict)
    is_xarray: bool = False
    feature_names: list | None = None
    attrs: dict = field(default_factory=dict)
    source: dict | None = None
    feature_dim: str | None = None

    @property
    def sample_shape(self) -> tuple:
        """The shape of the sample dimensions (the source's shape less the features).

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> from daskgmm import io
        >>> view = io.open_rows(xr.DataArray(np.zeros((2, 3, 4)), dims=("y", "x", "band")))
        >>> view.sample_shape, view.sample_dims
        ((2, 3), ('y', 'x'))
        """
        return tuple(sum(c) for c in self.sample_chunks)

    @property
    def n_samples(self) -> int:
        """Rows: the product of :attr:`sample_shape`.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> from daskgmm import io
        >>> view = io.open_rows(xr.DataArray(np.zeros((2, 3, 4)), dims=("y", "x", "band")))
        >>> view.n_samples
        6
        """
        return int(self.data.shape[0])

    @property
    def n_features(self) -> int:
        """Features per row: the length of the feature dimension.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> from daskgmm import io
        >>> view = io.open_rows(xr.DataArray(np.zeros((2, 3, 4)), dims=("y", "x", "band")))
        >>> view.n_features, view.feature_dim
        (4, 'band')
        """
        return int(self.data.shape[1])

    @property
    def shape(self) -> tuple:
        """``(n_samples, n_features)``, as an array's shape (for ``bic``/``aic``).

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> from daskgmm import io
        >>> view = io.open_rows(xr.DataArray(np.zeros((2, 3, 4)), dims=("y", "x", "band")))
        >>> view.shape
        (6, 4)
        """
        return tuple(self.data.shape)

    def to_samples(
        self, values: da.Array, name: str | None = None, attrs: dict | None = None
    ) -> da.Array | xarray.DataArray:
        """Per-row results back on the sample dimensions, lazily.

        Parameters
        ----------
        values : dask.array.Array of shape (n_samples,) or (n_samples, K)
            Row chunks as ``data``'s.
        name : str, optional
            Name of the DataArray (xarray sources).
        attrs : dict, optional

        Returns
        -------
        dask.array.Array of the sample shape (plus K), or an xarray.DataArray on
        the sample dimensions (plus ``component`` with coordinates 0..K-1).

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> from daskgmm import io
        >>> view = io.open_rows(xr.DataArray(np.zeros((2, 3, 4)), dims=("y", "x", "band")))
        >>> labels = view.data.sum(axis=1).astype(int)         # one value per row
        >>> view.to_samples(labels, name="labels").dims, view.to_samples(labels).shape
        (('y', 'x'), (2, 3))
        """
        out = unflatten_samples(values, self.sample_chunks)
        if not self.is_xarray:
            return out
        xr = _xarray()
        dims = tuple(self.sample_dims)
        coords = dict(self.coords)
        if values.ndim == 2:
            dims += ("component",)
            coords["component"] = np.arange(values.shape[1])
        return xr.DataArray(out, dims=dims, coords=coords, name=name, attrs=attrs or {})

    def in_feature_order(self, names: Sequence) -> RowView:
        """The same rows with their features taken by label in the order of ``names``.

        Lazy (a column selection of ``data``).  Returned as is when the features
        have no string labels.

        Parameters
        ----------
        names : sequence of str
            The labels wanted, in order (a model's ``feature_names_in_``).

        Raises
        ------
        ValueError
            Naming the labels that are missing and those that are not in ``names``.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> from daskgmm import io
        >>> cube = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("pixel", "band"),
        ...                     coords={"band": ["red", "green", "blue"]})
        >>> view = io.open_rows(cube, feature_dim="band").in_feature_order(["blue", "red", "green"])
        >>> view.feature_names, view.data[0].compute().tolist()
        (['blue', 'red', 'green'], [2.0, 0.0, 1.0])
        """
        given = self.feature_names
        if given is None or not all(isinstance(n, str) for n in given):
            return self
        names = [str(n) for n in names]
        if given == names:
            return self
        missing = [n for n in names if n not in given]
        extra = [n for n in given if n not in names]
        if missing or extra or len(set(given)) != len(given):
            found = [
                f"{title} {labels}"
                for title, labels in (("missing", missing), ("not seen at fit time", extra))
                if labels
            ]
            dim = self.feature_dim or "band"
            raise ValueError(
                f"The features along {dim!r} do not match those the model was fitted with, "
                f"{names}: {'; '.join(found) or f'labels repeated in {given}'}; select "
                f"them by label, e.g. X.sel({dim}={names})."
            )
        index = [given.index(n) for n in names]
        return replace(self, data=self.data[:, index], feature_names=names)
