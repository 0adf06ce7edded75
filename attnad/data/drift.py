"""Has the file changed since training? Counts of scored data against the model's training profile
(attnad.data.profile), kept batch by batch in the scoring pass: a few numbers per column (per
entity and signal for series), whatever the file's size. Per column: population stability index
(PSI) over the training decile bins (rule of thumb: under 0.1 stable, 0.1-0.25 moderate, over
0.25 large), share of values beyond the training range, missing, invalid and unseen-category
shares now and then; for series also the level change in training spreads and the time of the
first value beyond the training range.

    counts = DriftCounts(det.profile_); counts.add_table(enc, invalid)   # per batch
    rows = counts.figures()     # one dict per column (series: per entity and signal)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from attnad.data.preprocess import Encoded
from attnad.data.profile import POOLED, psi, shares

STABLE_PSI = 0.1  # rule of thumb: below, a column is stable
LARGE_PSI = 0.25  # ... above, it has changed a lot
CHANGED_SHARE = 0.05  # a missing / invalid / unseen share up by more than this is a change
OTHER = "(other)"  # the bin of categories outside the training vocabulary
BLOCK_CELLS = 1 << 22  # rows x columns x edges compared at once: bounds the temporary arrays


class _Slot:
    """What one column (of one entity) has seen so far."""

    def __init__(self, width: int):
        self.counts = np.zeros(width, dtype=np.int64)  # bins; categories: [missing, other, *vocab]
        self.rows = self.missing = self.below = self.above = 0
        self.total = 0.0  # sum of the present values (series: the level)
        self.first_below = self.first_above = np.inf

    def merge(self, o: "_Slot") -> None:
        self.counts += o.counts
        self.rows += o.rows
        self.missing += o.missing
        self.below += o.below
        self.above += o.above
        self.total += o.total
        self.first_below = min(self.first_below, o.first_below)
        self.first_above = min(self.first_above, o.first_above)


class DriftCounts:
    """Counts for the figures of `figures()`; `merge` adds another run's (files scored one by
    one, a pass that had to restart)."""

    def __init__(self, profile: dict):
        self.profile = profile
        self.rows = 0
        self.invalid: dict[str, int] = {}
        self.slots: dict[tuple, _Slot] = {}
        self.columns_added: list[str] = []
        self.columns_missing: list[str] = []
        self._cache: dict = {}  # entity -> bin edges and range ends as arrays

    def note_columns(self, names: list[str], schema) -> None:
        """Columns of this file the training file did not have, and training columns it lacks
        (a missing modelled column stops the run before this: attnad.data.schema.check_input)."""
        known = [c.name for c in schema.columns]
        self.columns_added = list(dict.fromkeys(
            self.columns_added + [n for n in names if n not in known]))
        self.columns_missing = list(dict.fromkeys(
            self.columns_missing + [c for c in known if c not in names]))

    def _slot(self, key: tuple, prof: dict) -> _Slot:
        if key not in self.slots:
            width = len(prof["edges"]) + 1 if prof["kind"] == "numeric" else \
                len(prof["values"]) + 2
            self.slots[key] = _Slot(width)
        return self.slots[key]

    def _numeric(self, entity, profs: list[tuple[str, dict]], x: np.ndarray,
                 times: np.ndarray | None = None) -> None:
        """Numeric columns of one entity (or of the table) at once: x (m, F), NaN = missing.
        One vectorised pass per block of rows, not a numpy call per column: a batch costs about
        the same whatever the number of columns or entities (the throughput budget)."""
        edges, lo, hi = self._bounds(entity, profs)
        present = np.isfinite(x)
        low, high = (x < lo) & present, (x > hi) & present
        counts = np.zeros((len(profs), edges.shape[1] + 1), dtype=np.int64)
        step = max(1, BLOCK_CELLS // max(x.size // max(len(x), 1) * edges.shape[1], 1))
        offsets = np.arange(len(profs)) * counts.shape[1]
        for r in range(0, len(x), step):
            block, ok = x[r:r + step], present[r:r + step]
            idx = (block[:, :, None] >= edges[None]).sum(-1) + offsets  # searchsorted "right"
            counts += np.bincount(idx[ok], minlength=counts.size).reshape(counts.shape)
        n_low, n_high = low.sum(0), high.sum(0)
        totals = np.where(present, x, 0.0).sum(0)
        missing = len(x) - present.sum(0)
        first_low = first_high = None
        if times is not None and (n_low.any() or n_high.any()):
            first_low = np.where(low, times[:, None], np.inf).min(0)
            first_high = np.where(high, times[:, None], np.inf).min(0)
        for j, (name, prof) in enumerate(profs):
            s = self._slot((entity, name), prof)
            s.counts += counts[j, :len(s.counts)]
            s.rows += len(x)
            s.missing += int(missing[j])
            s.below += int(n_low[j])
            s.above += int(n_high[j])
            s.total += float(totals[j])
            if first_low is not None:
                s.first_below = min(s.first_below, float(first_low[j]))
                s.first_above = min(s.first_above, float(first_high[j]))

    def _bounds(self, entity, profs: list[tuple[str, dict]]) -> tuple:
        """Edges (F, BINS - 1; a column without any, all +inf), low and high ends, cached."""
        if entity not in self._cache:
            width = max([len(p["edges"]) for _, p in profs] + [0])
            edges = np.full((len(profs), width), np.inf)
            for j, (_, p) in enumerate(profs):
                edges[j, :len(p["edges"])] = p["edges"]
            self._cache[entity] = (edges, np.array([p["lo"] for _, p in profs]),
                                   np.array([p["hi"] for _, p in profs]))
        return self._cache[entity]

    def _invalid(self, invalid: dict[str, int], n: int) -> None:
        self.rows += n
        for k, v in invalid.items():
            self.invalid[k] = self.invalid.get(k, 0) + v

    def add_table(self, enc: Encoded, invalid: dict[str, int]) -> None:
        """One batch of a table, as the model saw it (attnad.data.preprocess.Encoded)."""
        self._invalid(invalid, len(enc))
        items = list(self.profile["columns"].items())
        numeric = [(k, p) for k, p in items if p["kind"] == "numeric"]
        if numeric:
            x = enc.num.astype(np.float64)  # float64, as at training: float32 edges move ties
            x[enc.num_missing] = np.nan
            self._numeric(None, numeric, x)
        for j, (name, prof) in enumerate((k, p) for k, p in items if p["kind"] != "numeric"):
            s = self._slot((None, name), prof)
            s.counts += np.bincount(enc.cat[:, j], minlength=len(s.counts))[:len(s.counts)]
            s.rows += len(enc)

    def add_series(self, keys: np.ndarray, times: np.ndarray, raw: np.ndarray,
                   invalid: dict[str, int]) -> None:
        """One batch of a series: entity keys, times (float, seconds for datetimes), signals
        (n, F) with NaN for missing, in the model's signal order."""
        self._invalid(invalid, len(keys))
        entities = self.profile["entities"]
        self._numeric(None, list(entities[POOLED].items()), raw, times)
        if len(entities) == 1:
            return
        uniq, inv = np.unique(keys.astype(str), return_inverse=True)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
        for e, key in enumerate(uniq):
            if key == POOLED or key not in entities:
                continue  # an entity new since training: in the pooled figures only
            rows = order[bounds[e]:bounds[e + 1]]
            self._numeric(key, list(entities[key].items()), raw[rows], times[rows])

    def merge(self, other: "DriftCounts") -> None:
        self._invalid(other.invalid, other.rows)
        for key, slot in other.slots.items():
            if key in self.slots:
                self.slots[key].merge(slot)
            else:
                self.slots[key] = slot
        self.columns_added = list(dict.fromkeys(self.columns_added + other.columns_added))
        self.columns_missing = list(dict.fromkeys(self.columns_missing + other.columns_missing))

    def _prof(self, key: tuple) -> dict:
        entity, name = key
        if self.profile["kind"] == "table":
            return self.profile["columns"][name]
        return self.profile["entities"][entity if entity is not None else POOLED][name]

    def figures(self) -> list[dict]:
        """One dict per column seen (series: pooled over entities, entity None, then per
        entity), in the profile's order."""
        return [_figures(self, key, self._prof(key), slot) for key, slot in self.slots.items()]

    def frame(self) -> pd.DataFrame:
        """`figures()` as a DataFrame, without the bins (the Python API)."""
        cols = ["column", "entity", "kind", "rows", "psi", "beyond_range", "missing_then",
                "missing_now", "invalid_then", "invalid_now", "unseen_then", "unseen_now",
                "level", "since"]
        return pd.DataFrame([{c: r.get(c) for c in cols} for r in self.figures()], columns=cols)


