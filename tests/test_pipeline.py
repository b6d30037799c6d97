"""VAETransformer inside scikit-learn's Pipeline and GridSearchCV (process workers)."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0, stratify=y
)


def pipeline(**vae_params):
    vae = VAETransformer(**{"max_iter": 60, "random_state": 0, **vae_params})
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("vae", vae),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pipeline_before_a_classifier_beats_chance():
    pipe = pipeline(latent_dim=10).fit(X_train, y_train)
    # Ten balanced classes: chance is 0.1. Ten VAE features carry most of the
    # class information (benchmarks/digits.py has the measured figures).
    assert pipe.score(X_test, y_test) > 0.7
    assert pipe[:-1].get_feature_names_out()[0] == "vaetransformer0"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_over_hidden_sizes_in_a_pipeline():
    search = GridSearchCV(
        pipeline(latent_dim=4, max_iter=20),
        {"vae__hidden_layer_sizes": [(8,), (64,)]},
        cv=2,
        n_jobs=2,
    ).fit(X_train[:600], y_train[:600])
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores > 0.3)  # both candidates far above chance (0.1)
    best = search.cv_results_["params"][int(np.argmax(scores))]
    assert search.best_params_ == best
    assert search.score(X_test, y_test) > 0.3


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_selects_the_bare_transformer_by_elbo():
    Xs = StandardScaler().fit_transform(X_train[:600])
    search = GridSearchCV(
        VAETransformer(latent_dim=2, max_iter=20, random_state=0),
        {"hidden_layer_sizes": [(4,), (64,)]},
        cv=2,
        n_jobs=2,
    ).fit(Xs)
    scores = search.cv_results_["mean_test_score"]
    # No scorer given: GridSearchCV uses VAETransformer.score, the mean ELBO, and
    # keeps the candidate whose held-out ELBO is highest.
    assert np.all(np.isfinite(scores))
    best = search.cv_results_["params"][int(np.argmax(scores))]
    assert search.best_params_ == best
    assert search.best_score_ == pytest.approx(scores.max())
    assert search.best_estimator_.score(Xs) == pytest.approx(
        VAETransformer(latent_dim=2, max_iter=20, random_state=0, **search.best_params_)
        .fit(Xs)
        .score(Xs)
    )
