"""
Iris: fit, ellipses and the log-likelihood per iteration
========================================================

The classic first mixture: the 150 Iris flowers, four measurements each, fitted
with three full-covariance components.  ``daskgmm.GaussianMixture`` takes the
same parameters as :class:`sklearn.mixture.GaussianMixture` and gives the same
attributes; from the same start the two agree to about 1e-7.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from daskgmm import GaussianMixture
from daskgmm.plotting import ellipse

iris = load_iris()
X, species = iris.data, iris.target

gm = GaussianMixture(n_components=3, covariance_type="full", tol=1e-6, random_state=0)
gm.fit(X)
print(f"converged: {gm.converged_} after {gm.n_iter_} iterations")
print("weights:", np.round(gm.weights_, 3))

# %%
# The same fit with scikit-learn, from the same start
# ---------------------------------------------------
# ``means_init`` etc. fix the start, so both libraries run the same EM iterations.
ref = SklearnGaussianMixture(
    n_components=3,
    tol=1e-6,
    weights_init=gm.weights_,
    means_init=gm.means_,
    precisions_init=gm.precisions_,
    max_iter=5,
).fit(X)
ours = GaussianMixture(
    n_components=3,
    tol=1e-6,
    weights_init=gm.weights_,
    means_init=gm.means_,
    precisions_init=gm.precisions_,
    max_iter=5,
).fit(X)
print("largest relative difference of the means:",
      f"{np.max(np.abs(ours.means_ - ref.means_) / np.abs(ref.means_)):.1e}")

# %%
# Components and their 1-, 2- and 3-sigma ellipses
# ------------------------------------------------
# Petal length against petal width (features 2 and 3): each component's
# covariance restricted to those two features gives its ellipses.
labels = gm.predict(X)
dims = [2, 3]
fig, left = plt.subplots(figsize=(6, 4.5), layout="constrained")
left.scatter(X[:, dims[0]], X[:, dims[1]], c=labels, s=12, cmap="viridis")
for k in range(gm.n_components):
    mean2 = gm.means_[k, dims]
    cov2 = gm.covariances_[k][np.ix_(dims, dims)]
    for radius in (1, 2, 3):
        points = ellipse(mean2, cov2, radius)  # (100, 2)
        left.plot(points[:, 0], points[:, 1], color="k", lw=0.8, alpha=1.0 / radius)
left.set_xlabel(iris.feature_names[dims[0]])
left.set_ylabel(iris.feature_names[dims[1]])
left.set_title("three components, coloured by predicted label")
plt.show()

# %%
# The log-likelihood per iteration
# --------------------------------
# ``lower_bounds_`` holds the mean log-likelihood of every EM iteration (one
# pass over the data each); the fit stops when it changes by less than ``tol``.
fig, right = plt.subplots(figsize=(6, 3.5), layout="constrained")
right.plot(np.arange(1, gm.n_iter_ + 1), gm.lower_bounds_, "o-")
right.set_xlabel("EM iteration")
right.set_ylabel("mean log-likelihood per sample")
right.set_title("convergence")
plt.show()

# %%
# How the components match the species:
agreement = np.array([[np.sum((labels == k) & (species == s)) for s in range(3)]
                      for k in range(3)])
print("rows: components, columns:", ", ".join(iris.target_names))
print(agreement)
