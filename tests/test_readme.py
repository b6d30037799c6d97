"""Every Python block of the README and of the documentation's pages runs, in
order, without a single warning, and shows what its comments say it shows.

The README and the pages are run as one tour (the site's index, the README, then the
other pages in :data:`PAGES`' order) in one namespace (a page's block may use what
an earlier one defined); a block that already ran word for word (the Quickstart is
on three pages) is not run again. Blocks that need what a test machine lacks (a dask
scheduler, a GPU) are written as ``{code-block} python`` on their pages, which this
does not collect.
"""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: The documentation's pages with Python blocks, in the tour's order.
PAGES = (
    "index.md",
    "getting_started.md",
    "user_guide/transformer.md",
    "user_guide/outlier_detection.md",
    "user_guide/missing_values.md",
    "user_guide/imputer.md",
    "user_guide/tables.md",
    "user_guide/plotting.md",
)


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


BLOCKS = python_blocks(README)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


def test_every_page_with_python_blocks_is_on_the_tour():
    with_blocks = {
        str(path.relative_to(DOCS))
        for path in DOCS.rglob("*.md")
        if "_build" not in path.parts and python_blocks(path)
    }
    assert with_blocks == set(PAGES)


def run_blocks(blocks, namespace, seen, source):
    for block in blocks:
        if block in seen:
            continue
        seen.add(block)
        exec(compile(block, str(source), "exec"), namespace)


def test_the_readmes_and_the_pages_blocks_run_without_warnings(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # the plotting block saves a figure
    namespace, seen = {}, set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # The site's index, then the README's Quickstart, which the next pages
        # repeat word for word.
        run_blocks(python_blocks(DOCS / PAGES[0]), namespace, seen, DOCS / PAGES[0])
        run_blocks(BLOCKS, namespace, seen, README)
        # The pipeline's cross-validated accuracy on the ten digits (0.862
        # measured; chance is 0.1), at one of the two hidden sizes searched.
        assert namespace["search"].best_score_ > 0.8
        assert namespace["search"].best_params_ in (
            {"vaetransformer__hidden_layer_sizes": (32,)},
            {"vaetransformer__hidden_layer_sizes": (100,)},
        )
        for page in PAGES[1:]:
            run_blocks(python_blocks(DOCS / page), namespace, seen, DOCS / page)
    assert (tmp_path / "latent.png").stat().st_size > 0
    # What the Quickstart says it shows.
    assert namespace["vae"].likelihood_ == "bernoulli"
    assert namespace["Z"].shape == (1797, 2)
    assert namespace["X_hat"].shape == (1797, 64)
    assert set(np.unique(namespace["labels"])) == {-1, 1}
    assert namespace["search"].best_score_ > 0.9  # ROC-AUC of the detector
    # What the missing-values section says it shows.
    ns = namespace
    hidden = ns["hidden"]
    np.testing.assert_array_equal(ns["X_imputed"][~hidden], ns["X_missing"][~hidden])
    np.testing.assert_array_equal(ns["draw"][~hidden], ns["X_missing"][~hidden])
    vae_rmse = ns["rmse"](ns["X_imputed"])
    knn_rmse = ns["rmse"](ns["KNNImputer"]().fit_transform(ns["X_missing"]))
    assert (
        vae_rmse
        < knn_rmse
        < ns["rmse"](ns["SimpleImputer"]().fit_transform(ns["X_missing"]))
    )
    assert np.isfinite(ns["Z_nan"]).all()
    # What the tables section says it shows.
    shop, holes, filled = ns["shop"], ns["holes"], ns["filled"]
    assert ns["shop_vae"].column_types_["plan"] == "categorical"
    assert ns["synthetic"].dtypes.to_dict() == shop.dtypes.to_dict()
    assert (ns["pros"]["plan"] == "pro").all()
    assert filled.dtypes.to_dict() == holes.dtypes.to_dict()
    assert filled.notna().all().all() and holes.isna().any().all()
    odd = shop.head(3).assign(plan="basic", spend=95.0)
    assert (ns["shop_detector"].predict(odd) == -1).all()
