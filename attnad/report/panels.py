"""Time-series panels of the HTML report: per entity, the signals and the anomaly score over
time, with the events (or, without them, the flagged spans) shaded.

The detector is passed in, never imported: the panels read its `series_` (features,
time_column, group_column, entities) and `threshold_`.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from attnad.report.svg import COLOURS, FLAG_COLOUR, Plot, esc, fmt_num, nice_ticks

# Plots are thinned to at most MAX_POINTS points per entity, keeping each bucket's highest score
# so spikes stay visible.
MAX_POINTS = 1500  # points per plotted series: above the plot's width in units, so no detail lost
MAX_ENTITIES = 8  # time-series panels: the most-flagged entities; more makes the page unreadable
MAX_SIGNALS = 8  # signals drawn per panel: as many as COLOURS, so no two share a colour
EVENT_NUMBERS = 20  # events numbered on the panels: the ones in the report's table


def is_series(det) -> bool:
    """Whether the report has a series model (signal panels, time and group columns)."""
    return det is not None and det.kind == "timeseries"


def _thin(idx: np.ndarray, scores: np.ndarray, max_points: int) -> np.ndarray:
    """Positions to plot: all of them, or each bucket's highest-scoring row."""
    if len(idx) <= max_points:
        return idx
    buckets = np.array_split(np.arange(len(idx)), max_points)
    return np.array([idx[b[np.nanargmax(scores[b])] if np.isfinite(scores[b]).any() else b[0]]
                     for b in buckets])


def _flag_runs(t: np.ndarray, flags: np.ndarray) -> tuple[list, list]:
    """[start, end) times of consecutive flagged rows; a lone flag gets a sliver of width."""
    starts, ends = [], []
    i, n = 0, len(flags)
    step = float(np.median(np.diff(t))) if n > 1 else 1.0
    while i < n:
        if flags[i]:
            j = i
            while j + 1 < n and flags[j + 1]:
                j += 1
            starts.append(t[i] - step / 2)
            ends.append(t[j] + step / 2)
            i = j + 1
        else:
            i += 1
    return starts, ends


def _time_axis(values: pd.Series) -> tuple[np.ndarray, callable, str]:
    """Times as floats for plotting, a tick formatter, and the axis label.

    Datetimes (from Parquet) are dates even though pd.to_numeric would turn them into counts of
    microseconds; text (from CSV) is a step number if every cell parses as one, else a date."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        num = values if pd.api.types.is_numeric_dtype(values) else \
            pd.to_numeric(values, errors="coerce")  # CSV cells arrive as text
        if num.notna().sum() >= values.notna().sum() > 0:
            return num.to_numpy(np.float64), fmt_num, "step"
    t = pd.to_datetime(values, errors="coerce", utc=True)
    secs = (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(np.float64)
    span = np.nanmax(secs) - np.nanmin(secs) if np.isfinite(secs).any() else 0
    fmt = "%Y-%m-%d %H:%M" if span < 5 * 86400 else "%Y-%m-%d"
    return secs, lambda v: datetime.fromtimestamp(v, timezone.utc).strftime(fmt), "time (UTC)"


def series_columns(df: pd.DataFrame, det, threshold: float | None):
    """Each row's entity (text), flag and plot time, the time formatter and the axis label."""
    st = det.series_
    gcol = st.group_column
    keys = df[gcol].astype(str) if gcol and gcol in df else pd.Series(["(all rows)"] * len(df))
    flags = df["anomaly_flag"].to_numpy() if "anomaly_flag" in df else \
        (df["anomaly_score"].to_numpy() > threshold if threshold is not None
         else np.zeros(len(df), bool))
    return (keys, flags.astype(bool), *_time_axis(df[st.time_column]))


