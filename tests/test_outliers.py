"""VAEOutlierDetector: scikit-learn's outlier API, its scores, and the shared core."""

import ast
import copy
import re
import warnings

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_outliers_fit_predict,
    check_outliers_train,
)

from skvae import VAEOutlierDetector, VAETransformer

RNG = np.random.default_rng(0)
# Inliers near a 1-d curve in 4-d; outliers scattered off it.
T = RNG.uniform(-2, 2, size=400)
INLIERS = np.column_stack(
    [T, T**2 - 1, np.sin(2 * T), -T]
) + 0.05 * RNG.standard_normal((400, 4))
OUTLIERS = RNG.uniform(-3, 3, size=(20, 4))
X = np.vstack([INLIERS, OUTLIERS])
IS_INLIER = np.r_[np.ones(400, int), np.zeros(20, int)]
FAST = dict(latent_dim=2, hidden_layer_sizes=(32,), max_iter=100, random_state=0)


def fit_quietly(estimator, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


@pytest.fixture(scope="module")
def detector():
    return fit_quietly(VAEOutlierDetector(**FAST), INLIERS)


def test_outlier_api(detector):
    scores = detector.score_samples(X)
    np.testing.assert_array_equal(
        detector.decision_function(X), scores - detector.offset_
    )
    labels = detector.predict(X)
    np.testing.assert_array_equal(labels, np.where(scores < detector.offset_, -1, 1))
    assert set(np.unique(labels)) <= {-1, 1}
    assert scores.dtype == np.float64 and np.isfinite(scores).all()


def test_fit_predict_is_fit_then_predict():
    fitted = fit_quietly(VAEOutlierDetector(**FAST), X).predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(VAEOutlierDetector(**FAST).fit_predict(X), fitted)


def test_it_finds_off_manifold_outliers_better_than_isolation_forest(detector):
    # Off a curved 1-d manifold, a density model should beat a detector by
    # random splits (here IsolationForest: 0.981; the VAE: 0.991).
    forest = IsolationForest(random_state=0).fit(INLIERS)
    forest_auc = roc_auc_score(IS_INLIER, forest.score_samples(X))
    assert roc_auc_score(IS_INLIER, detector.score_samples(X)) > forest_auc


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.5])
def test_contamination_is_the_share_flagged_in_training(contamination):
    est = fit_quietly(VAEOutlierDetector(**FAST, contamination=contamination), X)
    assert np.mean(est.predict(X) == -1) == pytest.approx(contamination, abs=1 / len(X))


def test_auto_threshold_is_three_robust_sigmas_below_the_median(detector):
    scores = detector.score_samples(INLIERS)
    median = np.median(scores)
    mad = np.median(np.abs(scores - median))
    assert detector.offset_ == pytest.approx(median - 3 * 1.4826 * mad, rel=1e-12)


def test_scores_are_deterministic_and_row_independent(detector):
    scores = detector.score_samples(X)
    np.testing.assert_array_equal(detector.score_samples(X), scores)
    perm = RNG.permutation(len(X))
    np.testing.assert_allclose(
        detector.score_samples(X[perm]), scores[perm], rtol=1e-12
    )
    for i in (0, 7, 410):
        alone = detector.score_samples(X[i : i + 1])[0]
        assert alone == pytest.approx(scores[i], rel=1e-9, abs=1e-9)
    # float32 input is scored in float64 too.
    np.testing.assert_allclose(
        detector.score_samples(X.astype(np.float32)),
        detector.score_samples(X.astype(np.float32).astype(np.float64)),
        rtol=1e-12,
    )


@pytest.mark.parametrize("score_method", ["log_likelihood", "elbo"])
def test_extreme_rows_score_low_and_finite(score_method):
    est = fit_quietly(
        VAEOutlierDetector(**FAST, score_method=score_method, activation="relu"),
        INLIERS,
    )
    far = np.array([[1e3] * 4, [1e30] * 4, [-1e300, 1e300, 0, 0], [1e308] * 4])
    scores = est.score_samples(far)
    assert np.isfinite(scores).all()
    assert scores.max() < est.score_samples(INLIERS).min()
    assert (est.predict(far) == -1).all()
    f32 = est.score_samples(np.full((1, 4), 3e38, dtype=np.float32))
    assert np.isfinite(f32).all()


