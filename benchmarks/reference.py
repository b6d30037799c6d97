"""A plain, hand-written PyTorch training loop of the same VAE, for comparison.

Written the way the PyTorch examples' VAE is (``pytorch/examples/vae/main.py``): one
``nn.Module`` with ``encode`` / ``reparameterize`` / ``decode``, a loss function beside
it, ``torch.optim.Adam`` with its defaults, and a loop over shuffled minibatches of one
pre-loaded tensor. It is what a user would write by hand, so skvae is measured against
it. Unlike the example it draws from its own ``torch.Generator`` (so runs repeat).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

_LOG_2PI = math.log(2 * math.pi)


class PlainVAE(nn.Module):
    def __init__(self, n_features=784, hidden=500, latent=2, likelihood="bernoulli"):
        super().__init__()
        self.likelihood = likelihood
        self.fc1 = nn.Linear(n_features, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, n_features)
        if likelihood == "gaussian":
            self.fc5 = nn.Linear(hidden, n_features)

    def encode(self, x):
        h = torch.tanh(self.fc1(x))
        return self.fc21(h), self.fc22(h)

    def reparameterize(self, mu, logvar, generator):
        eps = torch.randn(mu.shape, generator=generator)
        return mu + eps * torch.exp(0.5 * logvar)

    def decode(self, z):
        h = torch.tanh(self.fc3(z))
        if self.likelihood == "gaussian":
            return self.fc4(h), self.fc5(h)
        return (self.fc4(h),)

    def forward(self, x, generator):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar, generator)), mu, logvar


def loss_function(heads, x, mu, logvar, likelihood):
    """Negative ELBO summed over the batch (the example's convention)."""
    if likelihood == "bernoulli":
        rec = F.binary_cross_entropy_with_logits(heads[0], x, reduction="sum")
    else:
        mean, raw = heads
        log_var = math.log(1e-3) + F.softplus(raw - math.log(1e-3))  # skvae's floor
        rec = 0.5 * (_LOG_2PI + log_var + (x - mean) ** 2 / log_var.exp()).sum()
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return rec + kld


class PlainTrainer:
    """The loop's state: model, optimizer (torch's Adam or Adagrad), generator.

    ``epoch()`` runs one pass over shuffled minibatches of the pre-loaded float32
    ``X`` and returns its mean loss, so benchmarks can time epochs one by one.
    ``init_std`` draws every weight from N(0, init_std^2) instead of ``nn.Linear``'s
    uniform default (biases keep theirs), as the seed's scripts do with 0.1.
    """

    def __init__(
        self,
        X: torch.Tensor,
        *,
        hidden: int = 500,
        latent: int = 2,
        likelihood: str = "bernoulli",
        batch_size: int = 100,
        lr: float = 1e-3,
        optimizer: str = "adam",
        init_std: float | None = None,
        seed: int = 0,
    ) -> None:
        self.X, self.likelihood, self.batch_size = X, likelihood, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # nn.Linear initialises from the global generator
            self.model = PlainVAE(X.shape[1], hidden, latent, likelihood)
            if init_std is not None:
                for module in self.model.modules():
                    if isinstance(module, nn.Linear):
                        nn.init.normal_(module.weight, 0.0, init_std)
        optimizers = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}
        self.optimizer = optimizers[optimizer](self.model.parameters(), lr=lr)

    def epoch(self) -> float:
        X, model, optimizer = self.X, self.model, self.optimizer
        model.train()
        total = 0.0
        order = torch.randperm(len(X), generator=self.generator)
        for i in range(0, len(X), self.batch_size):
            x = X[order[i : i + self.batch_size]]
            optimizer.zero_grad()
            heads, mu, logvar = model(x, self.generator)
            loss = loss_function(heads, x, mu, logvar, self.likelihood)
            loss.backward()
            total += loss.item()
            optimizer.step()
        return total / len(X)


def train_plain(
    X: torch.Tensor, *, epochs: int, **kwargs
) -> tuple[PlainVAE, list[float], list[float]]:
    """Train on float32 ``X``; return the model, per-epoch seconds and mean losses.

    ``kwargs`` are :class:`PlainTrainer`'s (hidden, latent, likelihood, batch_size,
    lr, optimizer, init_std, seed).
    """
    trainer = PlainTrainer(X, **kwargs)
    seconds, losses = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        losses.append(trainer.epoch())
        seconds.append(time.perf_counter() - start)
    return trainer.model, seconds, losses


@torch.inference_mode()
def plain_elbo(
    model: PlainVAE, X, *, draws: int = 128, seed: int = 0, batch_size: int = 500
) -> float:
    """Mean ELBO per row of ``X``: analytic KL, ``draws`` Monte-Carlo draws of z.

    The same estimator as ``VAETransformer.score`` (which draws quasi-random eps).
    """
    model.eval()
    X = torch.as_tensor(X, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for i in range(0, len(X), batch_size):
        x = X[i : i + batch_size]
        mu, logvar = model.encode(x)
        eps = torch.randn((draws, *mu.shape), generator=generator)
        heads = model.decode(mu + eps * torch.exp(0.5 * logvar))  # (draws, B, D)
        if model.likelihood == "bernoulli":
            log_px = -F.binary_cross_entropy_with_logits(
                heads[0], x.expand_as(heads[0]), reduction="none"
            ).sum(-1)
        else:
            mean, raw = heads
            log_var = math.log(1e-3) + F.softplus(raw - math.log(1e-3))
            log_px = -0.5 * (_LOG_2PI + log_var + (x - mean) ** 2 / log_var.exp()).sum(
                -1
            )
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)
        total += float((log_px.mean(0) - kl).sum())
    return total / len(X)
