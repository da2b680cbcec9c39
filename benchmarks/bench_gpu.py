"""Seconds per EM iteration on a GPU: CuPy chunks, float64 and float32, from memory and Zarr.

The cases of issue 16, on one GPU with dask's threaded scheduler:

- 2,000,000 x 16, K=8, 'full', from device memory (``da.from_array(cupy_array)``),
  ``compute_dtype`` float64 and float32 (target: <= 0.025 s per iteration in
  float64, twice a plain PyTorch EM's 0.0124 s);
- 20,000,000 x 16 rows from a Zarr store (``da.from_zarr(...).map_blocks(cupy.asarray)``),
  with the ratio of an iteration to a bare read pass (read, decode, copy to the GPU);
- K=64, D=64 ('full'), where the GPU should win most; the CPU's seconds per
  iteration beside it (numpy chunks on all cores) unless ``--no-cpu``.

Seconds per iteration are ``(t(max_iter=n+1) - t(max_iter=1)) / n`` of whole fits
(initialisation and set-up cancel), best of ``--repeats``.  float32 runs are
compared with the float64 fit of the same data (largest relative difference of the
means and covariances after the same iterations).  Prints a table and writes JSON
with the machine recorded.

    python benchmarks/bench_gpu.py --out $OUT/bench_gpu.json     # on the GPU machine
    python benchmarks/bench_gpu.py --quick --array numpy          # a smoke run, any machine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np

import daskgmm
from daskgmm import GaussianMixture
from daskgmm.datasets import make_mixture

FULL = {
    "device": {"n_samples": 2_000_000, "n_features": 16, "n_components": 8, "chunk_rows": 500_000},
    "zarr": {"n_samples": 20_000_000, "n_features": 16, "n_components": 8, "chunk_rows": 1_000_000},
    "wide": {"n_samples": 1_000_000, "n_features": 64, "n_components": 64, "chunk_rows": 250_000},
}
QUICK = {
    "device": {"n_samples": 40_000, "n_features": 16, "n_components": 8, "chunk_rows": 10_000},
    "zarr": {"n_samples": 80_000, "n_features": 16, "n_components": 8, "chunk_rows": 20_000},
    "wide": {"n_samples": 20_000, "n_features": 16, "n_components": 16, "chunk_rows": 5_000},
}


def array_module(name: str):
    """(move(numpy array) -> chunk of that module, synchronise())."""
    if name == "cupy":
        import cupy

        return cupy.asarray, lambda: cupy.cuda.Device().synchronize()
    if name == "strict":
        import array_api_strict as xps

        device = xps.Device("device1")
        return (lambda x: xps.asarray(np.asarray(x), device=device)), lambda: None
    return np.asarray, lambda: None


def chunked(host: np.ndarray, chunk_rows: int, move) -> da.Array:
    """``host``'s rows moved by ``move``: one array on the device cut into chunks (CuPy,
    numpy), or chunk by chunk where dask cannot slice the array (array-api-strict)."""
    if move is np.asarray or getattr(move, "__module__", "").startswith("cupy"):
        return da.from_array(move(host), chunks=(chunk_rows, -1))
    meta = move(np.empty((0, 0), host.dtype))
    return da.from_array(host, chunks=(chunk_rows, -1)).map_blocks(move, meta=meta)


def seconds_per_iteration(X, case, iterations, repeats, **kwargs):
    """Best-of-``repeats`` (t(n+1) - t(1)) / n of fits; returns (seconds, fitted model)."""
    common = dict(
        n_components=case["n_components"],
        covariance_type="full",
        init_params="random_from_data",
        random_state=0,
        tol=0.0,
        **kwargs,
    )
    timings = []
    with warnings.catch_warnings():  # warm-up: compiled kernels, CUDA context, cuBLAS
        warnings.simplefilter("ignore")
        model = GaussianMixture(max_iter=1, **common).fit(X)
    for _ in range(repeats):
        pair = []
        for max_iter in (1, iterations + 1):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = GaussianMixture(max_iter=max_iter, **common).fit(X)
            pair.append(time.perf_counter() - start)
        timings.append((pair[1] - pair[0]) / iterations)
    return min(timings), model


def relative_difference(a, b) -> float:
    """Largest difference of the means and covariances over their largest value."""
    return max(
        float(np.abs(a.means_ - b.means_).max() / np.abs(b.means_).max()),
        float(np.abs(a.covariances_ - b.covariances_).max() / np.abs(b.covariances_).max()),
    )


def device_case(case, move, sync, args) -> list[dict]:
    """The in-memory case: float64 and float32 from device memory."""
    host = make_mixture(case["n_samples"], case["n_features"], case["n_components"])[0].compute()
    rows = []
    fits = {}
    for dtype in ("float64", "float32"):
        X = chunked(host.astype(dtype), case["chunk_rows"], move)
        seconds, fits[dtype] = seconds_per_iteration(
            X, case, args.iterations, args.repeats, compute_dtype=dtype
        )
        sync()
        rows.append({"case": f"device {dtype}", **case, "s_per_iter": seconds})
    rows[1]["float32_vs_float64"] = relative_difference(fits["float32"], fits["float64"])
    if not args.no_cpu:
        X = da.from_array(host, chunks=(case["chunk_rows"], -1))
        seconds, _ = seconds_per_iteration(X, case, max(1, args.iterations // 5), 1)
        rows.append({"case": "cpu float64 (numpy chunks)", **case, "s_per_iter": seconds})
    return rows


def zarr_case(case, move, sync, args) -> list[dict]:
    """Rows read from a Zarr store, moved to the device chunk by chunk."""
    folder = Path(args.store_dir or tempfile.mkdtemp(prefix="bench_gpu_"))
    store = folder / "rows.zarr"
    start = time.perf_counter()
    make_mixture(
        case["n_samples"],
        case["n_features"],
        case["n_components"],
        chunk_rows=case["chunk_rows"],
        dtype="float32",
        store=str(store),
        overwrite=True,
    )
    written = time.perf_counter() - start
    rows_of = lambda: da.from_zarr(str(store)).map_blocks(move)  # noqa: E731
    reads = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        rows_of().sum(axis=0).compute()
        sync()
        reads.append(time.perf_counter() - start)
    read = min(reads)
    seconds, _ = seconds_per_iteration(rows_of(), case, max(1, args.iterations // 5), 1)
    if not args.store_dir:
        shutil.rmtree(folder, ignore_errors=True)
    return [
        {
            "case": "zarr float32 store, float64 compute",
            **case,
            "s_per_iter": seconds,
            "read_pass_s": read,
            "iter_over_read": seconds / read,
            "write_s": written,
        }
    ]


def wide_case(case, move, sync, args) -> list[dict]:
    """K=64, D=64: the GPU's best case, with the CPU beside it."""
    host = make_mixture(case["n_samples"], case["n_features"], case["n_components"])[0].compute()
    X = chunked(host, case["chunk_rows"], move)
    seconds, _ = seconds_per_iteration(X, case, max(1, args.iterations // 2), args.repeats)
    sync()
    rows = [{"case": "wide device float64", **case, "s_per_iter": seconds}]
    if not args.no_cpu:
        X = da.from_array(host, chunks=(case["chunk_rows"], -1))
        seconds, _ = seconds_per_iteration(X, case, 1, 1)
        rows.append({"case": "wide cpu float64 (numpy chunks)", **case, "s_per_iter": seconds})
        rows[-1]["gpu_speedup"] = seconds / rows[0]["s_per_iter"]
    return rows


def machine(array: str) -> dict:
    """What the numbers were measured on."""
    out = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "dask": dask.__version__,
        "daskgmm": daskgmm.__version__,
        "array": array,
    }
    if array == "cupy":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        out.update(
            cupy=cupy.__version__,
            gpu=props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
            gpu_memory_gib=round(props["totalGlobalMem"] / 2**30, 1),
            cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(),
        )
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--array", choices=("cupy", "numpy", "strict"), default="cupy")
    parser.add_argument("--cases", default="device,zarr,wide")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU comparisons")
    parser.add_argument("--store-dir", help="where to write the Zarr store (kept)")
    parser.add_argument("--out", default="benchmarks/results/bench_gpu.json")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    move, sync = array_module(args.array)
    runners = {"device": device_case, "zarr": zarr_case, "wide": wide_case}
    results = []
    with dask.config.set(scheduler="threads"):
        for name in args.cases.split(","):
            results += runners[name](sizes[name], move, sync, args)
            print_table(results[-1:])
    report = {"machine": machine(args.array), "quick": args.quick, "results": results}
    print_table(results, header=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return report


def print_table(results, header=False) -> None:
    if header:
        print(f"\n{'case':<38}{'rows':>12}{'D':>4}{'K':>4}{'s/iter':>10}  notes")
    for r in results:
        notes = {k: r[k] for k in ("float32_vs_float64", "iter_over_read", "gpu_speedup") if k in r}
        text = ", ".join(f"{k}={v:.3g}" for k, v in notes.items())
        print(
            f"{r['case']:<38}{r['n_samples']:>12,}{r['n_features']:>4}{r['n_components']:>4}"
            f"{r['s_per_iter']:>10.4f}  {text}"
        )


if __name__ == "__main__":
    main()
