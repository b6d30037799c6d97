"""Every Python block of the README runs, in order, without a single warning."""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


def test_readme_python_blocks_run_without_warnings(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # the plotting block saves a figure
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for block in BLOCKS:
            exec(compile(block, str(README), "exec"), namespace)
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
