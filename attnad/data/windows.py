"""Time-series windows per entity, with each entity's recent steps carried from batch to batch.

Rows are steps. A file may hold many entities (machines, servers: `data.group_column`), in any
order; within an entity the steps are ordered by `data.time_column`. Ordering rules:

- Rows are ordered by (entity, time) with a stable sort: steps with the same timestamp stay in
  input order and become consecutive steps (nothing is merged or dropped).
- Gaps and irregular sampling are not filled in: a step is a row, the time column only orders
  rows. A long gap therefore looks like two adjacent steps to the model.
- A missing or unparseable timestamp is an error naming the row (0-based, header excluded).

Windows have `window` steps and end every `stride` steps of an entity (ends at window - 1,
window - 1 + stride, ...; at the end of the series one more window ends at its last step), so
every step is covered by about window / stride windows; a series shorter than a window gets one
left-padded window. A row's error is the mean over the windows covering it.

Streaming: `WindowStream.push` takes a batch, appends each entity's rows to that entity's buffer
and evaluates windows in fixed groups of `group` consecutive windows of one entity. A group is
evaluated only once all its windows are complete (or at `finish`), so what the model sees, and
therefore every score, is the same whatever the batch size. A row is released once no window
that is still to come can cover it (the last `window` rows of an entity wait for the end of the
input); each entity keeps at most about `group * stride + window` rows.

    stream = WindowStream(n_features=3, window=64, stride=16, group=32, evaluate=fn)
    for keys, x, miss, rows in batches: done = stream.push(keys, x, miss, rows)
    done += stream.finish()   # [(entity, rows, errors (n, F))]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from attnad.data.io import DEFAULT_CSV, CsvFormat, iter_batches
from attnad.data.schema import to_epoch_seconds, to_float
from attnad.errors import DataError

MISSING_ENTITY = ""  # rows whose group value is missing form one entity of their own


# ---- columns -----------------------------------------------------------------------------------
def read_table(path, batch_size: int = 65_536, csv: CsvFormat = DEFAULT_CSV) -> pa.Table:
    """The whole file as one table: training on a series needs its steps in order, not a sample."""
    batches = list(iter_batches(path, batch_size, csv))
    if not batches:
        raise DataError(f"{path}: the file has a header but no rows")
    return pa.Table.from_batches(batches).combine_chunks()


def entity_keys(arr: pa.Array | pa.ChunkedArray | None, n: int) -> np.ndarray:
    """Entity of each row as text (object array); one entity when there is no group column."""
    if arr is None:
        return np.full(n, MISSING_ENTITY, dtype=object)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    out = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
    out[pd.isna(out)] = MISSING_ENTITY
    return out


def time_kind(arr: pa.Array | pa.ChunkedArray) -> str:
    """'number' (steps, epoch numbers) or 'datetime', decided once on the training data."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if pa.types.is_temporal(t):
        return "datetime"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    values, _ = to_float(arr)
    present = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return "number" if np.all(np.isfinite(values[present])) else "datetime"


def parse_times(arr: pa.Array | pa.ChunkedArray, kind: str, column: str, source: str,
                first_row: int = 0) -> np.ndarray:
    """Times as float64 (seconds for datetimes); the first missing or bad value is an error."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    values = (to_float(arr) if kind == "number" else to_epoch_seconds(arr))[0]
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raw = arr[i].as_py()
        what = "is missing" if raw is None or str(raw).strip() == "" \
            else f"value {str(raw)[:40]!r} is not a valid {'number' if kind == 'number' else 'time'}"
        raise DataError(f"{source}: row {first_row + i} (counting from 0): time column {column!r} "
                        f"{what}; every row needs a time in time-series mode")
    return values


def series_order(keys: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Row order by (entity, time), stable: equal timestamps keep their input order."""
    codes, _ = pd.factorize(keys, sort=False)
    return np.lexsort((times, codes))  # lexsort is stable; the last key is the primary one


def recent_rows(keys_sorted: np.ndarray, max_rows: int) -> np.ndarray:
    """Positions to keep when a sorted training table is too big: each entity's latest rows,
    in proportion to its size, so every kept entity is still one unbroken series."""
    n = len(keys_sorted)
    if n <= max_rows:
        return np.arange(n)
    starts = np.flatnonzero(np.r_[True, keys_sorted[1:] != keys_sorted[:-1]])
    ends = np.r_[starts[1:], n]
    keep = []
    for s, e in zip(starts, ends):
        k = max(1, int(round((e - s) * max_rows / n)))
        keep.append(np.arange(e - k, e))
    return np.concatenate(keep)


# ---- streaming windows -------------------------------------------------------------------------
@dataclass
class Group:
    """Windows of one entity evaluated together: x, miss (G, W, F), valid (G, W)."""
    entity: str
    x: np.ndarray
    miss: np.ndarray
    valid: np.ndarray
    positions: np.ndarray  # (G, W) buffer positions, -1 on padding


