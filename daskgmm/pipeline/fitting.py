"""Fit the new version's model and write its predictions, as a plan says.

A batch plan (``refit``, ``warm_start``, an ``online`` refit) fits on all rows;
an online append updates the published model with the new rows only and carries
the published predictions over (:mod:`.carry`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from ..estimators import load
from ..io import write_predictions
from .carry import extend_predictions, mirror_store
from .plan import ACTION_APPEND, Plan
from .source import Source
from .spec import PipelineSpec
from .state import MODEL_DIR, PREDICTIONS


@dataclass
class Fitted:
    """A fitted model and what the run records of its fit.

    Attributes
    ----------
    model : estimator
    rows : int
        Rows the fit saw.
    iterations : int
        EM iterations (batch) or batches seen in this fit (online).
    log_likelihood : float
        The model's ``lower_bound_``.
    converged : bool or None
        Whether a batch fit converged; None for online fits.
    """

    model: object
    rows: int
    iterations: int
    log_likelihood: float
    converged: bool | None


def check_model_for(spec: PipelineSpec, n_features: int) -> None:
    """What ``[model]`` gets wrong for data of ``n_features``, before anything is written:
    the priors of a Bayesian model (their shapes, ``degrees_of_freedom_prior >
    n_features - 1``, a positive-definite ``covariance_prior``).

    Raises
    ------
    SpecError
        Naming the prior (``model.degrees_of_freedom_prior``), with scikit-learn's message.
    """
    if not spec.bayesian:
        return
    from ..kernels.priors import check_priors

    try:
        check_priors(spec.estimator(), n_features)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        named = [key for key in sorted(spec.model, key=len, reverse=True) if key in message]
        key = f"model.{named[0]}" if named else "model"
        raise SpecError(key, f"{message} (the data have {n_features} features)") from None


def warm_start_mismatch(base, spec: PipelineSpec, n_features: int) -> str | None:
    """Why the published model cannot start this fit, or None."""
    fresh = spec.estimator()
    if type(base) is not type(fresh):
        return f"it is a {type(base).__name__}, the spec asks for a {type(fresh).__name__}"
    for key in ("n_components", "covariance_type", "weight_concentration_prior_type"):
        if key not in fresh.get_params():
            continue
        want = fresh.get_params()[key]
        if getattr(base, key) != want:
            return f"its {key} is {getattr(base, key)!r}, the spec asks for {want!r}"
    if base.n_features_in_ != n_features:
        return f"it has {base.n_features_in_} features, the data {n_features}"
    return None


def fit_model(
    spec: PipelineSpec,
    source: Source,
    plan: Plan,
    published: dict | None,
    progress: bool,
    notify: Callable[[str], None],
) -> Fitted:
    """Fit the model of the new version.

    Parameters
    ----------
    spec : PipelineSpec
    source : Source
        The opened input store.
    plan : Plan
        What to do (:func:`.plan.plan_run`); not ``nothing``.
    published : dict or None
        The published version's manifest (with its ``path``).
    progress : bool
        Progress bars of the estimator on stderr.
    notify : callable
        Receives one line per step.

    Returns
    -------
    Fitted
    """
    from sklearn.exceptions import ConvergenceWarning

    base_model = None
    if plan.base_version is not None:
        base_model = load(Path(published["path"]) / MODEL_DIR)
    if plan.action == ACTION_APPEND:
        rows = source.rows(plan.start, source.extent)
        model = base_model
        model.set_params(**spec.model, progress=progress)
        before = model.n_batches_seen_
        kind = "online variational Bayes" if spec.bayesian else "online EM"
        notify(f"updating version {plan.base_version} with {rows.n_samples:,} new rows ({kind})")
        model.partial_fit(rows)
        return Fitted(
            model, rows.n_samples, model.n_batches_seen_ - before, model.lower_bound_, None
        )
    rows = source.rows()
    model = spec.estimator(progress=progress)
    how = "from scratch"
    if base_model is not None:
        why_not = warm_start_mismatch(base_model, spec, rows.n_features)
        if why_not:
            notify(f"cannot warm start from version {plan.base_version} ({why_not})")
        else:
            model = base_model
            model.set_params(**spec.model, progress=progress, warm_start=True)
            how = f"warm start from version {plan.base_version}"
    kind = "variational Bayes" if spec.bayesian else "EM"
    kind = f"online {kind}" if spec.mode == "online" else kind
    notify(
        f"fitting {model.n_components} components to {rows.n_samples:,} rows x "
        f"{rows.n_features} features ({kind}, {how})"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(rows)
    if spec.mode == "online":
        return Fitted(model, rows.n_samples, model.n_batches_seen_, model.lower_bound_, None)
    model.set_params(warm_start=False)
    return Fitted(model, rows.n_samples, model.n_iter_, model.lower_bound_, bool(model.converged_))


def predict(
    spec: PipelineSpec,
    source: Source,
    plan: Plan,
    published: dict | None,
    model,
    target: Path,
    notify: Callable[[str], None],
) -> int:
    """Write the new version's predictions to ``target``.

    Parameters
    ----------
    spec : PipelineSpec
    source : Source
        The opened input store.
    plan : Plan
        What to do; an online append carries the published predictions over and
        predicts the new rows only.
    published : dict or None
        The published version's manifest (with its ``path``).
    model : estimator
        The fitted model (:attr:`Fitted.model`).
    target : Path
        The new prediction store.
    notify : callable
        Receives one line per step.

    Returns
    -------
    int
        Rows predicted.
    """
    if plan.action == ACTION_APPEND:
        counts = mirror_store(
            Path(published["path"]) / PREDICTIONS, target, source.append_dim, plan.start
        )
        notify(
            f"carried over the predictions of version {plan.base_version} "
            f"({counts['linked']} chunk files linked, {counts['copied']} files copied)"
        )
        return extend_predictions(
            model, source, target, plan.start, proba=spec.proba, log_density=spec.log_density
        )
    rows = source.rows()
    notify(f"predicting {rows.n_samples:,} rows")
    write_predictions(model, rows, str(target), proba=spec.proba, log_density=spec.log_density)
    return rows.n_samples
