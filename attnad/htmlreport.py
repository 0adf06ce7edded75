"""A self-contained HTML report of a scored file: plots as hand-written inline SVG, no scripts,
no network, so it opens anywhere (a CI artefact, an e-mail attachment) and archives as one file.

Sections: the summary; the score distribution with the threshold; for time series, each entity's
signals and scores over time with flagged spans shaded; the top flagged rows with their
explanations; the model card (config, training data fingerprint, threshold).

The score, flag, probability, explanation, id, time and group columns of the scored file are read
into memory (about 30 bytes a row plus the signals in time-series mode); plots are thinned to at
most MAX_POINTS points per entity, keeping each bucket's highest score so spikes stay visible.

    write_html_report("scored.parquet", "report.html", det=Detector.load("model/"))
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from attnad import __version__
from attnad.data.io import iter_batches
from attnad.errors import DataError

MAX_POINTS = 1500  # points per plotted series
MAX_ENTITIES = 8  # time-series panels
MAX_SIGNALS = 8  # signals drawn per panel
TOP_ROWS = 20
COLOURS = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f"]
FLAG_COLOUR = "#d62728"
W, PAD_L, PAD_R, PAD_T, PAD_B = 1000, 70, 20, 20, 40


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x: float) -> str:
    if x is None or not np.isfinite(x):
        return ""
    return f"{x:.4g}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick positions covering [lo, hi] (Heckbert's nice numbers)."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


class Plot:
    """An SVG canvas with one data area: x, y ranges map to pixels; elements are appended as text."""

    def __init__(self, height: int, x_range, y_range, title: str = ""):
        self.h = height
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1.0
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1.0
        self.parts: list[str] = []
        if title:
            self.parts.append(f'<text x="{PAD_L}" y="14" class="t">{_esc(title)}</text>')

    def px(self, x):
        return PAD_L + (np.asarray(x, float) - self.x0) / (self.x1 - self.x0) * (W - PAD_L - PAD_R)

    def py(self, y):
        top, bottom = PAD_T + 6, self.h - PAD_B
        return bottom - (np.asarray(y, float) - self.y0) / (self.y1 - self.y0) * (bottom - top)

    def axes(self, x_label: str, y_label: str, x_ticks=None, y_ticks=None, x_fmt=_fmt,
             y_fmt=_fmt) -> None:
        b, t = self.h - PAD_B, PAD_T + 6
        self.parts.append(f'<rect x="{PAD_L}" y="{t}" width="{W - PAD_L - PAD_R}" '
                          f'height="{b - t}" class="frame"/>')
        for v in (x_ticks if x_ticks is not None else nice_ticks(self.x0, self.x1, 8)):
            x = float(self.px(v))
            if PAD_L - 1 <= x <= W - PAD_R + 1:
                # labels at the edges grow inwards so they are not cut off
                anchor = "start" if x < PAD_L + 40 else "end" if x > W - PAD_R - 40 else "middle"
                self.parts.append(f'<line x1="{x:.1f}" y1="{b}" x2="{x:.1f}" y2="{b + 4}" '
                                  f'class="ax"/><text x="{x:.1f}" y="{b + 16}" '
                                  f'class="tick" text-anchor="{anchor}">{_esc(x_fmt(v))}</text>')
        for v in (y_ticks if y_ticks is not None else nice_ticks(self.y0, self.y1, 4)):
            y = float(self.py(v))
            if t - 1 <= y <= b + 1:
                self.parts.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{W - PAD_R}" '
                                  f'y2="{y:.1f}" class="grid"/><text x="{PAD_L - 6}" '
                                  f'y="{y + 4:.1f}" class="tick" text-anchor="end">'
                                  f'{_esc(y_fmt(v))}</text>')
        self.parts.append(f'<text x="{(PAD_L + W - PAD_R) / 2}" y="{self.h - 6}" class="lab" '
                          f'text-anchor="middle">{_esc(x_label)}</text>')
        self.parts.append(f'<text x="14" y="{(t + b) / 2}" class="lab" text-anchor="middle" '
                          f'transform="rotate(-90 14 {(t + b) / 2})">{_esc(y_label)}</text>')

    def line(self, x, y, colour: str, width: float = 1.2) -> None:
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 1:
            return
        # break the line at missing values: one path per run of finite points
        runs = np.split(np.arange(len(x)), np.flatnonzero(np.diff(ok.astype(int)) != 0) + 1)
        for r in runs:
            if not ok[r[0]]:
                continue
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(self.px(x[r]), self.py(y[r])))
            self.parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                              f'stroke-width="{width}"/>')

    def hline(self, y: float, colour: str, label: str = "") -> None:
        py = float(self.py(y))
        self.parts.append(f'<line x1="{PAD_L}" y1="{py:.1f}" x2="{W - PAD_R}" y2="{py:.1f}" '
                          f'stroke="{colour}" stroke-dasharray="6 4" stroke-width="1.5"/>')
        if label:
            self.parts.append(f'<text x="{W - PAD_R - 4}" y="{py - 4:.1f}" class="tick" '
                              f'text-anchor="end" fill="{colour}">{_esc(label)}</text>')

    def vline(self, x: float, colour: str, label: str = "") -> None:
        px = float(self.px(x))
        self.parts.append(f'<line x1="{px:.1f}" y1="{PAD_T + 6}" x2="{px:.1f}" '
                          f'y2="{self.h - PAD_B}" stroke="{colour}" stroke-dasharray="6 4" '
                          f'stroke-width="2"/>')
        if label:
            anchor = "end" if px > W * 0.7 else "start"
            dx = -5 if anchor == "end" else 5
            self.parts.append(f'<text x="{px + dx:.1f}" y="{PAD_T + 20}" class="tick" '
                              f'text-anchor="{anchor}" fill="{colour}">{_esc(label)}</text>')

    def spans(self, starts, ends, colour: str, opacity: float = 0.18) -> None:
        t, b = PAD_T + 6, self.h - PAD_B
        for s, e in zip(self.px(starts), self.px(ends)):
            self.parts.append(f'<rect x="{s:.1f}" y="{t}" width="{max(e - s, 1.5):.1f}" '
                              f'height="{b - t}" fill="{colour}" opacity="{opacity}"/>')

    def bars(self, lefts, rights, heights, colours) -> None:
        for l_, r_, h_, c in zip(self.px(lefts), self.px(rights), heights, colours):
            y = float(self.py(h_))
            self.parts.append(f'<rect x="{l_:.1f}" y="{y:.1f}" width="{max(r_ - l_ - 0.5, 0.5):.1f}" '
                              f'height="{max(float(self.py(self.y0)) - y, 0):.1f}" fill="{c}"/>')

    def svg(self) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {self.h}" '
                f'width="100%" role="img">' + "".join(self.parts) + "</svg>")


# ---- reading the scored file --------------------------------------------------------------------
def read_scored(path, columns: list[str]) -> pd.DataFrame:
    """The named columns that exist in the scored file (anomaly_score is required)."""
    frames = []
    for batch in iter_batches(path, 65_536):
        names = batch.schema.names
        if "anomaly_score" not in names:
            raise DataError(f"{path}: no anomaly_score column; give a file written by "
                            "`attnad score` or `attnad detect`")
        frames.append(batch.select([c for c in dict.fromkeys(columns) if c in names])
                      .to_pandas())
    if not frames:
        raise DataError(f"{path}: the file has no rows")
    df = pd.concat(frames, ignore_index=True)
    df["anomaly_score"] = pd.to_numeric(df["anomaly_score"], errors="coerce")
    if "anomaly_flag" in df:
        df["anomaly_flag"] = df["anomaly_flag"].astype(str).str.lower().isin(["true", "1"])
    if "anomaly_probability" in df:
        df["anomaly_probability"] = pd.to_numeric(df["anomaly_probability"], errors="coerce")
    return df


# ---- sections -----------------------------------------------------------------------------------
def histogram_svg(scores: np.ndarray, threshold: float | None) -> str:
    s = scores[np.isfinite(scores)]
    if s.size == 0:
        return "<p>No finite scores.</p>"
    lo = float(s.min())
    hi = float(np.quantile(s, 0.999))
    if threshold is not None and np.isfinite(threshold):
        hi = max(hi, threshold)
    hi = lo + (hi - lo) * 1.05 if hi > lo else lo + 1.0
    bins = 60
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(np.clip(s, lo, hi), edges)
    over = int((s > hi).sum())
    counts[-1] -= min(over, counts[-1])
    y = np.log10(counts + 1.0)
    ymax = max(float(y.max()), 1.0) * 1.08
    p = Plot(300, (lo, hi + (hi - lo) / bins * (3 if over else 0)), (0, ymax))
    colours = ["#9ecae1" if threshold is None or e < threshold else "#fc9272" for e in edges[:-1]]
    p.axes("anomaly_score", "rows (log scale)", y_ticks=list(range(int(ymax) + 1)),
           y_fmt=lambda v: f"{10 ** v:,.0f}" if v > 0 else "0")
    p.bars(edges[:-1], edges[1:], y, colours)
    if over:
        x0 = hi + (hi - lo) / bins
        p.bars([x0], [x0 + (hi - lo) / bins * 1.5], [math.log10(over + 1)], [FLAG_COLOUR])
        p.parts.append(f'<text x="{float(p.px(x0 + (hi - lo) / bins * 1.5)):.1f}" '
                       f'y="{float(p.py(math.log10(over + 1))) - 4:.1f}" class="tick" '
                       f'text-anchor="end">{over:,} above {_fmt(hi)}</text>')
    if threshold is not None and np.isfinite(threshold):
        p.vline(threshold, FLAG_COLOUR, f"threshold {_fmt(threshold)}")
    return p.svg()


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
    """Times as floats for plotting, a tick formatter, and the axis label."""
    num = values if pd.api.types.is_numeric_dtype(values) else \
        pd.to_numeric(values, errors="coerce")  # CSV cells arrive as text
    if num.notna().sum() >= values.notna().sum() > 0:
        return num.to_numpy(np.float64), _fmt, "step"
    t = pd.to_datetime(values, errors="coerce", utc=True)
    secs = (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(np.float64)
    span = np.nanmax(secs) - np.nanmin(secs) if np.isfinite(secs).any() else 0
    fmt = "%Y-%m-%d %H:%M" if span < 5 * 86400 else "%Y-%m-%d"
    return secs, lambda v: datetime.fromtimestamp(v, timezone.utc).strftime(fmt), "time (UTC)"


def series_panels(df: pd.DataFrame, det, threshold: float | None) -> str:
    st = det.series_
    tcol, gcol = st.time_column, st.group_column
    keys = df[gcol].astype(str) if gcol and gcol in df else pd.Series(["(all rows)"] * len(df))
    flags = df["anomaly_flag"].to_numpy() if "anomaly_flag" in df else \
        (df["anomaly_score"].to_numpy() > threshold if threshold is not None
         else np.zeros(len(df), bool))
    tnum, tfmt, tlabel = _time_axis(df[tcol])
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
        shown = _thin(np.arange(len(idx)), scores[idx], MAX_POINTS)
        t_lo, t_hi = float(t.min()), float(t.max())
        n_flag = int(flags[idx].sum())
        title = f"{gcol} = {k}: {len(idx):,} rows, {n_flag:,} flagged" if gcol else \
            f"{len(idx):,} rows, {n_flag:,} flagged"
        sig = Plot(230, (t_lo, t_hi), (-0.05, 1.05), title)
        sig.spans(starts, ends, FLAG_COLOUR)
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
            legend.append(f'<span style="color:{c}">&#9632;</span> {_esc(name)}')
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
            scp.hline(t_ent, FLAG_COLOUR, f"threshold {_fmt(t_ent)}")
        note = "" if str(k) in ents or not gcol else " (not seen in training)"
        out.append(f'<div class="panel">{sig.svg()}<div class="legend">{" ".join(legend)}'
                   f'{_esc(note)}</div>{scp.svg()}</div>')
    return "\n".join(out)


def top_rows_table(df: pd.DataFrame, id_cols: list[str], summary_top: list | None) -> str:
    if "anomaly_flag" in df:
        cand = df[df["anomaly_flag"]]
        what = "flagged rows"
    else:
        cand = df
        what = "rows"
    top = cand.sort_values("anomaly_score", ascending=False, kind="stable").head(TOP_ROWS)
    if top.empty:
        return f"<p>No {what}.</p>"
    by_row = {r["row"]: r for r in (summary_top or [])}
    has_expl = "top_features" in df
    head = ["row", *id_cols, "anomaly_score"] + (["probability"] if "anomaly_probability" in df
                                                 else []) + ["explanation (share of score)"]
    rows = []
    for i, r in top.iterrows():
        cells = [str(i)] + [_esc(r.get(c, "")) for c in id_cols] + [_fmt(r["anomaly_score"])]
        if "anomaly_probability" in df:
            cells.append(f"{r['anomaly_probability']:.6f}")
        if has_expl and isinstance(r["top_features"], str) and r["top_features"]:
            feats = r["top_features"].split(";")
            shares = str(r.get("top_contributions", "")).split(";")
            expl = _bars(list(zip(feats, [float(x) if x else 0.0 for x in shares])))
        elif i in by_row:
            expl = _bars([(f["column"], f["share"]) for f in by_row[i]["top_features"]])
        else:
            expl = '<span class="muted">run with --explain K</span>'
        cells.append(expl)
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f"<p>The {len(top)} highest-scoring {what} of {len(cand):,}.</p><table><tr>"
            + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>")


def _bars(items: list[tuple[str, float]]) -> str:
    out = []
    for name, share in items:
        w = max(0.0, min(1.0, share)) * 120
        out.append(f'<div class="bar"><span class="fill" style="width:{w:.0f}px"></span>'
                   f'<span>{_esc(name)} {share:.0%}</span></div>')
    return "".join(out)


def model_card(det, model_path) -> str:
    if det is None:
        return "<p>No model given: run <code>attnad report SCORED -m MODEL_DIR</code> for the " \
               "model card.</p>"
    tr = det.training_ or {}
    th = det.threshold_
    fp = tr.get("fingerprint") or {}
    rows = [("model directory", model_path), ("model type", det.config.model.type),
            ("mode", "time series" if det.is_timeseries else "table"),
            ("trained on", f"{tr.get('rows', '?'):,} rows" if isinstance(tr.get("rows"), int)
             else "?"),
            ("training", f"{tr.get('steps', '?')} steps, {tr.get('seconds', '?')} s on "
             f"{tr.get('device', '?')}, final loss {_fmt(tr.get('final_train_loss') or float('nan'))}"),
            ("training data fingerprint",
             f"{fp.get('rows', '?')} rows x {fp.get('columns', '?')} columns; schema sha256 "
             f"{fp.get('schema_sha256', '?')[:16]}...; sample sha256 "
             f"{fp.get('sample_sha256', '?')[:16]}..." if fp else "not recorded (older model)"),
            ("threshold", _threshold_text(th)),
            ("calibration", _tail_text(th))]
    if tr.get("cross_fit"):
        rows.append(("cross-fitting", f"{tr['cross_fit']['folds']} cell models; each row is "
                     "scored by the one that did not train on it"))
    if tr.get("init_from"):
        rows.append(("fine-tuned from", tr["init_from"].get("path", "?")))
    cols = list(dict.fromkeys(det.feature_sources))
    rows.append(("features", f"{len(cols)}: " + ", ".join(cols[:40])
                 + (" ..." if len(cols) > 40 else "")))
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    cfg = json.dumps(det.config.model_dump(mode="json"), indent=1)
    return (f'<table class="card">{body}</table><details><summary>full config</summary>'
            f"<pre>{_esc(cfg)}</pre></details>")


def _threshold_text(th: dict) -> str:
    m = th.get("method")
    how = {"quantile": f"top {th.get('contamination')} of training scores",
           "pot": f"GPD tail, risk {th.get('risk')}",
           "fixed": "fixed value"}.get(m, m)
    ents = th.get("entities")
    extra = f"; per-entity thresholds for {len(ents)} entities" if ents else ""
    return f"{_fmt(th.get('value'))} ({m}: {how}){extra}"


def _tail_text(th: dict) -> str:
    tail = th.get("tail")
    n = th.get("n_training_scores", "?")
    if not tail:
        return f"empirical, {n} training scores"
    return (f"{n} training scores; GPD tail above the {tail['level']} quantile "
            f"({_fmt(tail['u'])}): shape {tail['shape']:.3f}, scale {_fmt(tail['scale'])}, "
            f"{tail['n']} exceedances"
            + (f", fit p-value {tail['fit_pvalue']:.2f}" if tail.get("fit_pvalue") is not None
               else ""))


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1040px;
color:#222;line-height:1.4}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f5f5f5}.card th{width:200px}
.muted{color:#888}.t{font-size:13px;font-weight:600}.tick{font-size:11px;fill:#444}
.lab{font-size:12px;fill:#333}.frame{fill:none;stroke:#bbb}.ax{stroke:#888}.grid{stroke:#eee}
.bar{position:relative;width:260px;height:16px;font-size:12px;margin:1px 0}
.bar .fill{position:absolute;left:0;top:2px;height:12px;background:#fcbba1}
.bar span:last-child{position:relative;padding-left:4px}
.legend{font-size:12px;margin:0 0 4px 70px}.panel{margin-bottom:18px}
.stats td{min-width:90px}pre{font-size:11px;background:#fafafa;padding:8px;overflow:auto}
"""


