"""Scoring a series file in bounded memory: two passes, output rows in input order.

Pass 1 reads batches, carries each entity's recent steps into the next batch
(attnad.data.windows) and stores each row's score by row number in a temporary file; pass 2 reads
the file again and writes every row with its score, in input order. If pass 1 finds a row earlier
in time than the previous row of its entity, the input is not in time order: it then reads the
time, group and signal columns of the whole file into memory, sorts them by (entity, time),
scores, and still writes the output by streaming the original file, in input order. Sorted input
keeps memory bounded; unsorted input needs about 8 bytes per cell in memory.

    for batch, scores, contrib, invalid in scored_batches(det, "in.csv", 65_536, warnings): ...
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pyarrow.compute as pc

from attnad.data.drift import DriftCounts
from attnad.data.io import CsvFormat, iter_batches
from attnad.data.windows import series_order
from attnad.errors import DataError
from attnad.timeseries.columns import read_columns

TOP_KEEP = 64  # rows whose per-signal contributions are kept for the summary


class RowStore:
    """Per-row values (`width` floats a row) by row number in a temporary file, so pass 1 holds no
    per-row state in memory."""

    def __init__(self, width: int = 1):
        self._dir = tempfile.TemporaryDirectory(prefix="attnad-scores-")
        self._path = os.path.join(self._dir.name, "scores.f64")
        self._width = width
        self._cap = 0
        self._arr = None
        self.written = 0

    def put(self, rows: np.ndarray, values: np.ndarray) -> None:
        if not len(rows):
            return
        need = int(rows.max()) + 1
        if need > self._cap:
            cap = max(need, 2 * self._cap, 1 << 16)
            if self._arr is not None:
                self._arr.flush()
                self._arr = None
            with open(self._path, "ab") as fh:
                fh.truncate(cap * 8 * self._width)
            self._arr = np.memmap(self._path, dtype=np.float64, mode="r+",
                                  shape=(cap, self._width))
            self._cap = cap
        self._arr[rows] = np.asarray(values).reshape(len(rows), self._width)
        self.written += len(rows)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The first value of each of `rows` (any order), e.g. the times of rows just scored."""
        return np.array(self._arr[rows, 0]) if len(rows) else np.zeros(0)

    def get(self, start: int, n: int) -> np.ndarray:
        out = np.array(self._arr[start:start + n]) if n else np.zeros((0, self._width))
        return out[:, 0] if self._width == 1 else out

    def close(self) -> None:
        self._arr = None
        self._dir.cleanup()


class TopRows:
    """The highest-scoring rows with their per-signal contributions (for the summary)."""

    def __init__(self, n_features: int, k: int = TOP_KEEP):
        self.k = k
        self.rows = np.zeros(0, np.int64)
        self.scores = np.zeros(0)
        self.contrib = np.zeros((0, n_features))

    def add(self, rows, scores, contrib) -> None:
        rows = np.concatenate([self.rows, rows])
        scores = np.concatenate([self.scores, scores])
        contrib = np.concatenate([self.contrib, contrib])
        top = np.lexsort((rows, -scores))[:self.k]
        self.rows, self.scores, self.contrib = rows[top], scores[top], contrib[top]

    def block(self, start: int, n: int) -> np.ndarray:
        out = np.zeros((n, self.contrib.shape[1]))
        inside = (self.rows >= start) & (self.rows < start + n)
        out[self.rows[inside] - start] = self.contrib[inside]
        return out


def _in_time_order(keys: np.ndarray, times: np.ndarray, last: dict) -> bool:
    """True when each entity's times do not go back, within the batch and since the last one."""
    uniq, inv = np.unique(keys.astype(str), return_inverse=True)
    order = np.argsort(inv, kind="stable")
    c, t = inv[order], times[order]
    same = c[1:] == c[:-1]
    if np.any(t[1:][same] < t[:-1][same]):
        return False
    first = np.r_[True, ~same]
    lastpos = np.r_[~same, True]
    for j, tf, tl in zip(c[first], t[first], t[lastpos]):
        if tf < last.get(uniq[j], -np.inf):
            return False
        last[uniq[j]] = tl
    return True


