"""MNIST through skvae: the seed's configuration (the main job), IWAE, the targets.

    python -m benchmarks.mnist [EXPERIMENT ...] [--full] [--data-dir DIR] [--out DIR]
                               [--max-iter N] [--init-epochs N] [--epochs N]
                               [--iwae-epochs N] [--recipe-epochs N] [--seeds S]
                               [--iwae-samples K] [--iwae-rows N] [--adagrad-lr LR]
                               [--rows TRAIN TEST]

Experiments (default ``seed``, the main job):

- ``seed``: the MNIST configuration of the seed (the review of the paper that skvae
  grew from; what its scripts do is in ``shared/seed/seed-code-facts.md``):
  784-500-2, tanh, Bernoulli decoder on intensities, Adagrad at lr 0.01, batch 100,
  no weight penalty, early stopping with patience 3; the same run stopping as the
  seed's rule does in practice; the seed's continuous-data decoder (Gaussian with a
  learned variance) trained the same way; and the seed's weight initialisation
  against skvae's, in the plain PyTorch loop. Four figures of the first run.
- ``iwae``: 784-500-20 Bernoulli trained by the ELBO (L = 1 and 5 draws) and by the
  importance-weighted bound (K = 5), ``--iwae-epochs`` epochs, ``--seeds`` seeds.
- ``recipes``: training recipes against the quality targets, latent 20 and 2.
- ``figure2``: the paper's Figure 2 at our budget (Bernoulli, 500 tanh units,
  Adagrad, latent sizes 3, 5, 10, 20 and 200).
- ``reference``: skvae against the plain PyTorch loop of ``benchmarks/reference.py``.
- ``gridsearch``: ``GridSearchCV`` over ``hidden_layer_sizes``, selected by the ELBO.
- ``all``: every one of these.

``seed`` runs up to ``--max-iter`` epochs (default 30, the seed's script); ``--full``
runs the review's 100 and scores log p(x) on all test images. Each experiment writes
``mnist_<name>.md`` and ``.json`` (and its PNG figures) into ``--out`` (default
``runs/``, outside version control: the committed results in ``benchmarks/results``
change only when asked), stamped with the command, versions and machine.

MNIST's four IDX files are read from ``--data-dir``, else ``$SKVAE_MNIST_DIR``, else
``../shared/data/mnist``; without them the job stops and says so, unless
``--download`` (OpenML, where a network exists) or ``--stand-in digits`` (scikit-
learn's 8x8 digits, written as ``digits_standin_*`` files titled as the stand-in).

Bernoulli models train on the pixel intensities in [0, 1] and are scored on one fixed
binarization of the test images (pixel ~ Bernoulli(intensity), seed 0), the way MNIST
likelihoods are reported; Gaussian models train and score on intensities, so their
numbers are densities of continuous pixels, not comparable with Bernoulli nats.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._mnist import (
    SCORE_DRAWS,
    binarize,
    fit_quietly,
    pca_accuracy,
    probe_accuracy,
    save_figures,
    score_test_rows,
)
from benchmarks._report import (
    col,
    pm_col,
    stamp,
    stamp_line,
    table,
    text_col,
    write_report,
)
from benchmarks.mnist_data import (
    Dataset,
    MNISTNotFoundError,
    load_digits_stand_in,
    load_mnist,
)
from benchmarks.mnist_paper import figure2, gridsearch, reference
from benchmarks.mnist_training import iwae, recipes
from benchmarks.reference import PlainTrainer, plain_elbo
from skvae import VAETransformer

REPO_ROOT = Path(__file__).resolve().parents[1]

#: The seed's MNIST configuration as VAETransformer parameters (seed-code-facts.md):
#: 784-500-2, tanh, Bernoulli decoder on intensities, Adagrad at lr 0.01, batch 100,
#: no weight penalty, patience 3 on a validation loss, the best weights kept.
SEED_PARAMS = {
    "hidden_layer_sizes": (500,),
    "latent_dim": 2,
    "activation": "tanh",
    "likelihood": "bernoulli",
    "batch_size": 100,
    "optimizer": "adagrad",
    "learning_rate_init": 0.01,
    "alpha": 0.0,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 3,
}
#: The seed's latent grid: both coordinates from -3 to 3 - 1/3 in steps of 1/3.
SEED_GRID = np.arange(-3.0, 3.0, 1.0 / 3.0)
#: The seed's initialisation: every weight ~ N(0, 0.1^2), biases as torch leaves them.
SEED_INIT_STD = 0.1


def seed_runs(max_iter: int) -> list[tuple[str, str, dict]]:
    """(name, title, parameters) of the seed experiment's VAETransformer runs."""
    return [
        ("seed", "the seed's configuration", {}),
        (
            "seed_every_epoch",
            "the same, stopping as the seed's rule does in practice",
            # Patience max_iter: every epoch runs, the best validation epoch is kept.
            {"n_iter_no_change": max_iter},
        ),
        (
            "seed_gaussian",
            "the seed's continuous-data decoder (Gaussian, learned variance)",
            {"likelihood": "gaussian"},
        ),
    ]