def _time(seconds: float, kind: str):
    if not np.isfinite(seconds):
        return None
    if kind == "datetime":
        return pd.Timestamp(seconds, unit="s").isoformat()
    return int(seconds) if float(seconds).is_integer() else float(seconds)


def _figures(counts: DriftCounts, key: tuple, prof: dict, s: _Slot) -> dict:
    entity, name = key
    source = prof.get("source", name)
    invalid_now = counts.invalid.get(source, 0) / counts.rows if counts.rows else 0.0
    row = {"column": name, "entity": entity, "kind": prof["kind"], "rows": s.rows,
           "psi": None, "beyond_range": None, "missing_then": prof["missing"],
           "missing_now": s.missing / s.rows if s.rows else 0.0,
           "invalid_then": prof["invalid"], "invalid_now": invalid_now,
           "unseen_then": None, "unseen_now": None, "level": None, "since": None}
    if prof["kind"] == "category":
        present = s.counts[1:]
        row["missing_now"] = s.counts[0] / s.rows if s.rows else 0.0
        now = shares(present)
        if present.sum():
            row["psi"] = psi(prof["shares"], now)
            row["unseen_now"] = float(now[0])
        row["unseen_then"] = prof["shares"][0] if prof["shares"] else 0.0
        row["bins"] = {"labels": [OTHER, *prof["values"]], "then": prof["shares"],
                       "now": now.tolist()}
        return row
    present = s.rows - s.missing
    now = shares(s.counts)
    units = prof["units"]
    row["range"] = [units[0], units[-1]]
    row["bins"] = {"edges": units[1:-1], "then": prof["shares"], "now": now.tolist()}
    if not present:
        return row
    row["psi"] = psi(prof["shares"], now)
    row["beyond_range"] = (s.below + s.above) / present
    if "center" in prof:  # series: level in training spreads, and when it left the range
        level = (s.total / present - prof["center"]) / prof["spread"]
        row["level"] = level
        first = s.first_below if level < 0 else s.first_above
        row["since"] = _time(first, counts.profile.get("time_kind", "number"))
    return row


