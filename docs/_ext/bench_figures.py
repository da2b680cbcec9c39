"""Benchmark figures drawn from ``benchmarks/results/*.json`` when the docs build.

``.. bench-figure:: NAME`` (``{bench-figure} NAME`` in Markdown) draws the figure
``NAME`` (one of :data:`FIGURES`) with matplotlib into ``docs/_generated`` and puts
it on the page with a caption that names the JSON files it comes from, when they
were written and the machine they were measured on, as the files record it.  A
file that does not record its machine says so in the caption.
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
OUT = Path(__file__).resolve().parents[1] / "_generated"


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def machine(data: dict) -> str:
    """The machine a result file records, in words (or that it records none)."""
    m = data.get("machine")
    if isinstance(m, dict):
        parts = [f"{m['cpus']} CPUs" if "cpus" in m else None, m.get("processor")]
        if m.get("ram_gib"):
            parts.append(f"{m['ram_gib']:.0f} GiB RAM")
        blas = m.get("blas")
        if isinstance(blas, list) and blas:
            blas = blas[0]
        if isinstance(blas, dict) and blas.get("internal_api"):
            parts.append(f"{blas['internal_api']} {blas.get('version') or ''}".strip())
        if m.get("dgemm_gflops"):
            parts.append(f"dgemm {m['dgemm_gflops']:.0f} GFLOP/s")
        return ", ".join(p for p in parts if p)
    if "cpu_count" in data:
        return f"{data['cpu_count']} CPUs, {data.get('machine', 'unknown architecture')}"
    return "machine not recorded in the file"


def source_line(name: str) -> str:
    """``file (written WHEN): MACHINE`` for a caption."""
    data = _load(name)
    when = data.get("when")
    stamp = f" (written {when[:16].replace('T', ' ')} UTC)" if when else ""
    return f"benchmarks/results/{name}{stamp}: {machine(data)}"


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def draw_speed(fig_axes) -> list[str]:
    """Seconds per EM iteration, scikit-learn against daskgmm, same data and start; and
    the speed-up over scikit-learn of Spark MLlib and of daskgmm, each measured side by
    side with scikit-learn."""
    fig, (a, b, c) = fig_axes
    em = _load("bench_em.json")
    labels = [
        f"N={c['n_samples']:,}\nD={c['n_features']} K={c['n_components']} {c['covariance_type']}"
        for c in em["cases"]
    ]
    _bars(a, labels, [c["sklearn_s_per_iter"] for c in em["cases"]],
          [c["daskgmm_s_per_iter"] for c in em["cases"]], "bench_em: in-memory float64, 2 threads")
    sc = _load("bench_scaling.json")
    cases = sc["cases"]
    last = [c["rows"][-1] for c in cases]
    labels = [
        f"N={c['n_samples']:,}\nD={c['n_features']} K={c['n_components']} {c['covariance_type']}"
        for c in cases
    ]
    _bars(b, labels, [r["sklearn_s_per_iter"] for r in last],
          [r["threads_s_per_iter"] for r in last],
          f"bench_scaling: {last[0]['threads']} threads (compiled E-step)")
    _speedups(c)
    return ["bench_em.json", "bench_scaling.json", "spark_mllib.json"]


def _speedups(ax) -> None:
    """Speed-up over scikit-learn, each measured side by side with it in its own run:
    Spark MLlib (the recorded comparison) and daskgmm (bench_em), N=1e6 D=16 K=8 full."""
    spark = _load("spark_mllib.json")["cases"][0]
    ours = next(
        c
        for c in _load("bench_em.json")["cases"]
        if (c["n_samples"], c["n_features"], c["n_components"], c["covariance_type"])
        == (spark["n_samples"], spark["n_features"], spark["n_components"], "full")
    )
    names = ["scikit-learn", "Spark MLlib\n(recorded)", "daskgmm\n(bench_em)"]
    ratios = [
        1.0,
        spark["sklearn_s_per_iter"] / spark["spark_s_per_iter"],
        ours["sklearn_s_per_iter"] / ours["daskgmm_s_per_iter"],
    ]
    bars = ax.bar(names, ratios, color=["#999999", "#ff7f0e", "#1f77b4"])
    for bar, ratio in zip(bars, ratios, strict=True):
        ax.annotate(f"{ratio:.1f}x", (bar.get_x() + bar.get_width() / 2, ratio), ha="center",
                    va="bottom", fontsize=8)
    ax.set_ylabel("speed-up over scikit-learn (same run)")
    ax.set_title("N=1,000,000 D=16 K=8 full, 2 cores", fontsize=9)


def _bars(ax, labels, sklearn, ours, title) -> None:
    import numpy as np

    x = np.arange(len(labels))
    ax.bar(x - 0.2, sklearn, 0.4, label="scikit-learn", color="#999999")
    ax.bar(x + 0.2, ours, 0.4, label="daskgmm", color="#1f77b4")
    for i, (s, o) in enumerate(zip(sklearn, ours, strict=True)):
        ax.annotate(f"{s / o:.1f}x", (x[i] + 0.2, o), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("seconds per EM iteration")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)


def draw_scaling(fig_axes) -> list[str]:
    """Seconds per iteration against threads: threaded scheduler, LocalCluster, sklearn."""
    fig, axes = fig_axes
    sc = _load("bench_scaling.json")
    for ax, case in zip(axes[:3], sc["cases"], strict=True):
        threads = [r["threads"] for r in case["rows"]]
        for key, label, style in (
            ("threads_s_per_iter", "daskgmm, threads", "o-"),
            ("cluster_s_per_iter", "daskgmm, LocalCluster n x 1", "s--"),
            ("sklearn_s_per_iter", "scikit-learn", "^:"),
        ):
            ax.plot(threads, [r[key] for r in case["rows"]], style, label=label)
        t1 = case["rows"][0]["threads_s_per_iter"]
        ax.plot(threads, [t1 * threads[0] / t for t in threads], color="0.7", lw=0.8,
                label="perfect scaling")
        ax.set_title(f"{case['covariance_type']} D={case['n_features']} K={case['n_components']}, "
                     f"{case['n_samples']:,} rows", fontsize=9)
        _thread_axis(ax, threads)
    z = sc["zarr"]
    threads = [r["threads"] for r in z["rows"]]
    ax = axes[3]
    ax.plot(threads, [r["read_s"] for r in z["rows"]], "o-", label="bare read pass")
    ax.plot(threads, [r["em_s_per_iter"] for r in z["rows"]], "s-", label="EM iteration")
    ax.plot(threads, [r["em32_s_per_iter"] for r in z["rows"]], "^--",
            label="EM, compute_dtype=float32")
    ax.set_title(f"from Zarr: {z['n_samples'] / 1e6:.1f} M x {z['n_features']} {z['dtype']}, "
                 f"{z['data_gib']:.0f} GiB", fontsize=9)
    _thread_axis(ax, threads)
    return ["bench_scaling.json"]


def _thread_axis(ax, threads) -> None:
    ax.set_xticks(threads)
    ax.set_xlabel("threads (or 1-thread workers)")
    ax.set_ylabel("seconds")
    ax.set_yscale("log")
    ax.legend(fontsize=7)


def draw_memory(fig_axes) -> list[str]:
    """Peak memory against the data's size: in memory (bench_em), out of core (bench_io)."""
    fig, (a, b) = fig_axes
    em = _load("bench_em.json")
    size = [c["data_mib"] for c in em["cases"]]
    a.plot(size, [c["sklearn_peak_extra_mib"] for c in em["cases"]], "^", ms=9,
           label="scikit-learn")
    a.plot(size, [max(c["daskgmm_peak_extra_mib"], 0.1) for c in em["cases"]], "o", ms=9,
           label="daskgmm")
    a.set_xlabel("data in memory (MiB)")
    a.set_ylabel("peak RSS growth during fit (MiB)")
    a.set_yscale("log")
    a.set_title("bench_em: extra memory of a fit on in-memory data", fontsize=9)
    a.legend(fontsize=8)
    runs = [_load("bench_io.json"), _load("bench_io_32g_threads.json")]
    data = [r["data_gib"] for r in runs]
    b.plot(data, data, color="0.7", lw=0.8, label="the data's size")
    b.plot(data, [r["peak_tree_rss_gib"] for r in runs], "o-", ms=9,
           label="peak RSS, whole process tree")
    for r in runs:
        b.annotate(f"{r['scheduler']}, {r['n_samples'] / 1e6:.0f} M rows",
                   (r["data_gib"], r["peak_tree_rss_gib"]), textcoords="offset points",
                   xytext=(-30, 8), fontsize=7)
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xlabel("Zarr store, float32 (GiB)")
    b.set_ylabel("GiB")
    b.set_title("bench_io: EM from Zarr, larger than memory", fontsize=9)
    b.legend(fontsize=8)
    return ["bench_em.json", "bench_io.json", "bench_io_32g_threads.json"]


