"""Events in the HTML report (time series): the runs of flagged steps the scored file's own
anomaly_flag column makes, grouped by the model's rule (attnad.metrics.flag_runs with
threshold.merge_gap and threshold.min_event_steps, as `detect --events` groups them), for the
shaded spans of the signal panels and the table of top events.

    events = find_events(df, det, flags, keys, tnum)   # one row per event, best first
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from attnad.metrics import flag_runs
from attnad.report.tables import explained_bars, share_bars
from attnad.report.svg import esc, fmt_num

TOP_EVENTS = 20  # events in the table and numbered on the panels: enough to triage


def find_events(df: pd.DataFrame, det, flags: np.ndarray, keys: np.ndarray,
                tnum: np.ndarray) -> pd.DataFrame:
    """Events of every entity (rows in time order within it), ranked by peak score: entity,
    first / last / peak (row labels of df), start / end (plot times), steps, flagged, peak_score,
    peak_probability, rank (1 = highest peak)."""
    cfg = det.config.threshold
    scores = df["anomaly_score"].to_numpy(np.float64)
    prob = df["anomaly_probability"].to_numpy(np.float64) if "anomaly_probability" in df else \
        np.full(len(df), np.nan)
    out = []
    for k in pd.unique(keys):
        idx = np.flatnonzero(keys == k)
        idx = idx[np.argsort(tnum[idx], kind="stable")]
        for a, b in flag_runs(flags[idx], cfg.merge_gap, cfg.min_event_steps):
            span = idx[a:b + 1]
            on = span[flags[span]]
            peak = on[int(np.nanargmax(scores[on]))] if np.isfinite(scores[on]).any() else on[0]
            out.append({"entity": str(k), "first": df.index[span[0]], "last": df.index[span[-1]],
                        "peak": df.index[peak], "start": tnum[span[0]], "end": tnum[span[-1]],
                        "steps": len(span), "flagged": len(on),
                        "peak_score": scores[peak], "peak_probability": float(np.nanmax(prob[on]))
                        if np.isfinite(prob[on]).any() else np.nan})
    events = pd.DataFrame(out, columns=["entity", "first", "last", "peak", "start", "end",
                                        "steps", "flagged", "peak_score", "peak_probability"])
    events = events.sort_values(["peak_score", "first"], ascending=[False, True], kind="stable")
    events["rank"] = np.arange(1, len(events) + 1)
    return events.reset_index(drop=True)


def _signals(e, df: pd.DataFrame, by_start: dict) -> str:
    """The event's signals: from the run's summary (`detect`: shares over the whole event),
    else the peak row's explanation (--explain), else how to get them."""
    got = by_start.get((e["entity"], int(e["first"])))
    if got is not None:
        return share_bars([(s["column"], s["share"]) for s in got["signals"]])
    feats = df.at[e["peak"], "top_features"] if "top_features" in df else None
    if isinstance(feats, str) and feats:
        return explained_bars(feats, df.at[e["peak"], "top_contributions"]) + \
            '<span class="muted">at the peak</span>'
    return '<span class="muted">run detect --report, or score with --explain K</span>'


def events_table(events: pd.DataFrame, df: pd.DataFrame, tcol: str, gcol: str | None,
                 summary_top: list | None) -> str:
    if events.empty:
        return "<p>No events: no step was flagged.</p>"
    by_start = {(e["entity"], int(e["first_row"])): e for e in (summary_top or [])}
    head = ["#"] + ([gcol] if gcol else []) + ["start", "end", "steps (flagged)", "peak score",
                                                "peak probability", "signals (share of score)"]
    rows = []
    for _, e in events.head(TOP_EVENTS).iterrows():
        cells = [str(e["rank"])] + ([esc(e["entity"])] if gcol else []) + [
            esc(df.at[e["first"], tcol]), esc(df.at[e["last"], tcol]),
            f"{e['steps']:,} ({e['flagged']:,})", fmt_num(e["peak_score"]),
            "" if np.isnan(e["peak_probability"]) else f"{e['peak_probability']:.6f}",
            _signals(e, df, by_start)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    which = f"The {TOP_EVENTS} events with the highest peak score of {len(events):,}" \
        if len(events) > TOP_EVENTS else f"All {len(events):,} events, highest peak score first"
    return (f"<p>{which}; numbered as on the panels above.</p><table><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>")