@pytest.mark.parametrize(
    "score_method, transformer_score",
    [
        ("elbo", lambda vae, X: vae.score_samples(X)),
        (
            "log_likelihood",
            lambda vae, X: vae.log_marginal_likelihood(X, n_samples=128),
        ),
    ],
)
def test_scores_are_the_shared_models_likelihood(score_method, transformer_score):
    # One core: the same parameters and seed train the same model as the
    # transformer, and the detector's score is that model's likelihood.
    est = fit_quietly(
        VAEOutlierDetector(**FAST, score_method=score_method, support_fraction=1.0),
        INLIERS,
    )
    # The detector's own default learning rate, given to the transformer.
    rate = est.learning_rate_init
    vae = fit_quietly(VAETransformer(**FAST, learning_rate_init=rate), INLIERS)
    np.testing.assert_array_equal(est.transform(X), vae.transform(X))
    np.testing.assert_allclose(
        est.score_samples(X), transformer_score(vae, X), rtol=1e-12
    )


def test_the_final_model_is_a_fresh_fit_on_the_most_likely_rows():
    est = fit_quietly(VAEOutlierDetector(**FAST, support_fraction=0.9), X)
    n_support = int(np.ceil(0.9 * len(X)))
    assert est.support_.dtype == bool and est.support_.sum() == n_support
    # The support is the rows a first model, fitted on all of X, scored highest.
    first = fit_quietly(VAEOutlierDetector(**FAST, support_fraction=1.0), X)
    first_scores = first.score_samples(X)
    assert first.support_.all()
    assert first_scores[est.support_].min() >= first_scores[~est.support_].max()
    # The final model is that of a fresh fit, same seed, on those rows alone.
    refit = VAEOutlierDetector(**FAST, support_fraction=1.0)
    fit_quietly(refit, X[est.support_])
    np.testing.assert_array_equal(est.score_samples(X), refit.score_samples(X))
    # offset_ comes from the final model's scores of all the rows.
    assert est.offset_ == est._offset(est.score_samples(X))
    # Most planted outliers are left out of the support.
    assert est.support_[~IS_INLIER.astype(bool)].mean() < 0.5


def test_a_warm_trimmed_fit_continues_on_the_current_models_support():
    est = fit_quietly(VAEOutlierDetector(**FAST, warm_start=True), X)
    before = est.score_samples(X)
    module = est.module_
    fit_quietly(est, X)
    assert est.module_ is module  # continued, not re-initialised
    chosen = np.zeros(len(X), bool)
    chosen[np.argsort(-before, kind="stable")[: est.support_.sum()]] = True
    np.testing.assert_array_equal(est.support_, chosen)


def test_transform_gives_the_latent_means(detector):
    Z = detector.transform(X)
    assert Z.shape == (len(X), 2)
    assert list(detector.get_feature_names_out()) == [
        "vaeoutlierdetector0",
        "vaeoutlierdetector1",
    ]


