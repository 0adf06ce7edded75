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
from attnad.data.io import iter_batches, write_text_atomic
from attnad.data.schema import to_float
from attnad.errors import DataError, UserError
from attnad.report.drift import drift_html
from attnad.report.events import events_table, find_events
from attnad.report.panels import is_series, series_columns, series_panels
from attnad.report.svg import esc, fmt_num, histogram_svg
from attnad.report.tables import model_card, top_rows_table
from attnad.summary import label_metrics

READ_BATCH_ROWS = 65_536  # rows per batch read: bounds the Arrow buffers alive at once
LABEL = "__attnad_label"  # the parsed label column: a name no scored file's own column has
THRESHOLD = "threshold"  # the line's name when it is the run's or the model's threshold
LOWEST_FLAGGED = "lowest flagged score"  # its name without either: not the model's threshold

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
.stats td{min-width:90px}.dplot{display:inline-block;width:49%;vertical-align:top;margin:4px 0}pre{font-size:11px;background:#fafafa;padding:8px;overflow:auto}
"""


def read_scored(path, columns: list[str], label: str | None = None) -> pd.DataFrame:
    """The named columns that exist in the scored file (anomaly_score is required).

    The label column, if named and present, is parsed as `detect` parses it (to_float: missing
    and unparseable cells become NaN), so both compute the same AUROC from the same file."""
    frames = []
    for batch in iter_batches(path, READ_BATCH_ROWS):
        names = batch.schema.names
        if "anomaly_score" not in names:
            raise DataError(f"{path}: no anomaly_score column; give a file written by "
                            "`attnad score` or `attnad detect`")
        frame = batch.select([c for c in dict.fromkeys(columns) if c in names]).to_pandas()
        if label and label in names:
            frame[LABEL] = to_float(batch.column(names.index(label)))[0]
        frames.append(frame)
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


def _threshold(df: pd.DataFrame, det, summary: dict | None) -> tuple[float | None, str]:
    """The line to draw and its name: the run's threshold, else the model's; without either,
    the lowest flagged score, named as such (the model's threshold is not known then)."""
    if summary is not None and summary.get("threshold") is not None:
        return summary["threshold"], THRESHOLD
    if det is not None:
        return det.threshold_["value"], THRESHOLD
    if "anomaly_flag" in df and df["anomaly_flag"].any():
        return float(df.loc[df["anomaly_flag"], "anomaly_score"].min()), LOWEST_FLAGGED
    return None, THRESHOLD


def _label_metrics(df: pd.DataFrame, scores: np.ndarray, summary: dict | None) -> dict | None:
    """The run's label metrics (from `detect`), else computed from the file's label column."""
    if summary is not None:
        return summary.get("label_metrics")
    if LABEL not in df:
        return None
    return label_metrics(df[LABEL].to_numpy(np.float64), scores)


def _stats_table(df: pd.DataFrame, scores: np.ndarray, line: tuple[float | None, str],
                 lm: dict | None) -> str:
    n = len(df)
    flagged = int(df["anomaly_flag"].sum()) if "anomaly_flag" in df else None
    stat_rows = [("rows", f"{n:,}")]
    if flagged is not None:
        stat_rows.append(("flagged", f"{flagged:,} ({flagged / max(n, 1):.2%})"))
    if line[0] is not None:
        stat_rows.append((line[1], fmt_num(line[0])))
    fin = scores[np.isfinite(scores)]
    if fin.size:
        q = np.quantile(fin, [0.5, 0.99])
        stat_rows.append(("score p50 / p99 / max", f"{fmt_num(q[0])} / {fmt_num(q[1])} / "
                          f"{fmt_num(fin.max())}"))
    if lm and lm.get("auroc") is not None:
        stat_rows.append(("AUROC / AUPRC on labels", f"{lm['auroc']:.4f} / {lm['auprc']:.4f}"))
    elif lm:
        stat_rows.append(("labels", lm.get("note", "")))
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
    label = det.config.data.label_column if det is not None else None
    df = read_scored(scored_path, cols, label)
    scores = df["anomaly_score"].to_numpy(np.float64)
    threshold, line_name = _threshold(df, det, summary)
    right = "Rows right of the threshold (red) are flagged." if line_name == THRESHOLD else \
        ("The red line marks the lowest flagged score: without <code>-m MODEL_DIR</code> the "
         "model's threshold is not known.")
    parts = [f"<h1>attnad report: {esc(Path(scored_path).name)}</h1>",
             f'<p class="muted">written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by '
             f"attnad {__version__}</p>",
             _stats_table(df, scores, (threshold, line_name), _label_metrics(df, scores, summary)),
             "<h2>Score distribution</h2>", histogram_svg(scores, threshold, line_name),
             f'<p class="muted">{right} Counts on a log '
             "scale; the red bar on the far right counts rows beyond the plotted range.</p>"]
    if ts:
        keys, flags, tnum, _, _ = series_columns(df, det, threshold)
        events = find_events(df, det, flags, keys.to_numpy(), tnum)
        rule = det.config.threshold
        parts += ["<h2>Signals and scores over time</h2>",
                  '<p class="muted">Shaded: events, runs of flagged steps of one entity merged '
                  f"across gaps under {rule.merge_gap} steps (threshold.merge_gap); the numbers "
                  "are their ranks in the table below. Each signal is scaled to its own range "
                  "on the panel.</p>", series_panels(df, det, threshold, events),
                  "<h2>Top events</h2>",
                  events_table(events, df, st.time_column, st.group_column,
                               (summary or {}).get("top_events"))]
    else:
        parts += ["<h2>Top flagged rows</h2>",
                  top_rows_table(df, id_cols, (summary or {}).get("top_rows"))]
    if summary is not None and "drift" in summary:  # from detect: the scoring pass counted it
        parts.append(drift_html(summary["drift"]))
    parts += ["<h2>Model card</h2>", model_card(det, model_path)]
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
    """Build the page, then write it like every other output: a temporary file of its own beside
    the target, fsynced and renamed, so a reader (or a crash) never sees half a report and two
    runs writing the same report never share a temporary file."""
    write_text_atomic(out_path, build_html_report(scored_path, det, model_path, summary))
