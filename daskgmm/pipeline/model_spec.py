"""The ``[model]`` table of a pipeline spec: which keys each mode takes, checked
against :data:`daskgmm.kernels.params.PARAMETER_CONSTRAINTS` (the table the
estimators and the command line check too).

``bayesian = true`` asks for a ``BayesianGaussianMixture`` (modes 'refit' and
'warm_start'; mode 'online': ``OnlineBayesianGaussianMixture``, whose ``partial_fit``
updates the published model) and opens the prior keys (:data:`BAYESIAN_MODEL_KEYS`); their
shapes and ``degrees_of_freedom_prior > n_features - 1`` are checked against the
data when a run opens the source (:func:`daskgmm.pipeline.fitting.check_model_for`).
"""

from __future__ import annotations

import difflib
import math

from ..errors import SpecError
from ..kernels.params import PARAMETER_CONSTRAINTS


def type_name(value) -> str:
    """How a spec message names the TOML type of ``value`` ("an integer", "a table")."""
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


#: ``[model]`` keys of the batch modes (``GaussianMixture``).
BATCH_MODEL_KEYS = (
    "n_components",
    "covariance_type",
    "tol",
    "reg_covar",
    "max_iter",
    "n_init",
    "init_params",
    "random_state",
    "init_sample_size",
    "split_every",
    "nan_policy",
    "compute_dtype",
)
#: ``[model]`` keys of the Bayesian model (``bayesian = true``) besides the batch keys.
BAYESIAN_MODEL_KEYS = (
    "weight_concentration_prior_type",
    "weight_concentration_prior",
    "mean_precision_prior",
    "mean_prior",
    "degrees_of_freedom_prior",
    "covariance_prior",
)
#: ``[model]`` keys of the online mode (``OnlineGaussianMixture``).
ONLINE_MODEL_KEYS = (
    "n_components",
    "covariance_type",
    "reg_covar",
    "max_passes",
    "batch_size",
    "t0",
    "kappa",
    "warm_up",
    "final_batch_pass",
    "init_params",
    "random_state",
    "init_sample_size",
    "split_every",
    "nan_policy",
    "compute_dtype",
)

#: ``[model]`` keys of mode 'online' with ``bayesian = true``
#: (``OnlineBayesianGaussianMixture``): no warm-up, the priors, the streaming method.
ONLINE_BAYESIAN_MODEL_KEYS = (
    *(key for key in ONLINE_MODEL_KEYS if key != "warm_up"),
    "method",
    *BAYESIAN_MODEL_KEYS,
)


def suggest(key: str, allowed) -> str:
    """A 'Did you mean ...?' hint naming the allowed key closest to ``key``, or ''."""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _prior_array(key, value):
    """A prior given as a TOML array: numbers, or arrays of numbers (a matrix)."""
    if not isinstance(value, list):
        return
    flat = [v for row in value for v in (row if isinstance(row, list) else [row])]
    if not flat or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        raise SpecError(key, f"must be a number or an array of numbers, got {value!r}.")
    if not all(math.isfinite(v) for v in flat):
        raise SpecError(key, f"must hold finite numbers, got {value!r}.")


def _allowed(mode: str, bayesian: bool) -> tuple[tuple, tuple]:
    """The keys ``mode`` takes, and those of the other modes."""
    if mode == "online":
        allowed = ONLINE_BAYESIAN_MODEL_KEYS if bayesian else ONLINE_MODEL_KEYS
        return allowed, BATCH_MODEL_KEYS
    allowed = BATCH_MODEL_KEYS + BAYESIAN_MODEL_KEYS if bayesian else BATCH_MODEL_KEYS
    return allowed, ONLINE_BAYESIAN_MODEL_KEYS if bayesian else ONLINE_MODEL_KEYS


def check_model(table: dict, mode: str) -> tuple[dict, bool]:
    """The ``[model]`` table checked for ``mode``.

    Parameters
    ----------
    table : dict
        ``[model]`` as read from TOML.
    mode : {'refit', 'warm_start', 'online'}

    Returns
    -------
    model : dict
        The estimator's parameters (``bayesian`` taken out).
    bayesian : bool
        ``model.bayesian``.

    Raises
    ------
    SpecError
        Naming the first key that is unknown, of another mode or of the Bayesian
        model only, or whose value :data:`PARAMETER_CONSTRAINTS` refuses.
    """
    bayesian = table.get("bayesian", False)
    if not isinstance(bayesian, bool):
        raise SpecError("model.bayesian", f"must be true or false, got {bayesian!r}.")
    table = {key: value for key, value in table.items() if key != "bayesian"}
    allowed, other = _allowed(mode, bayesian)
    for key, value in table.items():
        name = f"model.{key}"
        if key in ONLINE_BAYESIAN_MODEL_KEYS and key not in ONLINE_MODEL_KEYS and not bayesian:
            raise SpecError(
                name,
                "applies to the Bayesian model only; add bayesian = true to [model], or drop it.",
            )
        if key not in allowed:
            model = f"mode {mode!r}" + (" with bayesian = true" if bayesian else "")
            if key in other or key == "warm_up":
                raise SpecError(
                    name, f"does not apply to {model}; {model} takes {', '.join(allowed)}."
                )
            listed = [*allowed] if bayesian else [*allowed, "bayesian"]
            raise SpecError(name, f"unknown key.{suggest(key, allowed)} Allowed: {listed}.")
        _prior_array(name, value)
        check = PARAMETER_CONSTRAINTS[key]
        try:
            check(name, value)
        except (TypeError, ValueError) as exc:
            raise SpecError(name, str(exc).removeprefix(f"{name} ")) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(name, f"must be finite, got {value!r}.")
    if "n_components" not in table:
        raise SpecError("model.n_components", "is required (the number of mixture components).")
    return dict(table), bayesian