def seed_run(
    name: str, title: str, params: dict, data: Dataset, max_iter: int, args
) -> dict:
    """Fit one configuration on the training images; score, probe and time it."""
    print(f"\n== {name}: {title}", flush=True)
    params = {**SEED_PARAMS, **params, "max_iter": max_iter}
    est = VAETransformer(**params, random_state=0, verbose=1)
    seconds, caught = fit_quietly(est, data.X_train)
    bernoulli = est.likelihood_ == "bernoulli"
    X_score = binarize(data.X_test) if bernoulli else data.X_test
    iwae_rows = len(data.X_test) if args.full else args.iwae_rows
    scores = score_test_rows(est, X_score, args.iwae_samples, iwae_rows)
    row = {
        "name": name,
        "title": title,
        "params": {
            k: list(v) if isinstance(v, tuple) else v for k, v in params.items()
        },
        "epochs": est.n_iter_,
        "stopped_early": est.n_iter_ < max_iter,
        "best_epoch": 1 + int(np.argmax(est.validation_scores_)),
        "warnings": caught,
        "fit_seconds": seconds,
        "seconds_per_epoch": seconds / est.n_iter_,
        **scores,
        # What the seed's curves show: the ELBO of the intensities themselves.
        "test_elbo_intensities": est.score(data.X_test) if bernoulli else None,
        "best_validation_elbo": est.best_validation_score_,
        "final_train_loss": est.loss_curve_[-1],
        "final_kl": est.kl_curve_[-1],
        "accuracy": probe_accuracy(
            est.transform(data.X_train),
            data.y_train,
            est.transform(data.X_test),
            data.y_test,
        ),
    }
    print(
        f"{name}: {row['epochs']} epochs in {seconds:.0f} s; test ELBO "
        f"{row['test_elbo']:.2f}, log p(x) {row['test_log_likelihood']:.2f}; "
        f"accuracy {row['accuracy']:.3f}",
        flush=True,
    )
    return row | {"estimator": est}


def init_comparison(data: Dataset, epochs: int) -> list[dict]:
    """The seed's initialisation against skvae's, in the plain loop, same training.

    The estimator has no initialisation parameter, so the plain PyTorch loop of
    ``benchmarks/reference.py`` trains the seed's configuration (Bernoulli, 784-500-2,
    Adagrad at 0.01, batch 100) both ways for ``epochs`` epochs, one seed each.
    """
    X = torch.from_numpy(data.X_train)
    X_test = binarize(data.X_test)
    rows = []
    for label, init_std in [
        ("nn.Linear's uniform (skvae's)", None),
        (f"N(0, {SEED_INIT_STD}^2) weights (the seed's)", SEED_INIT_STD),
    ]:
        trainer = PlainTrainer(
            X, latent=2, lr=0.01, optimizer="adagrad", init_std=init_std, seed=0
        )
        start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            loss = trainer.epoch()
            print(f"init {label}: epoch {epoch}, loss {loss:.2f}", flush=True)
        rows.append(
            {
                "init": label,
                "init_std": init_std,
                "epochs": epochs,
                "train_loss": loss,
                "test_elbo": plain_elbo(trainer.model, X_test, draws=SCORE_DRAWS),
                "seconds": time.perf_counter() - start,
            }
        )
    return rows


