"""skvae: the variational autoencoder as a scikit-learn transformer, over PyTorch."""

from skvae._transformer import VAETransformer

__version__ = "0.1.0.dev0"

__all__ = ["VAETransformer", "__version__"]
