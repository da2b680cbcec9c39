"""daskgmm's page on the Dask dashboard: ``/individual-daskgmm``.

The page draws the per-iteration records that fits publish to the scheduler's
event log (:mod:`daskgmm.cluster.events`): the log-likelihood curve of each
initialisation, the component weights over the iterations, where the fit is
(initialisation, iteration, seconds per iteration, the time left, bad rows, the
last checkpoint) and the recent fits by id.  It is a Bokeh document served by the
scheduler's own dashboard, so it listens where the dashboard listens (loopback
for the clusters daskgmm starts).  Its name begins with ``individual-``, so the
dashboard lists it under "More..." and the JupyterLab Dask panel offers it.

Clusters started by :func:`daskgmm.cluster.start_local_cluster` (and the CLI's
``--workers``) have it.  For a scheduler started elsewhere::

    dask scheduler --preload daskgmm.dashboard

(importing the preload registers the page before the dashboard starts).
"""

from __future__ import annotations

import html
import json
import logging
import time

from .events import TOPIC, fit_records

logger = logging.getLogger("daskgmm.cluster")

#: Where the page is served on the dashboard.
ROUTE = "/individual-daskgmm"
#: Fits listed in the table of recent fits.
RECENT_FITS = 20
#: A component whose weight falls below this is flagged as collapsing.
COLLAPSE_WEIGHT = 1e-3
#: The page's HTML: Bokeh's (which puts ``{% extends base %}`` before it), with the
#: data drawn when it was served in a ``<script type="application/json"
#: id="daskgmm-data">`` (for scripts and tests; the plots update over the websocket).
PAGE_TEMPLATE = """{% block postamble %}
<script type="application/json" id="daskgmm-data">{{ daskgmm_data }}</script>
{% endblock %}"""
_PALETTE = (
    "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf"
).split()


def register() -> bool:
    """Add the page to distributed's dashboard applications (before a scheduler's
    dashboard starts); False when the dashboard is unavailable (no Bokeh).

    Examples
    --------
    >>> from daskgmm.cluster.dashboard import ROUTE, register
    >>> register(), ROUTE               # schedulers started afterwards serve the page
    (True, '/individual-daskgmm')
    """
    try:
        from distributed.dashboard.scheduler import applications
    except ImportError:
        logger.debug("no Dask dashboard (Bokeh missing): no daskgmm page", exc_info=True)
        return False
    applications.setdefault(ROUTE, daskgmm_doc)
    return True


def dask_setup(scheduler) -> None:
    """The preload hook ``dask scheduler --preload daskgmm.dashboard`` calls.

    Examples
    --------
    Called by ``dask scheduler --preload daskgmm.dashboard``, not by hand:

    >>> import daskgmm.dashboard           # registers the page, as the preload does
    >>> daskgmm.dashboard.ROUTE
    '/individual-daskgmm'
    """
    logger.info("daskgmm dashboard page at %s", ROUTE)


def daskgmm_doc(scheduler, extra, doc) -> None:
    """Build the page for one browser session (distributed's application signature)."""
    page = FitsPage(scheduler)
    page.update()
    doc.add_periodic_callback(page.update, 500)
    doc.title = "Dask: daskgmm"
    doc.add_root(page.root)
    doc.template = PAGE_TEMPLATE
    data = json.dumps(page.snapshot()).replace("</", "<\\/")
    doc.template_variables["daskgmm_data"] = data


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


class FitsPage:
    """The page's plots, status and table, refreshed from the event log."""

    def __init__(self, scheduler):
        from bokeh.layouts import column, row
        from bokeh.models import ColumnDataSource, Div
        from bokeh.plotting import figure

        self.scheduler = scheduler
        self._seen = None
        empty = {"xs": [], "ys": [], "color": []}
        self.curves = ColumnDataSource({**empty, "init": []}, name="daskgmm-curves")
        self.weights = ColumnDataSource({**empty, "component": []}, name="daskgmm-weights")
        self.fit_rows = {k: [] for k in _TABLE}
        self.status = Div(text="No daskgmm fit has published records yet.", name="daskgmm-status")
        curve = figure(title="log-likelihood (lower bound) per init", height=300)
        curve.multi_line("xs", "ys", color="color", legend_field="init", source=self.curves)
        curve.xaxis.axis_label, curve.yaxis.axis_label = "iteration", "lower bound"
        curve.legend.location = "bottom_right"
        weights = figure(title="component weights (current init)", height=300)
        weights.multi_line("xs", "ys", color="color", source=self.weights)
        weights.xaxis.axis_label, weights.yaxis.axis_label = "iteration", "weight"
        # a table in a Div: Bokeh's DataTable kept its first rows in the browser
        self.table = Div(text=table_html(self.fit_rows), name="daskgmm-fits")
        self.root = column(
            self.status,
            row(curve, weights, sizing_mode="stretch_width"),
            self.table,
            sizing_mode="stretch_width",
        )

    def update(self) -> None:
        """Redraw from the scheduler's records when new ones have come."""
        events = self.scheduler.get_events(TOPIC)
        seen = (len(events), events[-1][0] if events else None)
        if seen == self._seen:
            return
        self._seen = seen
        fits = fit_records(events)
        if not fits:
            return
        ordered = sorted(fits.values(), key=lambda records: records[-1]["time"], reverse=True)
        current = ordered[0]
        self.curves.data = _curves(current)
        self.weights.data = _weights(current)
        self.status.text = status_html(current)
        self.fit_rows = _table(ordered[:RECENT_FITS])
        self.table.text = table_html(self.fit_rows)

    def snapshot(self) -> dict:
        """What the page shows now, as plain data."""
        return {
            "route": ROUTE,
            "status": self.status.text,
            "lower_bounds": dict(self.curves.data),
            "weights": dict(self.weights.data),
            "fits": self.fit_rows,
        }


