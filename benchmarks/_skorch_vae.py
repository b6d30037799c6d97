"""The reference VAE wrapped in ``skorch.NeuralNet``: the skorch baseline of speed.py.

Imports skorch, so import this module only where skorch is installed. The module is
:class:`benchmarks.reference.PlainVAE` whose ``forward(x)`` draws its own eps (skorch
passes only X batches) and returns the batch's negative ELBO, the mean per row, which
the criterion hands on to skorch unchanged.
"""

from __future__ import annotations

import skorch
import torch
from torch import Tensor, nn

from benchmarks.reference import PlainVAE, loss_function


class SkorchVAE(PlainVAE):
    """PlainVAE whose forward returns the negative ELBO, mean per row."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        heads = self.decode(z)
        return loss_function(heads, x, mu, logvar, self.likelihood) / len(x)


class NegativeELBO(nn.Module):
    """Criterion for a module that already returns its loss: passes it through."""

    def forward(self, y_pred: Tensor, y_true: Tensor) -> Tensor:
        return y_pred


def make_net(
    n_features: int, hidden: int, latent: int, likelihood: str, batch_size: int = 100
) -> skorch.NeuralNet:
    """A NeuralNet whose every ``fit(X)`` call trains one more epoch (warm start)."""
    return skorch.NeuralNet(
        module=SkorchVAE,
        module__n_features=n_features,
        module__hidden=hidden,
        module__latent=latent,
        module__likelihood=likelihood,
        criterion=NegativeELBO,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=batch_size,
        max_epochs=1,
        warm_start=True,
        train_split=None,
        iterator_train__shuffle=True,
        device="cpu",
        verbose=0,
    )
