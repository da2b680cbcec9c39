"""
A LocalCluster, with the dashboard link
=======================================

The estimators compute with dask's current scheduler; once a
``distributed.Client`` exists, fits run on its cluster.
:func:`daskgmm.cluster.start_local_cluster` starts one on this machine (its
dashboard listens on 127.0.0.1 only) and prints nothing by itself; ask for the
dashboard link and open it in a browser while a fit runs: the task stream shows
``daskgmm_estep`` (one task per chunk), ``daskgmm_reduce`` (the merge tree) and
``daskgmm_params``.

In a script, start the cluster under ``if __name__ == "__main__":``: the workers
are new processes that import the script.
"""

from daskgmm import GaussianMixture
from daskgmm.cluster import dashboard_link, start_local_cluster
from daskgmm.datasets import make_mixture

if __name__ == "__main__":
    client = start_local_cluster(n_workers=2, threads_per_worker=1, memory_limit="1GiB")
    print("dashboard:", dashboard_link(client))  # http://127.0.0.1:PORT/status
    X, truth = make_mixture(100_000, n_features=8, n_components=4, chunk_rows=12_500, seed=0)
    gm = GaussianMixture(n_components=4, random_state=0).fit(X)
    print(f"fitted on the cluster: {gm.n_iter_} iterations, "
          f"mean log-likelihood {gm.lower_bound_:.4f}")
    print("workers:", len(client.scheduler_info()["workers"]))
    client.close()
