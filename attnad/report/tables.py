"""HTML tables of the report: the top-scoring rows with their explanations, and the model card
(config, training data fingerprint, threshold and calibration).

The detector is passed in, never imported; without one the card says how to get it.
"""

from __future__ import annotations

import json

import pandas as pd

from attnad.report.panels import is_series
from attnad.report.svg import esc, fmt_num

TOP_ROWS = 20  # rows in the table: enough to triage, short enough to read on one screen


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
    # Without --explain the scored file has no explanation columns, but the run summary (from
    # `detect`) explains its own top rows: use those where the row numbers match.
    by_row = {r["row"]: r for r in (summary_top or [])}
    has_expl = "top_features" in df
    head = ["row", *id_cols, "anomaly_score"] + (["probability"] if "anomaly_probability" in df
                                                 else []) + ["explanation (share of score)"]
    rows = []
    for i, r in top.iterrows():
        cells = [str(i)] + [esc(r.get(c, "")) for c in id_cols] + [fmt_num(r["anomaly_score"])]
        if "anomaly_probability" in df:
            cells.append(f"{r['anomaly_probability']:.6f}")
        if has_expl and isinstance(r["top_features"], str) and r["top_features"]:
            expl = explained_bars(r["top_features"], r.get("top_contributions", ""))
        elif i in by_row:
            expl = share_bars([(f["column"], f["share"]) for f in by_row[i]["top_features"]])
        else:
            expl = '<span class="muted">run with --explain K</span>'
        cells.append(expl)
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f"<p>The {len(top)} highest-scoring {what} of {len(cand):,}.</p><table><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>")


def explained_bars(features: str, contributions) -> str:
    """Bars of an output row's --explain columns (`a;b`, `0.712;0.120`)."""
    shares = [float(x) if x else 0.0 for x in str(contributions or "").split(";")]
    return share_bars(list(zip(features.split(";"), shares)))


def share_bars(items: list[tuple[str, float]]) -> str:
    """Each (name, share of the score) as a small horizontal bar."""
    out = []
    for name, share in items:
        w = max(0.0, min(1.0, share)) * 120
        out.append(f'<div class="bar"><span class="fill" style="width:{w:.0f}px"></span>'
                   f'<span>{esc(name)} {share:.0%}</span></div>')
    return "".join(out)


def model_card(det, model_path) -> str:
    if det is None:
        return "<p>No model given: run <code>attnad report SCORED -m MODEL_DIR</code> for the " \
               "model card.</p>"
    tr = det.training_ or {}
    th = det.threshold_
    fp = tr.get("fingerprint") or {}
    rows = [("model directory", model_path), ("model type", det.config.model.type),
            ("mode", "time series" if is_series(det) else "table"),
            ("trained on", f"{tr.get('rows', '?'):,} rows" if isinstance(tr.get("rows"), int)
             else "?"),
            ("training", f"{tr.get('steps', '?')} steps, {tr.get('seconds', '?')} s on "
             f"{tr.get('device', '?')}, final loss "
             f"{fmt_num(tr.get('final_train_loss') or float('nan'))}"),
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
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    cfg = json.dumps(det.config.model_dump(mode="json"), indent=1)
    return (f'<table class="card">{body}</table><details><summary>full config</summary>'
            f"<pre>{esc(cfg)}</pre></details>")


def _threshold_text(th: dict) -> str:
    m = th.get("method")
    how = {"quantile": f"top {th.get('contamination')} of training scores",
           "pot": f"GPD tail, risk {th.get('risk')}",
           "fixed": "fixed value"}.get(m, m)
    ents = th.get("entities")
    extra = f"; per-entity thresholds for {len(ents)} entities" if ents else ""
    return f"{fmt_num(th.get('value'))} ({m}: {how}){extra}"


def _tail_text(th: dict) -> str:
    tail = th.get("tail")
    n = th.get("n_training_scores", "?")
    if not tail:
        return f"empirical, {n} training scores"
    return (f"{n} training scores; GPD tail above the {tail['level']} quantile "
            f"({fmt_num(tail['u'])}): shape {tail['shape']:.3f}, scale {fmt_num(tail['scale'])}, "
            f"{tail['n']} exceedances"
            + (f", fit p-value {tail['fit_pvalue']:.2f}" if tail.get("fit_pvalue") is not None
               else ""))
