"""Per-iteration records of EM fits (issue 14): distributed's event log, the logger,
the progress line, and in-memory rows kept on the workers.

Real parts: a LocalCluster of two worker processes from
:func:`daskgmm.cluster.start_local_cluster`, real fits, the scheduler's own event
log read back with ``client.get_events``.
"""

from __future__ import annotations

import io
import logging
import warnings

import dask
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from daskgmm import GaussianMixture, OnlineGaussianMixture
from daskgmm.cluster import close, start_local_cluster
from daskgmm.cluster.events import ACTION, RECORD_KEYS, TOPIC, fit_records
from daskgmm.datasets import make_mixture
from daskgmm.engine.passes import _literal_bytes, held_rows
from daskgmm.engine.rows import prepare_rows

N, D, K = 6_000, 3, 3


@pytest.fixture(scope="module")
def data():
    X, truth = make_mixture(N, D, K, chunk_rows=1_000, seed=3)
    return X.compute(), truth


@pytest.fixture(scope="module")
def client():
    client = start_local_cluster(2, 1, memory_limit="1GiB")
    try:
        yield client
    finally:
        close(client)


def _records(client, estimator=None) -> dict[str, list[dict]]:
    fits = fit_records(client.get_events(TOPIC))
    return {
        fit: records
        for fit, records in fits.items()
        if estimator is None or records[0]["estimator"] == estimator
    }


def _new_fit(client, before: dict) -> list[dict]:
    """The records of the one fit published since ``before``."""
    new = {fit: r for fit, r in _records(client).items() if fit not in before}
    assert len(new) == 1, new.keys()
    return next(iter(new.values()))


def test_a_cluster_fit_publishes_one_record_per_iteration(client, data):
    X, _ = data
    before = _records(client)
    model = GaussianMixture(K, n_init=2, max_iter=30, tol=1e-4, random_state=0).fit(X)
    records = _new_fit(client, before)
    assert all(set(r) == set(RECORD_KEYS) and r["action"] == ACTION for r in records)
    by_init = {}
    for r in records:
        by_init.setdefault(r["init"], []).append(r)
    assert sorted(by_init) == [0, 1]
    # the records' lower bounds are the fit's, init by init; the best is kept
    curves = {i: [r["lower_bound"] for r in rs] for i, rs in by_init.items()}
    assert model.lower_bounds_ in curves.values()
    for rs in by_init.values():
        assert [r["iteration"] for r in rs] == list(range(1, len(rs) + 1))
        assert rs[0]["gap"] is None and all(r["gap"] >= 0 for r in rs[1:])
        assert rs[0]["change"] is None and rs[-1]["converged"]
        assert all(r["rows"] == N and r["bad_rows"] == 0 for r in rs)
        assert all(r["seconds"] > 0 and r["time_left_at_most"] >= 0 for r in rs)
    last = records[-1]
    np.testing.assert_allclose(last["weights"], model.weights_, rtol=0, atol=0)
    assert last["last_checkpoint"] is None and last["n_init"] == 2
    # distributed's "all" topic too: the dashboard's /events page draws it
    assert any(
        isinstance(m, dict) and m.get("fit") == last["fit"] for _, m in client.get_events("all")
    )


def test_a_grid_fitted_together_is_one_fit_with_a_record_per_model_and_pass(client, data):
    from daskgmm import select_mixture
    from daskgmm.cluster.dashboard import _curves

    X, _ = data
    before = _records(client)
    result = select_mixture(X, [2, 3], n_init=2, random_state=0)
    records = _new_fit(client, before)
    runs = {}
    for r in records:
        runs.setdefault((r["model"], r["init"]), []).append(r)
    assert sorted(runs) == [("K=2 full", 0), ("K=2 full", 1), ("K=3 full", 0), ("K=3 full", 1)]
    for row in result.table:
        mine = runs[(f"K={row['n_components']} full", row["restart"])]
        assert len(mine) == row["n_iter"] and mine[-1]["lower_bound"] == row["lower_bound"]
    curves = _curves(records)
    assert curves["init"] == ["K=2 full init 1", "K=2 full init 2", "K=3 full init 1",
                              "K=3 full init 2"]  # fmt: skip


