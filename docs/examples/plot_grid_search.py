"""
=================================
Choosing a VAE with a grid search
=================================

:class:`~sklearn.model_selection.GridSearchCV` tunes a
:class:`~skvae.VAETransformer` as it tunes any scikit-learn estimator, in two ways:

- **Without labels**, by the model's own ``score``: the mean held-out ELBO, a lower
  bound on the log-likelihood, as ``GridSearchCV`` selects
  :class:`~sklearn.decomposition.PCA` by likelihood. This picks the best density
  model.
- **With labels**, by the accuracy of a classifier after the VAE in a
  :class:`~sklearn.pipeline.Pipeline`. This picks the best features for that task.

The two need not agree. On 10,000 MNIST images, the ELBO picked two hidden layers
of 250 over one of 100 to 500 (:doc:`/benchmarks/mnist`).
"""

# %%
# The data
# --------
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# By the held-out ELBO
# --------------------
# With no ``scoring``, the search ranks each candidate by ``score`` on the
# held-out fold. Larger is better: the ELBO is in nats per image.
#
# Each fit stops at 60 epochs to keep the example short. The fits would still
# gain from more, and each says so with a ``ConvergenceWarning``, silenced here;
# in a real search, leave ``max_iter`` at its default of 200.
import warnings

import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from skvae import VAETransformer

warnings.filterwarnings("ignore", category=ConvergenceWarning)
by_elbo = GridSearchCV(
    VAETransformer(latent_dim=2, max_iter=60, random_state=0),
    {"hidden_layer_sizes": [(32,), (128,), (64, 64)]},
    cv=3,
)
by_elbo.fit(X_train)
print("selected by the ELBO:", by_elbo.best_params_)
pd.DataFrame(by_elbo.cv_results_)[
    ["param_hidden_layer_sizes", "mean_test_score", "std_test_score"]
]

# %%
# By a classifier's accuracy
# --------------------------
# The same grid, and the latent size too, inside a pipeline whose last step is
# a logistic regression: ``score`` is now the pipeline's accuracy.
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pipe = make_pipeline(
    VAETransformer(max_iter=60, random_state=0),
    StandardScaler(),
    LogisticRegression(max_iter=1000),
)
by_accuracy = GridSearchCV(
    pipe,
    {
        "vaetransformer__latent_dim": [2, 8],
        "vaetransformer__hidden_layer_sizes": [(32,), (128,)],
    },
    cv=3,
)
by_accuracy.fit(X_train, y_train)
print("selected by accuracy:", by_accuracy.best_params_)
print(f"its held-out accuracy: {by_accuracy.score(X_test, y_test):.3f}")

# %%
# The mean cross-validated accuracy of each candidate
# ---------------------------------------------------
import matplotlib.pyplot as plt

results = pd.DataFrame(by_accuracy.cv_results_)
fig, ax = plt.subplots(figsize=(5, 3.5))
for sizes, group in results.groupby(
    results["param_vaetransformer__hidden_layer_sizes"].astype(str)
):
    ax.errorbar(
        group["param_vaetransformer__latent_dim"],
        group["mean_test_score"],
        yerr=group["std_test_score"],
        marker="o",
        capsize=3,
        label=f"hidden {sizes}",
    )
ax.set_xlabel("latent_dim")
ax.set_ylabel("mean accuracy over 3 folds")
ax.set_xticks([2, 8])
ax.legend()
ax.set_title("GridSearchCV over a VAE before a classifier")
fig.tight_layout()