@dataclass
class _Entity:
    x: np.ndarray  # (L, F) float32, scaled
    miss: np.ndarray  # (L, F) bool
    rows: np.ndarray  # (L,) row ids
    err_sum: np.ndarray  # (L, K) float64: errors of the windows evaluated so far
    err_cnt: np.ndarray  # (L, K) int32: how many windows gave each cell an error
    start: int = 0  # entity step index of buffer position 0
    n: int = 0  # steps seen
    next_window: int = 0  # first window not evaluated yet
    done: bool = field(default=False)


Evaluate = Callable[[Group], tuple[np.ndarray, np.ndarray]]  # -> errors, has_error (G, W, K)


class WindowStream:
    def __init__(self, n_features: int, window: int, stride: int, group: int, evaluate: Evaluate,
                 n_outputs: int | None = None):
        self.F, self.W, self.S, self.G = n_features, window, stride, group
        self.K = n_outputs or n_features  # errors per step that evaluate returns
        self.evaluate = evaluate
        self.entities: dict[str, _Entity] = {}

    def _end(self, k: np.ndarray | int):
        return self.W - 1 + np.asarray(k) * self.S  # entity step index where window k ends

    def push(self, keys: np.ndarray, x: np.ndarray, miss: np.ndarray, rows: np.ndarray) -> list:
        """Add rows (time-ordered within each entity); return the rows now final."""
        out = []
        codes, uniq = pd.factorize(keys, sort=False)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
        for j, key in enumerate(uniq):
            idx = order[bounds[j]:bounds[j + 1]]
            ent = self.entities.get(key)
            if ent is None:
                ent = self.entities[key] = _Entity(
                    np.zeros((0, self.F), np.float32), np.zeros((0, self.F), bool),
                    np.zeros(0, np.int64), np.zeros((0, self.K)), np.zeros((0, self.K), np.int32))
            ent.x = np.concatenate([ent.x, x[idx].astype(np.float32)])
            ent.miss = np.concatenate([ent.miss, miss[idx]])
            ent.rows = np.concatenate([ent.rows, rows[idx]])
            ent.err_sum = np.concatenate([ent.err_sum, np.zeros((len(idx), self.K))])
            ent.err_cnt = np.concatenate([ent.err_cnt, np.zeros((len(idx), self.K), np.int32)])
            ent.n += len(idx)
            # evaluate every complete group of G windows
            while self._end(ent.next_window + self.G - 1) <= ent.n - 1:
                ks = np.arange(ent.next_window, ent.next_window + self.G)
                self._run(key, ent, self._end(ks))
                ent.next_window += self.G
            out += self._release(key, ent, final=False)
        return out

    def finish(self) -> list:
        """End of input: evaluate every entity's remaining windows and release all its rows."""
        out = []
        for key, ent in self.entities.items():
            last = ent.n - 1
            ks = np.arange(ent.next_window, max(ent.next_window, (last - self.W + 1) // self.S + 1))
            ends = list(self._end(ks))
            covered = ends[-1] if ends else (int(self._end(ent.next_window - 1))
                                             if ent.next_window else -1)
            if covered < last:
                ends.append(last)  # the last steps get a window ending on the series' last step
            if ends:
                self._run(key, ent, np.asarray(ends, dtype=np.int64))
            out += self._release(key, ent, final=True)
        self.entities = {}
        return out

    def _run(self, key: str, ent: _Entity, ends: np.ndarray) -> None:
        steps = ends[:, None] - self.W + 1 + np.arange(self.W)  # (G, W) entity step indices
        valid = steps >= 0
        pos = np.where(valid, steps - ent.start, -1)
        if (pos[valid] < 0).any() or (pos >= len(ent.x)).any():
            raise AssertionError("window reaches outside the carried rows")  # a bug, not input
        take = np.maximum(pos, 0)
        x = np.where(valid[..., None], ent.x[take], 0.0).astype(np.float32)  # (G, W, F)
        miss = ent.miss[take] | ~valid[..., None]
        err, has = self.evaluate(Group(key, x, miss, valid, pos))
        flat = pos[valid]
        np.add.at(ent.err_sum, flat, np.where(has, err, 0.0)[valid])
        np.add.at(ent.err_cnt, flat, has[valid].astype(np.int32))

    def _release(self, key: str, ent: _Entity, final: bool) -> list:
        """Hand out rows no future window covers; keep the rest as context for the next batch."""
        # rows a regular window still to come may cover, and the last W rows, which the window
        # ending on the series' last step will cover if the input ends here
        keep_from = ent.n if final else max(0, min(int(self._end(ent.next_window)) - self.W + 1,
                                                   ent.n - self.W))
        cut = keep_from - ent.start
        if cut <= 0:
            return []
        with np.errstate(invalid="ignore", divide="ignore"):
            err = np.where(ent.err_cnt[:cut] > 0, ent.err_sum[:cut] / ent.err_cnt[:cut], np.nan)
        done = [(key, ent.rows[:cut], err)]
        ent.x, ent.miss, ent.rows = ent.x[cut:], ent.miss[cut:], ent.rows[cut:]
        ent.err_sum, ent.err_cnt = ent.err_sum[cut:], ent.err_cnt[cut:]
        ent.start = keep_from
        return done
