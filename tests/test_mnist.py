"""MNIST through VAETransformer and ``benchmarks.mnist``.

The main job's end-to-end test runs on a small stand-in written here in MNIST's own
IDX format (scikit-learn's digits, enlarged to 28 x 28), so it runs on a clean clone.
The training test needs the real MNIST directory (``$SKVAE_MNIST_DIR`` or
``../shared/data/mnist``), is skipped without it, never reaches for the network, and
is marked slow (``pytest -m slow``).
"""

import json
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from test_mnist_data import idx_bytes, write

from benchmarks._mnist import binarize
from benchmarks.mnist_data import mnist_directory, read_mnist_dir
from skvae import VAETransformer


@pytest.fixture(scope="module")
def mnist():
    directory = mnist_directory()
    if not directory.is_dir():
        pytest.skip(f"no MNIST directory at {directory}")
    splits = read_mnist_dir(directory)
    (Xtr, _), (Xte, _) = splits["train"], splits["test"]
    to_rows = lambda a: a.reshape(len(a), -1).astype(np.float32) / 255  # noqa: E731
    return to_rows(Xtr[:10_000]), binarize(to_rows(Xte[:2_000]))


def independent_pixels_log_likelihood(X_train, X_test):
    """Mean log-likelihood of X_test under independent Bernoulli pixels fit to X_train.

    The best any model ignoring the dependence between pixels can do; an untrained
    VAE (or one whose latent code is unused) cannot beat it.
    """
    p = np.clip(X_train.mean(axis=0), 1e-3, 1 - 1e-3)
    return float((X_test * np.log(p) + (1 - X_test) * np.log1p(-p)).sum(1).mean())


@pytest.mark.slow
def test_short_mnist_training_beats_independent_pixels(mnist):
    X_train, X_test = mnist
    baseline = independent_pixels_log_likelihood(X_train, X_test)
    est = VAETransformer(
        hidden_layer_sizes=(500,),
        latent_dim=20,
        likelihood="bernoulli",
        max_iter=5,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_train)
    elbo = est.score(X_test)
    print(f"test ELBO {elbo:.2f}, independent pixels {baseline:.2f}")
    # The independent-pixel model scores -199.8 nats; 5 epochs on 10,000 images
    # reached -125.3 (torch 2.13 CPU). The ELBO is a lower bound, so beating the
    # baseline by 30 nats shows the latent code carries what the pixels share.
    assert elbo > baseline + 30, (elbo, baseline)
    assert est.log_marginal_likelihood(X_test[:200], n_samples=200).mean() >= (
        est.score_samples(X_test[:200]).mean()
    )


@pytest.fixture(scope="module")
def idx_directory(tmp_path_factory):
    """300 training and 100 test images in the four MNIST IDX files (gzipped).

    scikit-learn's 8x8 digits, each pixel a 3x3 block, padded to 28x28 and scaled
    to 0-255: MNIST's format, shapes and label set, made here.
    """
    digits = load_digits()
    images = np.kron(digits.images, np.ones((3, 3)))  # (n, 24, 24), 0-16
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))) * (255 / 16)
    images = images.round().astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    directory = tmp_path_factory.mktemp("mnist")
    for prefix, rows in [("train", slice(0, 300)), ("t10k", slice(300, 400))]:
        write(directory / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(images[rows]))
        write(directory / f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(labels[rows]))
    return directory


