"""A series model's fitted statistics, besides its weights: per-entity input scaling and error
scales, and how they turn raw values into model input and window errors into row scores.

One model is shared by all entities (`data.group_column`); what differs between entities is kept
here. Inputs are robust-scaled per entity and per signal on the entity's training rows, so a
machine that always runs hot is normal for itself; entities with too few training rows, and
entities first seen when scoring, use statistics pooled over all rows. A row's error on a signal
is divided by that signal's typical error on the entity's training rows (pulled towards the
pooled value for entities with few rows), so a score of 1 means "as unusual as a typical training
row" on every machine and one threshold fits all entities.

    x, miss = scaled(raw, state.lookup(keys, "center"), state.lookup(keys, "scale"))
    scores, contrib = row_scores(errors, state.lookup([key], "error_scale")[0], n_features)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from attnad.data.preprocess import squash
from attnad.robust import column_center_scale, error_floor, normalised_mean, trimmed_mean
from attnad.surprise import TermTails

MIN_ENTITY_ROWS = 32  # fewer training rows: the entity's inputs use the pooled statistics
SHRINK_ROWS = 200  # error scales are pulled towards the pooled ones with this weight in rows
SCALE_TRIM = 0.05  # highest training errors left out of each typical error
ERROR_FLOOR = 1e-2  # error scales are at least this share of the median signal's


@dataclass
class SeriesState:
    """Everything besides the weights that scoring needs; plain JSON in the model directory."""
    features: list[str]
    time_column: str
    group_column: str | None
    time_kind: str
    window: int
    stride: int
    n_masks: int
    seed: int
    entities: dict  # key -> {"rows", "center", "scale" (F floats), "error_scale" (K floats)}
    pooled: dict  # {"center", "scale", "error_scale"} for unseen and small entities
    signal_masks: bool = False  # error families: cells, + whole signals, + spans: K = F per family
    span_masks: bool = False
    row_score: str = "step"  # "window": each step gets the mean error of the windows covering it
    # (models saved before the option existed scored steps)
    error_units: str = "squashed"  # "robust": errors measured after undoing the input squash
    # (models saved before the option existed measured them squashed)
    input_level: str = "entity"  # "window" / "local": the level each window is read against
    # (model.input_level; models saved before the option existed read it as it is)
    level_half_life: float = 0.0  # input_level local: half-life in steps of the recent level
    signal_terms: str = "typical"  # "bounded": a signal's term is at most its error's surprise
    # (model.signal_terms; models saved before the option existed divided by the typical error)
    term_tails: dict | None = None  # signal_terms bounded: attnad.surprise.TermTails
    context: list[str] = field(default_factory=list)  # signals read but not scored
    # (data.context_columns)

    @property
    def n_families(self) -> int:
        return 1 + int(self.signal_masks) + int(self.span_masks)

    @property
    def n_errors(self) -> int:
        return len(self.features) * self.n_families

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SeriesState":
        s = cls(**d)
        if s.input_level not in ("entity", "window", "local"):
            raise ValueError(f"input_level {s.input_level!r} is not one this version knows")
        unknown = [c for c in s.context if c not in s.features]
        if unknown or len(s.context) >= len(s.features):
            raise ValueError(f"context signals {s.context} do not fit the features")
        if s.signal_terms not in ("typical", "bounded"):
            raise ValueError(f"signal_terms {s.signal_terms!r} is not one this version knows")
        if s.signal_terms == "bounded":
            if s.term_tails is None:
                raise ValueError("signal_terms bounded needs term_tails")
            s.set_tails(TermTails.from_dict(s.term_tails, s.n_errors))
        for stats in [s.pooled, *s.entities.values()]:
            for k, n in (("center", len(s.features)), ("scale", len(s.features)),
                         ("error_scale", s.n_errors)):
                if len(stats[k]) != n:
                    raise ValueError(f"{k} has {len(stats[k])} values, expected {n}")
        return s

    @property
    def scored(self) -> np.ndarray | None:
        """(K,) bool: which error terms count in a row's score; None when all do."""
        if not self.context:
            return None
        signal = np.array([f not in self.context for f in self.features])
        return np.tile(signal, self.n_families)

    @property
    def tails(self) -> TermTails | None:
        """The signals' training term distributions (signal_terms bounded), else None."""
        return getattr(self, "_tails", None) if self.signal_terms == "bounded" else None

    def set_tails(self, tails: TermTails) -> None:
        """Keep `tails` and their JSON form (`term_tails`, saved with the model)."""
        self._tails = tails
        self.term_tails = tails.to_dict()

    def lookup(self, keys: list[str], what: str) -> np.ndarray:
        """(len(keys), F) statistics; unseen entities get the pooled ones."""
        pooled = self.pooled[what]
        return np.asarray([self.entities.get(k, {}).get(what, pooled) for k in keys], np.float64)


