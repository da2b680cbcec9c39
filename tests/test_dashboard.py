"""daskgmm's page on the Dask dashboard (issue 14): served by the real dashboard of a
LocalCluster and of a ``dask scheduler --preload daskgmm.dashboard`` process, and
drawn by a real headless browser during a fit.

The browser test needs Chromium (``apt-get install chromium``; ``.ci/run`` installs
it and sets ``DASKGMM_REQUIRE_BROWSER=1``, so that CI cannot skip it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from daskgmm import GaussianMixture
from daskgmm.cluster import close, connect, dashboard_link, start_local_cluster
from daskgmm.cluster.dashboard import ROUTE
from daskgmm.cluster.events import TOPIC, fit_records
from daskgmm.datasets import make_mixture

K = 3


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode()


def page_data(dashboard: str) -> tuple[int, dict]:
    """HTTP status and the data the page was served with."""
    status, text = _get(dashboard.rstrip("/") + ROUTE)
    found = re.search(r'id="daskgmm-data">(.*?)</script>', text, re.S)
    assert found, text[:2000]
    return status, json.loads(found.group(1))


def _data(n_rows: int = 6_000, seed: int = 4) -> np.ndarray:
    return make_mixture(n_rows, 3, K, chunk_rows=1_000, seed=seed)[0].compute()


def _check_page_shows(data: dict, model) -> None:
    """The page's curve of the best init is the fit's ``lower_bounds_``; its weights
    end at ``weights_``; the fit is in the table."""
    assert model.lower_bounds_ in data["lower_bounds"]["ys"]
    last_weights = [ys[-1] for ys in data["weights"]["ys"]]
    np.testing.assert_allclose(sorted(last_weights), sorted(model.weights_), rtol=1e-12)
    assert data["fits"]["estimator"][0] == "GaussianMixture"
    assert data["fits"]["fit"][0] in data["status"]


def test_the_page_on_a_local_clusters_dashboard():
    X = _data()
    with start_local_cluster(2, 1, memory_limit="1GiB") as client:
        base = dashboard_link(client).rpartition("/")[0]
        status, empty = page_data(base)
        assert status == 200 and "No daskgmm fit" in empty["status"]
        model = GaussianMixture(K, n_init=2, tol=1e-4, random_state=0).fit(X)
        status, data = page_data(base)
        assert status == 200
        _check_page_shows(data, model)
        assert data["lower_bounds"]["init"] == ["init 1", "init 2"]
        # listed where the dashboard's "More..." menu and the JupyterLab panel look
        _, listing = _get(base + "/individual-plots.json")
        assert ROUTE.lstrip("/") in listing
        status, _ = _get(base + "/events")
        assert status == 200


def _wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def test_the_preload_of_a_dask_scheduler_process(tmp_path):
    """``dask scheduler --preload daskgmm.dashboard`` and a ``dask worker`` process."""
    dask_cli = str(Path(sys.executable).parent / "dask")
    scheduler_file = tmp_path / "scheduler.json"
    common = ["--scheduler-file", str(scheduler_file)]
    preload = ["--preload", "daskgmm.dashboard"]
    scheduler = subprocess.Popen(
        [dask_cli, "scheduler", "--host", "127.0.0.1", "--port", "0", *preload, *common],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        _wait_for(scheduler_file)
        worker = subprocess.Popen(
            [dask_cli, "worker", "--nthreads", "1", "--host", "127.0.0.1", *common],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = connect(scheduler_file=str(scheduler_file), timeout=60)
        try:
            client.wait_for_workers(1, timeout=60)
            port = json.loads(scheduler_file.read_text())["services"]["dashboard"]
            model = GaussianMixture(K, tol=1e-4, random_state=0).fit(_data())
            status, data = page_data(f"http://127.0.0.1:{port}")
            assert status == 200
            _check_page_shows(data, model)
            (records,) = fit_records(client.get_events(TOPIC)).values()
            assert [r["lower_bound"] for r in records] == model.lower_bounds_
        finally:
            close(client)
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


def _browser() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("DASKGMM_REQUIRE_BROWSER"):
        pytest.fail("DASKGMM_REQUIRE_BROWSER is set but no chromium is installed")
    return found


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


#: What the browser reads from the drawn page: the status line's text, and how
#: many lines the two plots hold.
_DRAWN = """(() => {
  const doc = window.Bokeh && Bokeh.documents[0];
  if (!doc) return null;
  const lines = (name) => {
    const data = doc.get_model_by_name(name).data;
    return (data instanceof Map ? data.get("ys") : data.ys).length;
  };
  return JSON.stringify({
    status: doc.get_model_by_name("daskgmm-status").text,
    table: doc.get_model_by_name("daskgmm-fits").text,
    lines: [lines("daskgmm-curves"), lines("daskgmm-weights")],
  });
})()"""


def _current(drawn: dict) -> bool:
    """Whether the table of recent fits shows the init the status line shows (the
    table once kept its first rows while the rest of the page moved on)."""
    found = re.search(r"fit <b>(\w+)</b>.*init <b>(\d+/\d+)</b>", drawn["status"])
    row = re.search(r"<td[^>]*>(\w+)</td><td[^>]*>\w+</td><td[^>]*>([\d/]+)</td>", drawn["table"])
    return bool(found and row) and found.groups() == row.groups()


async def _cdp_screenshot(browser: str, url: str, wait: float) -> tuple[bytes, dict]:
    """Load ``url`` in headless Chromium, wait until Bokeh has drawn the page (and
    ``wait`` seconds more), then take a screenshot through the DevTools protocol."""
    import asyncio
    import base64

    from tornado.websocket import websocket_connect

    process = await asyncio.create_subprocess_exec(
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--window-size=1400,900", "--remote-debugging-port=0", "about:blank",
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while b"DevTools listening on" not in (line := await process.stderr.readline()):
            assert line, "chromium exited"
        port = line.split(b"127.0.0.1:")[1].split(b"/")[0].decode()
        targets = json.loads(_get(f"http://127.0.0.1:{port}/json/list")[1])
        page = next(t for t in targets if t["type"] == "page")
        socket = await websocket_connect(page["webSocketDebuggerUrl"], max_message_size=2**28)
        ids = iter(range(1, 10**6))

        async def call(method: str, **params):
            message_id = next(ids)
            await socket.write_message(
                json.dumps({"id": message_id, "method": method, "params": params})
            )
            while True:
                reply = json.loads(await socket.read_message())
                if reply.get("id") == message_id:
                    return reply.get("result", {})

        await call("Page.navigate", url=url)
        drawn, deadline = None, time.monotonic() + 60
        while drawn is None or not all(drawn["lines"]) or not _current(drawn):
            assert time.monotonic() < deadline, f"Bokeh never drew the page: {drawn}"
            await asyncio.sleep(0.25)
            value = (await call("Runtime.evaluate", expression=_DRAWN))["result"].get("value")
            drawn = json.loads(value) if value else None
        await asyncio.sleep(wait)
        shot = await call("Page.captureScreenshot", format="png")
        socket.close()
        return base64.b64decode(shot["data"]), drawn
    finally:
        process.kill()
        await process.wait()


def test_a_headless_browser_draws_the_page_during_a_fit(tmp_path):
    import asyncio

    browser = _browser()
    if browser is None:
        pytest.skip("no chromium (apt-get install chromium)")
    X = _data(60_000, seed=5)
    with start_local_cluster(2, 1, memory_limit="1GiB") as client:
        url = dashboard_link(client).rpartition("/")[0] + ROUTE
        done = threading.Event()

        def fit():
            with client.as_current(), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                while not done.is_set():  # fits until the screenshot is taken
                    GaussianMixture(
                        K, n_init=2, max_iter=40, tol=0.0, init_params="random", random_state=0
                    ).fit(X)

        fitting = threading.Thread(target=fit, daemon=True)
        fitting.start()
        try:
            deadline = time.monotonic() + 60
            while len(client.get_events(TOPIC)) < 10:
                assert time.monotonic() < deadline, "no records from the fit"
                time.sleep(0.1)
            png, drawn = asyncio.run(_cdp_screenshot(browser, url, wait=2.0))
            fits = fit_records(client.get_events(TOPIC))
        finally:
            done.set()
            fitting.join(timeout=120)
    if os.environ.get("DASKGMM_SCREENSHOT"):  # keep it to look at
        Path(os.environ["DASKGMM_SCREENSHOT"]).write_bytes(png)
    width, height = _png_size(png)
    assert width == 1400 and height > 500
    # the browser drew the fit's status and its curves (one per init so far, one
    # per component), not a blank page
    assert any(f"fit <b>{fit}</b>" in drawn["status"] for fit in fits)
    assert "lower bound" in drawn["status"] and "s/iter" in drawn["status"]
    assert drawn["lines"][1] == K and drawn["lines"][0] in (1, 2), drawn
    assert len(png) > 20_000, "the screenshot looks blank"
