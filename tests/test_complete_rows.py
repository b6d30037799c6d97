"""The path for complete data: one scan decides, no batch is searched for NaN.

Inference and training read X once (``_scan``) to learn whether anything is
missing and where its values lie; complete rows then reach the network as they
are. These tests hold the scan to numpy's NaN-aware reductions on every layout it
meets, the fast path to the general one's results, and the general path to
finding NaN where there is one.
"""

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

import skvae._base
import skvae._objectives
from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
from skvae._base import _scan
from skvae._objectives import elbo, encode_observed

RNG = np.random.default_rng(0)
X = StandardScaler().fit_transform(RNG.normal(size=(200, 6)))
FAST = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0)


def _with_nan(X, share=0.1, seed=1):
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < share] = np.nan
    return X


def _layouts():
    base = RNG.normal(size=(50, 7))
    read_only = base.copy()
    read_only.flags.writeable = False
    swapped = base.astype(base.dtype.newbyteorder())
    return {
        "float64": base,
        "float32": base.astype(np.float32),
        "fortran": np.asfortranarray(base),
        "negative strides": base[::-1],
        "strided view": base[::3, ::2],
        "read-only": read_only,
        "other byte order": swapped,
        "with NaN": _with_nan(base),
        "a NaN column": np.where(np.arange(7) == 2, np.nan, base),
        "all NaN": np.full((4, 3), np.nan),
    }


@pytest.mark.parametrize("name", list(_layouts()))
def test_scan_agrees_with_numpys_nan_aware_reductions(name):
    X_case = _layouts()[name]
    scan = _scan(X_case)
    assert scan.complete == (not np.isnan(X_case).any())
    if np.isnan(X_case).all():
        assert np.isnan(scan.low) and np.isnan(scan.high)
    else:
        assert scan.low == np.nanmin(X_case) and scan.high == np.nanmax(X_case)


def test_scan_finds_a_single_nan_anywhere():
    for position in [(0, 0), (17, 3), (49, 6)]:
        X_case = RNG.normal(size=(50, 7))
        X_case[position] = np.nan
        assert not _scan(X_case).complete
        assert not _scan(X_case.astype(np.float32)).complete


class _SearchCounter:
    """``split_missing``, counting the calls that search a batch for NaN."""

    def __init__(self):
        self.calls = 0
        self.real = skvae._objectives.split_missing

    def __call__(self, x, complete=False):
        self.calls += not complete
        return self.real(x, complete)


@pytest.fixture
def isnan_calls(monkeypatch):
    counter = _SearchCounter()
    monkeypatch.setattr(skvae._objectives, "split_missing", counter)
    return counter


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_complete_rows_are_never_searched_for_nan(isnan_calls, dtype):
    est = VAETransformer(**FAST).fit(X)
    X_case = X.astype(dtype)
    est.transform(X_case)
    est.score_samples(X_case)
    est.log_marginal_likelihood(X_case, n_samples=8)
    est.kl_per_dimension(X_case)
    assert isnan_calls.calls == 0
    # The counter sees the general path: one NaN, and the batch is searched.
    est.transform(_with_nan(X_case, share=0.01))
    assert isnan_calls.calls > 0


def test_complete_training_searches_no_batch(isnan_calls):
    VAETransformer(gradient="autograd", **FAST).fit(X)
    VAETransformer(objective="iwae", n_mc_samples=2, **FAST).fit(X)
    assert isnan_calls.calls == 0
    VAETransformer(**FAST).fit(_with_nan(X))
    assert isnan_calls.calls > 0


def test_detector_scores_complete_rows_without_searching(isnan_calls):
    detector = VAEOutlierDetector(**FAST).fit(X)
    detector.score_samples(X)
    detector.set_params(score_method="elbo").score_samples(X)
    assert isnan_calls.calls == 0


def test_fast_path_gives_the_general_paths_results():
    """The estimator's results on complete rows equal the objectives computed
    with the search for NaN left on."""
    est = VAETransformer(**FAST).fit(X)
    module = est.module_.double()
    x = torch.from_numpy(X)
    with torch.inference_mode():
        mu_general = encode_observed(module, x, complete=False)[0]
        mu_fast = encode_observed(module, x, complete=True)[0]
        eps = torch.randn((3, 1, est.latent_dim), dtype=torch.float64)
        general = elbo(module, x, eps, complete=False)
        fast = elbo(module, x, eps, complete=True)
    np.testing.assert_array_equal(mu_fast.numpy(), mu_general.numpy())
    for a, b in zip(fast, general, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(est.transform(X), mu_general.numpy(), rtol=1e-12)


def test_missing_values_still_take_the_masked_path():
    """An imputer transforms rows with holes, and a transformer's latent means of
    a row with a hole are those of the row with that entry set to 0 (the
    encoder's input for a missing entry): the search for NaN still runs."""
    X_holes = _with_nan(X, share=0.2)
    imputer = VAEImputer(**FAST).fit(X_holes)
    filled = imputer.transform(X_holes)
    assert not np.isnan(filled).any()
    observed = ~np.isnan(X_holes)
    np.testing.assert_array_equal(filled[observed], X_holes[observed])
    est = VAETransformer(**FAST).fit(X)
    np.testing.assert_allclose(
        est.transform(X_holes), est.transform(np.nan_to_num(X_holes, nan=0.0))
    )


def test_split_missing_trusts_complete():
    x = torch.tensor([[1.0, float("nan")]])
    kept, observed = skvae._objectives.split_missing(x, complete=True)
    assert kept is x and observed is None
    filled, observed = skvae._objectives.split_missing(x)
    assert filled.tolist() == [[1.0, 0.0]]
    assert observed.tolist() == [[True, False]]


def test_score_draws_are_made_once_per_call_when_small(monkeypatch):
    """128 draws of a 2-d latent are made once for all batches of rows, not
    again for each batch; many draws are still made batch by batch (bounded
    memory), and both give the same scores as one batch would."""
    est = VAETransformer(**FAST).fit(X)
    made = []
    real = skvae._base.standard_normal_chunks

    def spy(*args, **kwargs):
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(skvae._base, "standard_normal_chunks", spy)
    monkeypatch.setattr(skvae._base, "_SCORE_CHUNK", 2**12)  # many small batches
    few = est.log_marginal_likelihood(X, n_samples=128)
    assert len(made) == 1
    made.clear()
    many = est.log_marginal_likelihood(X[:3], n_samples=4096)  # 8192 values
    assert len(made) == 3  # one batch of rows each, chunk by chunk
    monkeypatch.undo()
    np.testing.assert_allclose(few, est.log_marginal_likelihood(X, n_samples=128))
    np.testing.assert_allclose(
        many, est.log_marginal_likelihood(X[:3], n_samples=4096), rtol=1e-12
    )
