"""The profile a model keeps of its training columns, to tell at scoring time whether a file has
changed since (attnad.data.drift): per modelled column its decile bins and the share of training
values in each, its range, missing and invalid shares, category shares; for time series per
entity and signal, with the entity's robust centre and spread. Plain JSON, saved with the model.

Table columns are profiled in the model's own units (the scaled values of
attnad.data.preprocess), so scoring bins the values it already computed and pays no second
parse; the bin edges in the column's units ride along for people and plots.

    profile = table_profile(enc, preprocessor, invalid_cells, rows)   # TableDetector.fit
    profile = series_profile(keys, raw, signals, invalid_cells, stats) # SeriesDetector.fit
"""

from __future__ import annotations

import numpy as np

from attnad.data.preprocess import Encoded, Preprocessor, unsquash

BINS = 10  # decile bins: the usual PSI binning; more bins add small-sample noise to PSI
SHARE_FLOOR = 1e-4  # a bin's share in PSI is at least this: an empty bin gives a large, finite term
MAX_PROFILE_ENTITIES = 1000  # series entities profiled one by one; beyond, only the pooled profile
POOLED = "*"  # the key of a series' profile over all entities


def quantile_edges(x: np.ndarray) -> list[float]:
    """The BINS - 1 inner decile edges of the finite values of x ([] when it has none). Ties give
    equal edges, and so empty bins, which both sides of PSI share (they add nothing)."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return []
    return [float(v) for v in np.quantile(x, np.arange(1, BINS) / BINS)]


def bin_counts(x: np.ndarray, edges) -> np.ndarray:
    """Counts of the finite values of x in the bins (-inf, e1), [e1, e2), ..., [e_last, inf)."""
    x = np.asarray(x, dtype=np.float64)  # as at training: float32 edges could move a tie
    x = x[np.isfinite(x)]
    return np.bincount(np.searchsorted(np.asarray(edges, dtype=np.float64), x, side="right"),
                       minlength=len(edges) + 1)


def shares(counts) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    return c / total if total > 0 else np.zeros_like(c)


def psi(then, now) -> float:
    """Population stability index of the bin shares `now` against `then`:
    sum((now - then) * ln(now / then)), each share floored at SHARE_FLOOR."""
    a = np.maximum(np.asarray(then, dtype=np.float64), SHARE_FLOOR)
    b = np.maximum(np.asarray(now, dtype=np.float64), SHARE_FLOOR)
    return float(np.sum((b - a) * np.log(b / a)))


def numeric_profile(x: np.ndarray, rows: int, invalid: float = 0.0, *,
                    to_units=None) -> dict:
    """A numeric column's profile from its values (NaN = missing) in the units scoring will see;
    `to_units` maps those to the column's own units for people (identity when None)."""
    finite = x[np.isfinite(x)]
    edges = quantile_edges(finite)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    units = to_units or (lambda v: v)
    return {"kind": "numeric", "edges": edges, "shares": shares(bin_counts(finite, edges)).tolist(),
            "lo": lo, "hi": hi, "missing": 1.0 - finite.size / rows if rows else 0.0,
            "invalid": invalid,
            "units": [float(v) for v in units(np.array([lo, *edges, hi], dtype=np.float64))]}


def category_profile(codes: np.ndarray, vocab: list[str], invalid: float = 0.0) -> dict:
    """A categorical column's profile from its codes (0 missing, 1 a value outside the
    vocabulary, 2.. the vocabulary: attnad.data.preprocess). `shares` are over the present
    values: [outside the vocabulary, *vocabulary]."""
    counts = np.bincount(codes, minlength=len(vocab) + 2)
    return {"kind": "category", "values": list(vocab), "shares": shares(counts[1:]).tolist(),
            "missing": float(counts[0] / max(len(codes), 1)), "invalid": invalid}


def table_profile(enc: Encoded, pre: Preprocessor, invalid: dict[str, int], rows: int) -> dict:
    """Every model feature of a table (a datetime column gives hour and weekday features)."""
    columns = {}
    for j, f in enumerate(pre.numeric):
        x = enc.num[:, j].astype(np.float64)
        x[enc.num_missing[:, j]] = np.nan
        c, s = f["center"], f["scale"]
        columns[f["name"]] = {**numeric_profile(
            x, rows, invalid.get(f["source"], 0) / max(rows, 1),
            to_units=lambda v, c=c, s=s: c + s * unsquash(v)), "source": f["source"]}
    for j, f in enumerate(pre.categorical):
        columns[f["name"]] = {**category_profile(enc.cat[:, j], list(f["vocab"]),
                                                 invalid.get(f["source"], 0) / max(rows, 1)),
                              "source": f["source"]}
    return {"kind": "table", "rows": int(rows), "columns": columns}


def series_profile(keys: np.ndarray, raw: np.ndarray, signals: list[str], invalid: dict[str, int],
                   entities: dict, pooled: tuple, time_kind: str) -> dict:
    """Each signal over all entities (POOLED) and, up to MAX_PROFILE_ENTITIES, per entity, with
    the robust centre and spread the model uses (attnad.timeseries.state) for the level change.
    `keys` sorted by entity, `raw` (n, F) with NaN for missing."""
    n = len(keys)

    def profile(x: np.ndarray, center, scale) -> dict:
        out = {}
        for j, name in enumerate(signals):
            p = numeric_profile(x[:, j], len(x), invalid.get(name, 0) / max(n, 1))
            p["center"], p["spread"] = float(center[j]), float(scale[j])
            out[name] = p
        return out

    prof = {"kind": "series", "rows": int(n), "time_kind": time_kind,
            "entities": {POOLED: profile(raw, *pooled)}}
    if 1 < len(entities) <= MAX_PROFILE_ENTITIES:
        bounds = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
        for s, e in zip(bounds[:-1], bounds[1:]):
            st = entities[str(keys[s])]
            prof["entities"][str(keys[s])] = profile(raw[s:e], st["center"], st["scale"])
    return prof


def check_profile(profile: dict, names: list[str], n_numeric: int) -> None:
    """A loaded profile (untrusted input) has the model's features (`names`, the first
    `n_numeric` numeric) in order, and bins that match their shares; ValueError if not."""
    groups = [profile["columns"]] if profile["kind"] == "table" else \
        list(profile["entities"].values())
    for group in groups:
        if list(group) != names or \
                [p["kind"] for p in group.values()].count("numeric") != n_numeric:
            raise ValueError("the profile does not match the model's columns")
        for p in group.values():
            width = len(p["edges"]) + 1 if p["kind"] == "numeric" else len(p["values"]) + 1
            if len(p["shares"]) != width:
                raise ValueError("profile bins and shares disagree")
