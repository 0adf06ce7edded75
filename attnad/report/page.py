"""The HTML report page: reads the scored file, assembles the sections, writes one file.

The sections come from attnad.report.svg (the score histogram), attnad.report.panels (time
series) and attnad.report.tables (top rows, model card); this module adds the summary table
and the stylesheet.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from attnad import __version__
from attnad.data.io import iter_batches
from attnad.errors import DataError, UserError
from attnad.report.panels import is_series, series_panels
from attnad.report.svg import esc, fmt_num, histogram_svg
from attnad.report.tables import model_card, top_rows_table

READ_BATCH_ROWS = 65_536  # rows per batch read: bounds the Arrow buffers alive at once

# Inline, not linked: the report must open with no network and archive as one file.
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


def read_scored(path, columns: list[str]) -> pd.DataFrame:
    """The named columns that exist in the scored file (anomaly_score is required)."""
    frames = []
    for batch in iter_batches(path, READ_BATCH_ROWS):
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
    # the flag arrives as bool from Parquet but may be text ("True", "1") from a CSV
    if "anomaly_flag" in df:
        df["anomaly_flag"] = df["anomaly_flag"].astype(str).str.lower().isin(["true", "1"])
    if "anomaly_probability" in df:
        df["anomaly_probability"] = pd.to_numeric(df["anomaly_probability"], errors="coerce")
    return df


def _threshold(df: pd.DataFrame, det, summary: dict | None) -> float | None:
    """The threshold to draw: the run's own, else the model's, else the lowest flagged score."""
    if summary is not None and summary.get("threshold") is not None:
        return summary["threshold"]
    if det is not None:
        return det.threshold_["value"]
    if "anomaly_flag" in df and df["anomaly_flag"].any():
        return float(df.loc[df["anomaly_flag"], "anomaly_score"].min())
    return None


def _stats_table(df: pd.DataFrame, scores: np.ndarray, threshold: float | None,
                 summary: dict | None) -> str:
    n = len(df)
    flagged = int(df["anomaly_flag"].sum()) if "anomaly_flag" in df else None
    stat_rows = [("rows", f"{n:,}")]
    if flagged is not None:
        stat_rows.append(("flagged", f"{flagged:,} ({flagged / max(n, 1):.2%})"))
    if threshold is not None:
        stat_rows.append(("threshold", fmt_num(threshold)))
    fin = scores[np.isfinite(scores)]
    if fin.size:
        q = np.quantile(fin, [0.5, 0.99])
        stat_rows.append(("score p50 / p99 / max", f"{fmt_num(q[0])} / {fmt_num(q[1])} / "
                          f"{fmt_num(fin.max())}"))
    lm = (summary or {}).get("label_metrics")
    if lm and lm.get("auroc") is not None:
        stat_rows.append(("AUROC / AUPRC on labels", f"{lm['auroc']:.4f} / {lm['auprc']:.4f}"))
    return '<table class="stats">' + "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in stat_rows) + "</table>"


def build_html_report(scored_path, det=None, model_path=None, summary: dict | None = None) -> str:
    id_cols = [c for c in det.schema_.names("id")] if det is not None else []
    cols = ["anomaly_score", "anomaly_flag", "anomaly_probability", "top_features",
            "top_contributions", *id_cols]
    ts = is_series(det)
    if ts:
        st = det.series_
        cols += [st.time_column] + ([st.group_column] if st.group_column else []) + st.features
    df = read_scored(scored_path, cols)
    scores = df["anomaly_score"].to_numpy(np.float64)
    threshold = _threshold(df, det, summary)
    parts = [f"<h1>attnad report: {esc(Path(scored_path).name)}</h1>",
             f'<p class="muted">written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by '
             f"attnad {__version__}</p>", _stats_table(df, scores, threshold, summary),
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


def check_report_output(path: Path) -> None:
    """`attnad report -o`: an .html file in a directory that exists."""
    if path.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"-o {path}: give a file name ending .html")
    if str(path.parent) and not path.parent.is_dir():
        raise UserError(f"-o {path}: directory {path.parent} does not exist")


def write_html_report(scored_path, out_path, det=None, model_path=None,
                      summary: dict | None = None) -> None:
    text = build_html_report(scored_path, det, model_path, summary)
    # write beside the target, then rename: a reader never sees a half-written report
    p = Path(out_path)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
