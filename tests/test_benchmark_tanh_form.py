"""benchmarks.tanh_form: the copy it compares skvae with, and its paired ratios."""

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks.tanh_form import paired, with_torch_tanh
from skvae import VAETransformer
from skvae._model import sigmoid_tanh


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_twin_runs_torch_tanh_and_leaves_the_estimator_alone():
    X = np.random.default_rng(0).random((120, 12), dtype=np.float32)
    vae = VAETransformer(
        latent_dim=2,
        hidden_layer_sizes=(16,),
        likelihood="bernoulli",
        max_iter=2,
        random_state=0,
    ).fit(X)
    twin = with_torch_tanh(vae)
    layers = [m for m in twin.module_.modules() if isinstance(m, nn.Tanh)]
    assert len(layers) == 2
    x = torch.linspace(-3.0, 3.0, 1001)
    with torch.inference_mode():
        assert all(torch.equal(layer(x), torch.tanh(x)) for layer in layers)
        original = [m for m in vae.module_.modules() if isinstance(m, nn.Tanh)]
        assert all(torch.equal(layer(x), sigmoid_tanh(x)) for layer in original)
    np.testing.assert_allclose(twin.score_samples(X), vae.score_samples(X), rtol=1e-5)
    # The layers keep their class, so the hand-written pass still trains the twin.
    twin.partial_fit(X)
    assert twin.gradient_ == "closed_form"
    assert twin.n_iter_ == vae.n_iter_ + 1


def test_paired_ratio_is_the_median_of_round_ratios():
    assert paired([2.0, 3.0, 9.0], [1.0, 3.0, 3.0]) == "2.000x (1.000-3.000)"
