"""
Colour segmentation of a photograph as an xarray cube
=====================================================

A photograph is a ``(y, x, band)`` cube: every pixel a sample, the three colour
bands its features.  Here scikit-learn's sample image of a Chinese temple
(``china.jpg``, shipped with scikit-learn, no download) becomes a chunked
:class:`xarray.DataArray`; a mixture of six components is fitted to its pixels
and ``predict`` returns a ``(y, x)`` DataArray of labels, on the image's own
coordinates.  Satellite images, with more bands and a time dimension, go the
same way.
"""

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from sklearn.datasets import load_sample_image

from daskgmm import GaussianMixture

photo = load_sample_image("china.jpg")[::2, ::2]  # (214, 320, 3) uint8, halved
cube = xr.DataArray(
    da.from_array(photo.astype("float32") / 255, chunks=(54, 320, 3)),
    dims=("y", "x", "band"),
    coords={"y": np.arange(photo.shape[0]), "x": np.arange(photo.shape[1]),
            "band": ["red", "green", "blue"]},
    name="reflectance",
)
print(cube)

# %%
# Fit on the pixels
# -----------------
# ``feature_dim="band"`` names the features' dimension (a dimension called
# ``band`` is also found without it); every other dimension is a sample
# dimension, flattened lazily into rows, one row chunk per block.
gm = GaussianMixture(n_components=6, covariance_type="full", random_state=0, feature_dim="band")
gm.fit(cube)
print(f"{gm.n_iter_} iterations, converged: {gm.converged_}")
print("feature names:", list(gm.feature_names_in_))

# %%
# Labels come back on the image's dimensions
# ------------------------------------------
labels = gm.predict(cube)  # DataArray (y, x), lazy
print(labels.dims, labels.shape)
segmented = gm.means_[labels.values]  # every pixel drawn in its component's mean colour

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
axes[0].imshow(photo)
axes[0].set_title("scikit-learn's china.jpg")
axes[1].imshow(labels, cmap="tab10", interpolation="nearest")
axes[1].set_title("component of each pixel")
axes[2].imshow(np.clip(segmented, 0, 1))
axes[2].set_title("each pixel in its component's mean colour")
for ax in axes:
    ax.set_axis_off()
plt.show()

# %%
# The bands are taken by name
# ---------------------------
# A cube with its bands in another order, or its dimensions transposed, is read
# by label in the fitted order, so the labels are the same.
shuffled = cube.sel(band=["blue", "red", "green"]).transpose("band", "x", "y")
same = gm.predict(shuffled).transpose("y", "x")
print("same labels:", bool((same == labels).all()))
