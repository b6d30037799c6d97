"""A data frame as the model sees it: its columns' types, and numbers both ways.

:class:`Table` is the one place that knows a frame's columns: it infers each
column's type (or takes the user's), learns what encoding it needs (a categorical
column's levels, a continuous column's scale), turns a frame into the float matrix
the model trains on (a categorical column as a one-hot block, missing cells as NaN)
and turns such a matrix back into a frame of the same library with each column in
its own dtype. It knows pandas and polars, through small readers and writers, and
nothing of torch or of the estimators; the likelihood of each column is described
to the model by :meth:`Table.column_models`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.utils._dataframe import is_pandas_df, is_polars_df

from skvae._likelihoods import ColumnModel

#: The column types a user can name in ``column_types``, and the likelihood of each.
KINDS: dict[str, str] = {
    "continuous": "gaussian",
    "binary": "bernoulli",
    "categorical": "categorical",
    "count": "poisson",
}
#: The order of the kinds in the model's matrix: neighbouring columns of one kind
#: share one likelihood piece (see ``skvae._likelihoods.Mixed``).
_MATRIX_ORDER = ("continuous", "count", "binary", "categorical")
#: An integer column with at most this many distinct values is categorical (each
#: value a level), unless its values are 0 and 1 (binary); with more, it is
#: continuous, given back rounded. Not a count (Poisson), which ``column_types``
#: can ask for: on Adult, synthetic hours-per-week matched the real column's
#: distribution far better as continuous (Kolmogorov-Smirnov complement 0.954
#: against 0.782: its spike at 40 hours is an atom there), and so did even
#: Poisson-drawn columns (0.973 against 0.956 for rates 30 to 60).
MAX_INTEGER_LEVELS = 20
#: A categorical column with more levels is refused, before anything is allocated:
#: an identifier, not a category (one-hot blocks of its width would be trained on).
MAX_LEVELS = 1000
#: A value that holds at least this share of a continuous column's observed cells
#: is an atom (Adult's capital-gain is 0 in 92% of its rows, hours-per-week 40 in
#: 47%): the column is then a categorical part (which atom, or none) beside its
#: continuous part, which models the other values only.
MIN_ATOM_SHARE = 0.05
#: At most this many atoms per column, the most frequent; and each in at least
#: this many rows, so that a small sample's repeated values are not atoms.
MAX_ATOMS = 10
MIN_ATOM_ROWS = 20


def is_frame(X: Any) -> bool:
    """Whether X is a pandas or a polars DataFrame."""
    return is_pandas_df(X) or is_polars_df(X)


def uses_table(X: Any, column_types: Mapping | None) -> bool:
    """Whether a fit on X goes through a :class:`Table`: X is a frame with a column
    that is not numeric (bool, categorical, string or object), or the user named
    column types. A numeric frame otherwise trains as the array it holds."""
    if not is_frame(X):
        return False
    if column_types is not None:
        return True
    reader = _reader(X)
    return any(not reader.is_numeric(name) for name in reader.names)


@dataclass
class Column:
    """One column: its name and type, and what encoding and decoding it need."""

    name: Hashable
    kind: str
    #: The dtype the column had in ``fit`` (pandas' or polars'), given back.
    dtype: Any
    #: Whether its values are integers (given back rounded, within [low, high]).
    integer: bool = False
    #: Categorical and binary columns: the values in the matrix's order.
    levels: tuple = ()
    #: Continuous and count columns: value = shift + scale * the matrix's entry.
    shift: float = 0.0
    scale: float = 1.0
    #: The range seen in ``fit`` (integers are given back within it).
    low: float = -math.inf
    high: float = math.inf
    #: Nothing observed in fit: read as missing whatever it holds.
    empty: bool = False
    #: Continuous columns: values with a mass of their own (see MIN_ATOM_SHARE).
    atoms: tuple = ()

    @property
    def parts(self) -> list[tuple[str, int]]:
        """The (kind, width) of each of the column's parts in the matrix: a
        categorical column's one-hot block; a continuous column's value, after a
        block that says which atom it is, or none; one entry otherwise."""
        if self.kind == "categorical":
            return [("categorical", len(self.levels))]
        if self.atoms:
            return [("categorical", len(self.atoms) + 1), (self.kind, 1)]
        return [(self.kind, 1)]


@dataclass
class Table:
    """The columns of a frame fitted on, with encoding and decoding."""

    columns: list[Column]
    library: str
    #: Each column's entries in the matrix, a list of index arrays (one per part):
    #: the parts are grouped by kind, so that each kind's likelihood is a piece.
    entries: list[list[np.ndarray]] = field(default_factory=list)
    #: (column, part) of each part, in the matrix's order.
    order: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def fit(cls, X: Any, column_types: Mapping | None = None) -> Table:
        """Infer (or take) each column's type from X and learn its encoding."""
        reader = _reader(X)
        column_types = dict(column_types or {})
        unknown = [name for name in column_types if name not in reader.names]
        if unknown:
            raise ValueError(
                f"column_types names columns that X does not have: {unknown}; X's "
                f"columns are {list(reader.names)}."
            )
        bad = {n: k for n, k in column_types.items() if k not in KINDS}
        if bad:
            raise ValueError(
                f"column_types gives unknown types {bad}; each must be one of "
                f"{sorted(KINDS)}."
            )
        columns = [
            _fit_column(name, reader, column_types.get(name)) for name in reader.names
        ]
        parts = [(j, p) for j, c in enumerate(columns) for p in range(len(c.parts))]
        order = sorted(
            parts, key=lambda jp: _MATRIX_ORDER.index(columns[jp[0]].parts[jp[1]][0])
        )
        entries: list[list] = [[None] * len(c.parts) for c in columns]
        at = 0
        for j, p in order:
            width = columns[j].parts[p][1]
            entries[j][p] = np.arange(at, at + width)
            at += width
        return cls(columns, reader.library, entries, order)

    # ------------------------------------------------------------------ describing

    @property
    def kinds(self) -> dict:
        """Each column's type, by name, in the frame's order."""
        return {c.name: c.kind for c in self.columns}

    @property
    def width(self) -> int:
        """Entries per row in the model's matrix."""
        return sum(width for c in self.columns for _, width in c.parts)

    def column_models(self) -> tuple[ColumnModel, ...]:
        """Each part's likelihood, in the matrix's order."""
        models = []
        for j, p in self.order:
            column = self.columns[j]
            kind, width = column.parts[p]
            models.append(ColumnModel(KINDS[kind], width, column.shift, column.scale))
        return tuple(models)

    def first_entries(self) -> np.ndarray:
        """Each column's first entry in the matrix (its block's, if it has one):
        missing exactly where the column's cell is."""
        return np.array([parts[0][0] for parts in self.entries])

    def entry_columns(self) -> np.ndarray:
        """The frame's column (its index) of each entry of the matrix."""
        out = np.empty(self.width, dtype=np.intp)
        for j, parts in enumerate(self.entries):
            for where in parts:
                out[where] = j
        return out

    # -------------------------------------------------------------------- encoding

    def encode(self, X: Any) -> np.ndarray:
        """X as the model's float64 matrix, NaN where a cell is missing."""
        reader = _reader(X, names=[c.name for c in self.columns])
        out = np.empty((reader.n_rows, self.width))
        for column, parts in zip(self.columns, self.entries, strict=True):
            values, missing = reader.column(column.name)
            for where, encoded in zip(
                parts, _encode(column, values, missing), strict=True
            ):
                out[:, where] = encoded
        return out

    def read_given(self, given: Any, n_rows: int) -> dict:
        """Values given for some columns, as ``{name: (values, missing)}``.

        ``given`` is a frame of ``n_rows`` rows holding some of the fitted columns
        (a missing cell: not given), or a mapping from column names to one value
        for every row.
        """
        names = [c.name for c in self.columns]
        if isinstance(given, Mapping):
            out = {}
            for name, value in given.items():
                if _is_missing(value):
                    raise ValueError(
                        f"The value given for column {name!r} is missing ({value!r}); "
                        "give a value, or leave the column out to draw it."
                    )
                values = np.empty(n_rows, dtype=object)
                values[:] = [value] * n_rows
                out[name] = (values, np.zeros(n_rows, dtype=bool))
        else:
            reader = _reader(given)
            if reader.n_rows != n_rows:
                raise ValueError(
                    f"The frame of conditions has {reader.n_rows} rows; n_samples is "
                    f"{n_rows}: give one row of conditions per sample."
                )
            out = {name: reader.column(name) for name in reader.names}
        unknown = [name for name in out if name not in names]
        if unknown:
            raise ValueError(
                f"Conditions name columns the model was not fitted on: {unknown}; its "
                f"columns are {names}."
            )
        return out

    def encode_given(self, given: Mapping, n_rows: int) -> np.ndarray:
        """The matrix of ``n_rows`` rows with the ``given`` columns (as
        :meth:`read_given` gives them) and NaN elsewhere."""
        out = np.full((n_rows, self.width), np.nan)
        for column, parts in zip(self.columns, self.entries, strict=True):
            if column.name in given:
                encoded = _encode(column, *given[column.name])
                for where, values in zip(parts, encoded, strict=True):
                    out[:, where] = values
        return out

    def missing(self, X: Any) -> np.ndarray:
        """Which cells of X are missing, (n_rows, n_columns)."""
        reader = _reader(X, names=[c.name for c in self.columns])
        return np.column_stack([reader.column(c.name)[1] for c in self.columns])

    def decode(
        self,
        values: np.ndarray,
        given: Any = None,
        columns: np.ndarray | None = None,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> Any:
        """The matrix ``values`` as a frame of the fitted library and dtypes.

        A categorical column takes its most probable level (the largest entry of
        its block), a binary one its level at 0.5 and above, a count or integer
        column its value rounded into the range seen in fit; NaN entries give
        missing cells. With ``given`` (a frame of the fitted columns, whose index
        is kept, or some columns as :meth:`read_given` gives them), its observed
        cells are kept exactly and only its missing ones come from ``values``.
        ``columns`` (a mask) selects the columns given back, and ``extra`` adds
        columns after them.
        """
        index = None
        if given is not None and not isinstance(given, Mapping):
            index = given.index if self.library == "pandas" else None
            reader = _reader(given, names=[c.name for c in self.columns])
            given = {c.name: reader.column(c.name) for c in self.columns}
        data, kept = {}, []
        for j, (column, parts) in enumerate(
            zip(self.columns, self.entries, strict=True)
        ):
            if columns is not None and not columns[j]:
                continue
            decoded = _decode(column, [values[:, where] for where in parts])
            if given is not None and column.name in given:
                observed, missing = given[column.name]
                decoded = np.where(missing, decoded, observed)
            data[column.name] = decoded
            kept.append(column)
        return _WRITERS[self.library](data, kept, index, dict(extra or {}))


# ---------------------------------------------------------------- one column


def _fit_column(name: Hashable, reader: _Reader, kind: str | None) -> Column:
    values, missing = reader.column(name)
    dtype, family = reader.dtype(name), reader.family(name)
    observed = values[~missing]
    if not observed.size and kind is None:
        # Nothing observed: one entry, always missing (the estimator warns of it);
        # a non-numeric column's only "level" decodes to a missing cell.
        if family in ("integer", "float"):
            return Column(name, "continuous", dtype, family == "integer", empty=True)
        return Column(name, "categorical", dtype, levels=(None,), empty=True)
    if kind is None:
        kind = _infer_kind(family, observed)
    column = Column(name, kind, dtype, integer=family in ("integer", "bool"))
    if kind in ("categorical", "binary"):
        levels = reader.levels(name) if family == "categorical" else None
        if levels is None:
            levels = _sorted_unique(observed)
        if kind == "binary" and len(levels) > 2:
            raise ValueError(
                f"Column {name!r} is binary by column_types but holds "
                f"{len(levels)} distinct values; it must hold at most 2."
            )
        if kind == "binary" and family == "bool":
            levels = (False, True)
        elif kind == "binary" and len(levels) < 2:
            column.kind = "categorical"  # one value: a binary column's other is unknown
        if len(levels) > MAX_LEVELS:
            raise ValueError(
                f"Column {name!r} has {len(levels)} distinct values, more than "
                f"{MAX_LEVELS} levels a categorical column may have: it looks like "
                "an identifier. Drop it, or declare it continuous or count with "
                "column_types if its values are numbers."
            )
        column.levels = tuple(levels)
        return column
    numbers_ = _as_numbers(name, observed, kind)
    if kind == "count":
        _check_counts(name, numbers_)
    if numbers_.size:
        column.low, column.high = float(numbers_.min()), float(numbers_.max())
    if kind == "continuous":
        column.atoms = _atoms(numbers_)
        numbers_ = numbers_[~np.isin(numbers_, column.atoms)]  # the value part's
    if numbers_.size:
        column.shift = float(numbers_.mean())
        std = float(numbers_.std())
        column.scale = std if std > 0 else 1.0
    column.integer = column.integer or kind == "count"
    return column


def _atoms(values: np.ndarray) -> tuple:
    """The values that hold at least MIN_ATOM_SHARE of a column, in at least
    MIN_ATOM_ROWS rows (at most MAX_ATOMS, the most frequent), unless they are all
    of its values."""
    distinct, counts = np.unique(values, return_counts=True)
    frequent = np.argsort(-counts, kind="stable")[:MAX_ATOMS]
    enough = max(MIN_ATOM_SHARE * len(values), MIN_ATOM_ROWS)
    frequent = frequent[counts[frequent] >= enough]
    if counts[frequent].sum() == len(values):  # nothing else left to model
        frequent = frequent[:0]
    return tuple(float(v) for v in distinct[frequent])


def _infer_kind(family: str, observed: np.ndarray) -> str:
    """The rule for a column's type from its dtype family and observed values."""
    if family == "bool":
        return "binary"
    if family in ("categorical", "string", "object"):
        return "categorical"
    if family == "float":
        return "continuous"
    # Integers: by their distinct values.
    distinct = np.unique(observed.astype(np.float64))
    if set(distinct.tolist()) == {0.0, 1.0}:
        return "binary"
    if distinct.size <= MAX_INTEGER_LEVELS:
        return "categorical"
    return "continuous"


def _sorted_unique(values: np.ndarray) -> tuple:
    unique = list(dict.fromkeys(values.tolist()))
    try:
        return tuple(sorted(unique))
    except TypeError:  # values of several types: in order of appearance
        return tuple(unique)


def _as_numbers(name: Hashable, values: np.ndarray, kind: str) -> np.ndarray:
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"Column {name!r} is {kind}, but holds values that are not numbers "
            f"(e.g. {values[0]!r}); declare it categorical with column_types."
        ) from None


