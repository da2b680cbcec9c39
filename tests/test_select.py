"""Many models, one pass: select_mixture and GaussianMixture(n_init) fit together.

Reads are counted behind the dask array (:class:`_support.CountingArray`); each
model of a grid is compared with the same model fitted alone.
"""

from __future__ import annotations

import tracemalloc

import dask.array as da
import numpy as np
import pytest
from _support import ComputeCounter, counted_dask_array

from daskgmm import (
    BayesianGaussianMixture,
    GaussianMixture,
    OnlineGaussianMixture,
    select_mixture,
)
from daskgmm.engine import passes
from daskgmm.engine.passes import pass_graph_many
from daskgmm.engine.rows import prepare_rows
from daskgmm.estimators import em
from daskgmm.kernels import estep
from daskgmm.kernels.density import LogDensity
from daskgmm.kernels.responsibilities import EStep

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CENTRES = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 1.0], [0.0, 6.0, -1.0]])


def blobs(n_per=400, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([c + rng.standard_normal((n_per, 3)) for c in CENTRES])
    return X[rng.permutation(len(X))]


def _same_fit(a, b, rtol=1e-10):
    """Two fitted estimators are the same model to ``rtol``."""
    assert (a.n_iter_, a.converged_) == (b.n_iter_, b.converged_)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=rtol, atol=1e-14)
    np.testing.assert_allclose(a.means_, b.means_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=rtol, atol=1e-12)


# --------------------------------------------------------------------------- #
# one read per chunk per pass, whatever the number of models
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("init_params", ["random", "kmeans"])
def test_a_grid_reads_each_chunk_once_per_pass_whatever_its_size(init_params):
    X = blobs()
    max_iter = 4
    template = GaussianMixture(tol=0.0, max_iter=max_iter, init_params=init_params)
    reads = {}
    for name, ks, n_init in (("one model", [3], 1), ("24 models", [1, 2, 3, 4], 3)):
        counting, dX = counted_dask_array(X, chunk_rows=150)
        n_chunks = dX.numblocks[0]
        with ComputeCounter() as computes:
            result = select_mixture(
                dX,
                n_components=ks,
                covariance_type=["full", "diag"],
                n_init=n_init,
                estimator=template,
                random_state=0,
            )
        assert len(result.table) == len(ks) * 2 * n_init
        assert all(row["n_iter"] == max_iter for row in result.table)
        # the initialisation's pass (the random draws, or the sample's gather),
        # max_iter EM passes, one scoring pass
        assert computes.count == 1 + max_iter + 1
        reads[name] = len(counting.row_reads())
        assert reads[name] == n_chunks * (1 + max_iter + 1), name
    assert reads["one model"] == reads["24 models"]


def test_n_init_restarts_share_their_passes():
    X = blobs()
    counting, dX = counted_dask_array(X, chunk_rows=300)
    gm = GaussianMixture(3, n_init=5, tol=0.0, max_iter=6, init_params="random", random_state=1)
    with ComputeCounter() as computes:
        gm.fit(dX)
    assert computes.count == 1 + 6  # five random starts in one pass, then 6 shared passes
    assert len(counting.row_reads()) == dX.numblocks[0] * (1 + 6)


