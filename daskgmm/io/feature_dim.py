"""Which dimension of a source holds the features, when none is named for it.

The rule, conservative on purpose (refusing is better than fitting the wrong axis):

1. Unnamed data (numpy, dask, Zarr arrays without dimension names, xarray's default
   ``dim_0, dim_1, ...``): the last axis; 1-D data are one feature.
2. Named data read for a fitted model: the model's feature dimension, found by name
   wherever it lies; a source without it is refused.
3. Otherwise exactly one dimension named like a feature dimension
   (:data:`FEATURE_DIM_NAMES`, any case) holds the features.
4. Anything else is ambiguous and refused, listing the dimensions: name the one
   with ``feature_dim=``.
"""

from __future__ import annotations

import re

#: Dimension names taken as the feature dimension of named data without asking.
FEATURE_DIM_NAMES = frozenset(
    {"band", "bands", "channel", "channels", "feature", "features", "variable", "variables"}
)

_DEFAULT_DIM = re.compile(r"dim_\d+")


def is_unnamed(dims: tuple) -> bool:
    """Whether ``dims`` are default names (``dim_0``...), i.e. the data had none."""
    return all(isinstance(d, str) and _DEFAULT_DIM.fullmatch(d) for d in dims)


def infer_feature_axis(dims: tuple, model_dim: str | None, what: str) -> int | None:
    """The feature axis of data with dimensions ``dims`` when none was named.

    Parameters
    ----------
    dims : tuple of str
        The data's dimension names (``dim_0``... for unnamed data).
    model_dim : str or None
        The feature dimension of the model the data are read for.
    what : str
        The data, for messages.

    Returns
    -------
    int or None
        None for 1-D data (one feature).

    Raises
    ------
    ValueError
        When the rule (see the module) does not single out one dimension.
    """
    if len(dims) == 1:
        return None
    if is_unnamed(dims):
        return len(dims) - 1
    if model_dim is not None:
        if model_dim in dims:
            return dims.index(model_dim)
        raise ValueError(
            f"The model's features lie along dimension {model_dim!r}, but {what} has "
            f"dimensions {list(dims)}; rename its feature dimension to {model_dim!r} or "
            "open it with daskgmm.io.open_rows(..., feature_dim=...)."
        )
    found = [d for d in dims if isinstance(d, str) and d.lower() in FEATURE_DIM_NAMES]
    if len(found) == 1:
        return dims.index(found[0])
    raise ValueError(
        f"Cannot tell which dimension of {what} holds the features: its dimensions are "
        f"{list(dims)}; name one with feature_dim (a parameter of the estimators and "
        "of daskgmm.io.open_rows).  The last dimension is taken only for unnamed arrays."
    )
