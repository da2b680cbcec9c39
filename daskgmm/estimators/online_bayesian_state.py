"""The streaming variational model's state: the memo of memoized VB, SVI's running statistics.

Both methods turn a mini-batch's statistics (under the current posterior) and its
``sum r log r`` into *global* statistics and a global ``sum r log r``, from which
the variational M-step and the lower bound follow
(:mod:`daskgmm.kernels.variational`):

memoized (Hughes & Sudderth 2013)
    Every mini-batch's statistics and ``sum r log r`` are kept, under a key (its
    first chunk), and replaced when the batch is visited again; the global ones
    are their merge (:func:`daskgmm.kernels.stats.merge_all`) in key order.
    Nothing is ever subtracted and there is no learning rate.  The lower bound is
    then the exact evidence lower bound of the rows behind the memo, each batch
    under the responsibilities of its last visit: after the first pass it never
    decreases.  New rows (``partial_fit``) add entries; the entries of earlier
    calls are folded into one (:func:`fold`), since they are never revisited.
SVI (Hoffman et al. 2013)
    The natural-gradient step on the global parameters, ``lambda <- (1 - rho)
    lambda + rho (prior + N/|B| s_B)``, is for this conjugate model the blend of
    the per-row statistics, ``s <- (1 - rho) s + rho s_B/|B|``, scaled to the
    ``N`` rows of the data (:func:`daskgmm.estimators.stepwise.blend`);
    ``sum r log r`` is blended alike.

The state travels in model files and checkpoints as JSON scalars and named arrays
(:func:`extra_state`, :func:`restore_extra_state`); never pickle.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFileError
from ..kernels.priors import check_priors
from ..kernels.stats import SufficientStats, merge_all
from . import online_state
from .stepwise import blend, step_size


def memo_total(memo: dict) -> tuple[SufficientStats, float]:
    """The global statistics and ``sum r log r``: the memo's entries merged in key order.

    Parameters
    ----------
    memo : dict
        Key (int) -> ``(SufficientStats, sum r log r)`` of one mini-batch.

    Returns
    -------
    stats : SufficientStats
    entropy : float
    """
    keys = sorted(memo)
    return merge_all([memo[k][0] for k in keys]), float(sum(memo[k][1] for k in keys))


def fold(memo: dict) -> dict:
    """The memo as one entry (key 0): rows that will not be visited again."""
    return {0: memo_total(memo)} if memo else {}


def memoized_update(model, stats: SufficientStats, entropy: float, key) -> tuple:
    """Keep (or replace) the mini-batch's entry; the global statistics and entropy.

    ``key`` None (new rows, ``partial_fit``): a key after every other.
    """
    if key is None:
        key = max(model._memo, default=-1) + 1
    model._memo[key] = (stats, entropy)
    return memo_total(model._memo)


def svi_update(model, stats: SufficientStats, entropy: float, key) -> tuple:
    """Blend the mini-batch's per-row statistics and entropy into the running ones
    with the step ``(t + t0) ** -kappa``; both scaled to the data's rows."""
    rho = step_size(model.n_batches_seen_ + 1, model.t0, model.kappa)
    per_row = 1.0 / stats.n_rows
    running = model._online_stats
    model._online_stats = blend(running, stats.scaled(per_row), rho)
    batch_entropy = entropy * per_row
    if running is not None and rho < 1.0:
        batch_entropy = (1.0 - rho) * model._online_entropy + rho * batch_entropy
    model._online_entropy = batch_entropy
    n = model._data_rows
    return model._online_stats.scaled(n), model._online_entropy * n


#: method -> update(model, stats, entropy, key) -> (global statistics, global sum r log r)
UPDATES = {"memoized": memoized_update, "svi": svi_update}


# --------------------------------------------------------------------------- #
# model files and checkpoints
# --------------------------------------------------------------------------- #
#: Scalars of the state beside the statistics.
_SCALARS = ("online_entropy", "data_rows")


def extra_state(model) -> tuple[dict, dict]:
    """The state as JSON-able scalars and arrays (beside ``weight_concentration``).

    SVI's running statistics as the online estimator saves them (``stats_*``),
    the memo's entries as ``memo{i}_*`` in key order, the variational parameters
    that are not plain fitted arrays, the priors' data defaults and the fixed
    partition of the chunks into mini-batches.
    """
    meta, arrays = online_state.extra_state(model)
    keys = sorted(model._memo)
    for i, key in enumerate(keys):
        entry_meta, entry_arrays = online_state.pack_stats(model._memo[key][0], f"memo{i}_")
        meta.update(entry_meta)
        arrays.update(entry_arrays)
    meta["memo_keys"] = keys
    meta["memo_entropy"] = [model._memo[k][1] for k in keys]
    meta["online_entropy"] = model._online_entropy
    meta["data_rows"] = model._data_rows
    meta["lower_bounds"] = list(model.lower_bounds_)
    arrays["mean_precision"] = np.asarray(model.mean_precision_)
    arrays["degrees_of_freedom"] = np.asarray(model.degrees_of_freedom_)
    arrays.update(model._fit_state())
    if model._partition is not None:
        arrays["partition"] = np.asarray(model._partition, dtype=np.int64)
    return meta, arrays


def restore_extra_state(model, meta: dict, arrays: dict) -> None:
    """Inverse of :func:`extra_state`, after ``weight_concentration_`` is restored.

    The priors are checked again from the model's parameters and completed with
    the saved data defaults; the variational parameters are set as a fit sets them.

    Raises
    ------
    ModelFileError
        If anything is missing, malformed or of the wrong shape.
    """
    stats_arrays = {k: v for k, v in arrays.items() if k.startswith("stats_")}
    online_state.restore_extra_state(model, meta, stats_arrays)
    k, d = model.means_.shape
    _check_arrays(model, arrays, k)
    model._priors = check_priors(model, d)
    model._restore_fit_state(arrays)
    if not model._priors.complete:
        raise ModelFileError("the saved model lacks the priors' data defaults")
    params = (
        model.weight_concentration_,
        arrays["mean_precision"],
        model.means_,
        arrays["degrees_of_freedom"],
        model.covariances_,
        model.precisions_cholesky_,
    )
    model._set_run_parameters(params)
    model._memo = _restore_memo(model, meta, arrays)
    if not all(isinstance(meta.get(n), (int, float)) for n in _SCALARS):
        raise ModelFileError(f"the online variational state lacks {list(_SCALARS)}")
    model._online_entropy = float(meta["online_entropy"])
    model._data_rows = int(meta["data_rows"])
    model.lower_bounds_ = [float(v) for v in meta.get("lower_bounds", [])]
    partition = arrays.get("partition")
    model._partition = None if partition is None else partition.astype(np.int64)


def _check_arrays(model, arrays: dict, k: int) -> None:
    tied = model.covariance_type == "tied"
    expected = {"mean_precision": (k,), "degrees_of_freedom": () if tied else (k,)}
    for name, shape in expected.items():
        if name not in arrays or arrays[name].shape != shape:
            raise ModelFileError(f"the saved model's {name}_ is missing or not of shape {shape}")


def _restore_memo(model, meta: dict, arrays: dict) -> dict:
    keys, entropy = meta.get("memo_keys"), meta.get("memo_entropy")
    if not (isinstance(keys, list) and isinstance(entropy, list) and len(keys) == len(entropy)):
        raise ModelFileError("the memo's keys and entropies are missing or do not match")
    return {
        int(key): (online_state.unpack_stats(model, meta, arrays, f"memo{i}_"), float(e))
        for i, (key, e) in enumerate(zip(keys, entropy, strict=True))
    }
