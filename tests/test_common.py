"""scikit-learn's own estimator checks, each one a separate test, nothing excused,
on every member of the family."""

import pytest
from sklearn.utils.estimator_checks import (
    check_estimators_partial_fit_n_features,
    check_global_output_transform_pandas,
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer

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
        gradient="autograd",
    ),
    VAETransformer(
        objective="iwae", n_mc_samples=5, hidden_layer_sizes=(16,), max_iter=50
    ),
    VAEOutlierDetector(),
    VAEOutlierDetector(
        contamination=0.1,
        score_method="elbo",
        support_fraction=1.0,
        hidden_layer_sizes=(16,),
        max_iter=50,
    ),
    VAEImputer(),
    VAEImputer(
        add_indicator=True,
        keep_empty_features=True,
        sample_posterior=True,
        n_importance_samples=10,
        hidden_layer_sizes=(16,),
        max_iter=50,
    ),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# Checks that check_estimator leaves out but that apply to a transformer.
EXTRA_CHECKS = [
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_global_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    check_estimators_partial_fit_n_features,
]


@pytest.mark.parametrize(
    "estimator",
    ESTIMATORS,
    ids=[
        "default",
        "second",
        "iwae",
        "detector",
        "detector_elbo",
        "imputer",
        "imputer_sampling",
    ],
)
@pytest.mark.parametrize("check", EXTRA_CHECKS, ids=lambda c: c.__name__)
def test_checks_check_estimator_leaves_out(estimator, check):
    check(type(estimator).__name__, estimator)
