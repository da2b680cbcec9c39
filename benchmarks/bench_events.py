"""What watching a fit costs, and the dead time between EM iterations on a LocalCluster.

Side by side in one run, on one LocalCluster (2 workers x 1 thread, from
``daskgmm.cluster.start_local_cluster``), the same fits (``tol=0``, fixed
iterations) in three configurations that take turns round after round:

- **before**: the pass graph built by one ``delayed`` call per task (the code before
  issue 14, copied below as ``delayed_pass_graph``), in-memory rows sent with every
  pass, no records published;
- **after, records off**: the pass graph written as one layer, in-memory rows kept
  on the workers for the fit (``engine.passes.held_rows``), no records published
  (``dask.config.set({"daskgmm.events": False})``);
- **after**: the same, publishing one record per iteration (``Client.log_event``).

For each it reports seconds per iteration (median over the fits' iterations), the
client-side gap per iteration (from the records: from the end of one pass to the
submission of the next), the workers' idle gap between two passes (from the task
stream: the last task of one pass to the first of the next), and for "after" the
seconds the fit spent publishing per iteration (handing the record to the client's
event loop, plus one wait per fit for the records to reach the scheduler), as a
share of the iterations' time (target < 1 %).  The cost of the sends on the event
loop's thread shows in the s/iter of "after" against "after, records off".
Two inputs: a numpy array in memory and a Zarr store.

The machine has 2 cores shared with other work: the figures are noisy; medians of
several rounds are reported with every round kept in the JSON.

    python benchmarks/bench_events.py             # 400,000 x 16 float64, K=8, full
    python benchmarks/bench_events.py --quick
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
from _machine import machine  # benchmarks/_machine.py (run as a script from here)
from dask.delayed import delayed
from distributed import get_task_stream
from sklearn.exceptions import ConvergenceWarning

import daskgmm
import daskgmm.engine.passes as passes
import daskgmm.estimators.em as em
import daskgmm.estimators.fit_events as fit_events
from daskgmm import GaussianMixture
from daskgmm.cluster import close, start_local_cluster
from daskgmm.datasets import make_mixture

K, D = 8, 16
logger = logging.getLogger("bench_events")


def delayed_pass_graph(rows, responsibilities, chunk_ids=None, prefix="daskgmm_estep",
                       split_every=None, threads=None, *, one=False):  # fmt: skip
    """The pass graph as built before issue 14: one ``delayed`` call per task (the
    signature of ``passes.pass_graph_many``, all models in one task per chunk)."""
    import uuid

    ids = tuple(range(rows.n_chunks)) if chunk_ids is None else tuple(int(i) for i in chunk_ids)
    token = uuid.uuid4().hex
    shared = delayed((tuple(responsibilities), ids), name=f"daskgmm_params-{token}", pure=True)
    weights = rows.weights or [None] * rows.n_chunks
    leaves = [
        delayed(passes._chunk_stats_of, pure=True)(
            rows.blocks[chunk],
            shared,
            weights[chunk],
            position,
            0,
            len(responsibilities),
            dask_key_name=(f"{prefix}-{token}", position),
        )
        for position, chunk in enumerate(ids)
    ]
    level, name = 0, f"daskgmm_reduce-{token}"
    split_every = split_every or passes.DEFAULT_SPLIT_EVERY
    while len(leaves) > 1:
        leaves = [
            delayed(passes.merge_each, pure=True)(
                leaves[i : i + split_every], dask_key_name=(name, level, j)
            )
            for j, i in enumerate(range(0, len(leaves), split_every))
        ]
        level += 1
    return leaves[0][0] if one else leaves[0]


@contextlib.contextmanager
def sent_with_every_pass(rows):
    yield rows


@contextlib.contextmanager
def configuration(name: str):
    """The code and settings of one configuration, for the block."""
    with contextlib.ExitStack() as stack:
        if name == "before":
            stack.enter_context(_patched(passes, "pass_graph_many", delayed_pass_graph))
            stack.enter_context(_patched(em, "held_rows", sent_with_every_pass))
        if name != "after":
            stack.enter_context(dask.config.set({fit_events.CONFIG_KEY: False}))
        yield


@contextlib.contextmanager
def _patched(module, attribute: str, value):
    saved = getattr(module, attribute)
    setattr(module, attribute, value)
    try:
        yield
    finally:
        setattr(module, attribute, saved)


class Records(logging.Handler):
    """The fit's per-iteration records, from the ``daskgmm.mixture`` logger."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[dict] = []

    def emit(self, record):
        if hasattr(record, "daskgmm_record"):
            self.records.append(record.daskgmm_record)


class PublishClock:
    """Seconds the fit's thread spends publishing: handing each record to the
    client's event loop (``fit_events.publish``), and waiting once per fit for the
    records to reach the scheduler (``fit_events.flush``)."""

    def __init__(self):
        self.seconds: list[float] = []
        self.flush_seconds: list[float] = []
        self._publish, self._flush = fit_events.publish, fit_events.flush

    def publish(self, client, record):
        start = time.perf_counter()
        try:
            return self._publish(client, record)
        finally:
            self.seconds.append(time.perf_counter() - start)

    def flush(self, client):
        start = time.perf_counter()
        try:
            return self._flush(client)
        finally:
            self.flush_seconds.append(time.perf_counter() - start)


