"""What a checkpoint holds for each kind of fit, through the one ``store.checkpoint``.

A fit's checkpoint fingerprint is its estimator parameters (those that change
the result), its rows' layout and its input's data fingerprint.  Batch fits
checkpoint their runs (:class:`EMRun`), stepwise fits their model and place in
the schedule; both pack their arrays with :func:`daskgmm.store.arrays.pack`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..engine.rows import RowChunks
from ..store.arrays import group, pack, unpack
from ..store.checkpoint import Checkpoint, fingerprint
from .em import EMRun

#: Parameters that do not change a fit's result, left out of its checkpoint's fingerprint.
UNFINGERPRINTED = ("verbose", "verbose_interval", "progress", "scheduler", "device")
#: Parameters added after checkpoints existed: left out of the fingerprint at these
#: defaults, so that a checkpoint written before them still resumes.
LATER_DEFAULTS = {"compute_dtype": "float64", "feature_dim": None}
#: The arrays of a run's parameters, in ``EMRun.params`` order.
RUN_ARRAYS = ("weights", "means", "covariances", "precisions_cholesky")


def open_checkpoint(estimator, rows: RowChunks, path, random_state, training_data: dict):
    """The :class:`Checkpoint` of fitting ``estimator`` to ``rows`` (inactive if ``path`` is None).

    Its fingerprint holds the parameters, the rows' layout and ``training_data``
    (the input's data fingerprint: the SHA-256 of a numpy array up to 256 MiB, a
    local store's file count, bytes and newest modification time, a dask array's
    graph name), less the time that was taken.
    """
    if path is None:
        return Checkpoint(None, None, random_state)
    params = {
        name: ("RandomState" if isinstance(v, np.random.RandomState) else v)
        for name, v in estimator.get_params().items()
        if _fingerprinted(name, v)
    }
    data = {
        "shape": rows.array.shape,
        "dtype": str(rows.array.dtype),
        "row_chunks": rows.array.chunks[0],
        "weighted": rows.weights is not None,
    }
    source = {k: v for k, v in training_data.items() if k != "recorded"}
    return Checkpoint(path, fingerprint(params, data, source), random_state)


def _fingerprinted(name: str, value) -> bool:
    """Whether a parameter belongs in the checkpoint's fingerprint."""
    if name in UNFINGERPRINTED:
        return False
    return name not in LATER_DEFAULTS or LATER_DEFAULTS[name] != value


def pack_run(
    prefix: str, run: EMRun | None, state: dict, arrays: dict, named: Callable | None = None
) -> None:
    """Put ``run`` into a checkpoint's ``state`` (scalars) and ``arrays`` under ``prefix``.

    ``named(params) -> dict`` names the parameters' arrays (default
    :data:`RUN_ARRAYS`, a Gaussian mixture's).
    """
    if run is None:
        state[prefix] = None
        return
    state[prefix] = {
        "lower_bound": run.lower_bound,
        "n_iter": run.n_iter,
        "converged": run.converged,
        "lower_bounds": run.lower_bounds,
    }
    values = dict(zip(RUN_ARRAYS, run.params, strict=True)) if named is None else named(run.params)
    pack(arrays, f"{prefix}_", values, np.float64)


def unpack_run(
    prefix: str, state: dict, arrays: dict, from_named: Callable | None = None
) -> EMRun | None:
    """Inverse of :func:`pack_run` (``from_named(dict) -> params`` inverts ``named``)."""
    scalars = state[prefix]
    if scalars is None:
        return None
    if from_named is None:
        params = tuple(unpack(arrays, f"{prefix}_", RUN_ARRAYS)[name] for name in RUN_ARRAYS)
    else:
        params = from_named(group(arrays, f"{prefix}_"))
    return EMRun(
        params,
        float(scalars["lower_bound"]),
        int(scalars["n_iter"]),
        bool(scalars["converged"]),
        [float(v) for v in scalars["lower_bounds"]],
    )
