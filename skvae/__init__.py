"""skvae: the variational autoencoder as a scikit-learn estimator, over PyTorch."""

from skvae._imputer import VAEImputer
from skvae._outliers import VAEOutlierDetector
from skvae._transformer import VAETransformer

__version__ = "0.1.0.dev0"

__all__ = ["VAEImputer", "VAEOutlierDetector", "VAETransformer", "__version__"]
