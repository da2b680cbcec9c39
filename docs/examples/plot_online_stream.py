"""
Online EM on a stream of chunks
===============================

Data that keep arriving — a day's readings at a time — need not be refitted
from scratch.  ``OnlineGaussianMixture.partial_fit`` updates a model with each
new block by stepwise EM: each mini-batch's sufficient statistics are blended
into the running ones, ``s <- (1 - g) s + g s_batch`` with ``g = (t + t0)^-kappa``.
Here 30 blocks of 2,000 rows arrive one after another; the model is compared
with batch EM fitted on everything at the end.
"""

import matplotlib.pyplot as plt
import numpy as np

from daskgmm import GaussianMixture, OnlineGaussianMixture
from daskgmm.datasets import random_mixture

truth = random_mixture(n_features=4, n_components=3, separation=4, seed=3)
rng = np.random.default_rng(0)


def block(n_rows):
    """A new block of readings from the same mixture."""
    ks = rng.choice(3, size=n_rows, p=truth.weights)
    return np.stack([rng.multivariate_normal(truth.means[k], truth.covariances[k]) for k in ks])


om = OnlineGaussianMixture(n_components=3, batch_size=1_000, random_state=0)
blocks = []
for day in range(30):
    new = block(2_000)
    blocks.append(new)
    om.partial_fit(new)  # numpy or dask; one update per 1,000 rows
print(f"{om.n_batches_seen_} mini-batches, {om.n_samples_seen_:,} rows seen")

# %%
# Against batch EM on all the data
# --------------------------------
everything = np.concatenate(blocks)
batch = GaussianMixture(n_components=3, random_state=0).fit(everything)
held_out = block(20_000)
print(f"held-out log-likelihood per sample: online {om.score(held_out):.4f}, "
      f"batch {batch.score(held_out):.4f}")
order = np.argsort(om.means_[:, 0])
print("online means (sorted):\n", np.round(om.means_[order], 2))
print("true means (sorted):\n", np.round(truth.means[np.argsort(truth.means[:, 0])], 2))

# %%
# ``log_likelihood_history_`` holds each mini-batch's mean log-likelihood under
# the model *before* it learnt from that batch: an honest, held-out-like curve.
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(np.arange(1, len(om.log_likelihood_history_) + 1), om.log_likelihood_history_, ".-")
ax.axhline(batch.score(held_out), color="0.5", ls=":", label="batch EM, held out")
ax.set_xlabel("mini-batch")
ax.set_ylabel("mean log-likelihood of the new batch")
ax.legend()
plt.show()