def worker_idle_gaps(task_stream: list[dict]) -> list[float]:
    """Seconds between the last task of one pass and the first of the next."""
    spans: dict[str, list[float]] = {}
    for task in task_stream:
        key = task["key"]
        name = str(key[0] if isinstance(key, tuple) else key)
        if not name.startswith(("daskgmm_estep-", "daskgmm_reduce-")):
            continue
        token = name.partition("-")[2]
        computes = [s for s in task["startstops"] if s["action"] == "compute"]
        span = spans.setdefault(token, [np.inf, -np.inf])
        span[0] = min(span[0], computes[0]["start"])
        span[1] = max(span[1], computes[-1]["stop"])
    ordered = sorted(spans.values())
    return [b[0] - a[1] for a, b in itertools.pairwise(ordered)]


def one_fit(X, start: dict, max_iter: int, client) -> dict:
    """One fit's per-iteration figures (the first iteration left out: it warms)."""
    handler, clock = Records(), PublishClock()
    log = logging.getLogger("daskgmm.mixture")
    log.addHandler(handler)
    old_level, old_propagate = log.level, log.propagate
    log.setLevel(logging.DEBUG)
    log.propagate = False  # the records are for the handler, not the terminal
    try:
        with (
            _patched(fit_events, "publish", clock.publish),
            _patched(fit_events, "flush", clock.flush),
            get_task_stream(client) as stream,
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", ConvergenceWarning)
            GaussianMixture(K, tol=0.0, max_iter=max_iter, **start).fit(X)
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
        log.propagate = old_propagate
    records = handler.records[1:]
    seconds = [r["seconds"] for r in records]
    # the publishing time of the fit (per record, and the one flush at its end)
    # over the time of all its iterations
    published = sum(clock.seconds) + sum(clock.flush_seconds)
    all_seconds = sum(r["seconds"] for r in handler.records)
    return {
        "s_per_iter": float(np.median(seconds)),
        "client_gap_ms": 1e3 * float(np.median([r["gap"] for r in records])),
        "worker_idle_gap_ms": 1e3 * float(np.median(worker_idle_gaps(stream.data)[1:])),
        "publish_ms": 1e3 * published / len(clock.seconds) if clock.seconds else None,
        "publish_share": published / all_seconds if clock.seconds else None,
    }


CONFIGS = ("before", "after, records off", "after")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "bench_events.json")
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    n_rows, chunk_rows = (100_000, 10_000) if args.quick else (400_000, 25_000)
    rounds = 2 if args.quick else args.rounds
    results: dict = {"benchmark": "bench_events", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    X, truth = make_mixture(n_rows, D, K, chunk_rows=chunk_rows, seed=0)
    start = {"weights_init": truth.weights, "means_init": truth.means + 0.3,
             "precisions_init": np.linalg.inv(truth.covariances)}  # fmt: skip
    figures: dict = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("DASKGMM_BENCH_DIR")) as tmp:
        store = os.path.join(tmp, "x.zarr")
        X.to_zarr(store)
        inputs = {"numpy": X.compute(), "zarr": da.from_zarr(store)}
        client = start_local_cluster(2, 1, memory_limit="3GiB")
        try:
            for data in inputs.values():  # compile the kernels on the workers
                one_fit(data, start, 3, client)
            for r in range(rounds):
                for input_name, data in inputs.items():
                    for config in CONFIGS:
                        with configuration(config):
                            fit = one_fit(data, start, args.iterations, client)
                        figures.setdefault(input_name, {}).setdefault(config, []).append(fit)
                logger.info("round %d of %d done", r + 1, rounds)
        finally:
            close(client)
    summary = {
        input_name: {
            config: {
                key: (None if fits[0][key] is None else float(np.median([f[key] for f in fits])))
                for key in fits[0]
            }
            for config, fits in by_config.items()
        }
        for input_name, by_config in figures.items()
    }
    print_table(summary, n_rows, chunk_rows)
    results.update(
        {
            "data": {"rows": n_rows, "features": D, "components": K, "chunk_rows": chunk_rows},
            "cluster": "start_local_cluster(2 workers x 1 thread)",
            "iterations_per_fit": args.iterations,
            "rounds": rounds,
            "machine": machine(),
            "median_of_rounds": summary,
            "by_round": figures,
            "versions": {"daskgmm": daskgmm.__version__, "dask": dask.__version__},
            "note": "2 shared cores, other work running: noisy figures",
        }
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    logger.info("wrote %s", out)
    return 0


def print_table(summary: dict, n_rows: int, chunk_rows: int) -> None:
    """The medians, one line per input and configuration."""
    header = (
        f"{'input':<6} {'configuration':<20} {'s/iter':>7} {'client gap ms':>14}"
        f" {'worker gap ms':>14} {'publish ms':>11} {'publish %':>10}"
    )
    lines = [f"{n_rows:,} x {D} float64, K={K} full, chunks of {chunk_rows:,} rows", header]
    for input_name, by_config in summary.items():
        for config, f in by_config.items():
            publish = "-" if f["publish_ms"] is None else f"{f['publish_ms']:.2f}"
            share = "-" if f["publish_share"] is None else f"{100 * f['publish_share']:.2f}"
            lines.append(
                f"{input_name:<6} {config:<20} {f['s_per_iter']:>7.3f}"
                f" {f['client_gap_ms']:>14.2f} {f['worker_idle_gap_ms']:>14.1f}"
                f" {publish:>11} {share:>10}"
            )
    logger.info("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