def seed(data: Dataset, args, s: dict) -> None:
    """The main job: the seed's configuration and where skvae differs from it."""
    max_iter = 100 if args.full else args.max_iter
    rows = [
        seed_run(name, title, params, data, max_iter, args)
        for name, title, params in seed_runs(max_iter)
    ]
    headline = rows[0]
    grids = {
        "the seed's grid: z from -3 to 2.67 in steps of 1/3": SEED_GRID,
        "the paper's grid: the prior's quantiles 0.05 ... 0.95": None,
    }
    headline["figures"] = save_figures(
        headline["estimator"], data, args.out, "seed", "the seed's configuration", grids
    )
    init_rows = init_comparison(data, args.init_epochs)
    pca = pca_accuracy(data, 2)
    lines = seed_report(rows, init_rows, pca, data, max_iter, args, s)
    payload = {
        "stamp": s,
        "runs": [{k: v for k, v in r.items() if k != "estimator"} for r in rows],
        "initialisation": init_rows,
        "pca_accuracy": pca,
    }
    write_report(args.out, f"{data.prefix}_seed", payload, lines)


def stopping_change(headline: dict, every_epoch: dict) -> str:
    """What skvae's stopping rule changed against running every epoch."""
    if headline["epochs"] == every_epoch["epochs"]:
        return (
            f"nothing here: the validation ELBO still rose at every one of the "
            f"{headline['epochs']} epochs, so neither rule stopped and both runs are "
            f"the same model (test ELBO {headline['test_elbo']:.2f}); `--full` (100 "
            "epochs) lets skvae's rule act"
        )
    return (
        f"{headline['epochs']} epochs and a test ELBO of {headline['test_elbo']:.2f} "
        f"with skvae's rule; {every_epoch['epochs']} epochs (best "
        f"{every_epoch['best_epoch']}) and {every_epoch['test_elbo']:.2f} running "
        "every epoch as the seed's does"
    )