def _check_counts(name: Hashable, values: np.ndarray) -> None:
    if values.size and (values.min() < 0 or not np.all(values == np.round(values))):
        raise ValueError(
            f"Column {name!r} is a count: it must hold non-negative integers; "
            "declare it continuous with column_types."
        )


def _encode(column: Column, values: np.ndarray, missing: np.ndarray) -> list:
    """One column's entries in the matrix: an (n_rows, width) array per part."""
    n = len(values)
    if column.empty:
        return [np.full((n, width), np.nan) for _, width in column.parts]
    if column.kind in ("categorical", "binary"):
        index = {level: i for i, level in enumerate(column.levels)}
        codes = np.full(n, -1)
        unknown = []
        for row in np.flatnonzero(~missing):
            code = index.get(values[row], -1)
            if code < 0:
                unknown.append(values[row])
            codes[row] = code
        if unknown:
            shown = list(dict.fromkeys(unknown))[:5]
            raise ValueError(
                f"Column {column.name!r} holds values not seen in fit: {shown}; the "
                f"model knows its levels {list(column.levels)[:20]}."
            )
        if column.kind == "binary":
            out = codes.astype(np.float64).reshape(n, 1)
            out[missing] = np.nan
            return [out]
        return [_one_hot(codes, missing, len(column.levels))]
    numbers_ = np.full(n, np.nan)
    numbers_[~missing] = _as_numbers(column.name, values[~missing], column.kind)
    if column.kind == "count":
        _check_counts(column.name, numbers_[~missing])
    value = ((numbers_ - column.shift) / column.scale).reshape(n, 1)
    if not column.atoms:
        return [value]
    # Which atom (or the last level: none); the value part holds the others only.
    codes = np.full(n, len(column.atoms))
    for i, atom in enumerate(column.atoms):
        codes[numbers_ == atom] = i
    value[codes < len(column.atoms)] = np.nan
    return [_one_hot(codes, missing, len(column.atoms) + 1), value]