def draw_online(fig_axes) -> list[str]:
    """Held-out gap to the batch optimum against seconds, and the step-size grid."""
    fig, (a, b) = fig_axes
    on = _load("bench_online.json")
    for key, colour in (("accuracy", "#1f77b4"), ("speed", "#d62728")):
        run = on[key]
        batch = run["batch"]
        gaps = [max(batch["optimum"] - s, 1e-6) for s in batch["held_out_scores"]]
        a.plot(batch["cumulative_seconds"], gaps, "o-", color=colour, ms=4,
               label=f"batch EM, {run['rows']:,} rows")
        points = run.get("online_trajectory", {}).get("points", []) + run["online"]
        a.plot([p["seconds"] for p in points], [max(p["gap"], 1e-6) for p in points],
               "s--", color=colour, ms=6,
               label=f"online (first check, 1 and 2 passes), {run['rows']:,} rows")
    a.axhline(0.01, color="0.6", lw=0.8, ls=":")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("seconds")
    a.set_ylabel("nats/sample below batch EM's optimum\n(held out; gaps <= 0 drawn at 1e-6)")
    a.set_title("online against batch EM (K=8, D=16, full)", fontsize=9)
    a.legend(fontsize=7)
    grid = _load("bench_online_grid_seed1.json")["grid"]
    import numpy as np

    labels = [
        f"{g['batch_size'] // 1000}k t0={g['t0']:g} k={g['kappa']:g}"
        + (f"\nwarm-up {g['warm_up'] // 1000}k" if "warm_up" in g else "")
        for g in grid
    ]
    x = np.arange(len(grid))
    b.bar(x - 0.2, [g["gap_1_pass"] for g in grid], 0.4, label="after 1 pass")
    b.bar(x + 0.2, [g["gap_2_passes"] for g in grid], 0.4, label="after 2 passes")
    b.set_xticks(x, labels, fontsize=6, rotation=30, ha="right")
    b.set_yscale("log")
    b.set_ylabel("nats/sample below batch EM")
    b.set_title("step sizes: batch size, t0, kappa (seed 1)", fontsize=9)
    b.legend(fontsize=7)
    return ["bench_online.json", "bench_online_grid_seed1.json"]