def seed_report(
    rows: list[dict],
    init_rows: list[dict],
    pca: float,
    data: Dataset,
    max_iter: int,
    args,
    s: dict,
) -> list[str]:
    """The seed report: its runs, where skvae differs from the seed, the figures."""
    headline, every_epoch, gaussian = rows
    n_val = int(np.ceil(SEED_PARAMS["validation_fraction"] * len(data.X_train)))
    skvae_init, seed_init = init_rows
    iwae_rows = headline["iwae_rows"]
    lines = [
        f"# {data.name}: the seed's configuration through VAETransformer",
        "",
        stamp_line(s),
        "",
        "The seed is the review of Kingma & Welling (2013) that skvae grew from. Its "
        "own MNIST script (facts in `shared/seed/seed-code-facts.md`) trains a "
        "784-500-2 tanh VAE with a **Bernoulli** decoder on the pixel intensities, "
        "**Adagrad at lr 0.01**, batch 100, with early stopping (patience 3) and the "
        "best model kept. Here that configuration is `VAETransformer("
        + ", ".join(f"{k}={v!r}" for k, v in SEED_PARAMS.items())
        + f", max_iter={max_iter}, random_state=0)` on the {len(data.X_train):,} "
        f"training images ({data.source}).",
        "",
    ]
    lines += table(
        [
            text_col("run", "title"),
            ("epochs (best)", lambda r: f"{r['epochs']} ({r['best_epoch']})"),
            col("fit (s)", "fit_seconds", ".0f"),
            col("s/epoch", "seconds_per_epoch", ".1f"),
            pm_col(
                f"test ELBO, all {len(data.X_test):,}", "test_elbo", "test_elbo_sem"
            ),
            col(
                f"test log p(x), K={args.iwae_samples}, first {iwae_rows:,}",
                "test_log_likelihood",
                ".2f",
            ),
            col("test ELBO, same rows", "test_elbo_iwae_rows", ".2f"),
            col("test ELBO of intensities", "test_elbo_intensities", ".2f"),
            col("accuracy on latent means", "accuracy", ".3f"),
        ],
        rows,
        "Test ELBO: `score_samples` (128 quasi-random draws per image) on one fixed "
        "binarization of the test images, mean ± standard error, in nats; log p(x): "
        "`log_marginal_likelihood`; the ELBO of the intensities themselves is what "
        "the seed's loss curves show. Accuracy: `LogisticRegression` on the "
        "standardised latent means, trained on the training images, scored on the "
        f"test images (PCA(2) gives {pca:.3f}).",
    )
    lines += [
        "The Gaussian row is the seed's decoder for continuous data (Frey Face in "
        "the paper), trained the same way: a Gaussian with a learned log-variance "
        "(skvae's mean head is linear and its variance floored at 1e-3; the seed's "
        "Frey Face decoder uses a sigmoid mean and no floor). On MNIST's pixels it "
        "is a density of continuous values, scored on the intensities (a density "
        "can exceed 1, so such an ELBO can be positive; here "
        f"{gaussian['test_elbo']:.1f}), not comparable with the Bernoulli rows. It "
        "is not the seed's MNIST model; its latent means classify at "
        f"{gaussian['accuracy']:.3f}.",
        "",
        "## Where skvae differs from the seed, and what that changes",
        "",
    ]
    differences = [
        {
            "what": "weights at the start",
            "seed": "N(0, 0.1^2) for every weight; biases as torch leaves them",
            "skvae": "nn.Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and "
            "biases, from the estimator's own generator",
            "change": f"plain PyTorch loop, the seed's configuration, "
            f"{skvae_init['epochs']} epochs: test ELBO {skvae_init['test_elbo']:.2f} "
            f"(skvae's) against {seed_init['test_elbo']:.2f} (the seed's)",
        },
        {
            "what": "validation rows",
            "seed": "the 10,000 test images",
            "skvae": f"{n_val:,} of the training images (validation_fraction=0.1), "
            "so it trains on the other "
            f"{len(data.X_train) - n_val:,}",
            "change": "model selection never sees the test images",
        },
        {
            "what": "the stopping rule",
            "seed": "an epoch does not count when the validation loss changes by "
            "less than 1e-3 nats in absolute value: in practice never, so all its "
            "epochs run",
            "skvae": "training stops when the lowest validation loss fell by at "
            "most tol=1e-4 nats per pixel and epoch (0.078 nats per image) over the "
            "last n_iter_no_change=3 epochs",
            "change": stopping_change(headline, every_epoch),
        },
        {
            "what": "loss scale",
            "seed": "summed over the batch",
            "skvae": "averaged over the batch",
            "change": "nothing under Adagrad, whose steps do not depend on the "
            "gradient's scale",
        },
        {
            "what": "latent grid figure",
            "seed": "-3 to 3 - 1/3 in steps of 1/3 (18 values; the facts say 20x20 "
            "tiles, which that range does not fill)",
            "skvae": "the same 18 x 18 values, beside the paper's grid at the "
            "prior's quantiles",
            "change": "-",
        },
    ]
    lines += table(
        [
            text_col("", "what"),
            text_col("the seed's scripts", "seed"),
            text_col("skvae here", "skvae"),
            text_col("what it changes (measured)", "change"),
        ],
        differences,
    )
    lines += ["## Figures of the seed's configuration", ""]
    lines += [f"![{kind}]({file})" for kind, file in headline["figures"].items()]
    for r in rows:
        for w in r["warnings"]:
            lines += ["", f"Warning in {r['name']}: {w}"]
    return lines


