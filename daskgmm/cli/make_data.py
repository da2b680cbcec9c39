"""``daskgmm make-data``: a synthetic Gaussian mixture written to Zarr, chunk by chunk."""

from __future__ import annotations

import argparse
import time

from ..errors import UsageError
from .inputs import check_new_output
from .options import (
    add_cluster_options,
    add_output_options,
    add_progress_option,
    non_negative_int,
    positive_float,
    positive_int,
)
from .output import local_progress_bar, print_json, say
from .session import check_cluster_options, compute_session


def _integers(text: str, flag: str, count: int | tuple) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    counts = count if isinstance(count, tuple) else (count,)
    if len(values) not in counts or any(v < 1 for v in values):
        raise UsageError(
            f"{flag} {text!r}: give {' or '.join(str(c) for c in counts)} positive "
            "integer(s) separated by commas."
        )
    return values


def parse_layout(args: argparse.Namespace) -> tuple[int, tuple | None, tuple]:
    """(n_samples, cube shape or None, chunks) from the options, checked."""
    if args.cube_shape:
        cube = _integers(args.cube_shape, "--cube-shape", 3)
        chunks = _integers(args.chunks, "--chunks", 3) if args.chunks else None
        if chunks is None:
            chunks = (1, min(cube[1], 256), min(cube[2], 256))
        if args.n_samples is not None:
            raise UsageError("--n-samples is T*Y*X for a cube; drop it or drop --cube-shape.")
        return cube[0] * cube[1] * cube[2], cube, chunks
    if args.n_samples is None:
        raise UsageError("give --n-samples N (a table) or --cube-shape T,Y,X (a cube).")
    chunks = _integers(args.chunks, "--chunks", 1) if args.chunks else (250_000,)
    return args.n_samples, None, chunks


def run(args: argparse.Namespace) -> int:
    """Write the synthetic store; the exit code."""
    from ..datasets import write_cube, write_table

    n_samples, cube, chunks = parse_layout(args)
    check_cluster_options(args)
    check_new_output(args.store, args.overwrite, "STORE")
    start = time.perf_counter()
    common = dict(
        dtype=args.dtype, separation=args.separation, seed=args.seed, overwrite=args.overwrite
    )
    from zarr.errors import ContainsArrayError, ContainsGroupError

    with compute_session(args) as client, local_progress_bar(args, client):
        try:
            if cube:
                _, truth = write_cube(
                    args.store, cube, args.n_features, args.n_components, chunks, **common
                )
            else:
                _, truth = write_table(
                    args.store, n_samples, args.n_features, args.n_components, chunks[0], **common
                )
        except (ContainsArrayError, ContainsGroupError):
            raise UsageError(
                f"STORE {args.store!r} already holds Zarr data; pass --overwrite to replace it, "
                "or choose another path."
            ) from None
    seconds = time.perf_counter() - start
    nbytes = n_samples * args.n_features * (4 if args.dtype == "float32" else 8)
    layout = (
        f"a (time, y, x, band) cube {'x'.join(map(str, cube))} in chunks {chunks}, variable 'data'"
        if cube
        else f"a table in chunks of {chunks[0]:,} rows"
    )
    say(
        args,
        f"wrote {n_samples:,} x {args.n_features} {args.dtype} samples "
        f"({nbytes / 2**20:,.1f} MiB uncompressed) of a {args.n_components}-component "
        f"mixture to {args.store} as {layout} in {seconds:.1f} s",
    )
    say(args, "the true weights, means and covariances are in the store's attributes")
    print_json(
        args,
        {
            "command": "make-data",
            "store": args.store,
            "layout": "cube" if cube else "table",
            "n_samples": n_samples,
            "n_features": args.n_features,
            "n_components": args.n_components,
            "dtype": args.dtype,
            "chunks": list(chunks),
            "true_weights": truth.weights,
            "seconds": round(seconds, 3),
        },
    )
    return 0


def register(sub) -> None:
    """Add ``make-data``."""
    make = sub.add_parser(
        "make-data",
        help="write a synthetic mixture to a Zarr store, chunk by chunk",
        description="Write samples of a random Gaussian mixture to a Zarr (v3) store chunk by "
        "chunk, never holding them all in memory; the true weights, means and covariances go "
        "into the store's attributes.  A table is one (n_samples, n_features) array; a cube "
        "is an xarray dataset with data(time, y, x, band) and coordinates.",
    )
    make.add_argument("store", metavar="STORE", help="path or URL of the Zarr store to create")
    make.add_argument("--n-samples", type=positive_int, metavar="N", help="rows (table layout)")
    make.add_argument("--n-features", type=positive_int, default=16, metavar="D")
    make.add_argument("--n-components", type=positive_int, default=8, metavar="K")
    make.add_argument(
        "--chunks",
        metavar="ROWS|T,Y,X",
        help="rows per chunk (table, default 250000), or T,Y,X chunk sizes (cube, default "
        "1,256,256 at most)",
    )
    make.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    make.add_argument(
        "--separation",
        type=positive_float,
        default=6.0,
        metavar="S",
        help="spread of the component means against unit-ish covariances (default 6)",
    )
    make.add_argument("--seed", type=non_negative_int, default=0)
    make.add_argument(
        "--cube-shape",
        metavar="T,Y,X",
        help="write an xarray cube data(time, y, x, band) with coordinates instead",
    )
    make.add_argument("--overwrite", action="store_true", help="replace an existing store")
    add_output_options(make)
    add_progress_option(make)
    add_cluster_options(make)
    make.set_defaults(func=run)
