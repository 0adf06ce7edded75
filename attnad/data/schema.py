"""Column roles: inferred from training data (or configured), stored in the model, checked on scoring.

Roles: numeric, boolean, categorical, datetime (modelled); id, label, excluded, time, group
(carried, never modelled). CSV text is typed here, per batch: a cell that does not parse as its
column's type becomes missing and is counted as invalid, and the row is still scored.

    schema = infer_schema(table, cfg.data)
    columns, invalid = schema.coerce(batch)   # {name: typed Arrow array}, {name: count}
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from attnad.config import DataConfig
from attnad.errors import DataError

MODELLED = ("numeric", "boolean", "categorical", "datetime")
TRUE_TOKENS = {"true", "t", "yes", "y"}
FALSE_TOKENS = {"false", "f", "no", "n"}
PARSE_SHARE = 0.95  # a text column is numeric/boolean/datetime when this share of cells parse
DECIMAL_COMMA = r"^\s*[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+\s*$"  # 3,14 and 1.234,5: a number
# written with a decimal comma (data.decimal ",")


@dataclass
class Column:
    name: str
    role: str
    note: str = ""  # why the role was chosen when it was not obvious


@dataclass
class Schema:
    columns: list[Column] = field(default_factory=list)

    @property
    def modelled(self) -> list[Column]:
        return [c for c in self.columns if c.role in MODELLED]

    def role_of(self, name: str) -> str | None:
        for c in self.columns:
            if c.name == name:
                return c.role
        return None

    def names(self, role: str) -> list[str]:
        return [c.name for c in self.columns if c.role == role]

    def to_dict(self) -> dict:
        return {"columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        return cls([Column(**c) for c in d["columns"]])

    def check_input(self, available: list[str], source: str) -> list[str]:
        """Raise naming absent trained columns; return warnings for extra ones."""
        missing = [c.name for c in self.modelled if c.name not in available]
        if missing:
            raise DataError(
                f"{source}: missing column(s) the model was trained on: {', '.join(missing)}"
            )
        known = {c.name for c in self.columns}
        extra = [n for n in available if n not in known]
        if extra:
            shown = ", ".join(extra[:10]) + (" ..." if len(extra) > 10 else "")
            return [f"{source}: {len(extra)} column(s) not seen in training are ignored: {shown}"]
        return []

    def coerce(self, batch: pa.RecordBatch | pa.Table,
               decimal: str = ".") -> tuple[dict[str, pa.Array], dict[str, int]]:
        """Typed arrays for the modelled columns, and how many cells failed to parse per column.
        `decimal`: the decimal mark of numbers in text cells (data.decimal)."""
        out: dict[str, pa.Array] = {}
        invalid: dict[str, int] = {}
        names = batch.schema.names
        for c in self.modelled:
            arr = batch.column(names.index(c.name))
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            typed, bad = coerce_array(arr, c.role, decimal)
            out[c.name] = typed
            if bad:
                invalid[c.name] = bad
        return out, invalid


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _decode(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr


def decimal_comma_count(arr: pa.Array) -> int:
    """How many text cells are numbers written with a decimal comma (3,14)."""
    arr = _decode(arr)
    if not _is_text(arr.type) or len(arr) == 0:
        return 0
    return int(pc.sum(pc.match_substring_regex(arr, DECIMAL_COMMA)).as_py() or 0)


def _point_decimals(arr: pa.Array) -> pa.Array:
    """Text numbers with a decimal comma rewritten with a point: 1.234,5 -> 1234.5."""
    return pc.replace_substring(pc.replace_substring(arr, ".", ""), ",", ".")


def to_float(arr: pa.Array, decimal: str = ".") -> tuple[np.ndarray, int]:
    """float64 values with NaN for missing or unparseable cells; the unparseable count.
    `decimal` is the decimal mark of numbers in text cells."""
    arr = _decode(arr)
    t = arr.type
    if decimal == "," and _is_text(t):
        arr = _point_decimals(arr)
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t) \
            or pa.types.is_decimal(t):
        vals = arr.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        return np.asarray(vals, dtype=np.float64), 0
    if _is_text(t):
        try:
            vals = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
            return np.asarray(vals, dtype=np.float64), 0
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            s = pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object)
            vals = pd.to_numeric(s.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
            bad = int(np.sum(np.isnan(vals) & s.notna().to_numpy()
                             & ~s.str.strip().str.lower().isin(["nan", ""]).to_numpy()))
            return vals, bad
    if pa.types.is_temporal(t):
        return to_epoch_seconds(arr)
    n = len(arr)
    return np.full(n, np.nan), n - arr.null_count


def to_epoch_seconds(arr: pa.Array) -> tuple[np.ndarray, int]:
    """Seconds since 1970 (NaN when missing or unparseable), whatever the input's type."""
    arr = _decode(arr)
    t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        ts = arr.cast(pa.timestamp("ns", tz=getattr(t, "tz", None)), safe=False) \
            if not pa.types.is_timestamp(t) else arr
        vals = pc.cast(ts.cast(pa.timestamp("ns", tz=getattr(ts.type, "tz", None))), pa.int64())
        out = vals.to_numpy(zero_copy_only=False).astype(np.float64) / 1e9
        out[np.asarray(ts.is_null())] = np.nan
        return out, 0
    if _is_text(t):
        s = pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object)
        parsed = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
        ns = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
        out = ns / 1e9
        out[parsed.isna().to_numpy()] = np.nan
        bad = int(np.sum(parsed.isna().to_numpy() & s.notna().to_numpy()))
        return out, bad
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return to_float(arr)
    n = len(arr)
    return np.full(n, np.nan), n - arr.null_count


