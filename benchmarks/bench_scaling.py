"""Seconds per EM iteration at 1, 2, 4, ... threads: threaded scheduler, LocalCluster, Zarr.

What it measures, case by case (``--cases``; default all four):

- ``full16``, ``diag16``, ``full64``: in-memory float64 data from
  ``bench_em.make_case`` (2,000,000 x 16 K=8 'full', the same 'diag', 500,000 x 64
  K=16 'full') fitted with ``GaussianMixture(k, tol=0, max_iter=m, **start)`` from
  bench_em's fixed start.  Seconds per iteration are ``(t(max_iter=n+1) -
  t(max_iter=1)) / n`` (``bench_em.seconds_per_iteration``), the best of
  ``--repeats``, after one untimed warm-up fit, at each thread count T:

  * on dask's threaded scheduler, ``dask.config.set(scheduler="threads",
    num_workers=T)``, fitting the numpy array (cut into ``chunk_rows`` views);
  * on a ``distributed`` LocalCluster of T worker processes x 1 thread
    (``daskgmm.cluster.start_local_cluster``, one cluster per case and T).  The
    rows are scattered to the workers once, chunk by chunk round-robin, as a dask
    array of the same ``chunk_rows`` (the scatter time is recorded, not timed in
    the iterations): a numpy array given to ``fit`` with a client active would
    be shipped to the workers again at every iteration;
  * scikit-learn's ``GaussianMixture`` on the same data and start, its BLAS
    limited to T threads (``threadpoolctl``), and the ratio sklearn / daskgmm.

  Parallel efficiency is ``T1 / (T * T_T)`` for each scheduler (relative to the
  smallest thread count timed when 1 is not among them).
- ``zarr``: a float32 Zarr store of 16,777,216 x 16 rows (1 GiB; ``--quick``:
  800,000 rows, 51 MB) written by ``daskgmm.datasets.write_table`` into
  ``--data-dir`` and reused when it exists complete with the same shape and
  chunks.  At each T on the threaded scheduler: (a) a bare read pass,
  ``da.from_zarr(store).sum(dtype=float64).compute()`` (as bench_io.py does),
  best of ``--repeats``; (b) seconds per EM iteration (K=8 'full', start fitted
  by scikit-learn on the store's first 50,000 rows) fitting from the store path,
  as above, with float64 and with ``compute_dtype='float32'``; and their ratios
  EM / read.  The store is read once untimed first, so every pass reads from the
  page cache.
- The first-call cost of daskgmm's compiled kernel (numba,
  ``daskgmm.kernels.compiled.quadratic_tiles``, ``cache=True``): the first
  ``chunk_stats`` call of a 'full' E-step (float64 rows, then float32 rows) in a
  fresh interpreter with an empty ``NUMBA_CACHE_DIR``, then in a second fresh
  interpreter with the same cache directory (loaded from the cache), each with
  the time of a second call for comparison.  Skipped when numba is missing.

Chunks: every in-memory case and the store are cut into ``--chunks`` row chunks
(default ``max(64, 4 x the largest thread count)``), so each thread has work.
The machine (cores, processor, BLAS libraries and versions from threadpoolctl,
dgemm GFLOP/s on all cores and on one) and the chunking are recorded with the
timings.

Prints tables and writes JSON (default benchmarks/results/bench_scaling.json).
Run it alone on the machine (it uses every core), under the benchmark lock::

    flock /tmp/daskgmm-bench.lock python benchmarks/bench_scaling.py   # everything
    python benchmarks/bench_scaling.py --cases full16 zarr  # some cases
    python benchmarks/bench_scaling.py --quick --threads 1 2 --repeats 1 --iterations 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_em  # noqa: E402
import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture as SkGaussianMixture  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import daskgmm  # noqa: E402
from daskgmm import GaussianMixture  # noqa: E402


def _case(n_samples, n_features, n_components, covariance_type) -> dict:
    return {
        "n_samples": n_samples,
        "n_features": n_features,
        "n_components": n_components,
        "covariance_type": covariance_type,
    }


CASES = {
    "full16": _case(2_000_000, 16, 8, "full"),
    "diag16": _case(2_000_000, 16, 8, "diag"),
    "full64": _case(500_000, 64, 16, "full"),
}
QUICK_ROWS = {"full16": 100_000, "diag16": 100_000, "full64": 50_000}
#: The Zarr case: float32 rows, fitted with K=8 'full'.
ZARR = _case(16_777_216, 16, 8, "full")
QUICK_ZARR_ROWS = 800_000
ALL_CASES = [*CASES, "zarr"]
#: Rows of the store the Zarr case's start is fitted on.
START_ROWS = 50_000


# ----------------------------------------------------------------------------- machine
def processor_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    pools = [
        {
            key: info.get(key)
            for key in ("user_api", "internal_api", "version", "num_threads", "architecture")
        }
        | {"filepath": info.get("filepath")}
        for info in threadpool_info()
    ]
    gflops = bench_em.dgemm_gflops()
    with threadpool_limits(limits=1, user_api="blas"):
        gflops_1 = bench_em.dgemm_gflops(size=1024)
    return {
        "cpus": os.cpu_count(),
        "processor": processor_name(),
        "machine": platform.machine(),
        "ram_gib": psutil.virtual_memory().total / 2**30,
        "threadpools": pools,
        "blas": [p for p in pools if p["user_api"] == "blas"],
        "dgemm_gflops": gflops,
        "dgemm_gflops_1_thread": gflops_1,
    }


def versions() -> dict:
    out = {
        "python": sys.version.split()[0],
        "daskgmm": daskgmm.__version__,
        "dask": dask.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }
    for name in ("distributed", "zarr", "numba"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    return out


def default_threads() -> list[int]:
    cpus = os.cpu_count() or 1
    threads = {cpus}
    n = 1
    while n <= cpus:
        threads.add(n)
        n *= 2
    return sorted(threads)


def efficiencies(threads: list[int], seconds: list[float]) -> list[float]:
    """T1 / (T * T_T), relative to the smallest thread count timed."""
    base = threads[0] * seconds[0]
    return [base / (n * s) for n, s in zip(threads, seconds, strict=True)]


def fit_quietly(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


def rel_diff_means(a, b) -> float:
    return float(np.max(np.abs(a.means_ - b.means_)) / np.max(np.abs(b.means_)))


# ----------------------------------------------------------------------------- in memory
def scatter_rows(client, X: np.ndarray, chunk_rows: int):
    """X as a dask array of ``chunk_rows`` chunks held by the workers, spread round-robin."""
    from distributed import wait

    starts = range(0, X.shape[0], chunk_rows)
    pieces = [X[s : s + chunk_rows] for s in starts]
    futures = client.scatter(pieces)
    wait(futures)
    blocks = [
        da.from_delayed(f, shape=p.shape, dtype=X.dtype)
        for f, p in zip(futures, pieces, strict=True)
    ]
    held = [len(keys) for keys in client.has_what().values()]
    return da.concatenate(blocks, axis=0), futures, held


def cluster_memory_limit(n_workers: int) -> int:
    return max(2 * 2**30, int(0.6 * psutil.virtual_memory().total / n_workers))


def run_case(name: str, case: dict, args, threads: list[int], n_chunks: int) -> dict:
    n, d, k, cov = (
        case[key] for key in ("n_samples", "n_features", "n_components", "covariance_type")
    )
    print(f"\n== {name}: N={n:,} D={d} K={k} {cov}", flush=True)
    X, init = bench_em.make_case(n, d, k, cov)
    chunk_rows = math.ceil(n / n_chunks)
    n_iter, repeats = args.iterations, args.repeats

    def dg_factory(max_iter):
        return GaussianMixture(
            k, covariance_type=cov, tol=0.0, max_iter=max_iter, chunk_rows=chunk_rows, **init
        )

    def sk_factory(max_iter):
        return SkGaussianMixture(k, covariance_type=cov, tol=0.0, max_iter=max_iter, **init)

    rows = [{"threads": t} for t in threads]
    reference = None
    if not args.no_sklearn:
        for row in rows:
            with threadpool_limits(limits=row["threads"]):
                fit_quietly(sk_factory(1), X)
                s, _, model = bench_em.seconds_per_iteration(sk_factory, X, n_iter, repeats)
            reference = reference or model
            row["sklearn_s_per_iter"] = s
            print(f"  sklearn   T={row['threads']:<3} {s:.4f} s/it", flush=True)
    for row in rows:
        with dask.config.set(scheduler="threads", num_workers=row["threads"]):
            fit_quietly(dg_factory(1), X)
            s, _, model = bench_em.seconds_per_iteration(dg_factory, X, n_iter, repeats)
        row["threads_s_per_iter"] = s
        if reference is not None:
            row["threads_max_rel_diff_means"] = rel_diff_means(model, reference)
        print(f"  threads   T={row['threads']:<3} {s:.4f} s/it", flush=True)
    if not args.no_cluster:
        from daskgmm.cluster import close, quiet_logs, start_local_cluster

        quiet_logs()
        for row in rows:
            t = row["threads"]
            limit = cluster_memory_limit(t)
            client = start_local_cluster(n_workers=t, threads_per_worker=1, memory_limit=limit)
            try:
                start = time.perf_counter()
                Xd, futures, held = scatter_rows(client, X, chunk_rows)
                row["cluster_scatter_s"] = time.perf_counter() - start
                row["cluster_chunks_per_worker"] = held
                row["cluster_memory_limit_gib"] = limit / 2**30
                fit_quietly(dg_factory(1), Xd)
                s, _, model = bench_em.seconds_per_iteration(dg_factory, Xd, n_iter, repeats)
                del futures, Xd
            finally:
                close(client)
            row["cluster_s_per_iter"] = s
            if reference is not None:
                row["cluster_max_rel_diff_means"] = rel_diff_means(model, reference)
            print(f"  cluster   T={t:<3} {s:.4f} s/it", flush=True)
    for key in ("threads", "cluster", "sklearn"):
        column = f"{key}_s_per_iter"
        if all(column in r for r in rows):
            for r, e in zip(rows, efficiencies(threads, [r[column] for r in rows]), strict=True):
                r[f"{key}_efficiency"] = e
    for r in rows:
        if "sklearn_s_per_iter" in r:
            for key in ("threads", "cluster"):
                if f"{key}_s_per_iter" in r:
                    r[f"sklearn_over_{key}"] = r["sklearn_s_per_iter"] / r[f"{key}_s_per_iter"]
    return {
        "name": name,
        **case,
        "data_dtype": str(X.dtype),
        "data_mib": X.nbytes / 2**20,
        "chunk_rows": chunk_rows,
        "n_chunks": math.ceil(n / chunk_rows),
        "chunk_mib": chunk_rows * d * X.itemsize / 2**20,
        "iterations": n_iter,
        "repeats": repeats,
        "rows": rows,
    }


def print_case(result: dict) -> None:
    r0 = result
    print(
        f"\n{r0['name']}: N={r0['n_samples']:,} D={r0['n_features']} K={r0['n_components']} "
        f"{r0['covariance_type']}, {r0['n_chunks']} chunks of {r0['chunk_rows']:,} rows "
        f"({r0['chunk_mib']:.1f} MiB)"
    )
    header = (
        f"{'T':>4} {'threads s/it':>12} {'eff':>6} {'cluster s/it':>12} {'eff':>6} "
        f"{'sklearn s/it':>12} {'eff':>6} {'sk/threads':>10} {'sk/cluster':>10}"
    )
    print(header)
    print("-" * len(header))

    def cell(row, key, fmt, width):
        return format(row[key], fmt).rjust(width) if key in row else "-".rjust(width)

    def ratio(row, key):
        return f"{row[key]:.2f}x".rjust(10) if key in row else "-".rjust(10)

    for r in result["rows"]:
        print(
            f"{r['threads']:>4} {cell(r, 'threads_s_per_iter', '.4f', 12)} "
            f"{cell(r, 'threads_efficiency', '.0%', 6)} "
            f"{cell(r, 'cluster_s_per_iter', '.4f', 12)} "
            f"{cell(r, 'cluster_efficiency', '.0%', 6)} "
            f"{cell(r, 'sklearn_s_per_iter', '.4f', 12)} "
            f"{cell(r, 'sklearn_efficiency', '.0%', 6)} "
            f"{ratio(r, 'sklearn_over_threads')} {ratio(r, 'sklearn_over_cluster')}"
        )


# ----------------------------------------------------------------------------- zarr
def ensure_store(data_dir: Path, n: int, d: int, k: int, chunk_rows: int) -> tuple[Path, bool]:
    """The float32 store of the Zarr case; written unless a complete one is there."""
    import zarr

    from daskgmm.datasets import write_table

    path = data_dir / f"mixture_{n}x{d}_k{k}_rows{chunk_rows}_float32.zarr"
    if path.exists():
        try:
            arr = zarr.open_array(str(path), mode="r")
            if (
                arr.shape == (n, d)
                and arr.dtype == np.float32
                and arr.chunks[0] == chunk_rows
                and arr.attrs.get("complete")
            ):
                return path, True
        except Exception as exc:  # not a readable array: write it again
            print(f"  rewriting {path}: {exc}")
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"  writing {path} ({n * d * 4 / 2**30:.2f} GiB) ...", flush=True)
    with dask.config.set(scheduler="threads"):
        write_table(str(path), n, d, k, chunk_rows, dtype="float32", seed=0, overwrite=True)
    return path, False


def run_zarr(args, threads: list[int], n_chunks: int) -> dict:
    import zarr

    n = QUICK_ZARR_ROWS if args.quick else ZARR["n_samples"]
    d, k, cov = ZARR["n_features"], ZARR["n_components"], ZARR["covariance_type"]
    chunk_rows = math.ceil(n / n_chunks)
    print(f"\n== zarr: N={n:,} D={d} float32, K={k} {cov}", flush=True)
    start = time.perf_counter()
    path, reused = ensure_store(Path(args.data_dir), n, d, k, chunk_rows)
    write_s = None if reused else time.perf_counter() - start
    arr = zarr.open_array(str(path), mode="r")
    data_bytes = n * d * arr.dtype.itemsize
    first = np.asarray(arr[: min(n, START_ROWS)], dtype=np.float64)
    seed = SkGaussianMixture(k, covariance_type=cov, max_iter=1, random_state=0)
    fit_quietly(seed, first)
    init = {
        "weights_init": seed.weights_,
        "means_init": seed.means_,
        "precisions_init": seed.precisions_,
    }

    def factory(max_iter, compute_dtype="float64"):
        return GaussianMixture(
            k, covariance_type=cov, tol=0.0, max_iter=max_iter, compute_dtype=compute_dtype,
            **init,
        )  # fmt: skip

    def factory32(max_iter):
        return factory(max_iter, "float32")

    def read_pass():
        return da.from_zarr(str(path)).sum(dtype=np.float64).compute()

    with dask.config.set(scheduler="threads"):
        read_pass()  # into the page cache, untimed
    rows = []
    for t in threads:
        with dask.config.set(scheduler="threads", num_workers=t):
            best = np.inf
            for _ in range(args.repeats):
                begin = time.perf_counter()
                read_pass()
                best = min(best, time.perf_counter() - begin)
            fit_quietly(factory(1), str(path))
            em, _, _ = bench_em.seconds_per_iteration(
                factory, str(path), args.iterations, args.repeats
            )
            em32, _, _ = bench_em.seconds_per_iteration(
                factory32, str(path), args.iterations, args.repeats
            )
        rows.append(
            {
                "threads": t,
                "read_s": best,
                "read_gib_per_s": data_bytes / best / 2**30,
                "em_s_per_iter": em,
                "em_over_read": em / best,
                "em32_s_per_iter": em32,
                "em32_over_read": em32 / best,
            }
        )
        print(f"  T={t:<3} read {best:.4f} s, EM {em:.4f} s/it, float32 compute {em32:.4f} s/it")
    for key in ("read_s", "em_s_per_iter"):
        effs = efficiencies(threads, [r[key] for r in rows])
        for r, e in zip(rows, effs, strict=True):
            r[f"{key.split('_')[0]}_efficiency"] = e
    return {
        "name": "zarr",
        "store": str(path),
        "reused_store": reused,
        "write_s": write_s,
        "n_samples": n,
        "n_features": d,
        "n_components": k,
        "covariance_type": cov,
        "dtype": str(arr.dtype),
        "data_gib": data_bytes / 2**30,
        "store_chunks": list(arr.chunks),
        "n_chunks": math.ceil(n / arr.chunks[0]),
        "chunk_mib": arr.chunks[0] * d * arr.dtype.itemsize / 2**20,
        "start_rows": min(n, START_ROWS),
        "iterations": args.iterations,
        "repeats": args.repeats,
        "page_cache": "warm (one untimed read pass first)",
        "rows": rows,
    }


def print_zarr(z: dict) -> None:
    print(
        f"\nzarr: {z['store']} ({z['data_gib']:.2f} GiB {z['dtype']}, {z['n_chunks']} chunks of "
        f"{z['store_chunks'][0]:,} rows = {z['chunk_mib']:.1f} MiB), K={z['n_components']} "
        f"{z['covariance_type']}"
    )
    header = (
        f"{'T':>4} {'read s':>8} {'GiB/s':>7} {'eff':>6} {'EM s/it':>8} {'eff':>6} {'EM/read':>8}"
        f" {'f32 s/it':>9} {'f32/read':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in z["rows"]:
        print(
            f"{r['threads']:>4} {r['read_s']:>8.4f} {r['read_gib_per_s']:>7.2f} "
            f"{r['read_efficiency']:>6.0%} {r['em_s_per_iter']:>8.4f} {r['em_efficiency']:>6.0%} "
            f"{r['em_over_read']:>8.2f} {r.get('em32_s_per_iter', math.nan):>9.4f} "
            f"{r.get('em32_over_read', math.nan):>9.2f}"
        )


# ----------------------------------------------------------------------------- numba
def compile_child() -> None:
    """In a fresh interpreter: time importing the compiled kernel and the first two
    ``chunk_stats`` calls of a 'full' E-step per dtype; print JSON."""
    from daskgmm.kernels.covariance import precision_cholesky
    from daskgmm.kernels.density import LogDensity
    from daskgmm.kernels.estep import chunk_stats
    from daskgmm.kernels.responsibilities import EStep

    start = time.perf_counter()
    from daskgmm.kernels import compiled, tiles

    import_s = time.perf_counter() - start
    k, d, n = 8, 16, 20_000
    rng = np.random.default_rng(0)
    means = 3.0 * rng.standard_normal((k, d))
    factors = 0.2 * rng.standard_normal((k, d, d))
    covariances = factors @ np.swapaxes(factors, 1, 2) + np.eye(d)
    weights = rng.dirichlet(np.ones(k))
    estep = EStep(LogDensity(means, precision_cholesky(covariances, "full"), "full", weights))
    X = means[rng.integers(0, k, n)] + rng.standard_normal((n, d))
    out = {"import_s": import_s, "compiled_path": tiles.compiles(estep, d), "calls": {}}
    for dtype in ("float64", "float32"):
        rows = X.astype(dtype)
        times = []
        for _ in range(2):
            begin = time.perf_counter()
            chunk_stats(rows, estep)
            times.append(time.perf_counter() - begin)
        out["calls"][dtype] = {"first_s": times[0], "second_s": times[1]}
    stats = compiled.quadratic_tiles.stats
    out["cache_hits"] = int(sum(stats.cache_hits.values()))
    out["cache_misses"] = int(sum(stats.cache_misses.values()))
    out["signature_dtypes"] = [str(s[0].dtype) for s in compiled.quadratic_tiles.signatures]
    print(json.dumps(out))


def run_compile() -> dict:
    try:
        import numba
    except ImportError:
        return {"skipped": "numba is not importable"}
    runs = {}
    with tempfile.TemporaryDirectory(prefix="daskgmm-numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("empty_cache", "from_cache"):
            proc = subprocess.run(
                [sys.executable, __file__, "--compile-child"],
                env=env,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                return {"error": proc.stderr.strip().splitlines()[-20:], "numba": numba.__version__}
            runs[label] = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[label]["cache_files"] = sum(len(files) for _, _, files in os.walk(cache))
    return {
        "numba": numba.__version__,
        "kernel": "daskgmm.kernels.compiled.quadratic_tiles (full E-step, D=16 K=8, 20,000 rows)",
        **runs,
    }


def print_compile(c: dict) -> None:
    print("\ncompiled kernel, first chunk_stats call in a fresh interpreter:")
    if "skipped" in c or "error" in c:
        print(f"  {c.get('skipped') or c.get('error')}")
        return
    for label in ("empty_cache", "from_cache"):
        r = c[label]
        calls = ", ".join(
            f"{dt}: first {v['first_s']:.3f} s, second {v['second_s']:.4f} s"
            for dt, v in r["calls"].items()
        )
        print(
            f"  {label:<11} import {r['import_s']:.3f} s; {calls}; cache hits {r['cache_hits']}, "
            f"misses {r['cache_misses']}"
        )


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument(
        "--threads", type=int, nargs="+", help="thread counts (default 1, 2, 4, ... and cpu_count)"
    )
    parser.add_argument(
        "--cases", nargs="+", choices=ALL_CASES, default=ALL_CASES, help="cases to run"
    )
    parser.add_argument("--repeats", type=int, help="best of this many (default 3; quick 1)")
    parser.add_argument(
        "--iterations", type=int, help="n in (t(n+1) - t(1)) / n (default 10; quick 3)"
    )
    parser.add_argument(
        "--chunks", type=int, help="row chunks per data set (default max(64, 4 x most threads))"
    )
    parser.add_argument("--no-cluster", action="store_true", help="skip the LocalCluster")
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn")
    parser.add_argument("--no-compile", action="store_true", help="skip the numba compile times")
    parser.add_argument("--data-dir", default="/tmp/daskgmm-bench-scaling", help="Zarr store here")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_scaling.json"))
    parser.add_argument("--compile-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compile_child:
        compile_child()
        return 0
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.iterations = args.iterations or (3 if args.quick else 10)
    threads = sorted(set(args.threads or default_threads()))
    n_chunks = args.chunks or max(64, 4 * threads[-1])

    info = machine()
    blas = ", ".join(f"{b['internal_api']} {b['version']}" for b in info["blas"])
    print(
        f"{info['cpus']} cpus ({info['processor']}); BLAS: {blas}; dgemm "
        f"{info['dgemm_gflops']:.1f} GFLOP/s (1 thread {info['dgemm_gflops_1_thread']:.1f})\n"
        f"threads {threads}; {n_chunks} chunks per data set; {args.iterations} iterations, "
        f"best of {args.repeats}"
    )
    compile_result = None if args.no_compile else run_compile()
    if compile_result is not None:
        print_compile(compile_result)
    cases = []
    for name in args.cases:
        if name in CASES:
            case = dict(CASES[name])
            if args.quick:
                case["n_samples"] = QUICK_ROWS[name]
            cases.append(run_case(name, case, args, threads, n_chunks))
    zarr_result = run_zarr(args, threads, n_chunks) if "zarr" in args.cases else None

    if compile_result is not None:
        print_compile(compile_result)
    for result in cases:
        print_case(result)
    if zarr_result is not None:
        print_zarr(zarr_result)
    result = {
        "benchmark": "bench_scaling",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "quick": args.quick,
        "machine": info,
        "versions": versions(),
        "settings": {
            "threads": threads,
            "iterations": args.iterations,
            "repeats": args.repeats,
            "n_chunks": n_chunks,
            "chunking": "every data set cut into n_chunks row chunks (default max(64, 4 x most "
            "threads)); in memory: GaussianMixture(chunk_rows=...) on the threaded scheduler, "
            "the same chunks scattered round-robin to the workers of the LocalCluster; Zarr: "
            "the store's own chunks",
            "seconds_per_iteration": "(t(max_iter=n+1) - t(max_iter=1)) / n, best of repeats, "
            "after one untimed max_iter=1 fit",
            "efficiency": "T1 / (T * T_T), T1 the time at the smallest thread count timed",
            "cluster": "start_local_cluster(n_workers=T, threads_per_worker=1); rows scattered "
            "once per cluster (cluster_scatter_s, not in the iterations)",
            "sklearn": "sklearn.mixture.GaussianMixture, BLAS limited to T threads",
        },
        "numba_compile": compile_result,
        "cases": cases,
        "zarr": zarr_result,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
