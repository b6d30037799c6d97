"""VAETransformer: the variational autoencoder as a scikit-learn transformer."""

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from skvae._base import (
    _DRAW_CHUNK,
    _SEED_MAX,
    BaseVAE,
    _check_count,
    _limit_threads,
)
from skvae._docs import ATTRIBUTES, PARAMETERS, indent
from skvae._objectives import completed, importance_resample
from skvae._torch_utils import batched, make_generator, to_numpy, to_tensor

#: Draws of q(z | x_given) that ``sample(conditions=...)`` resamples z from, as
#: ``VAEImputer``'s default ``n_importance_samples``.
_CONDITION_DRAWS = 100
#: Rounds of filling the other columns with the decoder's mean before q(z | .)
#: proposes: the encoder never saw a row with only some columns (10 rounds took
#: the conditional mean of a copied column given its twin from 0.80 to 1.26,
#: the truth 1.25, where 100 draws of q(z | x_given) alone missed it).
_PROPOSAL_STEPS = 10


class VAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseVAE):
    __doc__ = (
        "Variational autoencoder (Kingma & Welling, 2013) as a scikit-learn "
        "transformer."
        """

    The encoder q(z|x) = N(mu(x), diag sigma^2(x)) and the decoder p(x|z) are MLPs;
    the prior is p(z) = N(0, I). Training maximises the evidence lower bound (ELBO)
    ``E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))`` by minibatch gradient steps, with
    the reparameterisation z = mu + sigma * eps, eps ~ N(0, I), and the KL in closed
    form (or, with ``objective="iwae"``, the importance-weighted bound).
    ``transform`` returns the latent means mu(x), like a nonlinear PCA;
    ``inverse_transform`` decodes latent points; ``score`` is the mean ELBO.

    Parameters
    ----------
    latent_dim : int, default=2
        Dimension of the latent space (the number of output features of
        ``transform``). 2 allows plotting the latent space.

"""
        + indent(PARAMETERS)
        + """
    Attributes
    ----------
"""
        + indent(ATTRIBUTES)
        + """
    See Also
    --------
    sklearn.decomposition.PCA : Linear counterpart; a VAE with ``activation=
        "identity"`` and Gaussian decoder is a probabilistic PCA.
    sklearn.neural_network.MLPRegressor : Where the training parameters' names
        come from.

    References
    ----------
    D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014,
    arXiv:1312.6114.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skvae import VAETransformer
    >>> X = StandardScaler().fit_transform(load_digits().data)
    >>> vae = VAETransformer(latent_dim=2, max_iter=5, random_state=0).fit(X)
    >>> vae.transform(X).shape
    (1797, 2)
    >>> vae.inverse_transform(vae.transform(X[:3])).shape
    (3, 64)
    >>> vae.sample(4, random_state=0).shape
    (4, 64)
    """
    )

    def transform(self, X):
        """Return the latent means E_q[z | x], in X's float dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim)
            Means of q(z | x). Computed in batches, in X's dtype; a row's result
            does not depend on the other rows, up to rounding (see the README's
            "Deterministic, row-independent scores").
        """
        return self._latent_means(X)

    @_limit_threads
    def inverse_transform(self, Z):
        """Decode latent points to the decoder's mean E[x | z], in Z's float dtype.

        Parameters
        ----------
        Z : array-like of shape (n_samples, latent_dim)
            Points in the latent space, e.g. the output of ``transform``.

        Returns
        -------
        X : ndarray of shape (n_samples, ``n_features_in_``)
            Decoder means (with ``likelihood="bernoulli"``: probabilities).
        """
        check_is_fitted(self)
        Z = check_array(Z, dtype=[np.float64, np.float32], input_name="Z")
        latent_dim = self.module_.config.latent_dim
        if Z.shape[1] != latent_dim:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but {type(self).__name__} was fitted "
                f"with latent_dim={latent_dim}."
            )
        module, dtype, device = self._inference_module(Z.dtype)
        Z_t = to_tensor(Z, dtype, device)
        return self._as_output(to_numpy(batched(module.decode_mean, Z_t)))

    @_limit_threads
    def sample(
        self,
        n_samples=1,
        random_state=None,
        *,
        observation_noise=False,
        conditions=None,
        with_missing=False,
    ):
        """Draw new rows: z ~ N(0, I) from the prior, decoded to the input space;
        with ``conditions``, rows that hold the values given.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.

        random_state : int, RandomState instance or None, default=None
            Seeds the draws; an int gives the same samples on every call. Only a
            private torch generator is used.

        observation_noise : bool, default=False
            If False, return the decoder means E[x | z] (smooth images, Bernoulli
            probabilities; a table's most probable level of each categorical
            column and its rounded counts). If True, also draw x ~ p(x | z): the
            Gaussian's noise with its learned variance, 0/1 values for Bernoulli,
            a level of each categorical column by its probability.

        conditions : dict, DataFrame or None, default=None
            Values the rows must hold: ``{column: value}`` for every row (a
            column is a feature name, or an index for an array without names),
            or a frame of ``n_samples`` rows holding some of the fitted columns
            (a missing cell there is drawn). The other columns are drawn from the
            model's p(x_rest | x_given): z is resampled from 100 draws of a
            proposal q(z | x_given, x_rest filled by 10 rounds of the decoder's
            mean) by their importance weights (as ``VAEImputer`` draws), never
            by rejection, so a rare condition costs what a common one costs. The
            given values come back exactly.

        with_missing : bool, default=False
            If True, each column's cells are missing at the share they had
            missing in ``fit``, independently of each other (NaN, or a frame's
            null); a given condition is never made missing. If False, samples
            hold no missing values.

        Returns
        -------
        X : ndarray of shape (n_samples, ``n_features_in_``), or DataFrame
            Samples, in the dtype of the data the model was fitted on; a model of
            a data frame's columns gives a frame of its library and dtypes.
        """
        check_is_fitted(self)
        _check_count(n_samples, "n_samples")
        seed = check_random_state(random_state).randint(_SEED_MAX)
        # Drawn on the CPU, so an int random_state gives the same samples anywhere.
        cpu = torch.device("cpu")
        module, dtype, _ = self._inference_module(self._fit_dtype, cpu)
        generator = make_generator(seed, cpu)

        def decode(heads):
            if observation_noise:
                return module.likelihood.sample(heads, generator)
            return module.likelihood.mean(heads)

        def output(values, given=None):
            if with_missing:
                values = self._with_missing(values, generator)
            return self._as_output(values, given)

        if conditions is None:
            z = torch.randn(
                (n_samples, module.config.latent_dim), generator=generator, dtype=dtype
            )
            return output(to_numpy(batched(lambda zb: decode(module.decode(zb)), z)))
        partial, given = self._read_conditions(conditions, n_samples)
        per_chunk, rows = self._chunking(_CONDITION_DRAWS, _DRAW_CHUNK)

        def draw(xb):
            proposal = completed(module, xb, _PROPOSAL_STEPS)
            z = importance_resample(
                module, xb, _CONDITION_DRAWS, generator, per_chunk, proposal
            )
            return decode(module.decode(z))

        values = batched(
            draw,
            to_tensor(partial, dtype, cpu),
            rows,
        )
        return output(to_numpy(values), given)
