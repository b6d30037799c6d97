"""The table: column types inferred and overridden, every dtype encoded and decoded
back exactly, and the errors that name the column."""

import numpy as np
import pandas as pd
import pytest

from skvae._table import (
    MAX_INTEGER_LEVELS,
    MAX_LEVELS,
    MIN_ATOM_ROWS,
    MIN_ATOM_SHARE,
    Table,
    uses_table,
)

pl = pytest.importorskip("polars")
polars_testing = pytest.importorskip("polars.testing")

RNG = np.random.default_rng(0)
N = 60


def _holes(values, share=0.2, seed=1):
    """``values`` as a list, None in about ``share`` of the places."""
    rng = np.random.default_rng(seed)
    return [None if rng.random() < share else v for v in np.asarray(values).tolist()]


PANDAS = pd.DataFrame(
    {
        "float": RNG.normal(size=N),
        "float_nan": np.where(RNG.random(N) < 0.2, np.nan, RNG.normal(size=N)),
        "int": RNG.integers(100, 1000, N),  # many values, dispersed: continuous
        "count": RNG.poisson(40, N),
        "small_int": RNG.integers(0, 4, N),  # few values: categorical
        "zero_one": RNG.integers(0, 2, N),
        "bool": RNG.random(N) < 0.4,
        "category": pd.Categorical(
            RNG.choice(["lo", "mid", "hi"], N),
            categories=["lo", "mid", "hi"],
            ordered=True,
        ),
        "category_nan": pd.Categorical(_holes(RNG.choice(["a", "b"], N))),
        "object": pd.Series(  # missing as NaN, as pandas' readers give it
            _holes(RNG.choice(["p", "q", "r"], N)), dtype=object
        ).fillna(np.nan),
        "string": pd.Series(_holes(RNG.choice(["x", "y", "z"], N)), dtype="string"),
        "Int64": pd.array(_holes(RNG.integers(0, 5, N)), dtype="Int64"),
        "Float64": pd.array(_holes(RNG.normal(size=N)), dtype="Float64"),
        "boolean": pd.array(_holes(RNG.random(N) < 0.5), dtype="boolean"),
    }
)
POLARS = pl.DataFrame(
    {
        "float": pl.Series(_holes(RNG.normal(size=N)), dtype=pl.Float64),
        "int": pl.Series(_holes(RNG.poisson(40, N)), dtype=pl.Int64),
        "int32": pl.Series(_holes(RNG.integers(0, 3, N)), dtype=pl.Int32),
        "bool": pl.Series(_holes(RNG.random(N) < 0.5), dtype=pl.Boolean),
        "string": pl.Series(_holes(RNG.choice(["x", "y"], N)), dtype=pl.String),
        "categorical": pl.Series(
            _holes(RNG.choice(["u", "v", "w"], N)), dtype=pl.Categorical
        ),
        "enum": pl.Series(
            _holes(RNG.choice(["lo", "hi"], N)), dtype=pl.Enum(["lo", "hi"])
        ),
    }
)


def test_types_are_inferred_by_the_written_rule():
    kinds = Table.fit(PANDAS).kinds
    assert kinds == {
        "float": "continuous",
        "float_nan": "continuous",
        "int": "continuous",
        "count": "continuous",
        "small_int": "categorical",
        "zero_one": "binary",
        "bool": "binary",
        "category": "categorical",
        "category_nan": "categorical",
        "object": "categorical",
        "string": "categorical",
        "Int64": "categorical",
        "Float64": "continuous",
        "boolean": "binary",
    }
    assert Table.fit(POLARS).kinds == {
        "float": "continuous",
        "int": "continuous",
        "int32": "categorical",
        "bool": "binary",
        "string": "categorical",
        "categorical": "categorical",
        "enum": "categorical",
    }


def test_the_integer_rule_at_its_thresholds():
    def kind(values):
        return Table.fit(pd.DataFrame({"x": values, "s": ["a"] * len(values)})).kinds[
            "x"
        ]

    levels = np.arange(MAX_INTEGER_LEVELS)
    assert kind(np.tile(levels, 3)) == "categorical"
    assert kind(np.tile(np.arange(MAX_INTEGER_LEVELS + 1), 3)) == "continuous"
    assert kind(np.tile([0, 1], 5)) == "binary"
    assert kind(np.tile([1, 2], 5)) == "categorical"


def test_frequent_values_of_a_continuous_column_are_atoms():
    # Zero in 90% of the rows (as Adult's capital-gain), 40 in 8% of them (and
    # 24 rows): atoms; 7 in 2% (6 rows): not one.
    n = 300
    values = np.r_[np.zeros(270), np.full(24, 40.0), np.full(6, 7.0)]
    assert 24 >= MIN_ATOM_ROWS and 24 / n >= MIN_ATOM_SHARE > 6 / n
    frame = pd.DataFrame({"gain": values, "s": ["a"] * n})
    table = Table.fit(frame)
    (column,) = [c for c in table.columns if c.name == "gain"]
    assert column.kind == "continuous" and column.atoms == (0.0, 40.0)
    assert [kind for kind, _ in column.parts] == ["categorical", "continuous"]
    matrix = table.encode(frame)
    block, value = column_entries = table.entries[0]
    assert len(block) == 3 and len(value) == 1 and len(column_entries) == 2
    np.testing.assert_array_equal(matrix[:270, block], [[1, 0, 0]] * 270)
    np.testing.assert_array_equal(matrix[270:294, block], [[0, 1, 0]] * 24)
    np.testing.assert_array_equal(matrix[294:, block], [[0, 0, 1]] * 6)
    # The value part models the others only: NaN (left out) at an atom.
    assert (
        np.isnan(matrix[:294, value]).all() and not np.isnan(matrix[294:, value]).any()
    )
    assert (column.shift, column.scale) == (7.0, 1.0)
    pd.testing.assert_frame_equal(table.decode(matrix), frame)