def scaled(raw: np.ndarray, center: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs: robust z-scores, extremes squashed; missing cells 0 and flagged."""
    miss = ~np.isfinite(raw)
    with np.errstate(invalid="ignore", over="ignore"):
        z = np.clip((raw - center) / scale, -1e6, 1e6)
    return squash(np.where(miss, 0.0, z)).astype(np.float32), miss


def row_scores(err: np.ndarray, error_scale: np.ndarray, n_features: int,
               tails: TermTails | None = None, scored: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Row score = mean of the signals' terms (n, K): errors over typical errors, with `tails` each
    at most its surprise among the signal's training terms (attnad.surprise). A
    signal's contribution is the sum of its terms (K = F, or F per error family), shape (n, F).
    `scored` (K,) bool: the terms that count (data.context_columns leaves signals out); the others
    neither add to the score nor get a contribution.
    A row whose signals are all missing has no evidence against it and scores 0."""
    if scored is not None:
        err = np.where(scored, err, np.nan)
    if tails is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = err / error_scale
        err = np.fmin(ratio, tails.surprise(ratio))  # NaN (no error) stays NaN
        error_scale = 1.0
    score, terms = normalised_mean(err, error_scale, axis=1)
    return score, terms.reshape(len(terms), -1, n_features).sum(1)


def entity_bounds(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last row of each entity in (entity, time)-sorted keys."""
    starts_of = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return starts_of, np.r_[starts_of[1:], len(keys)]


def input_statistics(keys: np.ndarray, raw: np.ndarray):
    """Per-entity robust centre and spread of the sorted training rows (pooled for entities with
    fewer than MIN_ENTITY_ROWS rows). Returns the entities' JSON statistics, the pooled centre and
    spread, and per row: its entity's centre, spread (n, F) and first row (n,)."""
    p_center, p_scale = column_center_scale(raw)
    entities = {}
    center = np.empty_like(raw)
    scale = np.empty_like(raw)
    starts = np.empty(len(keys), dtype=np.int64)
    for s, e in zip(*entity_bounds(keys)):
        c, sc = column_center_scale(raw[s:e]) if e - s >= MIN_ENTITY_ROWS else (p_center, p_scale)
        entities[str(keys[s])] = {"rows": int(e - s), "center": c.tolist(), "scale": sc.tolist()}
        center[s:e], scale[s:e], starts[s:e] = c, sc, s
    return entities, (p_center, p_scale), center, scale, starts


def fit_error_scales(state: SeriesState, keys: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Set the pooled and per-entity error scales from the training rows' errors (n, K), NaN on
    rows left out of calibration, and with signal_terms bounded the terms' training
    distributions (pooled over entities: each entity's terms are in its own typical errors);
    returns each row's training score."""
    pooled, _ = trimmed_mean(err, SCALE_TRIM)
    floor = error_floor(pooled, ERROR_FLOOR)
    pooled = np.maximum(np.where(np.isfinite(pooled), pooled, floor), floor)
    state.pooled["error_scale"] = pooled.tolist()
    shrunk_of = []
    for s, e in zip(*entity_bounds(keys)):
        typ, n = trimmed_mean(err[s:e], SCALE_TRIM)
        typ = np.where(np.isfinite(typ), typ, pooled)
        shrunk = np.maximum((n * typ + SHRINK_ROWS * pooled) / (n + SHRINK_ROWS), floor)
        state.entities[str(keys[s])]["error_scale"] = shrunk.tolist()
        shrunk_of.append((s, e, shrunk))
    if state.signal_terms == "bounded":  # one copy of the errors, only for this option
        state.set_tails(TermTails.fit(np.concatenate([err[s:e] / sh for s, e, sh in shrunk_of])))
    train_scores = np.empty(len(keys))
    for s, e, shrunk in shrunk_of:
        train_scores[s:e] = row_scores(err[s:e], shrunk, len(state.features), state.tails,
                                       state.scored)[0]
    return train_scores


def holdout_rows(starts_of: np.ndarray, ends_of: np.ndarray, fraction: float, window: int
                 ) -> np.ndarray:
    """The last `fraction` of each entity's training rows (train.calibration_fraction), kept out
    of training to measure error scales and the threshold on.

    Errors on rows the model was fitted to are smaller than on new rows, which held-out rows
    avoid; but one contiguous tail can be unlike the rest of a series (benchmarks/RESULTS.md,
    "Figures behind constants": a quiet tail gave a threshold that flagged far more later normal rows
    than its target), so it is off by default. An entity keeps all its rows for training when
    the rest would be shorter than one window.
    """
    held = np.zeros(int(ends_of[-1]) if len(ends_of) else 0, bool)
    for s, e in zip(starts_of, ends_of):
        k = int((e - s) * fraction)
        if k > 0 and (e - s) - k >= window:
            held[e - k:e] = True
    return held
