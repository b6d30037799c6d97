"""Training objectives and recipes on MNIST: IWAE against the ELBO, and the targets.

Run through ``python -m benchmarks.mnist iwae | recipes``.
"""

from __future__ import annotations

import statistics
import time

from benchmarks._mnist import active_units, binarize, fit_quietly, score_test_rows
from benchmarks._report import col, pm_col, stamp_line, table, text_col, write_report
from benchmarks.mnist_data import Dataset
from skvae import VAETransformer

#: Burda et al.'s comparison at one cost per step: the ELBO with one draw (the
#: paper's VAE), the ELBO with 5 draws, and the IWAE bound with 5 importance samples.
IWAE_ARMS = [("elbo", 1), ("elbo", 5), ("iwae", 5)]
#: Recipes tried for the quality targets: VAETransformer parameters, and the
#: learning rate of the last 20% of the epochs (None: unchanged).
RECIPES = {
    "adam": ({}, None),
    "adam_alpha0": ({"alpha": 0.0}, None),
    "adam_alpha0_decay": ({"alpha": 0.0}, 1e-4),
}


def mnist_vae(latent: int, **params) -> VAETransformer:
    """The MNIST model of the targets: 784-500-latent, tanh, Bernoulli, batch 100."""
    return VAETransformer(
        hidden_layer_sizes=(500,),
        latent_dim=latent,
        likelihood="bernoulli",
        batch_size=100,
        **params,
    )


def iwae(data: Dataset, args, s: dict) -> None:
    """ELBO against IWAE training (Burda et al., 2016): bounds, log p(x), activity."""
    epochs = args.iwae_epochs
    X_test = binarize(data.X_test)
    iwae_rows = len(X_test) if args.full else args.iwae_rows
    runs = []
    for seed in range(args.seeds):
        for objective, k in IWAE_ARMS:
            print(f"\n== iwae: {objective}, {k} draws, seed {seed}", flush=True)
            est = mnist_vae(
                20,
                objective=objective,
                n_mc_samples=k,
                max_iter=epochs,
                n_iter_no_change=epochs,  # never fires: every fit runs all epochs
                random_state=seed,
                verbose=1,
            )
            seconds, _ = fit_quietly(est, data.X_train)
            runs.append(
                {
                    "objective": objective,
                    "draws": k,
                    "seed": seed,
                    "epochs": est.n_iter_,
                    "gradient": est.gradient_,
                    "seconds_per_epoch": seconds / est.n_iter_,
                    "active_units": active_units(est, X_test),
                    **score_test_rows(est, X_test, args.iwae_samples, iwae_rows),
                }
            )
            write_iwae_report(runs, data, epochs, args, s)


