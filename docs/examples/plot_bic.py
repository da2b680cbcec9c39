"""
Choosing the number of components by BIC
========================================

The Bayesian information criterion trades the fit (the log-likelihood) against
the number of free parameters; the smallest BIC marks a good K.  Here the data
are drawn from a known mixture of four components in 5 dimensions, as a lazy
dask array of 5 chunks, and K runs from 1 to 7.  ``daskgmm select`` does the
same on the command line (``daskgmm select STORE --k 1..8 --plot bic.png``).
"""

import matplotlib.pyplot as plt
import numpy as np

from daskgmm import GaussianMixture
from daskgmm.datasets import make_mixture

X, truth = make_mixture(20_000, n_features=5, n_components=4, chunk_rows=4_000, separation=3, seed=1)
print(X)

ks = range(1, 8)
bic, aic = [], []
for k in ks:  # n_init=2: the better of two k-means starts
    gm = GaussianMixture(n_components=k, covariance_type="full", n_init=2, random_state=0).fit(X)
    bic.append(gm.bic(X))
    aic.append(gm.aic(X))
    print(f"K={k}: BIC {bic[-1]:12.1f}  AIC {aic[-1]:12.1f}  ({gm.n_iter_} iterations)")

best = list(ks)[int(np.argmin(bic))]
print("best K by BIC:", best)

# %%
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(ks, bic, "o-", label="BIC")
ax.plot(ks, aic, "s--", label="AIC")
ax.axvline(best, color="0.6", ls=":")
ax.set_xlabel("number of components K")
ax.set_ylabel("criterion (lower is better)")
ax.legend()
plt.show()
