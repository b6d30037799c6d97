"""Minibatch training: epochs, the monitored loss, the stopping rule and train()."""

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from skvae._model import VAEConfig, build_vae
from skvae._objectives import gaussian_kl, negative_elbo, negative_iwae
from skvae._training import (
    EpochResult,
    History,
    StopRule,
    autograd_step,
    choose_gradient,
    closed_form_step,
    make_optimizer,
    make_step,
    monitored_loss,
    train,
    train_epoch,
)

N_ROWS, N_FEATURES, LATENT = 96, 6, 2
CONFIG = VAEConfig(N_FEATURES, LATENT, (16,), "tanh", "gaussian")


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _make_data(seed, n_rows=N_ROWS):
    # Rank-2 structure plus a little noise: a VAE with a 2-d latent space fits it well.
    g = _gen(seed)
    z = torch.randn(n_rows, LATENT, generator=g)
    mix = torch.randn(LATENT, N_FEATURES, generator=_gen(1000))
    return z @ mix + 0.1 * torch.randn(n_rows, N_FEATURES, generator=g)


X = _make_data(0)
X_VAL = _make_data(1, 48)
# One fixed draw per row for the monitored loss: shape (1, rows, latent).
EPS_X = torch.randn(1, N_ROWS, LATENT, generator=_gen(2))
EPS_VAL = torch.randn(1, 48, LATENT, generator=_gen(3))


def _model(seed=0, config=CONFIG):
    return build_vae(config, _gen(seed))


def _weights(model):
    return parameters_to_vector(model.parameters()).detach().clone()


def _epoch_kwargs(seed=0, batch_size=32, **overrides):
    kwargs = dict(
        step=closed_form_step,
        batch_size=batch_size,
        beta=1.0,
        n_mc_samples=1,
        shuffle=True,
        generator=_gen(seed),
    )
    kwargs.update(overrides)
    return kwargs


# ------------------------------------------------------------------ train_epoch


def _run_epochs(n_epochs, model_seed=0, train_seed=0, **overrides):
    model = _model(model_seed)
    optimizer = make_optimizer(model, "adam", 1e-2, 1e-4)
    kwargs = _epoch_kwargs(train_seed, **overrides)
    results = [train_epoch(model, optimizer, X, **kwargs) for _ in range(n_epochs)]
    return model, results


@pytest.mark.parametrize("gradient", ["closed_form", "autograd"])
def test_train_epoch_reduces_the_loss(gradient):
    model = _model()
    before = mean_negative_elbo(model, X, EPS_X)
    model, results = _run_epochs(15, step=make_step(gradient, "elbo"))
    after = mean_negative_elbo(model, X, EPS_X)
    assert all(isinstance(r, EpochResult) and r.finite for r in results)
    assert after < before - 1.0
    assert results[-1].loss < results[0].loss - 1.0


@pytest.mark.parametrize("shuffle", [True, False])
def test_train_epoch_reproducible_per_seed(shuffle):
    a, results_a = _run_epochs(3, shuffle=shuffle)
    b, results_b = _run_epochs(3, shuffle=shuffle)
    assert torch.equal(_weights(a), _weights(b))
    assert results_a == results_b
    c, _ = _run_epochs(3, train_seed=1, shuffle=shuffle)
    assert not torch.equal(_weights(a), _weights(c))


def test_train_epoch_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    _run_epochs(2)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.fixture(scope="module")
def rec_draws():
    """Row means of -log p(x|z) for the untrained model, one per joint draw of z."""
    n_draws = 2000
    model = _model()
    eps = torch.randn(n_draws, N_ROWS, LATENT, generator=_gen(9))
    with torch.no_grad():
        mu, log_var = model.encode(X)
        z = mu + torch.exp(0.5 * log_var) * eps  # (n_draws, N_ROWS, LATENT)
        log_px = model.likelihood.log_prob(X, model.decode(z))  # (n_draws, N_ROWS)
    return -log_px.double().mean(1)


