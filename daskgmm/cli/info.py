"""``daskgmm info MODEL``: what a saved model is, how it was fitted, on which data."""

from __future__ import annotations

import argparse
import datetime
import json

from .inputs import load_model
from .options import add_output_options
from .output import print_json, say

#: Parameters shown first (the rest follow in name order).
_MAIN_PARAMS = ("n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init")


def _when(ns: int | None) -> str:
    if not ns:
        return "?"
    stamp = datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC)
    return stamp.isoformat(timespec="seconds")


def describe_data(fp: dict) -> list[str]:
    """Readable lines for a training-data fingerprint."""
    if not fp:
        return ["  (not recorded: saved by a daskgmm without training-data fingerprints)"]
    kind = fp.get("kind", "?")
    lines = []
    if "location" in fp:
        lines.append(f"  {kind} store {fp['location']}")
        if fp.get("variables") is not None:
            lines.append(f"  variables {fp['variables']}")
    elif kind == "numpy":
        lines.append(f"  numpy array, sha256 {fp.get('sha256', '(too large to hash)')}")
    elif kind == "dask":
        lines.append(f"  dask array {fp.get('name')}")
    else:
        lines.append(f"  {kind}" + (f" ({fp['error']})" if "error" in fp else ""))
    for name, info in (fp.get("arrays") or {}).items():
        lines.append(
            f"  array {name or '(root)'!s}: shape {info['shape']}, chunks {info['chunks']}, "
            f"{info['dtype']}"
        )
    if "shape" in fp and "arrays" not in fp:
        lines.append(f"  shape {fp['shape']}, {fp.get('dtype')}")
    files = fp.get("files")
    if files:
        lines.append(
            f"  {files['n_files']:,} files, {files['n_bytes'] / 2**20:,.1f} MiB, newest "
            f"modified {_when(files.get('modified_ns'))}"
        )
    rows = fp.get("rows")
    if rows:
        lines.append(
            f"  rows: {rows['n_samples']:,} x {rows['n_features']} (sample dimensions "
            f"{rows['sample_dims']}, {rows['row_chunks']} row chunks)"
        )
    if fp.get("recorded"):
        lines.append(f"  recorded {fp['recorded']}")
    return lines


def data_changed(fp: dict) -> bool | None:
    """Whether a local training store differs now from its fingerprint (None: unknown)."""
    from ..io import data_fingerprint

    location = fp.get("location")
    if not location or "files" not in fp:
        return None
    try:
        now = data_fingerprint(location)
    except (OSError, ValueError):
        return True  # gone or unreadable
    return now.get("arrays") != fp.get("arrays") or now.get("files") != fp.get("files")


def run(args: argparse.Namespace) -> int:
    """Check MODEL and print its metadata; the exit code."""
    from ..store import read_metadata

    model = load_model(args.model)  # checks the model whole (arrays, checksum, shapes)
    meta = read_metadata(args.model)
    fitted = meta["fitted"]
    fp = fitted.get("training_data_") or {}
    changed = data_changed(fp)
    _say_model(args, model, meta)
    _say_parameters(args, meta)
    _say_training_data(args, fp, changed)
    say(args, "arrays: " + ", ".join(f"{n} {v['shape']}" for n, v in meta["arrays"].items()))
    print_json(
        args,
        {
            "command": "info",
            "model": args.model,
            **{k: meta[k] for k in ("schema_version", "class", "daskgmm_version", "created")},
            "params": meta["params"],
            "fitted": {k: v for k, v in fitted.items() if k != "training_data_"},
            "weights": model.weights_,
            **_effective(model),
            "means": model.means_,
            "training_data": fp,
            "training_data_changed": changed,
            "arrays": meta["arrays"],
            "arrays_sha256": meta["arrays_sha256"],
        },
    )
    return 0


def _say_model(args: argparse.Namespace, model, meta: dict) -> None:
    """The model's class, versions, shape, how its fit ended and its weights."""
    fitted = meta["fitted"]
    say(args, f"MODEL {args.model}: {meta['class']} (checked: checksums, shapes)")
    say(
        args,
        f"  schema version {meta['schema_version']}, saved by daskgmm "
        f"{meta['daskgmm_version']} at {meta['created']}",
    )
    k, d = model.means_.shape
    say(args, f"  {k} components ({model.covariance_type} covariances), {d} features")
    if "n_iter_" in fitted:
        state = "converged" if fitted.get("converged_") else "NOT converged"
        bound = (
            "evidence lower bound (total over the rows)"
            if "n_effective_components_" in fitted
            else "mean log-likelihood"
        )
        say(
            args,
            f"  fit: {state} after {fitted['n_iter_']} iterations, {bound} "
            f"{fitted['lower_bound_']:.6f}",
        )
    if "n_batches_seen_" in fitted:
        bound = (
            "evidence lower bound (total over the rows)"
            if "n_effective_components_" in fitted
            else "running mean log-likelihood"
        )
        say(
            args,
            f"  online fit: {fitted['n_batches_seen_']} mini-batches, "
            f"{fitted['n_samples_seen_']:,} rows, {bound} {fitted['lower_bound_']:.6f}",
        )
    say(args, "  weights " + " ".join(f"{w:.4f}" for w in model.weights_))
    effective = _effective(model)
    if effective:
        picked = ", ".join(map(str, effective["effective_components"]))
        say(
            args,
            f"  effective components: {effective['n_effective_components']} of {k} "
            f"(weight >= {effective['effective_weight']:g}): {picked}",
        )


def _effective(model) -> dict:
    """A Bayesian model's effective components: those whose weight reaches the
    documented threshold (``EFFECTIVE_WEIGHT``); empty for other models."""
    if not hasattr(model, "n_effective_components_"):
        return {}
    import numpy as np

    from ..estimators.bayesian_mixture import EFFECTIVE_WEIGHT

    picked = np.flatnonzero(np.asarray(model.weights_) >= EFFECTIVE_WEIGHT)
    return {
        "n_effective_components": len(picked),
        "effective_weight": EFFECTIVE_WEIGHT,
        "effective_components": [int(k) for k in picked],
    }


def _say_parameters(args: argparse.Namespace, meta: dict) -> None:
    """The saved parameters, the main ones first, and those not saved."""
    params = meta["params"]
    ordered = [n for n in _MAIN_PARAMS if n in params] + sorted(
        n for n in params if n not in _MAIN_PARAMS
    )
    say(args, "parameters:")
    for name in ordered:
        say(args, f"  {name} = {json.dumps(params[name])}")
    for name in meta.get("params_not_saved", []):
        say(args, f"  {name} = (not saved; loaded as the default)")


def _say_training_data(args: argparse.Namespace, fp: dict, changed: bool | None) -> None:
    """The training data's fingerprint and whether the store changed since."""
    say(args, "training data:")
    for line in describe_data(fp):
        say(args, line)
    if changed is not None:
        say(
            args,
            "  the store has CHANGED since the fit"
            if changed
            else "  the store is unchanged since the fit",
        )


def register(sub) -> None:
    """Add ``info``."""
    parser = sub.add_parser(
        "info",
        help="show a saved model: class, parameters, fit, training data fingerprint",
        description="Load a saved model (checking its schema version, checksums, shapes and "
        "dtypes) and show its metadata: class, versions, creation time, parameters, how the "
        "fit ended, and the fingerprint of its training data (for a local store also whether "
        "the store has changed since).",
    )
    parser.add_argument("model", metavar="MODEL", help="a model directory (daskgmm fit --model)")
    add_output_options(parser)
    parser.set_defaults(func=run)