# --------------------------------------------------------------------------- #
# the same models as fitting alone
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("init_params", "sample"), [("random", 100_000), ("k-means++", 100_000), ("kmeans", 500)]
)
def test_every_model_of_the_grid_equals_it_fitted_alone(init_params, sample):
    """With a sample smaller than the rows each model draws it from its own random
    state, as alone; equal draws share one gather."""
    X = da.from_array(blobs(seed=1), chunks=(250, 3))
    template = GaussianMixture(
        tol=1e-6, max_iter=60, init_params=init_params, init_sample_size=sample
    )
    types = ["full", "tied", "diag", "spherical"]
    result = select_mixture(
        X, [1, 2, 3, 4], covariance_type=types, n_init=2, estimator=template, random_state=5
    )
    assert result.random_state == 5
    for (k, c), fitted in result.estimators.items():
        alone = GaussianMixture(
            k, covariance_type=c, n_init=2, tol=1e-6, max_iter=60, init_params=init_params,
            init_sample_size=sample, random_state=5,
        ).fit(X)  # fmt: skip
        _same_fit(fitted, alone)
        kept = [r for r in result.table if (r["n_components"], r["covariance_type"]) == (k, c)]
        assert [r["restart"] for r in kept] == [0, 1]
        (row,) = [r for r in kept if r["kept"]]
        assert row["lower_bound"] == pytest.approx(alone.lower_bound_, rel=1e-10)
        assert row["bic"] == pytest.approx(alone.bic(X), rel=1e-10)
        assert row["aic"] == pytest.approx(alone.aic(X), rel=1e-10)
        assert row["mean_log_likelihood"] == pytest.approx(alone.score(X), rel=1e-10)
    assert result.best_["n_components"] == 3
    assert result.best_estimator_ is result.estimators[(3, result.best_["covariance_type"])]


def test_each_restart_equals_its_initial_parameters_fitted_alone():
    X = da.from_array(blobs(seed=2), chunks=(300, 3))
    result = select_mixture(X, [4], n_init=3, estimator=GaussianMixture(tol=1e-8), random_state=3)
    for row in result.table:
        # restart r starts where the r-th initialisation of the same seed starts
        start = GaussianMixture(4, n_init=row["restart"] + 1, max_iter=0, random_state=3).fit(X)
        alone = GaussianMixture(
            4, tol=1e-8, weights_init=start.weights_, means_init=start.means_,
            precisions_init=start.precisions_,
        ).fit(X)  # fmt: skip
        assert (row["n_iter"], row["converged"]) == (alone.n_iter_, alone.converged_)
        assert row["lower_bound"] == pytest.approx(alone.lower_bound_, rel=1e-10)
        assert row["bic"] == pytest.approx(alone.bic(X), rel=1e-10)
    # the restarts differ, and the estimator kept the highest lower bound
    bounds = [row["lower_bound"] for row in result.table]
    assert len(set(bounds)) > 1
    assert result.table[int(np.argmax(bounds))]["kept"]


def test_a_bayesian_grid_equals_its_models_fitted_alone():
    X = da.from_array(blobs(seed=3), chunks=(300, 3))
    template = BayesianGaussianMixture(tol=1e-6, max_iter=80, init_params="random")
    result = select_mixture(
        X, [2, 5], covariance_type=["full", "diag"], n_init=2, estimator=template, random_state=0
    )
    for (k, c), fitted in result.estimators.items():
        alone = BayesianGaussianMixture(
            k, covariance_type=c, n_init=2, tol=1e-6, max_iter=80, init_params="random",
            random_state=0,
        ).fit(X)  # fmt: skip
        _same_fit(fitted, alone)
        np.testing.assert_allclose(
            fitted.weight_concentration_, alone.weight_concentration_, rtol=1e-10
        )
        (row,) = [r for r in result.table if r["kept"] and r["n_components"] == k
                  and r["covariance_type"] == c]  # fmt: skip
        assert row["lower_bound"] == pytest.approx(alone.lower_bound_, rel=1e-10)
        assert row["bic"] == pytest.approx(alone.bic(X), rel=1e-10)


