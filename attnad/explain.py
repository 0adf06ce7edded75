"""Explanations of chosen rows: what each feature added to the score, and where the model looked.

Contributions are the per-feature terms of the row's reconstruction score (attnad.score): a
column's share is how much of the score its cells' normalised errors make up. Attention is read
from the model's attention layers, averaged over heads and layers, while it fills in the cells
it predicts (every cell in leave_one_out; in the masked models, those hidden by its fixed scoring
masks, averaged over the masks):

- tables: for each column, the share of attention the hidden cells paid to it, i.e. which columns
  the model used to predict the others (a column the model never looks at cannot explain others);
- time series: the share of attention the row's own step paid to each step of the window ending
  at that row (offset 0 is the row, -1 the step before), i.e. which moments it compared it with.

    expl = explain_rows(det, "data.csv", ["r17", "r42"], by_index=False)
    render_explanations(expl, console)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch
from rich.console import Console
from rich.table import Table

from attnad.data.io import iter_batches
from attnad.errors import DataError, UserError
from attnad.threshold import row_probability, row_thresholds

TOP_STEPS = 8  # time steps listed per row


@dataclass
class RowExplanation:
    row: int  # 0-based position in the file
    ids: dict
    score: float
    probability: float
    flagged: bool
    features: list[dict] = field(default_factory=list)  # column, value, share, attention
    steps: list[dict] = field(default_factory=list)  # time series: offset, time, attention
    attention_note: str | None = None


def _select(det, path, rows: list[str], by_index: bool) -> tuple[pa.Table, list[int]]:
    """The chosen rows as one table, and their 0-based positions in the file (in the order asked)."""
    id_cols = det.schema_.names("id")
    if by_index:
        try:
            wanted = [int(r) for r in rows]
        except ValueError:
            raise UserError(f"--rows {' '.join(rows)}: with --index, rows are 0-based row numbers")
        if any(w < 0 for w in wanted):
            raise UserError("--rows: row numbers start at 0")
    elif not id_cols:
        raise UserError("--rows: the model has no id column (data.id_columns) to look rows up "
                        "by; add --index to give 0-based row numbers")
    found: dict = {}
    parts, start = [], 0
    for batch in iter_batches(path, 65_536):
        n = batch.num_rows
        if by_index:
            hit = [w - start for w in wanted if start <= w < start + n]
        else:
            col = batch.column(batch.schema.names.index(id_cols[0])) \
                if id_cols[0] in batch.schema.names else None
            if col is None:
                raise DataError(f"{path}: id column {id_cols[0]!r} is not in the file; "
                                "use --index")
            vals = [None if v is None else str(v) for v in col.to_pylist()]
            hit = [i for i, v in enumerate(vals) if v in rows and v not in found]
            for i in hit:
                found[vals[i]] = start + i
        if hit:
            parts.append((np.asarray(hit) + start, batch.take(pa.array(hit))))
        start += n
    positions = np.concatenate([p for p, _ in parts]) if parts else np.zeros(0, np.int64)
    if by_index:
        missing = [str(w) for w in wanted if w not in set(positions.tolist())]
    else:
        missing = [r for r in rows if r not in found]
    if missing:
        what = "row number(s)" if by_index else f"{id_cols[0]} value(s)"
        raise DataError(f"{path}: no row with {what} {', '.join(missing)} "
                        f"(the file has {start:,} rows)")
    table = pa.Table.from_batches([b for _, b in parts]).combine_chunks()
    want_pos = [int(w) for w in wanted] if by_index else [found[r] for r in rows]
    order = [int(np.flatnonzero(positions == p)[0]) for p in want_pos]
    return table.take(pa.array(order)), want_pos


def _by_source(values: np.ndarray, sources: list[str]) -> tuple[list[str], np.ndarray]:
    uniq = list(dict.fromkeys(sources))
    out = np.zeros((values.shape[0], len(uniq)))
    for j, s in enumerate(sources):
        out[:, uniq.index(s)] += values[:, j]
    return uniq, out


def _shares(x: np.ndarray) -> np.ndarray:
    total = x.sum(1, keepdims=True)
    return np.divide(x, total, out=np.zeros_like(x), where=total > 0)


@torch.no_grad()
def _feature_attention(det, table: pa.Table) -> np.ndarray | None:
    """(n, F) attention each feature received from the hidden cells, averaged over scoring masks,
    read from the model that scores each row (attnad.crossfit)."""
    from attnad.crossfit import fold_groups
    if not hasattr(det.model_, "attention_maps") or getattr(det.model_, "grouped", False):
        return None
    enc, _ = det.encode(table)
    out = np.zeros((len(enc), det.model_.n_features))
    masks = det.masks_.to(det.device_)
    for model, rows in zip(det.models_, fold_groups(enc, len(det.models_))):
        if rows.size:
            out[rows] = _model_attention(model, enc.take(rows), masks, det.device_)
    return out


def _model_attention(model, enc, masks: torch.Tensor, device) -> np.ndarray:
    from attnad.train import to_tensors
    num, miss, cat = to_tensors(enc, device)
    B = num.shape[0]
    acc = torch.zeros(B, model.n_features, device=device)
    for m in masks:
        mask = m.expand(B, -1)
        maps = model.attention_maps(num, miss, cat, mask).mean(0)  # (B, Q, F)
        if maps.shape[1] == model.n_features:  # queries are the features: keep the hidden ones
            q = mask.float()
            acc += (maps * q[:, :, None]).sum(1) / q.sum(1, keepdim=True).clamp_min(1)
        else:
            acc += maps.mean(1)
    return (acc / len(masks)).cpu().numpy().astype(np.float64)


def _cell_text(table: pa.Table, col: str, i: int) -> str:
    if col not in table.schema.names:
        return ""
    v = table.column(col)[i].as_py()
    if v is None:
        return "(missing)"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def explain_rows(det, path, rows: list[str], by_index: bool) -> list[RowExplanation]:
    if det.is_timeseries:
        return _explain_series(det, path, rows, by_index)
    table, positions = _select(det, path, rows, by_index)
    scores, contrib, _ = det.score_with_contributions(table)
    sources = det.feature_sources
    cols, c = _by_source(contrib, sources)
    share = _shares(c)
    att = _feature_attention(det, table)
    att_share = None if att is None else _shares(_by_source(att, sources)[1])
    note = None if att is not None else "attention not available for this model (wide table " \
        "with pooled columns, or a model without attention maps)"
    prob = row_probability(scores, det.threshold_, None)
    flags = scores > row_thresholds(det.threshold_, None, len(scores))
    id_cols = [k for k in det.schema_.names("id") if k in table.schema.names]
    out = []
    for i, pos in enumerate(positions):
        order = np.argsort(-share[i], kind="stable")
        feats = [{"column": cols[j], "value": _cell_text(table, cols[j], i),
                  "share": float(share[i, j]),
                  "attention": None if att_share is None else float(att_share[i, j])}
                 for j in order]
        out.append(RowExplanation(pos, {k: table.column(k)[i].as_py() for k in id_cols},
                                  float(scores[i]), float(prob[i]), bool(flags[i]), feats,
                                  attention_note=note))
    return out


@torch.no_grad()
def _explain_series(det, path, rows: list[str], by_index: bool) -> list[RowExplanation]:
    from attnad.data.windows import read_table, series_order
    from attnad.timeseries import cell_patterns, read_columns, scaled
    st = det.series_
    table = read_table(path)
    _, positions = _select(det, path, rows, by_index)
    keys, times, raw, _, _ = read_columns(table, det.schema_, st, st.time_kind, str(path))
    scores, contrib, _ = det.score_with_contributions(table)
    share = _shares(contrib)
    keys = keys.astype(str)
    prob = row_probability(scores, det.threshold_, keys)
    flags = scores > row_thresholds(det.threshold_, keys, len(scores))
    order = series_order(keys, times)
    model, W, F = det.model_, st.window, len(st.features)
    pats = cell_patterns(W, F, st.n_masks, st.seed).to(det.device_)  # (M, W, F)
    tcol = table.column(st.time_column)
    id_cols = [k for k in det.schema_.names("id") if k in table.schema.names]
    out = []
    for pos in positions:
        ent = order[keys[order] == keys[pos]]  # the entity's rows in time order
        p = int(np.flatnonzero(ent == pos)[0])
        win = ent[max(0, p - W + 1):p + 1]
        T = len(win)
        center = st.lookup([keys[pos]], "center")[0]
        scale = st.lookup([keys[pos]], "scale")[0]
        x, miss = scaled(raw[win], center, scale)
        M = pats.shape[0]
        xt = torch.from_numpy(x).to(det.device_)[None].expand(M, T, F)
        mt = torch.from_numpy(miss).to(det.device_)[None].expand(M, T, F)
        valid = torch.ones(M, T, dtype=torch.bool, device=det.device_)
        steps, note = [], None
        if hasattr(model, "attention_maps"):
            maps = model.attention_maps(xt, pats[:, W - T:] | mt, valid).mean(0)  # (M, Q, T)
            a = (maps[:, -1] if maps.shape[1] == T else maps[:, 0]).mean(0).cpu().numpy()
            for j in np.argsort(-a, kind="stable")[:TOP_STEPS]:
                steps.append({"offset": int(j - (T - 1)), "row": int(win[j]),
                              "time": str(tcol[int(win[j])].as_py()), "attention": float(a[j])})
        else:
            note = "attention not available for this model"
        feats = [{"column": st.features[j], "value": _cell_text(table, st.features[j], pos),
                  "share": float(share[pos, j]), "attention": None}
                 for j in np.argsort(-share[pos], kind="stable")]
        out.append(RowExplanation(int(pos), {k: table.column(k)[pos].as_py() for k in id_cols},
                                  float(scores[pos]), float(prob[pos]), bool(flags[pos]), feats,
                                  steps, note))
    return out


def render_explanations(expls: list[RowExplanation], console: Console) -> None:
    for e in expls:
        ids = ", ".join(f"{k}={v}" for k, v in e.ids.items())
        title = (f"row {e.row}{f' ({ids})' if ids else ''}: score {e.score:.4g}, "
                 f"probability {e.probability:.4f}, {'FLAGGED' if e.flagged else 'not flagged'}")
        t = Table(title=title, title_justify="left")
        t.add_column("feature" if not e.steps else "signal")
        t.add_column("value", justify="right")
        t.add_column("share of score", justify="right")
        has_att = any(f["attention"] is not None for f in e.features)
        if has_att:
            t.add_column("attention received", justify="right")
        for f in e.features:
            cells = [f["column"], f["value"], f"{f['share']:.1%}"]
            if has_att:
                cells.append(f"{f['attention']:.1%}")
            t.add_row(*cells)
        console.print(t)
        if e.steps:
            s = Table(title="time steps the row's step attended to (offset 0 = the row)",
                      title_justify="left")
            s.add_column("offset", justify="right")
            s.add_column("row", justify="right")
            s.add_column("time")
            s.add_column("attention", justify="right")
            for st in e.steps:
                s.add_row(str(st["offset"]), str(st["row"]), st["time"], f"{st['attention']:.1%}")
            console.print(s)
        if e.attention_note:
            console.print(f"note: {e.attention_note}", markup=False)
