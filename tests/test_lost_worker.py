"""A fit survives a worker of its LocalCluster that dies, and a nanny that restarts it."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import numpy as np
import pytest

from daskgmm import GaussianMixture
from daskgmm.cluster import start_local_cluster
from daskgmm.datasets import write_table

N_ROWS, N_FEATURES, K, CHUNK = 40_000, 4, 3, 2_000
MAX_ITER = 12


class _Iterations(logging.Handler):
    """Counts the EM loop's per-iteration log records."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0
        self.reached = threading.Event()

    def emit(self, record):
        if "Iteration" in record.getMessage():
            self.count += 1
            if self.count >= 2:
                self.reached.set()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("lost") / "rows.zarr"
    write_table(str(path), N_ROWS, N_FEATURES, K, CHUNK, dtype="float64", seed=3)
    return str(path)


def _model(**kwargs):
    rng = np.random.default_rng(0)
    means = rng.normal(scale=3, size=(K, N_FEATURES))
    return GaussianMixture(
        K, tol=0, max_iter=MAX_ITER, means_init=means, random_state=0, verbose_interval=1, **kwargs
    )


def test_local_cluster_restarts_a_killed_worker_and_the_fit_goes_on(store):
    """A worker killed mid-fit (SIGKILL) is restarted by its nanny, its chunks are
    computed again, and the fit ends with the result of an undisturbed fit.

    With ``scheduler=client`` put into dask's configuration, the nanny could not
    start the new worker process (it sends the configuration of the moment, and a
    client cannot be pickled): the fit waited forever.
    """
    reference = _model().fit(store)
    iterations = _Iterations()
    logger = logging.getLogger("daskgmm.mixture")
    logger.addHandler(iterations)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    result: dict = {}
    try:
        with start_local_cluster(2, 1, memory_limit="1GiB") as client:
            victim = sorted(client.run(os.getpid).items())[0][1]
            model = _model(scheduler=client)
            fitting = threading.Thread(target=lambda: result.update(model=model.fit(store)))
            fitting.start()
            assert iterations.reached.wait(120), "the fit never reached its second iteration"
            os.kill(victim, signal.SIGKILL)
            fitting.join(180)
            assert not fitting.is_alive(), "the fit hung after a worker was killed"
            deadline = time.monotonic() + 30
            while len(client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            pids = set(client.run(os.getpid).values())
            assert len(pids) == 2 and victim not in pids  # the nanny restarted it
    finally:
        logger.removeHandler(iterations)
        logger.setLevel(old_level)
    fitted = result["model"]
    assert fitted.n_iter_ == MAX_ITER
    np.testing.assert_allclose(fitted.means_, reference.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fitted.covariances_, reference.covariances_, rtol=1e-10)
    assert fitted.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-12)
