"""Docstring parts that every skvae estimator shares, written once.

Each estimator's docstring is its own introduction, then its ``latent_dim`` entry,
:data:`PARAMETERS` and its own parameters, then :data:`ATTRIBUTES` and its own
attributes (numpydoc sections, indented by :func:`indent`).
"""

import textwrap

#: The parameters of :class:`skvae._base.BaseVAE` after ``latent_dim`` (whose
#: default each member chooses), as numpydoc entries.
PARAMETERS = """\
hidden_layer_sizes : array-like of shape (n_layers,), default=(100,)
    Widths of the encoder's hidden layers; the decoder mirrors them. The default
    is ``MLPRegressor``'s: enough for tabular data of tens to hundreds of
    features. The paper's MNIST model uses ``(500,)``.

activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
    Hidden-layer nonlinearity, as in ``MLPRegressor``. tanh is the paper's.

likelihood : {"auto", "gaussian", "bernoulli"}, default="auto"
    The decoder distribution p(x|z).

    - ``"gaussian"``: N(mu(z), diag sigma^2(z)) with mean and log-variance heads,
      both functions of z, for continuous data. The variance is floored
      smoothly at ``min_variance`` so that constant features cannot drive the
      likelihood to infinity; scale the data (e.g. ``StandardScaler``): the
      decoder is built for features of unit scale (``fit`` warns on columns
      far from it).
    - ``"bernoulli"``: Bernoulli(sigmoid(logits(z))), the paper's MNIST model.
      X must lie in [0, 1] (binary data, or intensities); values within 1e-6 of
      it, as rounding leaves them, are clipped into it.
    - ``"auto"``: ``"bernoulli"`` when X lies in [0, 1] with at least half of
      its entries at 0 or 1 (binary data, images on a blank background such as
      MNIST's), ``"gaussian"`` otherwise (min-max scaled tables among them).
      Decided by the first ``fit`` or ``partial_fit`` and recorded in
      ``likelihood_``; on MNIST the Bernoulli decoder's latent means classified
      better (0.857 against 0.812 at latent 10) and reconstructed with 0.80x
      PCA's error against 1.17x, while on min-max scaled wine it fell far behind
      (0.656 against 0.933 at latent 2; ``benchmarks/defaults.py``).

min_variance : float, default=1e-3
    The Gaussian decoder's smallest variance, in the units of X squared: its
    variance is ``min_variance + exp(h(z))`` for a head h, so each feature's
    log p(x_j|z) is at most -0.5 * log(2 * pi * min_variance). On standardised
    data it is the share of a feature's variance that the decoder can never
    claim to explain. 1e-3 lets it model data closely (and a constant feature
    stay finite); a larger floor keeps a few rare values of a feature that is
    nearly constant from dominating training, at the price of a looser fit.
    Unused by the Bernoulli decoder.

objective : {"elbo", "iwae"}, default="elbo"
    What training maximises.

    - ``"elbo"``: the evidence lower bound of Kingma & Welling (2013), with
      ``n_mc_samples`` draws of z per row and the KL in closed form.
    - ``"iwae"``: the importance-weighted bound of Burda, Grosse & Salakhutdinov
      (2016), log (1/K) sum_k p(x, z_k) / q(z_k|x) with K = ``n_mc_samples``
      draws per row: tighter than the ELBO for K > 1 (K = 1 is the ELBO with a
      Monte-Carlo KL), so it trains for a higher log p(x) at K times the
      decoder's cost per step. Use K > 1 (Burda et al. used 5 and 50).

    ``score`` and ``score_samples`` stay the ELBO whichever objective trained;
    ``log_marginal_likelihood`` measures log p(x), what IWAE improves.

beta : float, default=1.0
    Weight of the KL term (beta = 1 is the ELBO; beta != 1 is a beta-VAE).
    With ``objective="iwae"`` it weighs log p(z) - log q(z|x) inside each
    importance weight.

n_mc_samples : int, default=1
    Draws of z per row and step: the Monte-Carlo samples L of the ELBO, or the
    importance samples K of ``objective="iwae"``. 1 is the paper's choice for
    the ELBO with batches of 100: the batch already averages the noise.

batch_size : int, default=100
    Rows per gradient step (the paper's and the seed's 100); clipped to the
    number of training rows.

learning_rate_init : float, default=1e-3
    Step size. 1e-3 is Adam's usual value and stable on standardised data; the
    seed and the paper used Adagrad at 0.01 (the paper chose from 0.01-0.1).

max_iter : int, default=200
    Maximum number of epochs (passes over the data), as in ``MLPRegressor``.
    200 epochs of the 1347 training rows of the digits take about 3.5 s on two
    CPU cores; a Gaussian decoder keeps sharpening its variances for long, so
    small data often use them all (with a ``ConvergenceWarning``).

optimizer : {"adam", "adagrad"}, default="adam"
    ``torch.optim.Adam`` (default: robust across scales), or
    ``torch.optim.Adagrad`` as in the paper.

alpha : float, default=1e-4
    L2 penalty on the weights (not the biases), applied as the optimizer's weight
    decay; ``MLPRegressor``'s default.

shuffle : bool, default=True
    Whether to reshuffle the rows every epoch.

early_stopping : bool, default=False
    Whether to hold out ``validation_fraction`` of the rows, stop when their
    ELBO stops improving, and keep the weights of the best epoch. Off by
    default, as in ``MLPRegressor``: on small data the validation ELBO of a
    Gaussian decoder is dominated by a few rows with values rare in training,
    and stopping on it cost held-out log-likelihood and accuracy on digits
    (``benchmarks/digits.py``). ``fit`` warns when fewer than 30 rows would
    be held out: on iris and wine (12 and 14) it cost up to 0.11 of held-out
    accuracy.

validation_fraction : float, default=0.1
    Share of the rows held out when ``early_stopping=True``.

n_iter_no_change : int, default=10
    The window, in epochs, over which the stopping rule judges progress
    (``MLPRegressor``'s patience).

tol : float, default=1e-4
    Training stops when the lowest monitored loss has fallen by at most ``tol``
    nats per feature and epoch over the last ``n_iter_no_change`` epochs: by
    at most ``tol * n_features * n_iter_no_change`` nats per row. Per feature,
    because the loss sums over the features: one ``tol`` then means the same
    for 4 features and for 784. The loss watched is deterministic: the training
    loss (reconstruction + beta * KL) of the validation rows (with
    ``early_stopping``) or of up to 5000 training rows, each with
    ``n_mc_samples`` draws of eps held fixed for the whole fit, so only the
    weights move it. Judging the best value over a window, not each epoch
    against the last best, lets neither one lucky epoch keep a finished fit
    running nor a few flat epochs stop one that still gains
    (``benchmarks/defaults.py stopping``).

warm_start : bool, default=False
    Whether ``fit`` continues from the previous solution (weights, optimizer
    state and curves) instead of starting afresh.

gradient : {"auto", "autograd", "closed_form"}, default="auto"
    How a training step computes its gradient. ``"autograd"``, the general
    path, differentiates the objective's loss with torch's autograd and
    trains every objective and likelihood. ``"closed_form"`` is a hand-written
    forward and backward pass for the ELBO alone (``objective="iwae"``
    raises), equal to autograd's gradient up to rounding and faster on the
    CPU (``benchmarks/speed.py``). ``"auto"`` takes ``"closed_form"`` for the
    ELBO on the CPU and ``"autograd"`` otherwise; ``gradient_`` records the
    choice.

n_threads : int, default=None
    The most intra-op threads torch may use during this estimator's calls
    (``fit``, ``partial_fit``, ``transform``, scoring, ``sample``), set with
    threadpoolctl for the call only, so torch's process-wide setting is never
    changed. A bound, never a raise: where torch's own setting is lower (from
    ``OMP_NUM_THREADS``, ``torch.set_num_threads`` or an enclosing
    ``threadpool_limits``), it is kept, as a job scheduler's limit should be. None
    applies a rule when training, recorded in ``n_threads_``: one thread when a
    training step is too small for a second thread to pay (below 50 MFLOP of
    matmuls, e.g. tabular data with the default hidden layer, where a second
    thread gained nothing on a quiet machine and ran 2.7x slower beside a busy
    process), torch's setting otherwise; inference keeps torch's setting. On a
    machine shared with other busy processes, ``n_threads=1`` keeps a large
    model from slowing down: an MNIST-sized fit took 2.1x longer on two threads
    than on one beside a busy process, and 1.6x less on a quiet machine
    (``benchmarks/threads.py``).

device : {"cpu", "cuda", "auto"}, default="cpu"
    Where to train and infer. ``"auto"`` uses a GPU when torch sees one. The
    fitted ``module_`` always lives on the CPU, so models pickle anywhere.

random_state : int, RandomState instance or None, default=None
    Seeds weight initialisation, shuffling, the validation split and the draws
    of eps, through private torch generators, so torch's global generator is
    never used. An int makes fits reproducible on the CPU and leaves numpy's
    global state alone; None draws one seed from numpy's global generator, as
    everywhere in scikit-learn.

verbose : int, default=0
    If positive, print one line per epoch: loss, its KL part, the validation
    ELBO (with ``early_stopping``) and seconds.

column_types : dict or None, default=None
    The type of a data frame's columns, by name, where the inferred one is not
    wanted: ``"continuous"`` (a Gaussian on the standardised column),
    ``"binary"`` (Bernoulli), ``"categorical"`` (a softmax over the levels
    seen in ``fit``) or ``"count"`` (Poisson). A pandas or polars DataFrame with
    a column that is not a number (bool, category, string, object), or any
    frame when this is given, is modelled column by column (see the README's
    "Tables"): bool columns are binary; categorical and string ones
    categorical; float ones continuous; integer ones binary (0 and 1),
    categorical (at most 20 distinct values) or continuous (given back
    rounded). A value that holds 5% of a continuous column (and 20 rows) is an
    atom, with a probability of its own. The resolved types are
    ``column_types_``. Numeric arrays and numeric frames without it are
    modelled as arrays, by ``likelihood``.
"""

