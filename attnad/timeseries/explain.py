"""Explaining series rows: each signal's share of the score, and the steps the row looked at.

Attention is the share the row's own step paid to each step of the window ending at that row
(offset 0 is the row, -1 the step before) while the model filled in its cells under the fixed
cell masks, i.e. which moments it compared the row with.

    expl = explain_series_rows(det, "data.csv", [17, 42])
"""

from __future__ import annotations

import numpy as np
import torch

from attnad.data.io import CsvFormat
from attnad.data.preprocess import unsquash
from attnad.data.windows import read_table, series_order
from attnad.explanation import RowExplanation, cell_text, shares
from attnad.models.temporal import moved
from attnad.threshold import row_probability, row_thresholds
from attnad.timeseries.columns import read_columns
from attnad.timeseries.levels import RecentLevels, window_move
from attnad.timeseries.masks import cell_patterns
from attnad.timeseries.state import scaled

TOP_STEPS = 8  # time steps listed per row


@torch.no_grad()
def explain_series_rows(det, path, positions: list[int]) -> list[RowExplanation]:
    """Explanations of the rows at `positions` of the file `path` (read whole: a row's window
    reaches back into its entity's earlier steps)."""
    st = det.series_
    table = read_table(path, csv=CsvFormat.of(det.config.data))
    keys, times, raw, _, _ = read_columns(table, det.schema_, st, st.time_kind, str(path),
                                          decimal=det.config.data.decimal)
    scores, contrib, _ = det.score_with_contributions(table)
    share = shares(contrib)
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
        xt = _moved_as_scored(st, keys[pos], raw, ent[:p + 1], xt, mt, valid)
        if hasattr(model, "attention_maps"):
            maps = model.attention_maps(xt, pats[:, W - T:] | mt, valid).mean(0)  # (M, Q, T)
            a = (maps[:, -1] if maps.shape[1] == T else maps[:, 0]).mean(0).cpu().numpy()
            for j in np.argsort(-a, kind="stable")[:TOP_STEPS]:
                steps.append({"offset": int(j - (T - 1)), "row": int(win[j]),
                              "time": str(tcol[int(win[j])].as_py()), "attention": float(a[j])})
        else:
            note = "attention not available for this model"
        feats = [{"column": st.features[j], "value": cell_text(table, st.features[j], pos),
                  "share": float(share[pos, j]), "attention": None}
                 for j in np.argsort(-share[pos], kind="stable")]
        out.append(RowExplanation(int(pos), {k: table.column(k)[pos].as_py() for k in id_cols},
                                  float(scores[pos]), float(prob[pos]), bool(flags[pos]), feats,
                                  steps, note))
    return out


def _moved_as_scored(st, key, raw: np.ndarray, upto: np.ndarray, xt, mt, valid):
    """The window moved by its level as scoring moves it (model.input_level); `upto`: the entity's
    rows in time order up to the window's last."""
    recent = None
    if st.input_level == "local":
        x, miss = scaled(raw[upto], st.lookup([key], "center")[0], st.lookup([key], "scale")[0])
        z = np.where(miss, np.nan, unsquash(x))
        last = RecentLevels(st.level_half_life).push(np.full(len(upto), key, object), z)[-1]
        recent = torch.from_numpy(last.astype(np.float32)).to(xt.device).expand(*xt.shape)
    move = window_move(st.input_level, xt, mt, valid, recent)
    return xt if move is None else moved(xt, move)