# ------------------------------------------------------------------------ main

#: Every experiment, by name; ``seed`` is the main job.
EXPERIMENTS = {
    "seed": seed,
    "iwae": iwae,
    "recipes": recipes,
    "figure2": figure2,
    "reference": reference,
    "gridsearch": gridsearch,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "experiments",
        nargs="*",
        default=None,
        metavar="EXPERIMENT",
        help=f"one or more of {', '.join(EXPERIMENTS)}, all (default: seed)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="seed: the review's 100 epochs; log p(x) of every test image",
    )
    parser.add_argument(
        "--max-iter", type=int, default=30, help="seed's epochs (default 30)"
    )
    parser.add_argument(
        "--init-epochs",
        type=int,
        default=5,
        help="epochs of seed's initialisation comparison (default 5)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="epochs of figure2 (per size), reference, gridsearch",
    )
    parser.add_argument(
        "--iwae-epochs", type=int, default=20, help="epochs of iwae's fits"
    )
    parser.add_argument(
        "--recipe-epochs", type=int, default=100, help="epochs of each recipe"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds of reference, iwae")
    parser.add_argument(
        "--adagrad-lr",
        type=float,
        default=None,
        help="figure2's step size (default: of 0.01, 0.02 and 0.1, the one with the "
        "lowest training loss after one epoch at latent size 20, as the paper chose)",
    )
    parser.add_argument("--iwae-samples", type=int, default=1000)
    parser.add_argument(
        "--iwae-rows",
        type=int,
        default=2000,
        help="test images whose log p(x) is estimated (default 2000; --full: all)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder of MNIST's four IDX files (default: $SKVAE_MNIST_DIR, else "
        "../shared/data/mnist beside the repository)",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="fetch MNIST from OpenML when its folder is missing (needs a network)",
    )
    parser.add_argument(
        "--stand-in",
        choices=["digits"],
        default=None,
        help="run on scikit-learn's 8x8 digits instead of MNIST, into "
        "digits_standin_* files",
    )
    parser.add_argument(
        "--rows",
        type=int,
        nargs=2,
        metavar=("TRAIN", "TEST"),
        help="use only the first TRAIN training and TEST test images (a smoke run)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "runs",
        help="where reports and figures go (default runs/, not under version "
        "control; --out benchmarks/results replaces the committed results)",
    )
    args = parser.parse_args(argv)
    chosen = args.experiments or ["seed"]
    unknown = sorted(set(chosen) - {*EXPERIMENTS, "all"})
    if unknown:
        parser.error(
            f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}"
        )
    args.experiments = list(EXPERIMENTS) if "all" in chosen else chosen
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    if args.stand_in:
        data = load_digits_stand_in()
    else:
        try:
            data = load_mnist(args.data_dir, download=args.download)
        except MNISTNotFoundError as exc:
            raise SystemExit(f"benchmarks.mnist: {exc}") from None
    if args.rows:
        n_train, n_test = args.rows
        data = dataclasses.replace(
            data,
            X_train=data.X_train[:n_train],
            y_train=data.y_train[:n_train],
            X_test=data.X_test[:n_test],
            y_test=data.y_test[:n_test],
            source=f"{data.source}, first {n_train} training and {n_test} test rows",
        )
    print(f"{data.name}: {data.source}; writing into {args.out}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.experiments:
        start = time.perf_counter()
        s = stamp("benchmarks.mnist", argv)
        s["data"] = data.source
        EXPERIMENTS[name](data, args, s)
        print(
            f"-- {name}: {time.perf_counter() - start:.0f} s; wrote "
            f"{args.out / f'{data.prefix}_{name}.md'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
