"""
=======================================
A VAE in a pipeline before a classifier
=======================================

:class:`~skvae.VAETransformer` is a scikit-learn transformer, so it goes into a
:class:`~sklearn.pipeline.Pipeline` like :class:`~sklearn.decomposition.PCA`: its
``transform`` gives the latent means, which a classifier then learns from. This
example compares the two reducers before a logistic regression on the 8x8 digits,
at 2 and at 10 latent dimensions, on held-out images.

Which reducer wins depends on the size of the code and on the decoder. On the
intensities in [0, 1] used here (the Bernoulli decoder), the reducers benchmark
found the VAE's 2-D code better and PCA's 10-D code better before a logistic
regression (:doc:`/benchmarks/reducers`); on standardised pixels (the Gaussian
decoder), the digits benchmark found the reverse (:doc:`/benchmarks/digits`).
"""

# %%
# The data, split once
# --------------------
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

X, y = load_digits(return_X_y=True)
X = X / 16  # intensities in [0, 1]: likelihood="auto" picks the Bernoulli decoder
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# Two pipelines per size
# ----------------------
# The same classifier after each reducer; the VAE with its defaults.
import time

from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer

results = {}
for n_dims in (2, 10):
    for name, reducer in [
        ("PCA", PCA(n_components=n_dims)),
        ("VAE", VAETransformer(latent_dim=n_dims, random_state=0)),
    ]:
        pipe = make_pipeline(
            reducer, StandardScaler(), LogisticRegression(max_iter=1000)
        )
        start = time.perf_counter()
        pipe.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        results[name, n_dims] = pipe.score(X_test, y_test)
        print(
            f"{name} with {n_dims:2d} dimensions: held-out accuracy "
            f"{results[name, n_dims]:.3f}, fit in {seconds:.1f} s"
        )

# %%
# The accuracies side by side
# ---------------------------
import matplotlib.pyplot as plt
import numpy as np

fig, ax = plt.subplots(figsize=(5, 3.5))
width = 0.35
for i, name in enumerate(["PCA", "VAE"]):
    scores = [results[name, n] for n in (2, 10)]
    ax.bar(np.arange(2) + (i - 0.5) * width, scores, width, label=name)
ax.set_xticks(range(2), ["2 dimensions", "10 dimensions"])
ax.set_ylabel("held-out accuracy")
ax.set_ylim(0, 1)
ax.legend(loc="lower right")
ax.set_title("Logistic regression after a reducer, 8x8 digits")
fig.tight_layout()

# %%
# The fitted pipeline's parts are reached as usual: the VAE records the decoder
# ``likelihood="auto"`` chose and names its output features.
vae = pipe.named_steps["vaetransformer"]
print(vae.likelihood_, vae.get_feature_names_out()[:3])