#: The fitted attributes of :class:`skvae._base.BaseVAE`, as numpydoc entries.
ATTRIBUTES = """\
module_ : torch.nn.Module
    The trained VAE (float32, on the CPU), with ``encode`` and ``decode``.

optimizer_ : torch.optim.Optimizer
    The optimizer, with its state, used by ``partial_fit`` and ``warm_start``.

loss_curve_ : list of float
    Training loss per epoch: -E_q[log p(x|z)] + beta * KL, the mean over rows
    of the minibatch estimates, in nats (the negative ELBO when beta = 1).

reconstruction_curve_ : list of float
    The -E_q[log p(x|z)] part of ``loss_curve_`` per epoch.

kl_curve_ : list of float
    The KL(q(z|x) || p(z)) part of ``loss_curve_`` per epoch (before beta).

validation_scores_ : list of float or None
    Validation bound per epoch (higher is better) with ``early_stopping``, else
    None: the ELBO, or with ``objective="iwae"`` the importance-weighted bound
    with ``n_mc_samples`` draws per row (fixed for the whole fit).

best_validation_score_ : float or None
    Best of ``validation_scores_``; its weights are the ones kept.

likelihood_ : {"gaussian", "bernoulli"}
    The decoder distribution in use: ``likelihood``, resolved by its rule when
    ``"auto"``.

gradient_ : {"autograd", "closed_form"}
    How the last call to ``fit`` or ``partial_fit`` computed its gradients
    (``gradient`` resolved by its rule).

n_threads_ : int or None
    The intra-op thread limit the last ``fit`` or ``partial_fit`` trained with:
    ``n_threads`` bounded by torch's own setting, or the rule's choice (None:
    torch's own setting).

n_iter_ : int
    Epochs run, over all calls to ``fit`` (with ``warm_start``) and
    ``partial_fit``.

n_features_in_ : int
    Number of features seen during ``fit``.

column_types_ : dict or None
    Each column's type (see ``column_types``), by name, for a model of a data
    frame's columns; None for a model of a numeric array.

feature_names_in_ : ndarray of shape (``n_features_in_``,)
    Names of features seen during ``fit``, when X has string column names.
"""


def indent(text: str) -> str:
    """``text`` indented by four spaces, as it stands inside a class docstring."""
    return textwrap.indent(text, "    ")


def with_defaults(entries: str, **defaults: str) -> str:
    """``entries`` with the ``default=`` of each named parameter replaced, for a
    member whose defaults differ (the values as the docstring writes them)."""
    entries = "\n" + entries  # every entry, the first too, follows a newline
    for name, value in defaults.items():
        head, found, rest = entries.partition(f"\n{name} : ")
        if not found:
            raise ValueError(f"No entry for {name!r}.")
        line, newline, tail = rest.partition("\n")
        kind = line.rsplit(", default=", 1)[0]
        entries = f"{head}\n{name} : {kind}, default={value}{newline}{tail}"
    return entries[1:]