def build_html_report(scored_path, det=None, model_path=None, summary: dict | None = None) -> str:
    id_cols = [c for c in det.schema_.names("id")] if det is not None else []
    cols = ["anomaly_score", "anomaly_flag", "anomaly_probability", "top_features",
            "top_contributions", *id_cols]
    ts = det is not None and det.is_timeseries
    if ts:
        st = det.series_
        cols += [st.time_column] + ([st.group_column] if st.group_column else []) + st.features
    df = read_scored(scored_path, cols)
    scores = df["anomaly_score"].to_numpy(np.float64)
    threshold = None
    if summary is not None and summary.get("threshold") is not None:
        threshold = summary["threshold"]
    elif det is not None:
        threshold = det.threshold_["value"]
    elif "anomaly_flag" in df and df["anomaly_flag"].any():
        threshold = float(df.loc[df["anomaly_flag"], "anomaly_score"].min())
    n = len(df)
    flagged = int(df["anomaly_flag"].sum()) if "anomaly_flag" in df else None
    stat_rows = [("rows", f"{n:,}")]
    if flagged is not None:
        stat_rows.append(("flagged", f"{flagged:,} ({flagged / max(n, 1):.2%})"))
    if threshold is not None:
        stat_rows.append(("threshold", _fmt(threshold)))
    fin = scores[np.isfinite(scores)]
    if fin.size:
        q = np.quantile(fin, [0.5, 0.99])
        stat_rows.append(("score p50 / p99 / max", f"{_fmt(q[0])} / {_fmt(q[1])} / "
                          f"{_fmt(fin.max())}"))
    lm = (summary or {}).get("label_metrics")
    if lm and lm.get("auroc") is not None:
        stat_rows.append(("AUROC / AUPRC on labels", f"{lm['auroc']:.4f} / {lm['auprc']:.4f}"))
    stats_html = '<table class="stats">' + "".join(
        f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in stat_rows) + "</table>"
    parts = [f"<h1>attnad report: {_esc(Path(scored_path).name)}</h1>",
             f'<p class="muted">written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by '
             f"attnad {__version__}</p>", stats_html,
             "<h2>Score distribution</h2>", histogram_svg(scores, threshold),
             '<p class="muted">Rows right of the threshold (red) are flagged. Counts on a log '
             "scale; the red bar on the far right counts rows beyond the plotted range.</p>"]
    if ts:
        parts += ["<h2>Signals and scores over time</h2>",
                  '<p class="muted">Shaded: flagged rows. Each signal is scaled to its own '
                  "range on the panel.</p>", series_panels(df, det, threshold)]
    parts += ["<h2>Top flagged rows</h2>",
              top_rows_table(df, id_cols, (summary or {}).get("top_rows")),
              "<h2>Model card</h2>", model_card(det, model_path)]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>attnad report"
            f"</title><style>{CSS}</style></head><body>" + "\n".join(parts) + "</body></html>")


def write_html_report(scored_path, out_path, det=None, model_path=None,
                      summary: dict | None = None) -> None:
    text = build_html_report(scored_path, det, model_path, summary)
    p = Path(out_path)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