def _one_hot(codes: np.ndarray, missing: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(codes), width))
    rows = np.flatnonzero(~missing)
    out[rows, codes[rows]] = 1.0
    out[missing] = np.nan
    return out


def _decode(column: Column, parts: list) -> np.ndarray:
    """One column's values from its parts' entries: an object array (None where
    the entries are NaN), or numbers (NaN there)."""
    if column.kind in ("categorical", "binary"):
        (entries,) = parts
        levels = np.empty(len(column.levels), dtype=object)
        levels[:] = column.levels
        if column.kind == "categorical":
            values = levels[np.argmax(np.nan_to_num(entries, nan=-1.0), axis=1)]
        else:
            values = levels[(entries[:, 0] >= 0.5).astype(int)]
        values[np.isnan(entries).any(axis=1)] = None
        return values
    values = parts[-1][:, 0] * column.scale + column.shift
    if column.integer:
        values = np.clip(np.round(values), column.low, column.high)
    if column.atoms:
        block = parts[0]
        code = np.argmax(np.nan_to_num(block, nan=-1.0), axis=1)
        is_atom = code < len(column.atoms)
        values = np.where(
            is_atom,
            np.asarray(column.atoms)[np.minimum(code, len(column.atoms) - 1)],
            values,
        )
        values[np.isnan(block).any(axis=1)] = np.nan
    return values