def to_bool_codes(arr: pa.Array) -> tuple[np.ndarray, int]:
    """0/1 for false/true, -1 for missing or unparseable."""
    arr = _decode(arr)
    t = arr.type
    if pa.types.is_boolean(t):
        v = arr.to_numpy(zero_copy_only=False)
        out = np.where(pd.isna(v), -1, v.astype(bool).astype(np.int8) if v.dtype != object
                       else pd.Series(v).fillna(False).astype(bool).to_numpy().astype(np.int8))
        return out.astype(np.int8), 0
    if _is_text(t):
        s = pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object).str.strip().str.lower()
        out = np.full(len(s), -1, dtype=np.int8)
        out[s.isin(TRUE_TOKENS | {"1", "1.0"}).to_numpy()] = 1
        out[s.isin(FALSE_TOKENS | {"0", "0.0"}).to_numpy()] = 0
        bad = int(np.sum((out == -1) & s.notna().to_numpy()))
        return out, bad
    vals, bad = to_float(arr)
    out = np.where(np.isnan(vals), -1, (vals != 0).astype(np.int8)).astype(np.int8)
    return out, bad


def to_text(arr: pa.Array) -> pa.Array:
    arr = _decode(arr)
    if _is_text(arr.type):
        return arr
    return arr.cast(pa.string())


def coerce_array(arr: pa.Array, role: str, decimal: str = ".") -> tuple[pa.Array, int]:
    if role == "numeric":
        vals, bad = to_float(arr, decimal)
        return pa.array(vals, type=pa.float64()), bad
    if role == "datetime":
        vals, bad = to_epoch_seconds(arr)
        return pa.array(vals, type=pa.float64()), bad
    if role == "boolean":
        codes, bad = to_bool_codes(arr)
        return pa.array(codes, type=pa.int8()), bad
    return to_text(arr), 0


def _parse_share(arr: pa.Array, kind: str, decimal: str = ".") -> float:
    present = len(arr) - arr.null_count
    if _is_text(arr.type):
        present -= pc.sum(pc.equal(pc.utf8_trim_whitespace(arr), "")).as_py() or 0
    if present == 0:
        return 0.0
    if kind == "numeric":
        vals, _ = to_float(arr, decimal)
        ok = int(np.sum(~np.isnan(vals)))
    elif kind == "decimal comma":
        ok = decimal_comma_count(arr)
    elif kind == "boolean":
        s = pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object).str.strip().str.lower()
        ok = int(s.isin(TRUE_TOKENS | FALSE_TOKENS).sum())
    else:
        s = pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object)
        looks_like_date = s.dropna().str.contains(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}",
                                                  regex=True)
        if looks_like_date.mean() < PARSE_SHARE:
            return 0.0
        vals, _ = to_epoch_seconds(arr)
        ok = int(np.sum(~np.isnan(vals)))
    return ok / present


