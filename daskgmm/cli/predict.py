"""``daskgmm predict MODEL INPUT --out STORE``: labels (and probabilities) to Zarr."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import UsageError
from .inputs import check_feature_count, check_new_output, describe_input, load_model, open_input
from .options import add_cluster_options, add_input_options, add_output_options, add_progress_option
from .output import local_progress_bar, print_json, say
from .session import check_cluster_options, compute_session


def _local(path: str) -> Path | None:
    if "://" in path and not path.startswith("file://"):
        return None
    return Path(path.removeprefix("file://")).expanduser().resolve()


def check_not_input(out: str, source: str) -> None:
    """The output store is neither the input store nor inside it (nor around it)."""
    out_path, in_path = _local(out), _local(source)
    if out_path is None or in_path is None:
        if out.rstrip("/") == source.rstrip("/"):
            raise UsageError("--out is INPUT; write the predictions to another store.")
        return
    if out_path == in_path or in_path in out_path.parents or out_path in in_path.parents:
        raise UsageError(
            f"--out {out!r} overlaps INPUT {source!r}; write the predictions to a separate store."
        )


def label_counts(store: str, n_components: int) -> tuple[list[int], int]:
    """Rows per component and rows left unlabelled (-1), read back from the store."""
    import dask.array as da
    import numpy as np
    import zarr

    labels = da.from_zarr(zarr.open_group(store, mode="r")["labels"]).ravel()
    counts = da.bincount(labels + 1, minlength=n_components + 1).compute()
    return [int(c) for c in counts[1:]], int(np.asarray(counts)[0])


def run(args: argparse.Namespace) -> int:
    """Write the predictions of MODEL on INPUT to --out; the exit code."""
    check_cluster_options(args)
    model = load_model(args.model)
    view = open_input(args, model)
    check_feature_count(model, view, args)
    check_not_input(args.out, args.input)
    check_new_output(args.out, args.overwrite, "--out")
    if args.nan_policy is not None:
        model.nan_policy = args.nan_policy
    say(args, f"INPUT {args.input}: {describe_input(view)}")
    from ..io import write_predictions

    start = time.perf_counter()
    with compute_session(args) as client, local_progress_bar(args, client):
        attrs = write_predictions(
            model,
            view,
            args.out,
            labels=True,
            proba=args.proba,
            log_density=args.log_density,
            overwrite=args.overwrite,
        )
        counts, unlabelled = label_counts(args.out, model.n_components)
    seconds = time.perf_counter() - start
    written = ["labels"] + ["proba"] * args.proba + ["log_density"] * args.log_density
    say(
        args,
        f"wrote {', '.join(written)} for {view.n_samples:,} rows to {args.out} "
        f"in {seconds:.1f} s (model {attrs['model_id']})",
    )
    say(args, "rows per component: " + ", ".join(f"{k}: {c:,}" for k, c in enumerate(counts)))
    if unlabelled:
        say(args, f"rows left unlabelled (-1; NaN/inf under --nan-policy omit): {unlabelled:,}")
    print_json(
        args,
        {
            "command": "predict",
            "model": args.model,
            "input": args.input,
            "out": args.out,
            "arrays": written,
            "n_samples": view.n_samples,
            "counts": counts,
            "unlabelled": unlabelled,
            "model_id": attrs["model_id"],
            "seconds": round(seconds, 3),
        },
    )
    return 0


def register(sub) -> None:
    """Add ``predict``."""
    parser = sub.add_parser(
        "predict",
        help="write a saved model's labels (and probabilities) for a store to Zarr",
        description="Stream the predictions of a saved model to a Zarr group, chunk by chunk, "
        "on the input's sample dimensions and chunks (with its coordinates for xarray "
        "stores): labels (the smallest integer type, -1 for rows left out), with --proba the "
        "component probabilities (float32), with --log-density the log-density (float64).  "
        "The group's attribute daskgmm_complete becomes true once every chunk is written.",
    )
    parser.add_argument("model", metavar="MODEL", help="a model directory (daskgmm fit --model)")
    add_input_options(parser)
    parser.add_argument("--out", required=True, metavar="STORE", help="Zarr store to write")
    parser.add_argument("--proba", action="store_true", help="also write probabilities")
    parser.add_argument("--log-density", action="store_true", help="also write log-densities")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    add_output_options(parser)
    add_progress_option(parser)
    add_cluster_options(parser)
    parser.set_defaults(func=run)