def series_panels(df: pd.DataFrame, det, threshold: float | None,
                  events: pd.DataFrame | None = None) -> str:
    """Per entity, the signals and the score over time. Shaded: the events (attnad.report.events,
    numbered by rank), or the runs of flagged rows when no events are given."""
    st = det.series_
    gcol = st.group_column
    keys, flags, tnum, tfmt, tlabel = series_columns(df, det, threshold)
    scores = df["anomaly_score"].to_numpy(np.float64)
    stats = pd.DataFrame({"k": keys, "f": flags, "s": scores}).groupby("k", sort=False) \
        .agg(flagged=("f", "sum"), top=("s", "max"))
    chosen = stats.sort_values(["flagged", "top"], ascending=False).index[:MAX_ENTITIES]
    signals = [f for f in st.features if f in df][:MAX_SIGNALS]
    out = []
    if len(stats) > len(chosen):
        out.append(f"<p>{len(chosen)} of {len(stats)} entities shown: those with the most "
                   "flagged rows.</p>")
    ents = st.entities if hasattr(st, "entities") else {}
    per_entity = (det.threshold_.get("entities") or {}) if det is not None else {}
    for k in chosen:
        idx = np.flatnonzero(keys.to_numpy() == k)
        idx = idx[np.argsort(tnum[idx], kind="stable")]
        t = tnum[idx]
        ok = np.isfinite(t)
        idx, t = idx[ok], t[ok]
        if len(idx) == 0:
            continue
        starts, ends = _flag_runs(t, flags[idx])
        numbers = ([], [])
        if events is not None:  # events span merged gaps: shade them whole, number the top ones
            mine = events[events["entity"] == str(k)]
            step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
            starts = list(mine["start"] - step / 2)
            ends = list(mine["end"] + step / 2)
            top = mine[mine["rank"] <= EVENT_NUMBERS]
            numbers = (list((top["start"] + top["end"]) / 2), [f"{r}" for r in top["rank"]])
        shown = _thin(np.arange(len(idx)), scores[idx], MAX_POINTS)
        t_lo, t_hi = float(t.min()), float(t.max())
        n_flag = int(flags[idx].sum())
        title = f"{gcol} = {k}: {len(idx):,} rows, {n_flag:,} flagged" if gcol else \
            f"{len(idx):,} rows, {n_flag:,} flagged"
        sig = Plot(230, (t_lo, t_hi), (-0.05, 1.05), title)
        sig.spans(starts, ends, FLAG_COLOUR)
        sig.marks(*numbers, FLAG_COLOUR)
        sig.axes(tlabel, "signals (scaled to range)", y_ticks=[0, 0.5, 1], x_fmt=tfmt,
                 x_ticks=nice_ticks(t_lo, t_hi, 6) if tlabel == "step" else
                 list(np.linspace(t_lo, t_hi, 5)))
        legend = []
        for j, name in enumerate(signals):
            v = pd.to_numeric(df[name].iloc[idx], errors="coerce").to_numpy(np.float64)
            lo, hi = (np.nanmin(v), np.nanmax(v)) if np.isfinite(v).any() else (0.0, 1.0)
            v = (v - lo) / (hi - lo) if hi > lo else v * 0 + 0.5
            c = COLOURS[j % len(COLOURS)]
            sig.line(t[shown], v[shown], c, 1.0)
            legend.append(f'<span style="color:{c}">&#9632;</span> {esc(name)}')
        sc = scores[idx]
        t_ent = per_entity.get(str(k), {}).get("value", threshold)
        top = max(float(np.nanmax(sc)) if np.isfinite(sc).any() else 1.0,
                  t_ent if t_ent is not None else -np.inf)
        bottom = min(float(np.nanmin(sc)) if np.isfinite(sc).any() else 0.0, 0.0)
        scp = Plot(170, (t_lo, t_hi), (bottom, top * 1.05 if top > 0 else top + 1))
        scp.spans(starts, ends, FLAG_COLOUR)
        scp.axes(tlabel, "anomaly_score", x_fmt=tfmt,
                 x_ticks=nice_ticks(t_lo, t_hi, 6) if tlabel == "step" else
                 list(np.linspace(t_lo, t_hi, 5)))
        scp.line(t[shown], sc[shown], "#333333", 1.0)
        if t_ent is not None:
            scp.hline(t_ent, FLAG_COLOUR, f"threshold {fmt_num(t_ent)}")
        note = "" if str(k) in ents or not gcol else " (not seen in training)"
        out.append(f'<div class="panel">{sig.svg()}<div class="legend">{" ".join(legend)}'
                   f'{esc(note)}</div>{scp.svg()}</div>')
    return "\n".join(out)