def test_a_numeric_frame_is_an_array_unless_types_are_named():
    numeric = PANDAS[["float", "int", "count"]]
    assert not uses_table(numeric, None)
    assert uses_table(numeric, {"count": "count"})
    assert uses_table(PANDAS, None)
    assert not uses_table(numeric.to_numpy(), None)


@pytest.mark.parametrize("frame", [PANDAS, POLARS], ids=["pandas", "polars"])
def test_every_dtype_comes_back_as_it_was(frame):
    table = Table.fit(frame)
    matrix = table.encode(frame)
    assert matrix.shape == (len(frame), table.width) and matrix.dtype == np.float64
    back = table.decode(matrix)
    assert type(back) is type(frame)
    assert list(back.columns) == list(frame.columns)
    # Exact but for continuous values, which the standardisation rounds (1e-16).
    if isinstance(frame, pd.DataFrame):
        pd.testing.assert_frame_equal(back, frame, check_exact=False, rtol=1e-12)
    else:
        assert back.schema == frame.schema
        polars_testing.assert_frame_equal(back, frame, check_exact=False, rel_tol=1e-12)


def test_missing_cells_are_nan_in_the_matrix():
    table = Table.fit(PANDAS)
    matrix = table.encode(PANDAS)
    for j, (name, (where,)) in enumerate(
        zip(PANDAS.columns, table.entries, strict=True)
    ):
        missing = PANDAS[name].isna().to_numpy()
        assert np.array_equal(np.isnan(matrix[:, where]).all(1), missing), name
        assert not np.isnan(matrix[np.ix_(~missing, where)]).any(), name
        assert table.entry_columns()[where].tolist() == [j] * len(where)


def test_matrix_groups_columns_by_kind_and_standardises():
    frame = PANDAS[["category", "float", "bool", "count"]]
    table = Table.fit(frame, {"count": "count"})
    models = table.column_models()
    assert [m.kind for m in models] == [
        "gaussian",
        "poisson",
        "bernoulli",
        "categorical",
    ]
    assert [m.width for m in models] == [1, 1, 1, 3]
    matrix = table.encode(frame)
    np.testing.assert_allclose(matrix[:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(matrix[:, 0].std(), 1)
    # The one-hot block follows the declared (ordered) levels.
    codes = PANDAS["category"].cat.codes.to_numpy()
    np.testing.assert_array_equal(np.argmax(matrix[:, 3:], axis=1), codes)


def test_decoding_rounds_integers_into_their_range_and_takes_the_likeliest_level():
    frame = PANDAS[["count", "category", "bool"]]
    table = Table.fit(frame)
    n = 4
    values = np.zeros((n, table.width))
    count = table.columns[0]
    values[:, 0] = (np.array([-1e9, 40.4, 40.6, 1e9]) - count.shift) / count.scale
    values[:, 1] = [0.2, 0.5, 0.9, 0.49]  # bool: True at 0.5 and above
    values[:, 2:] = [[0.1, 0.7, 0.2]] * n  # the middle level
    back = table.decode(values)
    assert back["count"].tolist() == [count.low, 40, 41, count.high]
    assert back["bool"].tolist() == [False, True, True, False]
    assert back["category"].tolist() == ["mid"] * n
    assert back["category"].cat.ordered


def test_decode_keeps_the_given_observed_cells():
    frame = PANDAS[["float_nan", "object", "Int64"]]
    table = Table.fit(frame)
    fills = np.zeros((N, table.width))
    back = table.decode(fills, given=frame)
    for name in frame.columns:
        observed = frame[name].notna().to_numpy()
        assert back[name][observed].tolist() == frame[name][observed].tolist()
        assert back[name].notna().all()
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()


def test_column_types_override_and_are_validated():
    frame = PANDAS[["small_int", "object"]]
    assert Table.fit(frame, {"small_int": "count"}).kinds["small_int"] == "count"
    with pytest.raises(
        ValueError, match=r"names columns that X does not have: \['z'\]"
    ):
        Table.fit(frame, {"z": "count"})
    with pytest.raises(ValueError, match=r"unknown types \{'object': 'text'\}"):
        Table.fit(frame, {"object": "text"})
    with pytest.raises(ValueError, match="Column 'object' is count, but holds values"):
        Table.fit(frame, {"object": "count"})
    negative = pd.DataFrame({"x": [-1, 2, 3], "s": ["a", "b", "a"]})
    with pytest.raises(ValueError, match="Column 'x' is a count"):
        Table.fit(negative, {"x": "count"})
    with pytest.raises(ValueError, match=r"Column 'object' is binary .* 3 distinct"):
        Table.fit(frame, {"object": "binary"})


def test_an_unseen_level_or_other_columns_are_refused():
    table = Table.fit(PANDAS[["object", "float"]])
    new = pd.DataFrame({"object": ["p", "new"], "float": [0.0, 1.0]})
    with pytest.raises(ValueError, match=r"Column 'object' holds values not seen.*new"):
        table.encode(new)
    with pytest.raises(ValueError, match="not the columns seen in fit"):
        table.encode(new[["float", "object"]])


def test_an_identifier_column_is_refused_before_anything_is_allocated():
    ids = pd.DataFrame({"id": [f"row{i}" for i in range(MAX_LEVELS + 1)]})
    with pytest.raises(ValueError, match=r"Column 'id' has 1001 distinct values"):
        Table.fit(ids)