def scored_batches(det, path, batch_size: int, warnings_out: list[str],
                   all_contributions: bool = False, drift: DriftCounts | None = None,
                   events=None):
    """Yield (batch, scores, contributions, invalid counts) for the file, in input order.

    Contributions are kept for the top rows only, unless `all_contributions` (for --explain):
    then every row's are stored beside its score in the temporary file (8 bytes per signal).
    `drift` counts the rows against the training profile in pass 1 (attnad.data.drift).
    `events` (attnad.pipeline.events.EventSink) receives each entity's scored steps in time
    order during pass 1, with their times (kept on disk, 8 bytes a row, until scored), and
    `finish()` at the end of the input; `reset()` when pass 1 starts again on unsorted input."""
    st = det.series_
    F = len(st.features)
    csv, decimal = CsvFormat.of(det.config.data), det.config.data.decimal
    store, top = RowStore(1 + F if all_contributions else 1), TopRows(F)
    when = RowStore(1) if events is not None else None
    invalid_total: dict[str, int] = {}

    def add(results):
        for key, rows, s, c in results:
            store.put(rows, np.column_stack([s, c]) if all_contributions else s)
            top.add(rows, s, c)
            if events is not None:
                events.push(key, rows, when.take(rows), s, c)

    def remember(times, rows):
        if when is not None:
            when.put(rows, times)

    # this file's drift counts, added to `drift` once pass 1 is complete (it may restart)
    part = None if drift is None else DriftCounts(drift.profile)
    try:
        scorer, last, offset, in_order = det.new_scorer(), {}, 0, True
        for batch in iter_batches(path, batch_size, csv):
            keys, times, raw, invalid, _ = read_columns(batch, det.schema_, st, st.time_kind,
                                                        str(path), offset, decimal)
            if not _in_time_order(keys, times, last):
                in_order = False
                break
            if part is not None:
                part.add_series(keys, times, raw, invalid)
            for k, v in invalid.items():
                invalid_total[k] = invalid_total.get(k, 0) + v
            remember(times, offset + np.arange(len(keys)))
            add(scorer.push(keys, raw, offset + np.arange(len(keys))))
            offset += len(keys)
        if not in_order:
            warnings_out.append(
                f"{path}: rows are not in time order within each entity; read the time, group and "
                "signal columns of the whole file into memory to sort them (sort the file by "
                f"({st.group_column or 'entity'}, {st.time_column}) to stream it in bounded memory)")
            store.close()
            store, top, invalid_total = RowStore(1 + F if all_contributions else 1), TopRows(F), {}
            if events is not None:
                events.reset()
            parts, offset = [], 0
            part = None if drift is None else DriftCounts(drift.profile)
            for batch in iter_batches(path, batch_size, csv):
                keys, times, raw, invalid, _ = read_columns(batch, det.schema_, st, st.time_kind,
                                                            str(path), offset, decimal)
                if part is not None:
                    part.add_series(keys, times, raw, invalid)
                parts.append((keys, times, raw))
                remember(times, offset + np.arange(len(keys)))
                for k, v in invalid.items():
                    invalid_total[k] = invalid_total.get(k, 0) + v
                offset += len(keys)
            keys, times, raw = (np.concatenate([p[i] for p in parts]) for i in range(3))
            del parts
            order = series_order(keys, times)
            scorer = det.new_scorer()
            for i in range(0, len(order), batch_size):
                o = order[i:i + batch_size]
                add(scorer.push(keys[o], raw[o], o))
        add(scorer.finish())
        if part is not None:
            drift.merge(part)
        if events is not None:
            events.finish()
        warnings_out += scorer.warnings(str(path))
        if store.written != offset:
            raise AssertionError(f"scored {store.written} of {offset} rows")  # a bug, not input
        start = 0
        for batch in iter_batches(path, batch_size, csv):
            n = batch.num_rows
            got = store.get(start, n)
            scores, contrib = (got[:, 0], got[:, 1:]) if all_contributions else \
                (got, top.block(start, n))
            yield batch, scores, contrib, (invalid_total if start == 0 else {})
            start += n
    finally:
        store.close()
        if when is not None:
            when.close()


def check_entities_per_file(files, data_cfg) -> None:
    """Series scored file by file: each entity's rows must all be in one file."""
    group = data_cfg.group_column
    if group is None and len(files) > 1:
        raise DataError(f"{files}: time series without data.group_column is one series, spread "
                        f"over {len(files)} files; merge them, or pass --sorted-input if the "
                        "files in name order hold the rows in time order")
    if group is None:
        return
    seen: dict = {}
    for p in files:
        mine: set[str] = set()
        for batch in iter_batches(p, csv=CsvFormat.of(data_cfg)):
            if group not in batch.schema.names:
                break  # the scorer names the missing column
            mine.update(str(v) for v in pc.unique(batch.column(group)).to_pylist())
        for key in mine:
            if key in seen:
                raise DataError(
                    f"{files}: entity {key!r} ({group}) has rows in {seen[key]} and {p}; scored "
                    "file by file, an entity's rows must all be in one file. Put each entity in "
                    "one file, or pass --sorted-input if the files, in name order, hold the rows "
                    f"sorted by ({group}, {data_cfg.time_column})")
            seen[key] = p
