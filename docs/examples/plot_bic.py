"""
Choosing the number of components by BIC
========================================

The Bayesian information criterion trades the fit (the log-likelihood) against
the number of free parameters; the smallest BIC marks a good K.  Here the data
are drawn from a known mixture of four components in 5 dimensions, as a lazy
dask array of 5 chunks, and K runs from 1 to 7 with three restarts each.

:func:`daskgmm.select_mixture` fits all 21 models together: each EM iteration
reads each chunk once for every model still iterating, and one more pass scores
them all.  ``daskgmm select`` does the same on the command line
(``daskgmm select STORE --k 1..8 --n-init 3 --plot bic.png``).
"""

import matplotlib.pyplot as plt
import numpy as np

from daskgmm import select_mixture
from daskgmm.datasets import make_mixture

X, truth = make_mixture(
    20_000, n_features=5, n_components=4, chunk_rows=4_000, separation=3, seed=1
)
print(X)

result = select_mixture(X, n_components=range(1, 8), n_init=3, random_state=0)
for row in result.table:
    if row["kept"]:  # the restart each K's estimator kept (the highest lower bound)
        print(
            f"K={row['n_components']}: BIC {row['bic']:12.1f}  AIC {row['aic']:12.1f}  "
            f"({row['n_iter']} iterations)"
        )
print("best K by BIC:", result.best_["n_components"])
print("one chunk's statistics for all 21 models:", result.memory["statistics_bytes"], "bytes")

# %%
# Each K's kept restart, and every restart's BIC above its K's best: the
# spread shows how much the start matters for each K.
ks = np.array([row["n_components"] for row in result.table])
bic = np.array([row["bic"] for row in result.table])
kept = np.array([row["kept"] for row in result.table])
aic = np.array([row["aic"] for row in result.table])
best = result.best_["n_components"]

fig, (ax, below) = plt.subplots(
    2, 1, figsize=(6, 5), sharex=True, height_ratios=(3, 1.3), layout="constrained"
)
ax.plot(ks[kept], bic[kept], "o-", label="BIC")
ax.plot(ks[kept], aic[kept], "s--", label="AIC")
ax.axvline(best, color="0.6", ls=":")
ax.set_ylabel("criterion (lower is better)")
ax.legend()
lowest = {k: bic[ks == k].min() for k in np.unique(ks)}
below.plot(ks, bic - np.array([lowest[k] for k in ks]), "o", alpha=0.5)
below.set_xlabel("number of components K")
below.set_ylabel("BIC above the\nbest restart")
plt.show()
