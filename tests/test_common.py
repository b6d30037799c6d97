"""scikit-learn's own estimator checks, each one a separate test, nothing excused."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import VAETransformer

ESTIMATORS = [
    VAETransformer(),
    VAETransformer(
        latent_dim=3,
        hidden_layer_sizes=(16, 8),
        activation="relu",
        n_mc_samples=3,
        beta=0.5,
        early_stopping=True,
        optimizer="adagrad",
        learning_rate_init=0.01,
    ),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