# --------------------------------------------------------------------------- #
# converged models drop out
# --------------------------------------------------------------------------- #
def test_a_model_that_converges_early_drops_out_and_the_others_are_unchanged(monkeypatch):
    X = da.from_array(blobs(seed=4), chunks=(300, 3))
    models_per_pass = []
    real = em.run_pass_many

    def counting(rows, responsibilities, *args, **kwargs):
        models_per_pass.append(len(responsibilities))
        return real(rows, responsibilities, *args, **kwargs)

    template = GaussianMixture(tol=1e-8, max_iter=200, init_params="random")
    monkeypatch.setattr(em, "run_pass_many", counting)
    with_early = select_mixture(X, [1, 3, 4], estimator=template, random_state=2)
    em_passes = models_per_pass[:]
    models_per_pass.clear()
    without = select_mixture(X, [3, 4], estimator=template, random_state=2)

    n_iter = {row["n_components"]: row["n_iter"] for row in with_early.table}
    assert n_iter[1] == 2 < min(n_iter[3], n_iter[4])  # one component converges at once
    # every pass computed exactly the models still iterating
    assert em_passes == [
        sum(1 for n in n_iter.values() if n >= step) for step in range(1, max(n_iter.values()) + 1)
    ]
    for k in (3, 4):
        _same_fit(with_early.estimators[(k, "full")], without.estimators[(k, "full")], rtol=0)


# --------------------------------------------------------------------------- #
# bounded memory: per-chunk temporaries are one model's
# --------------------------------------------------------------------------- #
def test_per_chunk_temporaries_do_not_grow_with_the_number_of_models(monkeypatch):
    monkeypatch.setattr(estep, "USE_COMPILED", False)  # numpy kernels: traced allocations
    rng = np.random.default_rng(0)
    block = rng.standard_normal((20_000, 8))
    eye = np.broadcast_to(np.eye(8), (6, 8, 8)).copy()
    model = EStep(LogDensity(rng.standard_normal((6, 8)), eye, "full", np.full(6, 1 / 6)))
    peaks = {}
    for n_models in (1, 40):
        tracemalloc.start()
        stats = passes._chunk_stats_of(block, ([model] * n_models, (0,)), None, 0, 0, n_models)
        peaks[n_models] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(stats) == n_models
    # 40 models: one model's temporaries plus 39 more sets of statistics (~5 KB each)
    assert peaks[40] < peaks[1] + 40 * 8 * (6 + 6 * 8 + 6 * 64) * 2
    assert peaks[1] > 20_000 * 6 * 8  # the probe sees the temporaries (a rows x K array)


def test_models_split_into_groups_when_chunks_are_fewer_than_threads():
    X = blobs()
    rows = prepare_rows(da.from_array(X, chunks=(600, 3)))
    rng = np.random.default_rng(1)
    models = [
        EStep(LogDensity(rng.normal(size=(k, 3)) * 4, np.stack([np.eye(3)] * k), "full",
                         np.full(k, 1 / k)))
        for k in (1, 2, 3, 4, 5, 6)
    ]  # fmt: skip
    alone = [pass_graph_many(rows, [m], threads=1).compute()[0] for m in models]
    graph = pass_graph_many(rows, models, threads=8)
    tasks = [k for k in dict(graph.dask) if isinstance(k, tuple) and "daskgmm_estep" in k[0]]
    groups = passes.model_groups(models, 3, 2 * 8 // rows.n_chunks)
    assert [i for group in groups for i in group] == list(range(len(models)))
    assert 1 < len(groups) <= len(models)
    assert len(tasks) == rows.n_chunks * len(groups)
    together = graph.compute()
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a.means, b.means)
        np.testing.assert_array_equal(a.m2, b.m2)
        assert a.log_likelihood == b.log_likelihood