# ---------------------------------------------------------- frames, read and written


class _Reader:
    """What the table reads of a frame, whatever its library."""

    library: str
    names: list
    n_rows: int

    def column(self, name) -> tuple[np.ndarray, np.ndarray]:
        """The column's values (numbers as float64 where numeric, else objects)
        and the mask of its missing cells."""
        raise NotImplementedError

    def dtype(self, name) -> Any:
        raise NotImplementedError

    def family(self, name) -> str:
        """One of "bool", "integer", "float", "categorical", "string", "object"."""
        raise NotImplementedError

    def levels(self, name) -> tuple | None:
        """A categorical column's declared levels, in order."""
        raise NotImplementedError

    def is_numeric(self, name) -> bool:
        return self.family(name) in ("integer", "float")


class _PandasReader(_Reader):
    library = "pandas"

    def __init__(self, X, names=None):
        import pandas as pd

        self.pd, self.X = pd, X
        self.names = list(X.columns)
        self.n_rows = len(X)
        _check_names(self.names, names)

    def column(self, name):
        s = self.X[name]
        missing = s.isna().to_numpy()
        if self.family(name) in ("integer", "float", "bool"):
            values = s.to_numpy(dtype=np.float64, na_value=np.nan)
            if self.family(name) == "bool":
                values = values.astype(object)
                values[~missing] = values[~missing].astype(bool)
            return values, missing
        return s.to_numpy(dtype=object), missing

    def dtype(self, name):
        return self.X[name].dtype

    def family(self, name):
        dtype = self.X[name].dtype
        types = self.pd.api.types
        if types.is_bool_dtype(dtype):
            return "bool"
        if isinstance(dtype, self.pd.CategoricalDtype):
            return "categorical"
        if types.is_integer_dtype(dtype):
            return "integer"
        if types.is_float_dtype(dtype):
            return "float"
        if types.is_string_dtype(dtype) and not types.is_object_dtype(dtype):
            return "string"
        return "object"

    def levels(self, name):
        dtype = self.X[name].dtype
        if isinstance(dtype, self.pd.CategoricalDtype):
            return tuple(dtype.categories.tolist())
        return None


