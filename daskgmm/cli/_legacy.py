"""``daskgmm demo`` and ``daskgmm make-data`` (to be split into one module each)."""

from __future__ import annotations

import argparse
import json
import time
import warnings


def _demo(args: argparse.Namespace) -> int:
    from sklearn.exceptions import ConvergenceWarning

    from .. import GaussianMixture
    from ..datasets import make_mixture

    X, truth = make_mixture(
        args.n_samples,
        args.n_features,
        args.n_components,
        chunk_rows=args.chunk_rows,
        seed=args.seed,
    )
    print(
        f"synthetic mixture: {X.shape[0]:,} x {X.shape[1]} float64 in {X.numblocks[0]} "
        f"chunks ({X.nbytes / 2**20:.0f} MiB), K={args.n_components}"
    )
    X = X.persist()
    model = GaussianMixture(
        args.n_components,
        covariance_type=args.covariance_type,
        max_iter=args.max_iter,
        tol=args.tol,
        n_init=args.n_init,
        random_state=args.seed,
    )
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X)
    seconds = time.perf_counter() - start
    for i, lb in enumerate(model.lower_bounds_, 1):
        print(f"  iteration {i:3d}  mean log-likelihood {lb: .6f}")
    summary = {
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "n_components": args.n_components,
        "covariance_type": args.covariance_type,
        "converged": bool(model.converged_),
        "n_iter": int(model.n_iter_),
        "lower_bound": float(model.lower_bound_),
        "seconds": round(seconds, 3),
        "warnings": [str(w.message) for w in caught],
    }
    print(
        f"{'converged' if model.converged_ else 'NOT converged'} after {model.n_iter_} "
        f"iterations (best of {args.n_init} initialisations); lower bound "
        f"{model.lower_bound_:.6f}; fit took {seconds:.2f} s in all"
    )
    weight_error, mean_error = _recovery_errors(model, truth)
    summary["max_weight_error"] = weight_error
    summary["max_mean_error"] = mean_error
    print(
        f"recovered the true mixture to: weights +/- {weight_error:.4f}, "
        f"means +/- {mean_error:.4f} (components matched by nearest means)"
    )
    if args.json:
        print(json.dumps(summary))
    return 0


def _make_data(args: argparse.Namespace) -> int:
    from ..datasets import make_mixture

    chunks = [int(c) for c in args.chunks.split(",")]
    cube = None
    if args.cube_shape:
        cube = tuple(int(n) for n in args.cube_shape.split(","))
        if len(cube) != 3 or len(chunks) != 3:
            raise ValueError("--cube-shape and --chunks take three numbers T,Y,X for a cube.")
        n_samples = cube[0] * cube[1] * cube[2]
    else:
        if len(chunks) != 1:
            raise ValueError("--chunks takes one number (rows per chunk) for a table.")
        n_samples = args.n_samples
        if n_samples is None:
            raise ValueError("give --n-samples (or --cube-shape T,Y,X).")
    start = time.perf_counter()
    kwargs = {"chunks": tuple(chunks)} if cube else {"chunk_rows": chunks[0]}
    if cube:
        from ..datasets import write_cube

        X, _ = write_cube(
            args.store,
            cube,
            args.n_features,
            args.n_components,
            dtype=args.dtype,
            seed=args.seed,
            overwrite=args.overwrite,
            **kwargs,
        )
    else:
        X, _ = make_mixture(
            n_samples,
            args.n_features,
            args.n_components,
            dtype=args.dtype,
            seed=args.seed,
            store=args.store,
            overwrite=args.overwrite,
            **kwargs,
        )
    seconds = time.perf_counter() - start
    nbytes = n_samples * args.n_features * X.dtype.itemsize
    print(
        f"wrote {n_samples:,} x {args.n_features} {X.dtype} samples "
        f"({nbytes / 2**30:.2f} GiB uncompressed, K={args.n_components}) to {args.store} "
        f"as {'a (time, y, x, band) cube' if cube else 'a table'} in {seconds:.1f} s"
    )
    if args.json:
        print(json.dumps({"store": args.store, "n_samples": n_samples, "seconds": seconds}))
    return 0


def _recovery_errors(model, truth) -> tuple[float, float]:
    """Largest weight and mean errors against the true mixture, components matched."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    cost = np.linalg.norm(model.means_[:, None, :] - truth.means[None, :, :], axis=2)
    fitted, true = linear_sum_assignment(cost)
    weight_error = float(np.abs(model.weights_[fitted] - truth.weights[true]).max())
    mean_error = float(np.abs(model.means_[fitted] - truth.means[true]).max())
    return weight_error, mean_error


def register(sub) -> None:
    demo = sub.add_parser("demo", help="fit a synthetic mixture and print the result")
    demo.add_argument("--n-samples", type=int, default=1_000_000)
    demo.add_argument("--n-features", type=int, default=16)
    demo.add_argument("--n-components", type=int, default=8)
    demo.add_argument("--chunk-rows", type=int, default=125_000)
    demo.add_argument(
        "--covariance-type",
        choices=["full", "tied", "diag", "spherical"],
        default="full",
    )
    demo.add_argument("--max-iter", type=int, default=100)
    demo.add_argument("--tol", type=float, default=1e-4)
    demo.add_argument(
        "--n-init", type=int, default=3, help="initialisations; the best is kept (default 3)"
    )
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--json", action="store_true", help="also print a JSON summary")
    demo.set_defaults(func=_demo)

    make = sub.add_parser(
        "make-data",
        help="write a synthetic mixture to a Zarr store, chunk by chunk",
        description="Write samples of a random Gaussian mixture to a Zarr store (v3) chunk by "
        "chunk, never holding them in memory; the true weights, means and covariances go "
        "into the store's attributes.",
    )
    make.add_argument("store", help="path or URL of the Zarr store to create")
    make.add_argument("--n-samples", type=int, help="rows (table layout)")
    make.add_argument("--n-features", type=int, default=16)
    make.add_argument("--n-components", type=int, default=8)
    make.add_argument(
        "--chunks",
        default="250000",
        help="rows per chunk (table), or T,Y,X chunk sizes (cube); default 250000",
    )
    make.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument(
        "--cube-shape",
        help="T,Y,X: write an xarray cube data(time, y, x, band) with coordinates instead",
    )
    make.add_argument("--overwrite", action="store_true", help="replace an existing store")
    make.add_argument("--json", action="store_true", help="also print a JSON summary")
    make.set_defaults(func=_make_data)