def _first_comma_number(arr: pa.Array) -> str:
    hits = pc.filter(arr, pc.fill_null(pc.match_substring_regex(arr, DECIMAL_COMMA), False))
    return hits[0].as_py().strip() if len(hits) else ""


def _infer_role(name: str, arr: pa.Array, n_rows: int, cfg: DataConfig, source: str) -> Column:
    arr = _decode(arr)
    t = arr.type
    present = n_rows - arr.null_count
    if present == 0:
        return Column(name, "excluded", "all cells missing")
    if name in cfg.numeric:
        return Column(name, "numeric", "configured")
    if isinstance(cfg.categorical, list) and name in cfg.categorical:
        return Column(name, "categorical", "configured")
    if pa.types.is_boolean(t):
        return Column(name, "boolean")
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return Column(name, "numeric")
    if pa.types.is_temporal(t):
        return Column(name, "datetime")
    if _is_text(t):
        if _parse_share(arr, "numeric", cfg.decimal) >= PARSE_SHARE:
            return Column(name, "numeric", "text parsed as numbers")
        if cfg.decimal == "." and _parse_share(arr, "decimal comma") >= PARSE_SHARE:
            raise DataError(f"{source}: column {name!r} holds numbers with a decimal comma "
                            f"({_first_comma_number(arr)!r}); read them as numbers with --set "
                            "data.decimal=, (or list the column in data.categorical to keep it "
                            "as text)")
        if _parse_share(arr, "boolean") == 1.0:  # a third value (yes/no/unknown): categorical
            return Column(name, "boolean", "text parsed as true/false")
        if _parse_share(arr, "datetime") >= PARSE_SHARE:
            return Column(name, "datetime", "text parsed as dates")
        n_unique = pc.count_distinct(arr).as_py()
        if cfg.categorical == "auto" and n_unique > cfg.max_categories and n_unique > 0.5 * present:
            return Column(name, "excluded", f"looks like an identifier ({n_unique} distinct values); "
                          "list it in data.id_columns to keep it quietly")
        return Column(name, "categorical")
    return Column(name, "excluded", f"unsupported type {t}")


def infer_schema(table: pa.Table, cfg: DataConfig, source: str = "data") -> Schema:
    """Decide each column's role; configured roles win over inference."""
    names = table.schema.names
    fixed = {c: "id" for c in cfg.id_columns}
    fixed.update({c: "excluded" for c in cfg.exclude})
    if cfg.label_column:
        fixed[cfg.label_column] = "label"
    if cfg.time_column:
        fixed[cfg.time_column] = "time"
    if cfg.group_column:
        fixed[cfg.group_column] = "group"
    configured = set(fixed) | set(cfg.numeric)
    if isinstance(cfg.categorical, list):
        configured |= set(cfg.categorical)
    absent = sorted(c for c in configured if c not in names)
    if absent:
        raise DataError(f"{source}: configured column(s) not in the file: {', '.join(absent)}")
    cols = []
    for name in names:
        if name in fixed:
            cols.append(Column(name, fixed[name], "configured"))
        else:
            cols.append(_infer_role(name, table.column(name).combine_chunks(), table.num_rows, cfg,
                                    source))
    schema = Schema(cols)
    if not schema.modelled:
        raise DataError(f"{source}: no column left to model (all are ids, labels, excluded or empty)")
    for c in cols:
        if c.role == "excluded" and c.note and c.note != "configured":
            warnings.warn(f"{source}: column {c.name!r} not modelled: {c.note}", stacklevel=2)
    return schema