class _PolarsReader(_Reader):
    library = "polars"

    def __init__(self, X, names=None):
        import polars as pl

        self.pl, self.X = pl, X
        self.names = list(X.columns)
        self.n_rows = X.height
        _check_names(self.names, names)

    def column(self, name):
        s = self.X.get_column(name)
        missing = s.is_null().to_numpy()
        family = self.family(name)
        if family == "float":
            missing = missing | s.is_nan().fill_null(False).to_numpy()
        if family in ("integer", "float"):
            return s.cast(self.pl.Float64).to_numpy().astype(np.float64), missing
        values = np.empty(len(s), dtype=object)
        values[:] = s.to_list()
        return values, missing

    def dtype(self, name):
        return self.X.schema[name]

    def family(self, name):
        dtype = self.X.schema[name]
        pl = self.pl
        if dtype == pl.Boolean:
            return "bool"
        if isinstance(dtype, (pl.Categorical, pl.Enum)) or dtype in (
            pl.Categorical,
            pl.Enum,
        ):
            return "categorical"
        if dtype.is_integer():
            return "integer"
        if dtype.is_float():
            return "float"
        if dtype == pl.String:
            return "string"
        return "object"

    def levels(self, name):
        dtype = self.X.schema[name]
        if isinstance(dtype, self.pl.Enum):
            return tuple(dtype.categories.to_list())
        return None