def changed(row: dict) -> bool:
    """Worth showing: a moderate PSI or more, or a share of bad cells that rose."""
    up = [(row.get(a) or 0.0) - (row.get(b) or 0.0) for a, b in
          (("missing_now", "missing_then"), ("invalid_now", "invalid_then"),
           ("unseen_now", "unseen_then"))]
    return (row["psi"] or 0.0) > STABLE_PSI or max(up) > CHANGED_SHARE


def ranked(rows: list[dict]) -> list[dict]:
    """Most changed first: by PSI, then by the rise of the missing share."""
    return sorted(rows, key=lambda r: (-(r["psi"] or 0.0),
                                       -((r["missing_now"] or 0.0) - (r["missing_then"] or 0.0))))


def drift_lines(rows: list[dict], per_entity: bool) -> list[str]:
    """Series: one line per entity and signal whose values moved ("drift on press-a: pressure
    level 5.1 spreads below its training centre, beyond its training range since ...")."""
    lines = []
    for r in ranked(rows):
        if r["level"] is None or (r["entity"] is not None) != per_entity:
            continue
        if (r["psi"] or 0.0) <= LARGE_PSI and (r["beyond_range"] or 0.0) <= CHANGED_SHARE:
            continue
        where = f"drift on {r['entity']}: " if per_entity else "drift: "
        side = "below" if r["level"] < 0 else "above"
        since = f", beyond its training range since {r['since']}" if r["since"] is not None \
            else ""
        lines.append(f"{where}{r['column']} level {abs(r['level']):.1f} spreads {side} its "
                     f"training centre{since} (PSI {r['psi']:.2f})")
    return lines
