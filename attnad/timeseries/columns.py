"""The columns a series model reads: which are signals, and each row's entity, time and values.

Only numeric and boolean columns are modelled as signals; categorical and datetime columns are
copied to the output but not modelled (a warning says which).

    schema, features = series_schema(table, cfg.data, "train.csv")
    keys, times, raw, invalid, kind = read_columns(table, schema, cfg.data, None, "train.csv")
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa

from attnad.data.schema import Column, Schema, infer_schema
from attnad.data.windows import entity_keys, parse_times, time_kind
from attnad.errors import DataError


def series_schema(table: pa.Table, data_cfg, source: str) -> tuple[Schema, list[str]]:
    """Column roles as in tables; only numeric and boolean columns are modelled as signals."""
    schema = infer_schema(table, data_cfg, source)
    cols = []
    for c in schema.columns:
        if c.role in ("categorical", "datetime"):
            warnings.warn(f"{source}: column {c.name!r} ({c.role}) is not modelled in time-series "
                          "mode (only numeric and boolean signals are)", stacklevel=3)
            c = Column(c.name, "excluded", f"{c.role}: not modelled in time-series mode")
        cols.append(c)
    schema = Schema(cols)
    features = [c.name for c in schema.modelled]
    if not features:
        raise DataError(f"{source}: no numeric or boolean column to model as a signal")
    context = data_cfg.context_columns
    missing = [c for c in context if c not in features]
    if missing:
        raise DataError(f"{source}: data.context_columns {missing} are not numeric or boolean "
                        "signals of the file")
    if not set(features) - set(context):
        raise DataError(f"{source}: every signal is in data.context_columns; at least one must "
                        "be scored")
    return schema, features


def read_columns(table, schema: Schema, state_or_cfg, kind: str | None, source: str,
                 first_row: int = 0, decimal: str = "."):
    """Entity keys, times, raw signals (n, F) float64 with NaN, invalid-cell counts, time kind.
    `decimal`: the decimal mark of numbers in text cells (data.decimal)."""
    names = table.schema.names
    tcol, gcol = state_or_cfg.time_column, state_or_cfg.group_column
    for col, what in ((tcol, "data.time_column"), (gcol, "data.group_column")):
        if col and col not in names:
            raise DataError(f"{source}: column {col!r} ({what}) is not in the file")
    tarr = table.column(names.index(tcol))
    kind = kind or time_kind(tarr)
    times = parse_times(tarr, kind, tcol, source, first_row)
    keys = entity_keys(table.column(names.index(gcol)) if gcol else None, table.num_rows)
    typed, invalid = schema.coerce(table, decimal)
    raw = np.empty((table.num_rows, len(typed)), dtype=np.float64)
    for j, (name, arr) in enumerate(typed.items()):
        v = arr.to_numpy(zero_copy_only=False)
        if schema.role_of(name) == "boolean":  # codes: 0/1, -1 missing
            v = np.where(v < 0, np.nan, v.astype(np.float64))
        raw[:, j] = v
    return keys, times, raw, invalid, kind
