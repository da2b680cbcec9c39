"""Zarr and xarray in and out, in constant memory.

The only layer below the command line that touches zarr and xarray; both are imported
lazily, inside the functions that need them.  Nothing here imports an estimator:
predictions are written from the model's own per-chunk outputs.

In::

    view = open_rows("cube.zarr", "reflectance", feature_dim="band", fill_value=-9999)
    view.data          # lazy (n_samples, n_features) dask array, one row chunk per block
    GaussianMixture(8, nan_policy="omit").fit(view)

Every estimator also accepts the sources :func:`open_rows` accepts directly, with
the features on the dimension named by its ``feature_dim`` parameter (or found by
the rule of :mod:`daskgmm.io.feature_dim`); open them here to pick variables or a
fill value.

Out: predictions on a :class:`RowView` (or an xarray/zarr source) come back on the
source's sample dimensions (DataArrays with its coordinates for xarray sources);
:func:`write_predictions` streams them to a Zarr store.

==================  ============================================================
``sources``         ``open_rows``: any supported source as a :class:`RowView`;
                    ``rows_for_model``: the same on a fitted model's features
``feature_dim``     which dimension holds the features when none is named
``readers``         Zarr arrays/groups and xarray objects, fill values as NaN
``chunk_reads``     damaged and missing Zarr chunks named (store, array, chunk)
``row_view``        :class:`RowView`: rows of features and the way back
``layout``          a store's arrays from its metadata
``predictions``     ``write_predictions``: labels, probabilities, log-densities out
``fingerprint``     a small JSON description of a data source
==================  ============================================================
"""

from ..kernels.nan_policy import LABEL_FILL
from .fingerprint import data_fingerprint, training_data_fingerprint
from .layout import store_layout
from .predictions import COMPLETE_ATTR, label_dtype, model_attributes, write_predictions
from .row_view import RowView
from .sources import is_source, open_rows, rows_for_model

__all__ = [
    "COMPLETE_ATTR",
    "LABEL_FILL",
    "RowView",
    "data_fingerprint",
    "is_source",
    "label_dtype",
    "model_attributes",
    "open_rows",
    "rows_for_model",
    "store_layout",
    "training_data_fingerprint",
    "write_predictions",
]
