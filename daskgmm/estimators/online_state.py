"""The online estimator's own state in checkpoints and model files.

Beyond the fitted parameters a stepwise fit carries its running sufficient
statistics, its counters and, in a checkpoint, its place in the schedule: the
pass, that pass's chunk order and the mini-batches of it done.  Pass
``max_passes + 1`` with nothing done means only the final batch pass is left;
``max_passes + 2`` means the fit is complete.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..errors import ModelFileError
from ..kernels.stats import SufficientStats
from ..store.arrays import pack, unpack
from ..store.checkpoint import RANDOM_STATE_KEYS

logger = logging.getLogger("daskgmm.online")

#: The fitted parameters a checkpoint holds, by attribute name.
PARAMETER_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_")
#: The running statistics' arrays, as ``SufficientStats`` fields.
STATS_ARRAYS = ("nk", "means", "m2")


def save_checkpoint(model, saver, n_pass: int, order, done: int) -> None:
    """Record that ``done`` mini-batches of pass ``n_pass`` (in ``order``) are done.

    The model's own state (``model._extra_state()``: the running statistics) goes
    in beside its parameters.
    """
    stats_meta, stats_arrays = model._extra_state()
    state = {
        "pass": n_pass,
        "done": done,
        "lower_bound": model.lower_bound_,
        "log_likelihood_history": model.log_likelihood_history_,
        "n_batches_seen": model.n_batches_seen_,
        "n_samples_seen": model.n_samples_seen_,
        "warm_up_batches": model.warm_up_batches_,
        "stats": stats_meta,
    }
    arrays = dict(stats_arrays)
    pack(arrays, "", {name: getattr(model, name) for name in PARAMETER_ARRAYS})
    if order is not None:
        arrays["order"] = np.asarray(order)
    saver.save(state, arrays)


def restore_checkpoint(model, saver):
    """Restore the model from its checkpoint; ``(pass, order or None, mini-batches
    done)`` to continue from, or None when there is none."""
    loaded = saver.load()
    if loaded is None:
        return None
    state, arrays = loaded
    model._set_parameters(*unpack(arrays, "", PARAMETER_ARRAYS).values())
    model.lower_bound_ = float(state["lower_bound"])
    model.log_likelihood_history_ = [float(v) for v in state["log_likelihood_history"]]
    model.n_batches_seen_ = int(state["n_batches_seen"])
    model.n_samples_seen_ = int(state["n_samples_seen"])
    model.warm_up_batches_ = state["warm_up_batches"]
    schedule = (*PARAMETER_ARRAYS, "order", RANDOM_STATE_KEYS)
    model._restore_extra_state(
        state["stats"], {k: v for k, v in arrays.items() if k not in schedule}
    )
    logger.info(
        "resuming from checkpoint %s: pass %d, %d mini-batches done",
        saver.path,
        state["pass"],
        state["done"],
    )
    return int(state["pass"]), arrays.get("order"), int(state["done"])


def extra_state(model) -> tuple[dict, dict]:
    """The running statistics as JSON-able scalars and arrays (``stats_*``)."""
    s = model._online_stats
    if s is None:
        return {"has_stats": False}, {}
    meta, arrays = pack_stats(s, "stats_")
    return {"has_stats": True, **meta}, arrays


def pack_stats(s: SufficientStats, prefix: str) -> tuple[dict, dict]:
    """Statistics as JSON-able scalars and arrays, each named ``prefix + field``."""
    meta = {
        f"{prefix}log_likelihood": s.log_likelihood,
        f"{prefix}weight_sum": s.weight_sum,
        f"{prefix}n_rows": s.n_rows,
    }
    arrays = {}
    pack(arrays, prefix, {name: getattr(s, name) for name in STATS_ARRAYS})
    return meta, arrays


def restore_extra_state(model, meta: dict, arrays: dict) -> None:
    """Inverse of :func:`extra_state`; checks counters and shapes against the parameters.

    Raises
    ------
    ModelFileError
        If anything is missing, malformed or of the wrong shape.
    """
    if not meta.get("has_stats"):
        if arrays:
            raise ModelFileError("online statistics present but 'has_stats' is false")
        model._online_stats = None
        return
    _check_counters(model)
    model._online_stats = unpack_stats(model, meta, arrays, "stats_")


def unpack_stats(model, meta: dict, arrays: dict, prefix: str) -> SufficientStats:
    """Inverse of :func:`pack_stats`, the shapes checked against ``model.means_``.

    Raises
    ------
    ModelFileError
        If an array is missing or of the wrong shape, or a scalar is not finite.
    """
    k, d = model.means_.shape
    for name, expected in SufficientStats.shapes(model.covariance_type, k, d).items():
        key = f"{prefix}{name}"
        if key not in arrays or arrays[key].shape != expected:
            got = arrays[key].shape if key in arrays else "nothing"
            raise ModelFileError(f"online state {key!r} should have shape {expected}, got {got}")
    scalars = [meta.get(f"{prefix}{n}") for n in ("log_likelihood", "weight_sum")]
    if not all(isinstance(v, float) and math.isfinite(v) for v in scalars):
        raise ModelFileError("online state scalars are missing or not finite")
    return SufficientStats(
        model.covariance_type,
        arrays[f"{prefix}nk"],
        arrays[f"{prefix}means"],
        arrays[f"{prefix}m2"],
        scalars[0],
        scalars[1],
        int(meta.get(f"{prefix}n_rows", 0)),
    )


def _check_counters(model) -> None:
    counters = [getattr(model, n, None) for n in ("n_batches_seen_", "n_samples_seen_")]
    if not all(isinstance(v, int) and v >= 0 for v in counters):
        raise ModelFileError("online counters n_batches_seen_/n_samples_seen_ are missing")
    warm = getattr(model, "warm_up_batches_", None)
    if not (warm is None or (isinstance(warm, int) and 0 < warm <= counters[0])):
        raise ModelFileError("online counter warm_up_batches_ is malformed")