def draw_bayesian(fig_axes) -> list[str]:
    """Streaming variational Bayes against batch: the gap to batch VB's final bound."""
    fig, axes = fig_axes
    data = _load("bench_bayesian.json")
    threshold = data["threshold_nats_per_sample"]
    for ax, result in zip(axes, data["results"], strict=False):
        batch = result["batch"]
        target = batch["target"]
        gaps = [max(target - b, 1e-6) for b in batch["bounds"]]
        ax.plot(range(1, len(gaps) + 1), gaps, "-", color="black", label="batch VB")
        for run, colour in zip(result["streaming"], ("#1f77b4", "#d62728"), strict=False):
            points = run["trajectory"]
            ax.plot([q["passes"] for q in points],
                    [max(target - q["bound"], 1e-6) for q in points],
                    "--", color=colour, label=run["method"])
        ax.axhline(threshold, color="0.6", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("passes over the data")
        ax.set_title(f"{result['name']}: {result['rows']:,} x {result['features']}, "
                     f"K={result['n_components']} {result['covariance_type']}", fontsize=9)
    axes[0].set_ylabel("nats/sample below batch VB's bound\n(gaps <= 0 drawn at 1e-6)")
    axes[0].legend(fontsize=7)
    return ["bench_bayesian.json"]


def draw_events(fig_axes) -> list[str]:
    """Seconds per iteration on a 2-worker LocalCluster, before and after the records."""
    import numpy as np

    fig, ax = fig_axes
    data = _load("bench_events.json")
    medians = data["median_of_rounds"]
    inputs = list(medians)
    variants = list(medians[inputs[0]])
    x = np.arange(len(inputs))
    width = 0.8 / len(variants)
    for i, variant in enumerate(variants):
        values = [medians[name][variant]["s_per_iter"] for name in inputs]
        ax.bar(x + (i - (len(variants) - 1) / 2) * width, values, width, label=variant)
    ax.set_xticks(x, [f"{name} input" for name in inputs])
    ax.set_ylabel("seconds per EM iteration (median of rounds)")
    ax.set_title(f"{data['data']['rows']:,} x {data['data']['features']}, "
                 f"K={data['data']['components']}, {data['cluster']}", fontsize=9)
    ax.legend(fontsize=7, loc="lower center")
    return ["bench_events.json"]


def draw_select(fig_axes) -> list[str]:
    """Wall seconds of one fit, of a grid of models fitted together, and of the same
    number of models fitted one after another (hatched: at the rate measured on some
    of them), with the chunk reads above each bar."""
    fig, axes = fig_axes
    data = _load("bench_select.json")
    grid = data["grid"]
    n_models = len(grid["k"]) * grid["n_init"]
    for ax, (name, case) in zip(axes, data["cases"].items(), strict=True):
        seq = case["one_after_another"]
        measured_all = seq["seconds_all_models"] is not None
        reads_seq = round(seq["reads"] / seq["models_fitted"] * n_models)
        bars = [
            ("one fit", case["one_fit"]["seconds"], case["one_fit"]["reads"], ""),
            (f"{n_models} models\ntogether", case["grid"]["seconds"], case["grid"]["reads"], ""),
            (f"{n_models} models one\nafter another", seq["seconds_all_models_at_this_rate"],
             reads_seq, "" if measured_all else "//"),
        ]  # fmt: skip
        for i, (_, seconds, reads, hatch) in enumerate(bars):
            ax.bar(i, seconds, color=f"C{i}", hatch=hatch, edgecolor="white")
            ax.text(i, seconds, f"{reads:,} reads", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("wall seconds")
        delay = case["delay_per_read_s"]
        title = f"{name}" + (f": {delay:g} s per chunk read" if delay else "")
        ax.set_title(f"{title}; together / one fit = {case['grid_over_one_fit']:.2f}", fontsize=9)
    return ["bench_select.json"]


#: name -> (draw function, figure width, height, columns)
FIGURES = {
    "speed": (draw_speed, 15, 4.2, 3),
    "scaling": (draw_scaling, 13, 3.6, 4),
    "memory": (draw_memory, 11, 4, 2),
    "online": (draw_online, 11, 4.4, 2),
    "bayesian": (draw_bayesian, 13, 3.8, 3),
    "events": (draw_events, 7, 4, 1),
    "select": (draw_select, 11, 4, 2),
}


def render(name: str) -> tuple[Path, list[str]]:
    """Draw figure ``name`` into ``docs/_generated``; its path and its source files."""
    draw, width, height, ncols = FIGURES[name]
    fig_axes = _figure(width, height, ncols)
    sources = draw(fig_axes)
    OUT.mkdir(exist_ok=True)
    path = OUT / f"bench_{name}.png"
    fig_axes[0].savefig(path, dpi=110)
    return path, sources


class BenchFigure(Directive):
    """``.. bench-figure:: NAME``: the figure with a caption naming its machines."""

    required_arguments = 1
    has_content = True

    def run(self):
        name = self.arguments[0]
        if name not in FIGURES:
            raise self.error(f"unknown benchmark figure {name!r}; one of {sorted(FIGURES)}")
        path, sources = render(name)
        env = self.state.document.settings.env
        for source in sources:
            env.note_dependency(str(RESULTS / source))
        figure = nodes.figure()
        figure += nodes.image(uri=f"/_generated/{path.name}", alt=FIGURES[name][0].__doc__)
        caption = nodes.caption()
        caption += nodes.Text(FIGURES[name][0].__doc__.strip() + " Measured on: ")
        for i, source in enumerate(sources):
            caption += nodes.literal(text=source_line(source))
            caption += nodes.Text("; " if i < len(sources) - 1 else ".")
        figure += caption
        return [figure]


def setup(app):
    app.add_directive("bench-figure", BenchFigure)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
