"""The variational autoencoder of Kingma & Welling (2013), in plain torch.

Encoder q(z|x) = N(mu(x), diag sigma^2(x)) and decoder p(x|z) are MLPs; the prior is
N(0, I). The losses over these modules are in :mod:`skvae._objectives`. This module
knows nothing of numpy or scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor, nn

from skvae._likelihoods import (
    GAUSSIAN_MIN_VARIANCE,
    ColumnModel,
    Likelihood,
    get_likelihood,
)


@dataclass(frozen=True)
class Activation:
    """A hidden-layer nonlinearity f: its module, and f' for hand-written passes."""

    #: The ``nn.Module`` that the MLPs hold after each hidden ``nn.Linear``.
    module: type[nn.Module]
    #: f'(a) computed from the output f(a); None where f' is 1 everywhere.
    derivative: Callable[[Tensor], Tensor] | None


def sigmoid_tanh(x: Tensor) -> Tensor:
    """tanh(x) computed as 2 * sigmoid(2x) - 1, in one new tensor.

    The same function to within 3 float32 ulps of 1 (an absolute error, ~1.8e-7 at
    most; exact at 0 and at the saturated ends), and several times faster than
    ``torch.tanh`` on the CPUs measured (``python -m benchmarks.tanh_form``).
    """
    return x.mul(2.0).sigmoid_().mul_(2.0).sub_(1.0)


class Tanh(nn.Tanh):
    """``nn.Tanh`` with a fast path for CPU inference.

    The rule: under ``torch.inference_mode`` on the CPU (every prediction and
    score, and the training loss monitored between epochs) it computes
    :func:`sigmoid_tanh`; everywhere else (training steps, autograd, CUDA) it is
    ``torch.tanh``. Training steps are therefore those of ``nn.Tanh``, and only
    the monitored loss that decides when to stop differs, by rounding: the default
    fits measured stopped at the same epoch with bitwise the same weights.
    """

    def forward(self, input: Tensor) -> Tensor:
        if input.device.type == "cpu" and torch.is_inference_mode_enabled():
            return sigmoid_tanh(input)
        return torch.tanh(input)


#: The one description of each activation, for building, inference and the
#: hand-written training pass alike.
ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation(nn.Identity, None),
    "logistic": Activation(nn.Sigmoid, lambda y: y * (1.0 - y)),
    "tanh": Activation(Tanh, lambda y: 1.0 - y.square()),
    "relu": Activation(nn.ReLU, lambda y: (y > 0).to(y.dtype)),
}


@dataclass(frozen=True)
class VAEConfig:
    """Everything that fixes the architecture."""

    n_features: int
    latent_dim: int
    hidden_layer_sizes: tuple[int, ...] = (100,)
    activation: str = "tanh"
    likelihood: str = "gaussian"
    #: The Gaussian decoder's variance floor (unused by the others).
    min_variance: float = GAUSSIAN_MIN_VARIANCE
    #: A table's columns, for ``likelihood="mixed"`` (see ``skvae._likelihoods``).
    columns: tuple[ColumnModel, ...] = ()


def _mlp(sizes: tuple[int, ...], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation].module()]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """x -> (mu, log sigma^2) of q(z|x); both heads share one matmul."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        sizes = (config.n_features, *config.hidden_layer_sizes)
        self.body = _mlp(sizes, config.activation)
        self.head = nn.Linear(sizes[-1], 2 * config.latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_var = self.head(self.body(x)).chunk(2, dim=-1)  # (B, latent_dim) each
        return mu, log_var


class Decoder(nn.Module):
    """z -> the likelihood's heads (e.g. mean and log-variance), one matmul for all."""

    def __init__(self, config: VAEConfig, likelihood: Likelihood) -> None:
        super().__init__()
        sizes = (config.latent_dim, *reversed(config.hidden_layer_sizes))
        self.body = _mlp(sizes, config.activation)
        self.head = nn.Linear(sizes[-1], likelihood.n_outputs(config.n_features))
        self.n_heads = likelihood.n_heads

    def forward(self, z: Tensor) -> tuple[Tensor, ...]:
        return self.head(self.body(z)).chunk(self.n_heads, dim=-1)  # (..., n_features)


class VAE(nn.Module):
    """Encoder, decoder and likelihood; the losses of ``_objectives`` use them."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.likelihood: Likelihood = get_likelihood(
            config.likelihood, min_variance=config.min_variance, columns=config.columns
        )
        self.encoder = Encoder(config)
        self.decoder = Decoder(config, self.likelihood)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(x)

    @staticmethod
    def reparameterize(mu: Tensor, log_var: Tensor, eps: Tensor) -> Tensor:
        """z = mu + sigma * eps (the paper's eq. 10); eps may add leading dims."""
        return mu + torch.exp(0.5 * log_var) * eps

    def decode(self, z: Tensor) -> tuple[Tensor, ...]:
        return self.decoder(z)

    def decode_mean(self, z: Tensor) -> Tensor:
        return self.likelihood.mean(self.decode(z))

    def forward(
        self, x: Tensor, eps: Tensor
    ) -> tuple[tuple[Tensor, ...], Tensor, Tensor]:
        """Return the decoder's heads at z = mu + sigma * eps, and (mu, log_var)."""
        mu, log_var = self.encode(x)  # (B, latent_dim)
        return self.decode(self.reparameterize(mu, log_var, eps)), mu, log_var

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        """``nn.Linear``'s own initialisation, drawn from ``generator`` only.

        Weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch does. On
        MNIST (784-500-2, Bernoulli, three ``partial_fit`` epochs, random_state=0)
        this trained faster than Glorot-uniform weights with zero biases: 160.4
        against 168.3 nats of test negative ELBO.
        """
        for module in self.modules():
            if isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                module.weight.uniform_(-bound, bound, generator=generator)
                module.bias.uniform_(-bound, bound, generator=generator)


def build_vae(config: VAEConfig, generator: torch.Generator) -> VAE:
    """Build a float32 VAE on the CPU, initialised from ``generator`` alone.

    ``nn.Linear`` initialises itself from torch's global generator; building on the meta
    device first draws nothing, so the caller's global random state is left untouched.
    """
    with torch.device("meta"):
        model = VAE(config)
    # float32 whatever torch's default dtype is.
    model = model.to_empty(device="cpu").to(torch.float32)
    model.init_weights(generator)
    return model
