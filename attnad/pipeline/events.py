"""The events of a time-series `detect` run: flags from the run's threshold, runs built while
scoring (attnad.timeseries.events), written to `--events FILE` atomically as they close, and the
top events kept for the summary and the report. Memory: the open events, the top events and a
small write buffer, whatever the size of the input.

    with EventSink(det, Path("events.csv"), threshold=None, time_type=pa.timestamp("us")) as sink:
        stats = score_data(det, src, out, flags=True, events=sink)

Columns of the events file (one row per event, in the order events close: for input sorted by
entity and time, by entity then start):
entity, start, end, first_row, last_row, steps, flagged_steps, peak_score, peak_time,
peak_probability, signals, signal_shares.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from attnad.data.io import AtomicWriter
from attnad.pipeline.batch import run_flags, run_probability
from attnad.timeseries.events import Event, EventBuilder

TOP_EVENTS = 10  # events listed in the summary and the report
EVENT_SIGNALS = 3  # signals named per event: the ones with the largest shares
WRITE_EVERY = 4096  # closed events buffered before they are written


def event_schema(time_type: pa.DataType) -> pa.Schema:
    t = pa.field
    return pa.schema([t("entity", pa.string()), t("start", time_type), t("end", time_type),
                      t("first_row", pa.int64()), t("last_row", pa.int64()),
                      t("steps", pa.int64()), t("flagged_steps", pa.int64()),
                      t("peak_score", pa.float64()), t("peak_time", time_type),
                      t("peak_probability", pa.float64()), t("signals", pa.string()),
                      t("signal_shares", pa.string())])


def time_type_of(det, input_type: pa.DataType | None) -> pa.DataType:
    """How event times are written: UTC timestamps for datetime series (as typed Parquet output
    writes them), integers for integer steps, else floats."""
    if det.series_.time_kind == "datetime":
        return pa.timestamp("us", tz="UTC")
    if input_type is not None and pa.types.is_integer(input_type):
        return pa.int64()
    return pa.float64()


def top_signals(contrib: np.ndarray, names: list[str], k: int = EVENT_SIGNALS) -> list[tuple]:
    """The k signals with the largest shares of the event's summed contributions."""
    total = float(contrib.sum())
    order = np.argsort(-contrib, kind="stable")[:k]
    return [(names[j], float(contrib[j]) / total) for j in order if total > 0 and contrib[j] > 0]


class EventSink:
    """Receives scored steps from the scorer (attnad.timeseries.streaming.scored_batches), flags
    them as the output file does, and collects the events."""

    def __init__(self, det, path: Path | None, *, threshold: float | None,
                 time_type: pa.DataType = pa.float64()):
        cfg = det.config.threshold
        self.det, self.path, self.time_type = det, path, time_type
        self.merge_gap, self.min_steps = cfg.merge_gap, cfg.min_event_steps
        self.threshold = det.threshold_["value"] if threshold is None else float(threshold)
        self.per_entity = threshold is None and bool(det.threshold_.get("entities"))
        self.signals = list(det.series_.features)
        self.row_offset = 0  # rows of earlier files (a directory scored file by file)
        self.schema = event_schema(time_type)
        self._writer = None
        self._clear()

    def _clear(self) -> None:
        self.builder = EventBuilder(self.merge_gap, self.min_steps)
        self.count, self.top, self._buffer, self._seq = 0, [], [], 0

    # ---- the scorer's side ----------------------------------------------------------------
    def push(self, key, rows, times, scores, contrib) -> None:
        keys = np.full(len(rows), key, dtype=object) if self.per_entity else None
        flags = run_flags(self.det, self.threshold, self.per_entity, scores, keys)
        if not flags.any() and key not in self.builder.open:
            return  # nothing to start or to close
        probs = run_probability(self.det, scores, keys)
        self._closed(self.builder.push(key, np.asarray(rows) + self.row_offset, times, scores,
                                       probs, flags, contrib))

    def finish(self) -> None:
        self._closed(self.builder.finish())

    def reset(self) -> None:
        """Pass 1 starts again (unsorted input): forget everything, rewrite the file."""
        if self._writer is not None:
            self._writer.__exit__(RuntimeError, RuntimeError("restart"), None)  # discards it
            self._writer = AtomicWriter(self.path, self.schema).__enter__()
        self._clear()

    def _closed(self, events: list[Event]) -> None:
        for ev in events:
            self.count += 1
            self._seq += 1
            item = (ev.peak_score, -self._seq, ev)  # ties: the earlier event ranks first
            if len(self.top) < TOP_EVENTS:
                heapq.heappush(self.top, item)
            elif item > self.top[0]:
                heapq.heapreplace(self.top, item)
            if self._writer is not None:
                self._buffer.append(ev)
        if len(self._buffer) >= WRITE_EVERY:
            self._flush()

    # ---- the file ---------------------------------------------------------------------------
    def __enter__(self) -> "EventSink":
        if self.path is not None:
            self._writer = AtomicWriter(self.path, self.schema).__enter__()
        return self

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write(self.batch(self._buffer))
            self._buffer = []

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is None:
            return
        if exc_type is None:
            self._flush()
        self._writer.__exit__(exc_type, exc, tb)

    def _time(self, values: list[float]) -> pa.Array:
        if pa.types.is_timestamp(self.time_type):
            micros = np.round(np.asarray(values, dtype=np.float64) * 1e6).astype(np.int64)
            return pa.array(micros, type=self.time_type)
        return pa.array(values, type=pa.float64()).cast(self.time_type)

    def batch(self, events: list[Event]) -> pa.RecordBatch:
        sig = [top_signals(e.contrib, self.signals) for e in events]
        cols = [
            pa.array([e.entity for e in events], pa.string()),
            self._time([e.start for e in events]), self._time([e.end for e in events]),
            pa.array([e.first_row for e in events], pa.int64()),
            pa.array([e.last_row for e in events], pa.int64()),
            pa.array([e.steps for e in events], pa.int64()),
            pa.array([e.flagged for e in events], pa.int64()),
            pa.array([e.peak_score for e in events], pa.float64()),
            self._time([e.peak_time for e in events]),
            pa.array([e.peak_probability for e in events], pa.float64()),
            pa.array([";".join(c for c, _ in s) for s in sig], pa.string()),
            pa.array([";".join(f"{sh:.3f}" for _, sh in s) for s in sig], pa.string()),
        ]
        return pa.RecordBatch.from_arrays(cols, schema=self.schema)

    # ---- the summary ------------------------------------------------------------------------
    def _shown_time(self, t: float):
        if pa.types.is_timestamp(self.time_type):
            return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")
        return int(t) if pa.types.is_integer(self.time_type) else t

    def top_events(self) -> list[dict]:
        """The highest-peaking events, highest first, as JSON-ready dicts."""
        out = []
        for _, _, e in sorted(self.top, reverse=True):
            out.append({
                "entity": e.entity, "start": self._shown_time(e.start),
                "end": self._shown_time(e.end), "first_row": e.first_row,
                "last_row": e.last_row, "steps": e.steps, "flagged_steps": e.flagged,
                "peak_score": e.peak_score, "peak_time": self._shown_time(e.peak_time),
                "peak_probability": e.peak_probability,
                "signals": [{"column": c, "share": round(sh, 4)}
                            for c, sh in top_signals(e.contrib, self.signals)]})
        return out

    def stats(self) -> dict:
        """What the summary says about events (attnad.summary)."""
        return {"count": self.count, "merge_gap": self.merge_gap,
                "min_event_steps": self.min_steps,
                "file": None if self.path is None else str(self.path), "top": self.top_events()}