def test_rows_outside_bernoulli_support_score_lowest_not_raise():
    # Such a row has no density under the decoder: the most anomalous row there
    # is, as IsolationForest would flag it, not an error; the others score as
    # they do alone, and only training data must lie in [0, 1].
    X_unit = (RNG.random((100, 6)) < 0.3).astype(float)
    est = fit_quietly(VAEOutlierDetector(**FAST, likelihood="bernoulli"), X_unit)
    rows = np.vstack([X_unit[:3], [[2.0, 0, 0, 0, 0, 0]], [[-1e6, 0, 1, 0, 1, 0]]])
    scores = est.score_samples(rows)
    np.testing.assert_array_equal(scores[3:], np.finfo(np.float64).min)
    np.testing.assert_allclose(scores[:3], est.score_samples(X_unit[:3]), rtol=1e-12)
    assert np.all(scores[:3] > np.finfo(np.float64).min)
    np.testing.assert_array_equal(est.predict(rows)[3:], [-1, -1])
    np.testing.assert_array_equal(est.decision_function(rows), scores - est.offset_)
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        est.transform(rows)  # a latent mean has no such limit: refused
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        fit_quietly(VAEOutlierDetector(**FAST, likelihood="bernoulli"), rows)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"contamination": 0.6}, "contamination"),
        ({"contamination": 0.0}, "contamination"),
        ({"score_method": "reconstruction"}, "score_method"),
        ({"n_importance_samples": 0}, "n_importance_samples"),
        ({"support_fraction": 0.0}, "support_fraction"),
        ({"support_fraction": 1.5}, "support_fraction"),
    ],
)
def test_bad_parameters_are_refused_before_training(params, message, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(VAEOutlierDetector, "_train", no_training)
    with pytest.raises(ValueError, match=message):
        VAEOutlierDetector(**params).fit(X)


def test_partial_fit_sets_the_offset_from_its_rows():
    est = VAEOutlierDetector(**FAST, contamination=0.1)
    est.partial_fit(X)
    assert np.mean(est.predict(X) == -1) == pytest.approx(0.1, abs=1 / len(X))


def test_in_a_pipeline_and_a_grid_search_by_roc_auc():
    pipe = make_pipeline(StandardScaler(), VAEOutlierDetector(**FAST))
    fit_quietly(pipe, X)
    assert set(np.unique(pipe.predict(X))) <= {-1, 1}
    search = GridSearchCV(
        VAEOutlierDetector(**FAST),
        {"latent_dim": [1, 2]},
        scoring="roc_auc",  # the inliers (label 1) are the positive class
        cv=3,
    )
    order = RNG.permutation(len(X))
    fit_quietly(search, X[order], IS_INLIER[order])
    assert search.best_score_ > 0.9
    assert search.best_params_["latent_dim"] in (1, 2)


def test_trimmed_fit_over_a_memmap_equals_fit_in_memory(tmp_path):
    path = tmp_path / "X.dat"
    X.tofile(path)
    mapped = np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)
    params = {**FAST, "max_iter": 20, "support_fraction": 0.9}
    from_disk = fit_quietly(VAEOutlierDetector(**params), mapped)
    in_memory = fit_quietly(VAEOutlierDetector(**params), X)
    np.testing.assert_array_equal(from_disk.support_, in_memory.support_)
    assert from_disk.offset_ == in_memory.offset_
    np.testing.assert_array_equal(
        from_disk.score_samples(mapped), in_memory.score_samples(X)
    )


def test_missing_values_are_refused(detector):
    # Log-likelihoods over fewer observed features are not comparable scores.
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        VAEOutlierDetector(**FAST).fit(X_nan)
    with pytest.raises(ValueError, match="NaN"):
        detector.score_samples(X_nan)
    assert not detector.__sklearn_tags__().input_tags.allow_nan


# ------------------------------------------------------ one fit, one warning each