def _check_names(names: list, expected: list | None) -> None:
    if expected is not None and names != list(expected):
        raise ValueError(
            f"X's columns {names} are not the columns seen in fit, {list(expected)}, "
            "in that order."
        )


def _reader(X: Any, names: list | None = None) -> _Reader:
    if is_pandas_df(X):
        return _PandasReader(X, names)
    if is_polars_df(X):
        return _PolarsReader(X, names)
    raise TypeError(
        "The model was fitted on a data frame with non-numeric columns; pass a "
        f"pandas or polars DataFrame with the same columns, not {type(X).__name__}."
    )


def _is_missing(value: Any) -> bool:
    """Whether one value marks a missing cell (None, NaN, pd.NA, pd.NaT)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, float) and math.isnan(value)


def _missing_values(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return np.array([v is None for v in values], dtype=bool)
    return np.isnan(values)


def _pandas_frame(data: dict, columns: list[Column], index, extra: dict):
    import pandas as pd

    series = {}
    for column in columns:
        values = data[column.name]
        missing = _missing_values(values)
        dtype = column.dtype
        if missing.any() and isinstance(dtype, np.dtype) and dtype.kind in "biu":
            # A NumPy dtype cannot hold a missing value: its nullable kin can.
            dtype = "boolean" if dtype.kind == "b" else dtype.name.capitalize()
        if values.dtype != object and column.integer:
            filled = np.where(missing, 0, values).astype(np.int64)
            values = pd.array(filled, dtype="Int64")
            values[missing] = pd.NA
        elif values.dtype == object and missing.any():
            values = values.copy()
            values[missing] = np.nan  # pandas' missing object, as its readers give
        series[column.name] = pd.Series(values, index=index).astype(dtype)
    for name, values in extra.items():
        series[name] = pd.Series(values, index=index)
    return pd.DataFrame(series, index=index)


def _polars_frame(data: dict, columns: list[Column], index, extra: dict):
    import polars as pl

    series = []
    for column in columns:
        values = data[column.name]
        if values.dtype == object:
            s = pl.Series(str(column.name), values.tolist())
        else:
            s = pl.Series(str(column.name), values).fill_nan(None)
        series.append(s.cast(column.dtype))
    series += [pl.Series(name, values) for name, values in extra.items()]
    return pl.DataFrame(series)


_WRITERS = {"pandas": _pandas_frame, "polars": _polars_frame}
