"""Run summaries: a JSON-ready dict and a rich table for people.

    summary = build_summary(stats, det, source="in.csv", output="out.csv")
    render_summary(summary, console)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from attnad.data.io import write_text_atomic
from attnad.errors import UserError
from attnad.metrics import auprc, auroc
from attnad.pipeline.drift import drift_gates, drift_section, render_drift
from attnad.pipeline.quality import invalid_shares
from attnad.threshold import probability


DRIFT_GATES = ("fail_on_drift", "fail_on_missing")


def _finite(x: float | None):
    return None if x is None or not math.isfinite(x) else x


def label_metrics(labels: np.ndarray, scores: np.ndarray) -> dict:
    # Rows without a usable label (NaN) are left out rather than counted as normal. The labels
    # are made boolean here (`> 0`) before attnad.metrics sees them: it reads any non-zero value
    # as an anomaly, which would count negative labels as anomalies.
    ok = np.isfinite(labels)
    y, s = labels[ok] > 0, scores[ok]
    if y.size == 0 or y.all() or not y.any():
        return {"rows": int(y.size), "anomalies": int(y.sum()), "auroc": None, "auprc": None,
                "note": "labels have a single class; AUROC/AUPRC undefined"}
    return {"rows": int(y.size), "anomalies": int(y.sum()),
            "auroc": round(auroc(y, s), 4),
            "auprc": round(auprc(y, s), 4)}


def build_summary(stats, det, *, source: str, output: str, gates: dict | None = None) -> dict:
    sample = np.concatenate(stats.score_sample) if stats.score_sample else np.zeros(0)
    qs = {}
    if sample.size:
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
            qs[name] = float(np.quantile(sample, q))
        qs["max"] = float(max(sample.max(), max((t[0] for t in stats.top), default=-np.inf)))
    top = sorted(stats.top, key=lambda t: (-t[0], t[1]))
    summary = {
        "input": source,
        "output": output,
        "rows": stats.rows,
        "flagged": stats.flagged,
        "flag_rate": stats.flagged / stats.rows if stats.rows else 0.0,
        "threshold": _finite(stats.threshold),
        "threshold_method": det.threshold_.get("method"),
        "score_quantiles": qs,
        "invalid_cells": dict(stats.invalid_cells),
        "invalid_cells_total": int(sum(stats.invalid_cells.values())),
        "invalid_share": {k: round(v, 6) for k, v in
                          invalid_shares(stats.invalid_cells, stats.rows).items()},
        "top_rows": [
            {"row": r, "score": s, "probability": float(probability(np.array([s]), det.threshold_)[0]),
             "ids": ids, "top_features": [{"column": c, "share": round(sh, 4)} for c, sh in feats]}
            for s, r, ids, feats in top
        ],
        "warnings": list(stats.warnings),
        # None: the model was saved before attnad kept a training profile (format version 1)
        "drift": drift_section(getattr(stats, "drift", None)),
    }
    if getattr(stats, "events", None) is not None:
        ev = dict(stats.events)
        summary["top_events"] = ev.pop("top")
        summary["events"] = ev
    if stats.labels:
        summary["label_metrics"] = label_metrics(np.concatenate(stats.labels),
                                                 np.concatenate(stats.label_scores))
    if gates is not None:
        summary["gates"] = gates
    return summary


def check_gates(fail_on_rate: float | None, fail_on_count: int | None,
                fail_on_invalid: float | None = None, fail_on_events: int | None = None) -> None:
    """Refuse gate limits that could never mean anything, before any work is done."""
    for name, share in (("rate", fail_on_rate), ("invalid", fail_on_invalid)):
        if share is not None and not 0 <= share <= 1:
            raise UserError(f"--fail-on-{name} {share}: must be between 0 and 1")
    for name, count in (("count", fail_on_count), ("events", fail_on_events)):
        if count is not None and count < 0:
            raise UserError(f"--fail-on-{name} {count}: must be 0 or more")


def check_event_options(series: bool, events: Path | None, fail_on_events: int | None,
                        model: Path | None) -> None:
    """Tables have no events: refuse --events and --fail-on-events before any work."""
    option = "--events" if events is not None else \
        "--fail-on-events" if fail_on_events is not None else None
    if option and not series:
        where = f"the model {model} scores rows of a table" if model is not None else \
            "without data.time_column the data is scored as a table"
        raise UserError(f"{option}: events are runs of flagged steps of a time series, and "
                        f"{where}; set data.time_column (and data.group_column) to detect "
                        "events, or drop the option")


def evaluate_gates(stats, fail_on_rate: float | None, fail_on_count: int | None,
                   fail_on_invalid: float | None = None, fail_on_events: int | None = None,
                   fail_on_drift: float | None = None, fail_on_missing: float | None = None
                   ) -> dict:
    """`detect`'s CI gates: each asked-for gate's limit, observed value and whether it broke.
    Counts and shares break when strictly above the limit (`--fail-on-events 0`: any event).
    The invalid gate watches the model column with the largest share of unparseable cells; the
    drift gates the largest PSI and the largest rise of a missing share (attnad.pipeline.drift)."""
    gates = {}
    rate = stats.flagged / stats.rows if stats.rows else 0.0
    if fail_on_rate is not None:
        gates["fail_on_rate"] = {"limit": fail_on_rate, "value": rate,
                                 "breached": rate > fail_on_rate}
    if fail_on_count is not None:
        gates["fail_on_count"] = {"limit": fail_on_count, "value": stats.flagged,
                                  "breached": stats.flagged > fail_on_count}
    if fail_on_invalid is not None:
        shares = invalid_shares(stats.invalid_cells, stats.rows)
        worst = max(shares, key=shares.get, default=None)
        value = shares.get(worst, 0.0)
        gates["fail_on_invalid"] = {"limit": fail_on_invalid, "value": value, "column": worst,
                                    "breached": value > fail_on_invalid}
    if fail_on_events is not None:
        n = (stats.events or {}).get("count", 0)
        gates["fail_on_events"] = {"limit": fail_on_events, "value": n,
                                   "breached": n > fail_on_events}
    if fail_on_drift is not None or fail_on_missing is not None:
        gates.update(drift_gates(drift_section(stats.drift), fail_on_drift, fail_on_missing))
    return gates


def breach_lines(gates: dict) -> list[str]:
    """One line per breached gate, for stderr (empty when every gate held)."""
    return [f"gate breached: {k.replace('_', '-')} {g['limit']} (observed {g['value']:.4g}"
            + (f" in column {g['column']}" if k in DRIFT_GATES and g.get("column") else "") + ")"
            for k, g in gates.items() if g["breached"]]


def write_summary_json(summary: dict, path: str | Path) -> None:
    write_text_atomic(path, json.dumps(summary, indent=2, default=str))


def _shown(t) -> str:
    """An event time for people: '2026-03-09T02:10:00Z' -> '2026-03-09 02:10' (UTC)."""
    if not isinstance(t, str):
        return f"{t:g}" if isinstance(t, float) else str(t)
    t = t.replace("T", " ").removesuffix("Z")
    return t[:16] if t[16:] in ("", ":00") else t


def _render_events(summary: dict, console: Console) -> None:
    """Time series: the top events instead of the top rows (an anomaly is many rows)."""
    ev = summary["events"]
    title = (f"events: {ev['count']:,} (runs of flagged steps of one entity, merging gaps under "
             f"{ev['merge_gap']} steps" + (f", at least {ev['min_event_steps']} steps long"
                                           if ev["min_event_steps"] > 1 else "") + ")")
    if not summary["top_events"]:
        console.print(title, markup=False, highlight=False)
        return
    top = Table(title=title + (f"; the top {len(summary['top_events'])} by peak score"
                               if ev["count"] > len(summary["top_events"]) else ""),
                title_justify="left")
    for name, right in (("entity", False), ("start", False), ("end", False), ("steps", True),
                        ("peak score", True), ("signals", False)):
        top.add_column(name, justify="right" if right else "left")
    for e in summary["top_events"]:
        sig = ", ".join(f"{s['column']} {s['share']:.0%}" for s in e["signals"])
        start, end = _shown(e["start"]), _shown(e["end"])
        if isinstance(e["start"], str) and start[:10] == end[:10]:
            end = end[11:]  # same day: the time of day says it
        top.add_row(e["entity"], start, end, f"{e['steps']:,}",
                    f"{e['peak_score']:.4g}", sig)
    console.print(top)


def render_summary(summary: dict, console: Console) -> None:
    t = Table(title=f"attnad: {summary['input']}", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row("rows", f"{summary['rows']:,}")
    if "flagged" in summary and summary.get("threshold") is not None:
        t.add_row("flagged", f"{summary['flagged']:,} ({summary['flag_rate']:.2%})")
        if "events" in summary:
            t.add_row("events", f"{summary['events']['count']:,}"
                      + (f" -> {summary['events']['file']}" if summary["events"]["file"] else ""))
        t.add_row("threshold", f"{summary['threshold']:.4g} ({summary['threshold_method']})")
    q = summary["score_quantiles"]
    if q:
        t.add_row("score p50 / p99 / max", f"{q['p50']:.4g} / {q['p99']:.4g} / {q['max']:.4g}")
    if summary["invalid_cells_total"]:
        share = summary.get("invalid_share", {})
        cols = ", ".join(f"{k}: {v:,}" + (f" ({share[k]:.1%})" if k in share else "")
                         for k, v in list(summary["invalid_cells"].items())[:5])
        t.add_row("invalid cells", f"{summary['invalid_cells_total']:,} ({cols})")
    lm = summary.get("label_metrics")
    if lm:
        if lm.get("auroc") is None:
            t.add_row("labels", lm.get("note", ""))
        else:
            t.add_row("AUROC / AUPRC on labels", f"{lm['auroc']:.4f} / {lm['auprc']:.4f}")
    t.add_row("output", summary["output"])
    console.print(t)
    if "events" in summary:
        _render_events(summary, console)
    elif summary["top_rows"]:
        top = Table(title="top rows by score", title_justify="left")
        top.add_column("row", justify="right")
        ids = list(summary["top_rows"][0]["ids"].keys())
        for c in ids:
            top.add_column(c)
        top.add_column("score", justify="right")
        top.add_column("prob.", justify="right")
        top.add_column("driven by")
        for r in summary["top_rows"]:
            feats = ", ".join(f"{f['column']} {f['share']:.0%}" for f in r["top_features"][:3])
            top.add_row(str(r["row"]), *[str(r["ids"][c]) for c in ids], f"{r['score']:.4g}",
                        f"{r['probability']:.4f}", feats)
        console.print(top)
    render_drift(summary.get("drift"), console)
    for w in summary.get("warnings", []):
        console.print(f"warning: {w}", style="yellow", markup=False, highlight=False)