# --------------------------------------------------------------------------- #
# checkpoints, and bad grids
# --------------------------------------------------------------------------- #
def test_a_selection_resumes_from_its_checkpoints(tmp_path, monkeypatch):
    from daskgmm.estimators import joint

    X = da.from_array(blobs(seed=5), chunks=(300, 3))
    kwargs = dict(
        n_components=[1, 3],
        n_init=2,
        estimator=GaussianMixture(tol=1e-10),
        random_state=0,
        checkpoint=tmp_path / "ck",
    )
    real_save, saves = joint._save, []
    monkeypatch.setattr(joint, "_save", lambda f: (saves.append(f.estimator.n_components),
                                                   real_save(f)))  # fmt: skip
    first = select_mixture(X, **kwargs)
    n_iter = {k: max(r["n_iter"] for r in first.table if r["n_components"] == k) for k in (1, 3)}
    # a model's checkpoint is written after each pass that moved it, and at the end
    assert n_iter[1] < n_iter[3]
    assert (saves.count(1), saves.count(3)) == (n_iter[1] + 1, n_iter[3] + 1)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["full-k1", "full-k3"]
    with ComputeCounter() as computes:
        again = select_mixture(X, **kwargs)
    assert computes.count == 1  # the scoring pass only: every run had finished
    assert again.table == [{**row, "seconds": 0.0} for row in first.table]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_components": []}, "n_components is empty"),
        ({"n_components": [0, 2]}, "integers >= 1"),
        ({"n_components": [2.5]}, "integers >= 1"),
        ({"n_components": [2, 2]}, "lists a value twice"),
        ({"n_components": [2, 5000]}, "the data have 1200 rows"),
        ({"covariance_type": []}, "covariance_type is empty"),
        ({"covariance_type": ["full", "diagonal"]}, "Unknown covariance_type"),
        ({"criterion": "aicc"}, "criterion must be 'bic' or 'aic'"),
        ({"n_init": 0}, "n_init must be an integer >= 1"),
        ({"estimator": OnlineGaussianMixture()}, "Online estimators"),
        ({"estimator": GaussianMixture(tol=-1)}, "tol"),
    ],
)
def test_bad_grids_are_refused_before_any_pass(kwargs, message, tmp_path):
    X = da.from_array(blobs(), chunks=(300, 3))
    with ComputeCounter() as computes, pytest.raises(ValueError, match=message):
        select_mixture(X, **{"n_components": [1, 2], **kwargs}, checkpoint=tmp_path / "ck")
    assert computes.count == 0
    assert not (tmp_path / "ck").exists()


def test_a_model_whose_covariance_collapses_stops_alone_and_the_grid_goes_on():
    """With reg_covar=0, components of K >= 3 collapse onto 5 repeated rows: those
    runs stop with the error fitting them alone raises, and the rest is unchanged."""
    from sklearn.exceptions import NotFittedError

    from daskgmm.errors import SingularCovarianceError

    rng = np.random.default_rng(0)
    X = np.vstack([c + rng.standard_normal((200, 2)) for c in ([0, 0], [8, 0], [0, 8])])
    X = da.from_array(np.vstack([X, np.repeat([[20.0, 20.0]], 5, axis=0)]), chunks=(200, 2))
    params = dict(reg_covar=0.0, init_params="random", max_iter=200)
    with np.errstate(all="ignore"):
        result = select_mixture(
            X, [2, 3], n_init=2, estimator=GaussianMixture(**params), random_state=0
        )
        alone = GaussianMixture(2, n_init=2, random_state=0, **params).fit(X)
        with pytest.raises(SingularCovarianceError, match="ill-defined empirical covariance"):
            GaussianMixture(3, n_init=2, random_state=0, **params).fit(X)
    failed = [row for row in result.table if row["n_components"] == 3]
    assert all(row["error"].startswith("SingularCovarianceError at iteration") for row in failed)
    assert all(np.isnan(row["bic"]) and not row["kept"] for row in failed)
    with pytest.raises(NotFittedError):
        result.estimators[(3, "full")].predict(X)
    assert all(row["error"] is None for row in result.table if row["n_components"] == 2)
    _same_fit(result.estimators[(2, "full")], alone, rtol=0)
    assert result.best_estimator_ is result.estimators[(2, "full")]


def test_a_checkpoint_that_is_a_file_is_refused_before_any_pass(tmp_path):
    X = da.from_array(blobs(), chunks=(300, 3))
    (tmp_path / "ck").write_text("not a directory")
    with (
        ComputeCounter() as computes,
        pytest.raises(ValueError, match="is a file: give a directory"),
    ):
        select_mixture(X, [1, 2], checkpoint=tmp_path / "ck")
    assert computes.count == 0
    assert (tmp_path / "ck").read_text() == "not a directory"
