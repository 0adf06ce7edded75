import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from attnad.config import DataConfig
from attnad.data.schema import coerce_array, infer_schema
from attnad.errors import DataError


def _roles(table, **cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = infer_schema(table, DataConfig(**cfg))
    return {c.name: c.role for c in s.columns}


def test_roles_from_arrow_types(table):
    df, _ = table
    roles = _roles(pa.Table.from_pandas(df, preserve_index=False), id_columns=["id"])
    assert roles == {"id": "id", "a": "numeric", "b": "numeric", "c": "numeric",
                     "count": "numeric", "colour": "categorical", "shape": "categorical",
                     "flag": "boolean", "ts": "datetime"}


def test_roles_from_csv_text():
    t = pa.table({
        "num": ["1.5", "2", "", "3e2"] * 25,
        "boo": ["true", "false", "True", None] * 25,
        "when": ["2026-01-01 10:00", "2026-01-02 11:30", "2026-01-03", None] * 25,
        "cat": ["x", "y", "z", "x"] * 25,
        "uid": [f"user{i}" for i in range(100)],
        "empty": pa.array([None] * 100, type=pa.string()),
        "y": ["0", "1", "0", "0"] * 25,
    })
    roles = _roles(t, label_column="y", max_categories=10)
    assert roles == {"num": "numeric", "boo": "boolean", "when": "datetime", "cat": "categorical",
                     "uid": "excluded", "empty": "excluded", "y": "label"}


def test_configured_roles_win_and_must_exist():
    t = pa.table({"code": [1, 2, 3, 1], "v": [1.0, 2.0, 3.0, 4.0]})
    assert _roles(t, categorical=["code"])["code"] == "categorical"
    with pytest.raises(DataError, match="nope"):
        infer_schema(t, DataConfig(id_columns=["nope"]))


def test_unparseable_cells_become_missing_and_are_counted():
    vals, bad = coerce_array(pa.array(["1", "x", None, "2.5", "inf"]), "numeric")
    v = vals.to_numpy(zero_copy_only=False)
    assert bad == 1 and v[0] == 1 and np.isnan(v[1]) and np.isnan(v[2]) and np.isinf(v[4])


def test_check_input_names_missing_columns(fitted):
    with pytest.raises(DataError, match="missing column.*\\bc\\b"):
        fitted.schema_.check_input(["id", "a", "b", "count", "colour", "shape", "flag", "ts"], "f")
    warn = fitted.schema_.check_input(
        ["extra", "ts", "flag", "shape", "colour", "count", "c", "b", "a"], "f")
    assert warn and "extra" in warn[0]


def test_a_third_value_makes_a_yes_no_column_categorical():
    """yes / no / unknown is three categories, not a boolean with invalid cells."""
    n = 300
    vals = np.array(["yes", "no"] * (n // 2), dtype=object)
    vals[::40] = "unknown"  # under 5% of the cells
    t = pa.table({"subscribed": vals, "x": np.arange(n, dtype=float)})
    s = infer_schema(t, DataConfig())
    assert s.role_of("subscribed") == "categorical"
    _, invalid = s.coerce(t)
    assert invalid == {}
    assert infer_schema(pa.table({"b": ["yes", "no"] * 50}), DataConfig()).role_of("b") == "boolean"