def _warnings_of(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit()
    return [(w.category, str(w.message)) for w in caught]


def test_a_trimmed_fit_warns_once_of_each_thing():
    # Two trainings, each far from unit scale and stopped at max_iter: one
    # warning of each kind, not two.
    big = 50 * np.random.default_rng(1).standard_normal((80, 5))
    caught = _warnings_of(lambda: VAEOutlierDetector(max_iter=2).fit(big))
    categories = sorted(c.__name__ for c, _ in caught)
    assert categories == ["ConvergenceWarning", "UserWarning"]
    assert (
        "far from unit scale" in dict((c.__name__, m) for c, m in caught)["UserWarning"]
    )
    # Both trainings stopped alike: no training named.
    assert all("This concerns" not in m for _, m in caught)


def test_a_warning_of_one_training_says_which():
    # With these settings the first training converges and the second does not.
    est = VAEOutlierDetector(
        random_state=0,
        max_iter=35,
        n_iter_no_change=2,
        tol=3e-3,
        hidden_layer_sizes=(8,),
    )
    rows = np.random.default_rng(0).standard_normal((80, 5))
    caught = _warnings_of(lambda: est.fit(rows))
    assert [c for c, _ in caught] == [ConvergenceWarning]
    assert caught[0][1].endswith(
        "(This concerns the second of fit's two trainings, on the 72 rows the first "
        "found most likely.)"
    )


def test_merge_notes_rule():
    from skvae._outliers import _merge_notes

    same = (UserWarning, "scale")
    first = [same, (ConvergenceWarning, "diverged")]
    second = [same, (ConvergenceWarning, "max_iter")]
    merged = _merge_notes(first, second, 10, 9)
    assert merged[0] == same and len(merged) == 3
    assert merged[1][1].startswith("diverged (This concerns the first of fit's two")
    assert "on all 10 rows" in merged[1][1]
    assert merged[2][1].startswith("max_iter (This concerns the second")
    assert "on the 9 rows" in merged[2][1]


# ------------------------------------------------- the documented configuration


def _documented_detector():
    """The detector the class docstring's example builds."""
    call = re.search(r"(VAEOutlierDetector\([^)]*\))\.fit", VAEOutlierDetector.__doc__)
    node = ast.parse(call.group(1), mode="eval").body
    return VAEOutlierDetector(
        **{k.arg: ast.literal_eval(k.value) for k in node.keywords}
    )


@pytest.mark.parametrize("check", [check_outliers_train, check_outliers_fit_predict])
def test_the_documented_configuration_passes_the_outlier_checks(check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # make_blobs' raw scale warns, as it should
        check("VAEOutlierDetector", _documented_detector())


def test_score_says_what_it_averages():
    doc = VAEOutlierDetector.score.__doc__
    assert "score_method" in doc and "log p(x)" in doc
    est = fit_quietly(VAEOutlierDetector(**FAST, score_method="elbo"), INLIERS)
    assert est.score(X) == pytest.approx(np.mean(est.score_samples(X)), rel=1e-12)


# -------------------------------------------------- what fit reads, and stops on


def test_an_interrupt_in_the_first_training_ends_the_fit(interrupted_on_third_epoch):
    with pytest.warns(UserWarning, match="interrupted"):
        est = VAEOutlierDetector(**FAST).fit(X)
    assert len(interrupted_on_third_epoch) == 3 and est.n_iter_ == 2
    assert est.support_.all() and np.isfinite(est.offset_)


def test_scores_use_the_settings_of_fit(detector):
    # offset_ is a threshold on the scores fit computed: changing score_method or
    # n_importance_samples afterwards takes effect at the next fit, as
    # IsolationForest reads nothing after fit.
    est = copy.deepcopy(detector)
    before = est.score_samples(X)
    est.set_params(score_method="elbo", n_importance_samples=1)
    np.testing.assert_array_equal(est.score_samples(X), before)
    refit = fit_quietly(est, INLIERS)
    elbo = fit_quietly(VAEOutlierDetector(**FAST, score_method="elbo"), INLIERS)
    np.testing.assert_array_equal(refit.score_samples(X), elbo.score_samples(X))


def test_auto_threshold_when_most_scores_tie():
    # Over half the rows share one score, so the median absolute deviation is 0:
    # the mean absolute deviation stands in, and only rows far below are flagged.
    est = VAEOutlierDetector()
    scores = np.r_[np.zeros(120), -np.abs(np.random.default_rng(0).normal(size=80))]
    deviations = np.abs(scores)
    assert np.median(deviations) == 0
    assert est._offset(scores) == pytest.approx(-3 * 1.2533 * deviations.mean())
    # 11% flagged here, not all 40% of the rows below the median
    assert np.mean(scores < est._offset(scores)) < 0.15
    assert est._offset(np.zeros(10)) == 0.0  # all alike: none flagged


def test_a_support_too_small_for_early_stopping_is_refused_before_training(
    monkeypatch,
):
    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(VAEOutlierDetector, "_train", no_training)
    est = VAEOutlierDetector(support_fraction=0.05, early_stopping=True)
    with pytest.raises(ValueError, match=r"support_fraction=0.05 keeps 1 of the 20"):
        est.fit(X[:20])


def test_support_size_is_the_ceiling_free_of_rounding():
    # 0.55 * 100 is 55.000000000000007 in floats.
    est = fit_quietly(
        VAEOutlierDetector(**{**FAST, "max_iter": 2}, support_fraction=0.55), X[:100]
    )
    assert est.support_.sum() == 55
    est = fit_quietly(
        VAEOutlierDetector(**{**FAST, "max_iter": 2}, support_fraction=0.51), X[:99]
    )
    assert est.support_.sum() == 51  # ceil(50.49)


def test_a_support_of_every_row_trains_once(monkeypatch):
    # ceil(0.95 * 9) = 9: a second training would be the first again.
    trainings = []
    real = VAEOutlierDetector._fit

    def counted(self, *args, **kwargs):
        trainings.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(VAEOutlierDetector, "_fit", counted)
    est = fit_quietly(
        VAEOutlierDetector(**{**FAST, "max_iter": 3}, support_fraction=0.95), X[:9]
    )
    assert len(trainings) == 1 and est.support_.all() and est.n_iter_ == 3


def test_partial_fit_support_is_its_rows(detector):
    est = copy.deepcopy(detector)
    est.partial_fit(X[:50])
    assert est.support_.shape == (50,) and est.support_.all()


def test_verbose_names_both_trainings(capsys):
    fit_quietly(VAEOutlierDetector(**{**FAST, "max_iter": 2}, verbose=1), X)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Training on all rows, to find the most likely ones"
    assert "Training on the 378 most likely of 420 rows" in out