_TABLE = {
    "fit": "fit",
    "estimator": "estimator",
    "inits": "inits",
    "iterations": "iterations",
    "lower_bound": "lower bound",
    "state": "state",
    "updated": "updated",
}


def _run_of(record: dict) -> tuple[str, int]:
    """Which run a record belongs to: its model (a grid fitted together has several)
    and its initialisation."""
    return str(record.get("model", "")), int(record["init"])


def _by_init(records: list[dict]) -> dict[tuple[str, int], list[dict]]:
    inits: dict[tuple[str, int], list[dict]] = {}
    for record in records:
        inits.setdefault(_run_of(record), []).append(record)
    return inits


def _curves(records: list[dict]) -> dict:
    """One line of lower bounds per initialisation (per model and initialisation
    when several models were fitted together)."""
    data = {"xs": [], "ys": [], "init": [], "color": []}
    runs_by_init = _by_init(records)
    several = len({model for model, _ in runs_by_init}) > 1
    for i, ((model, init), runs) in enumerate(sorted(runs_by_init.items())):
        points = [(r["iteration"], r["lower_bound"]) for r in runs if r["lower_bound"] is not None]
        data["xs"].append([x for x, _ in points])
        data["ys"].append([y for _, y in points])
        data["init"].append(f"{model} init {init + 1}" if several else f"init {init + 1}")
        data["color"].append(_color(i if several else init))
    return data


def _weights(records: list[dict]) -> dict:
    """One line per component over the iterations of the latest initialisation."""
    runs = _by_init(records)[_run_of(records[-1])]
    n_components = len(runs[-1]["weights"])
    runs = [r for r in runs if len(r["weights"]) == n_components]
    xs = [r["iteration"] for r in runs]
    return {
        "xs": [xs] * n_components,
        "ys": [[r["weights"][k] for r in runs] for k in range(n_components)],
        "component": [str(k) for k in range(n_components)],
        "color": [_color(k) for k in range(n_components)],
    }


def _table(fits: list[list[dict]]) -> dict:
    """A row per fit, the latest first."""
    data = {k: [] for k in _TABLE}
    for records in fits:
        last = records[-1]
        data["fit"].append(str(last["fit"]))
        data["estimator"].append(str(last["estimator"]))
        data["inits"].append(f"{last['init'] + 1}/{last['n_init']}")
        data["iterations"].append(len(records))
        data["lower_bound"].append(last["lower_bound"])
        data["state"].append("converged" if last["converged"] else "running or stopped")
        data["updated"].append(time.strftime("%H:%M:%S", time.localtime(last["time"])))
    return data


def table_html(rows: dict) -> str:
    """The recent fits as an HTML table."""
    cell = "<td style='padding:2px 10px'>{}</td>"
    head = "".join(
        f"<th style='text-align:left;padding:2px 10px'>{t}</th>" for t in _TABLE.values()
    )
    body = "".join(
        "<tr>" + "".join(cell.format(html.escape(str(v))) for v in values) + "</tr>"
        for values in zip(*rows.values(), strict=True)
    )
    return f"<b>Recent fits</b><table style='font-size:13px'><tr>{head}</tr>{body}</table>"


def _seconds(value) -> str:
    if value is None:
        return "?"
    minutes, seconds = divmod(float(value), 60)
    return f"{int(minutes)}m{seconds:04.1f}s" if minutes else f"{seconds:.1f}s"


def status_html(records: list[dict]) -> str:
    """Where the latest fit is, as HTML."""
    last = records[-1]
    runs = _by_init(records)[_run_of(last)]
    per_iter = sum(r["seconds"] for r in runs) / len(runs)
    gaps = [r["gap"] for r in runs if r["gap"] is not None]
    smallest = min(last["weights"]) if last["weights"] else None
    checkpoint = last.get("last_checkpoint")
    items = [
        f"fit <b>{html.escape(str(last['fit']))}</b> ({html.escape(str(last['estimator']))})",
        html.escape(str(last.get("model", ""))),
        f"init <b>{last['init'] + 1}/{last['n_init']}</b>",
        f"iteration <b>{last['iteration']}</b>",
        f"lower bound <b>{last['lower_bound']}</b>",
        f"change {last['change']:.3g}" if last["change"] is not None else "",
        f"{per_iter:.3g} s/iter",
        f"gap {1e3 * sum(gaps) / len(gaps):.1f} ms/iter" if gaps else "gap -",
        f"time left ~{_seconds(last['time_left'])} (at most {_seconds(last['time_left_at_most'])})",
        f"rows {last['rows']}, bad rows {last['bad_rows']}",
        f"smallest weight {smallest:.3g}" if smallest is not None else "",
        f"last checkpoint {_seconds(last['time'] - checkpoint)} before"
        if checkpoint
        else "no checkpoint",
    ]
    text = " &nbsp;|&nbsp; ".join(item for item in items if item)
    if smallest is not None and smallest < COLLAPSE_WEIGHT:
        text += f" &nbsp;<b style='color:#d62728'>a component is collapsing ({smallest:.2g})</b>"
    return f"<div style='font-size:14px'>{text}</div>"