def write_iwae_report(runs: list[dict], data: Dataset, epochs: int, args, s) -> None:
    """Mean ± std over seeds per arm (written after every fit, so nothing is lost)."""
    keys = ("test_elbo", "test_log_likelihood", "active_units", "seconds_per_epoch")
    summary = []
    for objective, k in IWAE_ARMS:
        arm = [r for r in runs if (r["objective"], r["draws"]) == (objective, k)]
        if not arm:
            continue
        row = {"arm": f"{objective}, {k} draw{'s' if k > 1 else ''}", "n": len(arm)}
        for key in keys:
            values = [r[key] for r in arm]
            row[key] = statistics.mean(values)
            row[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["gradient"] = arm[0]["gradient"]
        summary.append(row)
    first = runs[0]
    lines = [
        f"# {data.name}: the importance-weighted bound against the ELBO",
        "",
        stamp_line(s),
        "",
        "Bernoulli decoder, 784-500-20, tanh, batch 100, Adam at lr 0.001 (skvae's "
        f"defaults), {epochs} epochs on the {len(data.X_train):,} training "
        "intensities, every epoch run (no stopping rule), seeds 0-"
        f'{args.seeds - 1}. Training objective `objective="elbo"` with L draws of '
        'z per row and step, or `objective="iwae"` with K importance samples '
        "(Burda, Grosse & Salakhutdinov, 2016); the ELBO with 5 draws costs what "
        "IWAE with 5 costs, so it separates the objective from the extra draws. "
        f"Test ELBO: `score` on one fixed binarization of all {len(data.X_test):,} "
        "test images; log p(x): `log_marginal_likelihood` with "
        f"K={first['iwae_samples']} on the first {first['iwae_rows']:,}; active "
        "units: latent dimensions whose posterior mean varies over the test "
        "images with variance above 0.01 (Burda et al.'s measure), of 20. Mean ± "
        "std over seeds.",
        "",
    ]
    lines += table(
        [
            text_col("training objective", "arm"),
            text_col("seeds", "n"),
            text_col("gradient_", "gradient"),
            pm_col("test ELBO", "test_elbo", "test_elbo_std"),
            pm_col("test log p(x)", "test_log_likelihood", "test_log_likelihood_std"),
            pm_col("active units", "active_units", "active_units_std", ".1f"),
            pm_col("s/epoch", "seconds_per_epoch", "seconds_per_epoch_std", ".1f"),
        ],
        summary,
    )
    lines += table(
        [
            text_col("objective", "objective"),
            text_col("draws", "draws"),
            text_col("seed", "seed"),
            col("test ELBO", "test_elbo", ".2f"),
            col("test log p(x)", "test_log_likelihood", ".2f"),
            col("ELBO, same rows", "test_elbo_iwae_rows", ".2f"),
            text_col("active units", "active_units"),
            col("s/epoch", "seconds_per_epoch", ".1f"),
        ],
        runs,
        "Every run:",
    )
    payload = {"stamp": s, "epochs": epochs, "summary": summary, "runs": runs}
    write_report(args.out, f"{data.prefix}_iwae", payload, lines)


def recipes(data: Dataset, args, s: dict) -> None:
    """Test ELBO after up to ``--recipe-epochs`` epochs of each recipe, latent 20 and 2.

    Every epoch is one ``partial_fit`` (no held-out rows, no stopping rule); the
    first 2,000 binarized test images are scored every tenth epoch, all 10,000 at
    the end.
    """
    epochs = args.recipe_epochs
    late = epochs - epochs // 5  # where a recipe's late learning rate starts
    X_test = binarize(data.X_test)
    X_check = X_test[:2000]
    rows = []
    for latent in (20, 2):
        for name, (params, late_lr) in RECIPES.items():
            est = mnist_vae(latent, random_state=0, **params)
            curve, start = [], time.perf_counter()
            for epoch in range(1, epochs + 1):
                if late_lr is not None and epoch == late + 1:
                    est.set_params(learning_rate_init=late_lr)
                est.partial_fit(data.X_train)
                if epoch % 10 == 0 or epoch == epochs:
                    curve.append({"epoch": epoch, "test_elbo_2000": est.score(X_check)})
                    print(
                        f"recipes latent {latent} {name}: epoch {epoch}, test ELBO "
                        f"(2,000) {curve[-1]['test_elbo_2000']:.2f} "
                        f"({time.perf_counter() - start:.0f} s)",
                        flush=True,
                    )
            rows.append(
                {
                    "latent_dim": latent,
                    "recipe": name,
                    "params": params,
                    "late_learning_rate": late_lr,
                    "epochs": epochs,
                    "fit_seconds": time.perf_counter() - start,
                    "curve": curve,
                    "test_elbo": est.score(X_test),
                }
            )
            write_recipes_report(rows, data, late, args, s)


def write_recipes_report(rows: list[dict], data: Dataset, late: int, args, s) -> None:
    lines = [
        f"# {data.name}: training recipes against the quality targets",
        "",
        stamp_line(s),
        "",
        "Bernoulli decoder, 784-500-latent, tanh, batch 100, random_state=0, one "
        "`partial_fit` per epoch (all training rows, no stopping rule). Scored on one "
        f"fixed binarization of the {len(data.X_test):,} test images (seed 0), 128 "
        "draws per image, nats per image. Recipes, all on the training intensities: "
        "`adam` = skvae's defaults (Adam, lr 0.001, alpha 1e-4); `adam_alpha0` = no "
        "L2 penalty; `adam_alpha0_decay` = no L2 penalty and lr 0.0001 from epoch "
        f"{late + 1} on (`set_params` between `partial_fit` calls).",
        "",
    ]
    lines += table(
        [
            text_col("latent", "latent_dim"),
            text_col("recipe", "recipe"),
            text_col("epochs", "epochs"),
            col("fit (s)", "fit_seconds", ".0f"),
            col(f"test ELBO, all {len(data.X_test):,}", "test_elbo", ".2f"),
            (
                "test ELBO (first 2,000) by epoch",
                lambda r: ", ".join(
                    f"{p['epoch']}: {p['test_elbo_2000']:.2f}" for p in r["curve"]
                ),
            ),
        ],
        rows,
    )
    payload = {"stamp": s, "runs": rows}
    write_report(args.out, f"{data.prefix}_recipes", payload, lines)