def test_main_job_end_to_end_on_a_subset(tmp_path, idx_directory):
    """Every experiment of ``python -m benchmarks.mnist``, on the IDX stand-in."""
    from benchmarks.mnist import EXPERIMENTS, main

    argv = ["all", "--data-dir", str(idx_directory), "--max-iter", "2", "--epochs", "1"]
    argv += ["--recipe-epochs", "1", "--iwae-epochs", "1", "--init-epochs", "1"]
    main([*argv, "--seeds", "2", "--iwae-samples", "5", "--out", str(tmp_path)])
    for name in EXPERIMENTS:
        report = json.loads((tmp_path / f"mnist_{name}.json").read_text())
        command = report["stamp"]["command"]
        assert command.startswith("python -m benchmarks.mnist all --data-dir '<path>'")
        assert (tmp_path / f"mnist_{name}.md").read_text().startswith("# MNIST: ")
        # json writes NaN and infinities as bare constants; none may appear.
        json.loads(
            (tmp_path / f"mnist_{name}.json").read_text(),
            parse_constant=lambda c, name=name: pytest.fail(f"{c} in {name}.json"),
        )
    report = json.loads((tmp_path / "mnist_seed.json").read_text())
    assert report["stamp"]["data"] == (
        "MNIST's IDX files (300 training and 100 test images)"
    )
    seed = report["runs"]
    assert [r["name"] for r in seed] == ["seed", "seed_every_epoch", "seed_gaussian"]
    # The headline is the seed's MNIST configuration.
    assert seed[0]["params"]["likelihood"] == "bernoulli"
    assert seed[0]["params"]["optimizer"] == "adagrad"
    assert seed[0]["params"]["learning_rate_init"] == 0.01
    for run in seed:
        assert run["epochs"] <= 2 and np.isfinite(run["test_elbo"])
        assert 0 <= run["accuracy"] <= 1
    assert sorted(seed[0]["figures"]) == [
        "latent",
        "loss",
        "manifold",
        "reconstruction",
    ]
    for file in seed[0]["figures"].values():
        assert (tmp_path / file).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["init_std"] for r in report["initialisation"]] == [None, 0.1]
    iwae = json.loads((tmp_path / "mnist_iwae.json").read_text())
    arms = [(r["objective"], r["draws"], r["gradient"]) for r in iwae["runs"]]
    assert arms == 2 * [
        ("elbo", 1, "closed_form"),
        ("elbo", 5, "closed_form"),
        ("iwae", 5, "autograd"),
    ]
    figure2 = json.loads((tmp_path / "mnist_figure2.json").read_text())
    assert [c["latent_dim"] for c in figure2["curves"]] == [3, 5, 10, 20, 200]
    assert figure2["adagrad_lr"] in (0.01, 0.02, 0.1)
    selection = {float(k): v for k, v in figure2["selection"].items()}
    assert figure2["adagrad_lr"] == min(selection, key=selection.get)
    grid = json.loads((tmp_path / "mnist_gridsearch.json").read_text())
    best = max(grid["rows"], key=lambda r: r["mean_elbo"])
    assert grid["best"] == best["hidden_layer_sizes"]  # selected by the ELBO


def test_main_job_stops_without_mnist(tmp_path, capsys):
    # No MNIST and no --download: a message saying where the files go and what the
    # options are, and nothing written (no silent stand-in).
    from benchmarks.mnist import main

    missing = tmp_path / "no-mnist-here"
    with pytest.raises(SystemExit) as info:
        main(["--data-dir", str(missing), "--out", str(tmp_path / "out")])
    message = str(info.value)
    for hint in (
        str(missing),
        "train-images-idx3-ubyte.gz",
        "--data-dir",
        "--download",
        "--stand-in digits",
    ):
        assert hint in message
    assert not (tmp_path / "out").exists()


def test_main_job_on_the_digits_stand_in_says_so(tmp_path):
    from benchmarks.mnist import main

    argv = ["seed", "--stand-in", "digits", "--max-iter", "1", "--init-epochs", "1"]
    main([*argv, "--iwae-samples", "5", "--out", str(tmp_path)])
    assert not list(tmp_path.glob("mnist_*"))  # no MNIST file name is used
    report = (tmp_path / "digits_standin_seed.md").read_text()
    assert report.startswith("# Digits stand-in (NOT MNIST): ")
    assert json.loads((tmp_path / "digits_standin_seed.json").read_text())["runs"]
    assert (tmp_path / "digits_standin_seed_manifold.png").is_file()