@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("batch_size", [32, 40, 1000])
@pytest.mark.parametrize("gradient", ["closed_form", "autograd"])
def test_train_epoch_reports_row_means(beta, batch_size, gradient, rec_draws):
    # With a zero learning rate the weights stay put, so the epoch's KL (analytic,
    # independent of the draws and the order) is the mean KL over all rows.
    model = _model()
    before = _weights(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    n_mc = 2
    result = train_epoch(
        model,
        optimizer,
        X,
        **_epoch_kwargs(
            batch_size=batch_size,
            beta=beta,
            n_mc_samples=n_mc,
            step=make_step(gradient, "elbo"),
        ),
    )
    assert torch.equal(_weights(model), before)
    with torch.no_grad():
        kl = gaussian_kl(*model.encode(X)).double().mean().item()
    assert result.kl == pytest.approx(kl, rel=1e-5)
    assert result.loss == pytest.approx(result.reconstruction + beta * result.kl)

    # The reconstruction term is a Monte-Carlo estimate of E_q[-log p(x|z)] from
    # n_mc joint draws; compare with many draws, within five standard errors.
    n_ref = len(rec_draws)
    tol = 5 * rec_draws.std().item() * math.sqrt(1 / n_mc + 1 / n_ref)
    assert abs(result.reconstruction - rec_draws.mean().item()) <= tol


def test_train_epoch_reports_the_iwae_loss():
    # With a zero learning rate and one batch, the epoch's loss is the IWAE loss of
    # that batch's draws: replay them from the same generator.
    model = _model().double()
    x = X.double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    kwargs = _epoch_kwargs(
        batch_size=N_ROWS, n_mc_samples=4, beta=0.5, step=autograd_step("iwae")
    )
    result = train_epoch(model, optimizer, x, **kwargs)
    replay = _gen(0)
    order = torch.randperm(N_ROWS, generator=replay)
    eps = torch.randn((4, N_ROWS, LATENT), generator=replay, dtype=torch.float64)
    with torch.no_grad():
        terms = negative_iwae(model, x[order], eps, 0.5)
    assert result.loss == pytest.approx(terms.loss.mean().item(), rel=1e-12)
    assert result.kl == pytest.approx(terms.kl.mean().item(), rel=1e-12)
    assert result.loss != pytest.approx(result.reconstruction + 0.5 * result.kl)


def test_training_steps_give_the_same_epochs():
    # Float64, several steps: the hand-written pass and autograd follow the same
    # trajectory up to rounding.
    def run(gradient):
        model = _model().double()
        optimizer = make_optimizer(model, "adam", 1e-2, 1e-4)
        kwargs = _epoch_kwargs(step=make_step(gradient, "elbo"), n_mc_samples=2)
        results = [
            train_epoch(model, optimizer, X.double(), **kwargs) for _ in range(3)
        ]
        return _weights(model), results

    (w_fast, r_fast), (w_auto, r_auto) = run("closed_form"), run("autograd")
    torch.testing.assert_close(w_fast, w_auto, rtol=1e-9, atol=1e-11)
    for a, b in zip(r_fast, r_auto, strict=True):
        assert a.loss == pytest.approx(b.loss, rel=1e-10)


def test_epoch_result_finite():
    assert EpochResult(1.0, 2.0, 3.0).finite
    assert not EpochResult(math.nan, 2.0, 3.0).finite
    assert not EpochResult(1.0, math.inf, 3.0).finite


# ------------------------------------------------------------------ monitored_loss


def mean_negative_elbo(model, X, eps, **kwargs):
    loss, bound = monitored_loss(model, X, eps, "elbo", 1.0, **kwargs)
    assert loss == -bound
    return loss


def _double_model(seed=0):
    return _model(seed).double()


def test_mean_negative_elbo_is_deterministic():
    model = _model()
    assert mean_negative_elbo(model, X, EPS_X) == mean_negative_elbo(model, X, EPS_X)


@pytest.mark.parametrize("batch_size", [1, 7, 32, 96, 10_000])
def test_mean_negative_elbo_matches_one_batch(batch_size):
    model = _double_model()
    x, eps = X.double(), EPS_X.double()
    with torch.no_grad():
        # One draw per row: eps of shape (1, N, latent).
        ref = negative_elbo(model, x, eps)[0].mean().item()
    got = mean_negative_elbo(model, x, eps, batch_size=batch_size)
    assert got == pytest.approx(ref, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("batch_size", [1, 7, 10_000])
def test_mean_negative_elbo_float32(batch_size):
    model = _model()
    with torch.no_grad():
        ref = negative_elbo(model, X, EPS_X)[0].double().mean().item()
    got = mean_negative_elbo(model, X, EPS_X, batch_size=batch_size)
    assert got == pytest.approx(ref, rel=1e-5)


def test_mean_negative_elbo_uses_each_rows_draw():
    model = _double_model()
    x, eps = X.double(), EPS_X.double()
    # Swapping two rows together with their draws changes nothing; swapping only the
    # draws does.
    perm = torch.arange(N_ROWS)
    perm[[0, 1]] = perm[[1, 0]]
    base = mean_negative_elbo(model, x, eps, batch_size=1)
    assert mean_negative_elbo(model, x[perm], eps[:, perm], batch_size=1) == (
        pytest.approx(base, rel=1e-12)
    )
    assert mean_negative_elbo(model, x, eps[:, perm], batch_size=1) != (
        pytest.approx(base, rel=1e-9)
    )


@pytest.mark.parametrize("batch_size", [1, 7, 10_000])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_monitored_iwae_matches_one_batch(batch_size, beta):
    # K fixed draws per row, shape (K, N, latent); the bound is taken at beta = 1.
    model = _double_model()
    x = X.double()
    eps = torch.randn(5, N_ROWS, LATENT, generator=_gen(8), dtype=torch.float64)
    loss, bound = monitored_loss(model, x, eps, "iwae", beta, batch_size=batch_size)
    with torch.no_grad():
        terms = negative_iwae(model, x, eps, beta)
    assert loss == pytest.approx(terms.loss.mean().item(), rel=1e-12)
    assert bound == pytest.approx(terms.bound.mean().item(), rel=1e-12)


# ------------------------------------------------------------------ choose_gradient

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    "requested, objective, device, expected",
    [
        ("auto", "elbo", CPU, "closed_form"),
        ("auto", "elbo", CUDA, "autograd"),  # its gain is measured on the CPU only
        ("auto", "iwae", CPU, "autograd"),
        ("autograd", "elbo", CPU, "autograd"),
        ("closed_form", "elbo", CPU, "closed_form"),
        ("closed_form", "elbo", CUDA, "closed_form"),
    ],
)
def test_choose_gradient_rule(requested, objective, device, expected):
    assert choose_gradient(requested, _model(), objective, device) == expected


def test_choose_gradient_refuses_the_fast_path_where_it_does_not_apply():
    with pytest.raises(ValueError, match=r"closed_form.*objective='iwae'"):
        choose_gradient("closed_form", _model(), "iwae", CPU)
    model = _model()
    model.encoder.body.append(nn.Dropout(0.0))
    with pytest.raises(ValueError, match="hand-written pass computes the encoder"):
        choose_gradient("closed_form", model, "elbo", CPU)
    assert choose_gradient("auto", model, "elbo", CPU) == "autograd"


def test_choose_gradient_takes_autograd_for_missing_values():
    assert choose_gradient("auto", _model(), "elbo", CPU) == "closed_form"
    assert choose_gradient("auto", _model(), "elbo", CPU, complete=False) == "autograd"
    with pytest.raises(ValueError, match="missing values"):
        choose_gradient("closed_form", _model(), "elbo", CPU, complete=False)


# ------------------------------------------------------------------ StopRule


@pytest.mark.parametrize(
    "values, tol, patience, expected",
    [
        # The best fell by 0.07 over the last 3 epochs, less than 3 x 0.1: stop.
        ([10.0, 9.95, 9.5, 9.45, 9.44, 9.43], 0.1, 3, [0, 0, 0, 0, 0, 1]),
        # Worse values leave the best where it was; a new best restarts the count.
        ([5.0, 6.0, 7.0, 4.0, 4.5, 4.6, 4.7], 0.0, 3, [0, 0, 0, 0, 0, 0, 1]),
        ([5.0, 6.0, 7.0, 4.0, 4.5, 4.6], 0.0, 2, [0, 0, 1, 0, 0, 1]),
        # With tol = 0, epochs that do not improve at all end training.
        ([3.0, 2.0, 2.0], 0.0, 1, [0, 0, 1]),
        ([3.0, 2.0, 1.0, 0.0], 0.5, 1, [0, 0, 0, 0]),
        # One lucky epoch (0.2 in three) does not keep a flat fit going...
        ([10.0, 10.0, 10.0, 9.8], 0.1, 3, [0, 0, 0, 1]),
        # ...and epochs below tol do not end one that gains on average (0.33 > 0.3).
        ([10.0, 9.0, 8.99, 8.98, 8.67, 8.66], 0.1, 3, [0, 0, 0, 0, 0, 0]),
    ],
)
def test_stop_rule_judges_the_best_over_the_window(values, tol, patience, expected):
    rule = StopRule(tol=tol, patience=patience)
    stops = [int(rule.update(v)) for v in values]
    assert stops == expected
    assert rule.best == min(values)


# ------------------------------------------------------------------ train()


class Schedule(torch.optim.Optimizer):
    """Ignores the gradients: step k loads the k-th weight vector (or raises it)."""

    def __init__(self, params, vectors):
        super().__init__(params, {})
        self.vectors = list(vectors)
        self.n_steps = 0
        self.state["marker"] = torch.zeros(1)  # stands in for moment estimates

    @torch.no_grad()
    def step(self, closure=None):
        target = self.vectors[self.n_steps]
        self.n_steps += 1
        if isinstance(target, BaseException):
            raise target
        vector_to_parameters(target, self.param_groups[0]["params"])


def _train(model, optimizer, monitored=True, **kwargs):
    options = dict(
        max_epochs=20,
        stop_rule=None,
        early_stopping=False,
        history=History(validation=[]),
        epoch_kwargs=_epoch_kwargs(batch_size=N_ROWS),  # one step per epoch
    )
    options.update(kwargs)
    x_monitor, eps_monitor = (X_VAL, EPS_VAL) if monitored else (None, None)
    outcome = train(model, optimizer, X, x_monitor, eps_monitor, **options)
    return outcome, options["history"]


INITIAL = _weights(_model())


@pytest.fixture(scope="module")
def trained():
    """Weights after 20 epochs of Adam: far better than INITIAL on X_VAL."""
    model, _ = _run_epochs(20)
    return _weights(model)


def _perturbed(weights, scale, seed):
    noise = torch.randn(weights.shape, generator=_gen(seed))
    return weights + scale * noise


def _val_loss(vector):
    model = _model()
    vector_to_parameters(vector, model.parameters())
    return mean_negative_elbo(model, X_VAL, EPS_VAL)


def test_train_early_stopping_restores_best_weights(trained):
    schedule = [
        INITIAL,
        trained,
        _perturbed(trained, 0.3, 1),
        _perturbed(trained, 0.5, 2),
    ] + [_perturbed(trained, 1.0, 3 + i) for i in range(10)]
    val = [_val_loss(v) for v in schedule]
    assert min(val) == val[1]  # guards the schedule: trained weights are best
    model = _model()
    rule = StopRule(tol=0.0, patience=2)
    outcome, history = _train(
        model,
        Schedule(model.parameters(), schedule),
        stop_rule=rule,
        early_stopping=True,
    )
    assert outcome.converged and not outcome.diverged and not outcome.interrupted
    assert outcome.epochs == 4  # the best epoch, then two that do not improve
    assert history.validation == pytest.approx([-v for v in val[:4]], rel=1e-6)
    assert len(history.loss) == len(history.kl) == len(history.reconstruction) == 4
    assert torch.equal(_weights(model), trained)
    assert mean_negative_elbo(model, X_VAL, EPS_VAL) == -max(history.validation)


def test_train_without_early_stopping_keeps_last_weights(trained):
    schedule = [
        INITIAL,
        trained,
        _perturbed(trained, 0.3, 1),
        _perturbed(trained, 0.5, 2),
    ]
    model = _model()
    rule = StopRule(tol=0.0, patience=2)
    outcome, history = _train(
        model, Schedule(model.parameters(), schedule), stop_rule=rule
    )
    assert outcome.converged and outcome.epochs == 4
    assert history.validation == []
    assert torch.equal(_weights(model), schedule[-1])


def test_train_runs_max_epochs_without_stop_rule():
    model = _model()
    optimizer = make_optimizer(model, "adam", 1e-2, 0.0)
    lines = []
    outcome, history = _train(
        model, optimizer, monitored=False, max_epochs=3, log=lines.append, first_epoch=5
    )
    assert outcome.epochs == 3 and not outcome.converged and not outcome.diverged
    assert len(history.loss) == 3
    assert [line.split(":")[0] for line in lines] == ["Epoch 5", "Epoch 6", "Epoch 7"]
    # Steps fill the gradient buffers; the trained model is handed back without them.
    assert all(p.grad is None for p in model.parameters())


def _nan_like(vector):
    return torch.full_like(vector, math.nan)


@pytest.mark.parametrize("poison", [math.nan, math.inf])
def test_train_divergence_detected_by_monitor(poison, trained):
    # One step per epoch: the epoch's loss is computed before its step poisons the
    # weights, so only the monitored loss can notice.
    schedule = [INITIAL, trained, torch.full_like(trained, poison), trained]
    model = _model()
    optimizer = Schedule(model.parameters(), schedule)
    outcome, history = _train(model, optimizer, stop_rule=StopRule(0.0, 10))
    assert outcome.diverged and not outcome.converged
    assert outcome.epochs == 2 and len(history.loss) == 2
    # The weights of the last finite epoch are back.
    assert torch.equal(_weights(model), trained)


def test_train_divergence_detected_by_training_loss(trained):
    # Two steps per epoch: the step that poisons the weights is followed by a batch
    # whose loss is NaN, in the third epoch.
    half = N_ROWS // 2
    schedule = [INITIAL, INITIAL, trained, trained, _nan_like(trained), INITIAL]
    model = _model()
    optimizer = Schedule(model.parameters(), schedule)
    outcome, history = _train(
        model,
        optimizer,
        monitored=False,
        epoch_kwargs=_epoch_kwargs(batch_size=half),
    )
    assert outcome.diverged
    assert outcome.epochs == 2 and len(history.loss) == 2
    assert torch.equal(_weights(model), trained)


def test_train_divergence_with_huge_learning_rate():
    # Real gradients this time: plain SGD with an absurd step blows the weights up
    # within the first epoch (three steps), so the initial weights come back.
    model = _model()
    before = _weights(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e30)
    outcome, history = _train(model, optimizer, epoch_kwargs=_epoch_kwargs())
    assert outcome.diverged and not outcome.converged
    assert outcome.epochs == 0 and history.loss == []
    assert torch.equal(_weights(model), before)


def test_train_divergence_on_last_step_without_monitor(trained):
    # One step per epoch and no monitor (as in partial_fit): epoch 2's step poisons
    # the weights after its (finite) loss was computed.
    schedule = [trained, _nan_like(trained), INITIAL]
    model = _model()
    outcome, _ = _train(model, Schedule(model.parameters(), schedule), monitored=False)
    assert outcome.diverged
    assert torch.isfinite(_weights(model)).all()


def test_train_interrupted_restores_epoch_start(trained):
    half = N_ROWS // 2
    schedule = [trained, trained, INITIAL, KeyboardInterrupt()]
    model = _model()
    outcome, history = _train(
        model,
        Schedule(model.parameters(), schedule),
        epoch_kwargs=_epoch_kwargs(batch_size=half),
    )
    assert outcome.interrupted and not outcome.diverged and not outcome.converged
    assert outcome.epochs == 1 and len(history.loss) == 1
    assert torch.equal(_weights(model), trained)


# ------------------------------------------------------------------ make_optimizer


@pytest.mark.parametrize(
    "name, cls", [("adam", torch.optim.Adam), ("adagrad", torch.optim.Adagrad)]
)
@pytest.mark.parametrize("alpha", [0.0, 1e-3])
def test_make_optimizer_decays_weights_not_biases(name, cls, alpha):
    model = _model()
    optimizer = make_optimizer(model, name, 0.05, alpha)
    assert isinstance(optimizer, cls)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    weight_ids = {id(m.weight) for m in linears}
    bias_ids = {id(m.bias) for m in linears}
    weights_group, biases_group = optimizer.param_groups
    assert {id(p) for p in weights_group["params"]} == weight_ids
    assert {id(p) for p in biases_group["params"]} == bias_ids
    assert weights_group["weight_decay"] == alpha
    assert biases_group["weight_decay"] == 0.0
    assert all(g["lr"] == 0.05 for g in optimizer.param_groups)


@pytest.mark.parametrize("name", ["adam", "adagrad"])
def test_make_optimizer_decay_acts_on_weights_only(name):
    # With zero gradients, only the L2 penalty moves anything: weights move towards
    # zero (Adam's normalised step may overshoot it), biases stay.
    model = _model()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.bias.fill_(0.5)
    optimizer = make_optimizer(model, name, 0.01, 0.1)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    before = [(m.weight.detach().clone(), m.bias.detach().clone()) for m in linears]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for m, (w, b) in zip(linears, before, strict=True):
        assert torch.equal(m.bias.detach(), b)
        step = m.weight.detach() - w
        assert torch.all(step * w < 0)
