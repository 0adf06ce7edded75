"""Anomalies as events: runs of flagged steps of one entity, built while the series streams
through the scorer, so memory holds the open events, never the file.

A run is a stretch of consecutive flagged steps of one entity. Two runs separated by fewer than
`merge_gap` unflagged steps are one event (inside one anomaly the flags flicker around the
threshold); an event spanning fewer than `min_steps` steps is dropped. Steps are counted per
entity in time order, so rows of other entities in between do not matter, nor do batch or file
edges. An event is closed as soon as `merge_gap` unflagged steps follow it (no later run can join
it), and at the end of the input. `attnad.metrics.flag_runs` is the same rule on one array in
memory (benchmarks, the report); tests check that both agree.

    b = EventBuilder(merge_gap=3, min_steps=1)
    done = b.push("press-a", rows, times, scores, probs, flags, contrib) + b.finish()
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Event:
    """One event of one entity. Times are the scorer's floats (seconds for datetimes)."""
    entity: str
    first_row: int  # input row number of its first flagged step
    last_row: int  # ... and of its last flagged step
    start: float
    end: float
    steps: int  # entity steps from the first to the last flagged step, both included
    flagged: int  # flagged steps among them (the rest are merged gaps)
    peak_score: float
    peak_row: int
    peak_time: float
    peak_probability: float
    contrib: np.ndarray  # (F,) per-signal contributions summed over the flagged steps


@dataclass
class _Open:
    event: Event
    gap: int = 0  # unflagged steps of the entity since the event's last flagged step


class EventBuilder:
    """Streams one entity's steps at a time (time order within the entity) into events."""

    def __init__(self, merge_gap: int, min_steps: int):
        if merge_gap < 1 or min_steps < 1:
            raise ValueError("merge_gap and min_steps must be at least 1")
        self.merge_gap, self.min_steps = merge_gap, min_steps
        self.open: dict[str, _Open] = {}  # only entities with an open event: bounded memory

    def push(self, key: str, rows, times, scores, probs, flags, contrib) -> list[Event]:
        """Add consecutive steps of entity `key`; return the events this closes."""
        closed = []
        flags = np.asarray(flags, dtype=bool)
        n = len(flags)
        pos = np.flatnonzero(flags)
        cur = self.open.pop(key, None)
        if len(pos):
            # groups of flagged positions closer than merge_gap: parts of one event
            groups = np.split(pos, np.flatnonzero(np.diff(pos) - 1 >= self.merge_gap) + 1)
            for i, g in enumerate(groups):
                between = g[0] + cur.gap if i == 0 and cur is not None else None
                if between is not None and between < self.merge_gap:
                    self._extend(cur.event, g, between, rows, times, scores, probs, contrib)
                else:
                    if cur is not None:
                        closed += self._close(cur)
                    cur = _Open(self._start(key, g, rows, times, scores, probs, contrib))
            cur.gap = n - 1 - int(pos[-1])
        elif cur is not None:
            cur.gap += n
        if cur is not None:
            if cur.gap >= self.merge_gap:
                closed += self._close(cur)
            else:
                self.open[key] = cur
        return closed

    def finish(self) -> list[Event]:
        """End of the input: close every open event."""
        closed = [e for cur in self.open.values() for e in self._close(cur)]
        self.open = {}
        return closed

    def _close(self, cur: _Open) -> list[Event]:
        return [cur.event] if cur.event.steps >= self.min_steps else []

    @staticmethod
    def _start(key, g, rows, times, scores, probs, contrib) -> Event:
        p = g[int(np.argmax(scores[g]))]
        return Event(str(key), int(rows[g[0]]), int(rows[g[-1]]), float(times[g[0]]),
                     float(times[g[-1]]), int(g[-1] - g[0] + 1), len(g), float(scores[p]),
                     int(rows[p]), float(times[p]), float(np.max(probs[g])),
                     np.asarray(contrib[g], dtype=np.float64).sum(0))

    @staticmethod
    def _extend(ev: Event, g, between, rows, times, scores, probs, contrib) -> None:
        ev.last_row, ev.end = int(rows[g[-1]]), float(times[g[-1]])
        ev.steps += int(between) + int(g[-1] - g[0] + 1)
        ev.flagged += len(g)
        p = g[int(np.argmax(scores[g]))]
        if scores[p] > ev.peak_score:  # a tie keeps the earlier peak
            ev.peak_score, ev.peak_row, ev.peak_time = float(scores[p]), int(rows[p]), float(times[p])
        ev.peak_probability = max(ev.peak_probability, float(np.max(probs[g])))
        ev.contrib = ev.contrib + np.asarray(contrib[g], dtype=np.float64).sum(0)