def test_records_count_bad_rows_and_checkpoints(client, data, tmp_path):
    X, _ = data
    X = X.copy()
    X[[5, 1_500, 4_999], 0] = np.nan
    before = _records(client)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        GaussianMixture(K, max_iter=3, nan_policy="omit", random_state=0).fit(
            X, checkpoint=tmp_path / "ckpt"
        )
    records = _new_fit(client, before)
    assert [r["bad_rows"] for r in records] == [3, 3, 3]
    assert all(r["rows"] == N for r in records)
    stamps = [r["last_checkpoint"] for r in records]
    assert all(s is not None for s in stamps) and stamps == sorted(stamps)


def test_an_online_fit_publishes_its_mini_batches(client, data):
    X, _ = data
    before = _records(client)
    model = OnlineGaussianMixture(K, batch_size=2_000, max_passes=2, random_state=0).fit(X)
    records = _new_fit(client, before)
    assert {r["estimator"] for r in records} == {"OnlineGaussianMixture"}
    assert len(records) == model.n_batches_seen_
    assert all(r["rows"] == 2_000 for r in records)
    assert records[-1]["lower_bound"] == model.lower_bound_
    np.testing.assert_array_equal(records[-1]["weights"], model.weights_)
    assert records[-1]["time_left_at_most"] == 0  # the schedule's end is known


def test_a_bayesian_fit_publishes_its_posterior_weights(client, data):
    import daskgmm

    if not hasattr(daskgmm, "BayesianGaussianMixture"):
        pytest.skip("no BayesianGaussianMixture in this tree")
    X, _ = data
    before = _records(client)
    model = daskgmm.BayesianGaussianMixture(n_components=K, max_iter=50, random_state=0).fit(X)
    records = _new_fit(client, before)
    assert [r["lower_bound"] for r in records] == model.lower_bounds_
    np.testing.assert_allclose(records[-1]["weights"], model.weights_, rtol=1e-12)


def test_publishing_can_be_switched_off(client, data):
    X, _ = data
    before = _records(client)
    with dask.config.set({"daskgmm.events": False}), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        GaussianMixture(K, max_iter=2, random_state=0).fit(X)
    assert _records(client).keys() == before.keys()


def test_in_memory_rows_are_sent_to_the_workers_once(client, data):
    """Each pass's graph names the rows kept on the workers instead of carrying them,
    and the fit is the one the threaded scheduler makes."""
    X, _ = data
    rows = prepare_rows(X, chunk_rows=1_000)
    assert _literal_bytes(rows.blocks) == X.nbytes
    with held_rows(rows) as held:
        assert held is not rows and _literal_bytes(held.blocks) == 0
        assert len(held.blocks) == rows.n_chunks
    on_cluster = GaussianMixture(K, max_iter=20, random_state=0).fit(X)
    with dask.config.set(scheduler="threads"):
        with held_rows(rows) as local:
            assert local is rows  # no cluster: nothing to hold
        threaded = GaussianMixture(K, max_iter=20, random_state=0).fit(X)
    np.testing.assert_allclose(on_cluster.lower_bounds_, threaded.lower_bounds_, rtol=1e-12)


def test_threaded_fits_log_their_records_and_show_them_on_the_progress_line(
    data, caplog, monkeypatch
):
    X, _ = data
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    with (
        dask.config.set(scheduler="threads"),
        caplog.at_level(logging.DEBUG, logger="daskgmm.mixture"),
    ):
        model = GaussianMixture(K, max_iter=30, random_state=0, progress=True).fit(X)
    records = [r.daskgmm_record for r in caplog.records if hasattr(r, "daskgmm_record")]
    assert [r["lower_bound"] for r in records] == model.lower_bounds_
    assert len({r["fit"] for r in records}) == 1
    assert f"fit {records[0]['fit']} K=3 full  init 1/1" in caplog.text
    assert f"min weight {min(model.weights_):.2g}" in stream.getvalue()
