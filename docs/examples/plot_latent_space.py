"""
=================================
The latent space and the manifold
=================================

A VAE with a 2-dimensional latent space can be drawn two ways:

- where the data land: each image's latent mean, coloured by its digit
  (:class:`~skvae.plotting.LatentSpaceDisplay`);
- what the decoder draws across the latent space: the images decoded at a grid
  of latent points, at the prior's quantiles as in Kingma & Welling's Figure 4
  (:class:`~skvae.plotting.LatentManifoldDisplay`).

:class:`~skvae.plotting.ReconstructionDisplay` shows what the model keeps of each
image, and ``sample`` draws new images from the prior. The same figures of the
main job, on MNIST, are on :doc:`/benchmarks/mnist`.
"""

# %%
# A 2-D model of the digits
# -------------------------
from sklearn.datasets import load_digits

from skvae import VAETransformer

X, y = load_digits(return_X_y=True)
X = X / 16
vae = VAETransformer(latent_dim=2, hidden_layer_sizes=(256,), random_state=0)
vae.fit(X)
print(f"decoder: {vae.likelihood_}, epochs: {vae.n_iter_}")

# %%
# Where the digits land
# ---------------------
from skvae.plotting import LatentSpaceDisplay

space = LatentSpaceDisplay.from_estimator(vae, X, y)

# %%
# What the decoder draws across the latent space
# ----------------------------------------------
# Up is +z along the second dimension. A grid of any other values is given with
# ``grid=``.
from skvae.plotting import LatentManifoldDisplay

manifold = LatentManifoldDisplay.from_estimator(vae, image_shape=(8, 8), n_per_side=10)

# %%
# Reconstructions, and new images
# -------------------------------
# The top row holds inputs, the bottom row their decoded latent means.
from skvae.plotting import ReconstructionDisplay

reconstructions = ReconstructionDisplay.from_estimator(
    vae, X, n_examples=8, image_shape=(8, 8)
)

# %%
# ``sample`` draws z from the prior N(0, I) and decodes it; the decoder's means
# are pixel intensities.
import matplotlib.pyplot as plt

new = vae.sample(8, random_state=0)
fig, axes = plt.subplots(1, 8, figsize=(8, 1.3))
for ax, image in zip(axes, new, strict=True):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()
_ = fig.suptitle("sample(8): new digits from the prior")

# %%
# Both panels of one figure
# -------------------------
# ``from_estimator`` and ``plot`` draw onto Axes of your own with ``ax=``.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
space = LatentSpaceDisplay.from_estimator(vae, X, y, ax=left)
manifold = LatentManifoldDisplay.from_estimator(
    vae, image_shape=(8, 8), n_per_side=10, ax=right
)
fig.tight_layout()
