"""Small float64 VAEs and data for the tests of the model and its losses."""

import torch

from skvae._model import VAEConfig, build_vae

N_FEATURES, LATENT = 4, 2


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed, scale=1.0):
    return scale * torch.randn(shape, generator=gen(seed), dtype=torch.float64)


def small_vae(likelihood="gaussian", seed=0, hidden=(8,), activation="tanh"):
    config = VAEConfig(N_FEATURES, LATENT, hidden, activation, likelihood)
    return build_vae(config, gen(seed)).double()


def data(likelihood, n_rows, seed):
    x = randn(n_rows, N_FEATURES, seed=seed)
    return (x > 0).double() if likelihood == "bernoulli" else x
