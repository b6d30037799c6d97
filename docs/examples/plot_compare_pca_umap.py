"""
=====================================
The VAE against PCA (and UMAP) in 2-D
=====================================

Three ways to put the 8x8 digits in two dimensions: PCA (linear), a VAE
(:class:`~skvae.VAETransformer`, a nonlinear generative model) and, where
umap-learn is installed, UMAP (a neighbourhood embedding). Each is fitted on
training images and judged on held-out ones by a 5-nearest-neighbour classifier in
the embedding; PCA and the VAE also by how well they reconstruct the images.

What to expect (:doc:`/benchmarks/reducers`): UMAP keeps neighbourhoods far better
in 2-D; the VAE reconstructs images better than PCA and, unlike UMAP, gives a
likelihood per row, new samples and a decoder for any latent point.
"""

# %%
# The data
# --------
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# The reducers
# ------------
# UMAP comes with the ``bench`` extra (``umap-learn``); without it the comparison
# is of the other two.
from sklearn.decomposition import PCA

from skvae import VAETransformer

reducers = {
    "PCA": PCA(n_components=2),
    "VAE": VAETransformer(latent_dim=2, random_state=0),
}
try:
    from umap import UMAP
except ImportError:
    print("umap-learn is not installed: comparing PCA and the VAE only")
else:
    reducers["UMAP"] = UMAP(n_components=2, random_state=0, n_jobs=1)

# %%
# Fit, embed the held-out images, and score
# -----------------------------------------
import time

from sklearn.neighbors import KNeighborsClassifier

embeddings = {}
for name, reducer in reducers.items():
    start = time.perf_counter()
    reducer.fit(X_train)
    seconds = time.perf_counter() - start
    Z_train, Z_test = reducer.transform(X_train), reducer.transform(X_test)
    embeddings[name] = Z_test
    knn = KNeighborsClassifier(5).fit(Z_train, y_train).score(Z_test, y_test)
    line = f"{name:4s}: 5-NN accuracy {knn:.3f}, fit {seconds:.1f} s"
    if hasattr(reducer, "inverse_transform") and name != "UMAP":
        X_hat = reducer.inverse_transform(Z_test)
        line += f", reconstruction RMSE {np.sqrt(np.mean((X_hat - X_test) ** 2)):.3f}"
    print(line)

# %%
# The held-out images in each embedding
# -------------------------------------
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, len(embeddings), figsize=(4 * len(embeddings), 4))
for ax, (name, Z) in zip(axes, embeddings.items(), strict=True):
    points = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=8)
    ax.set_title(name)
    ax.set_xticks([])
    ax.set_yticks([])
fig.legend(*points.legend_elements(), title="digit", loc="center right")
fig.subplots_adjust(right=0.9)

# %%
# What only the VAE gives
# -----------------------
# A log-likelihood bound per image (in nats), and new images from the prior.
vae = reducers["VAE"]
print(f"held-out ELBO: {vae.score(X_test):.2f} nats per image")
print(f"new images: {vae.sample(5, random_state=0).shape}")
