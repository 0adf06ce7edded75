"""Explaining table rows: each column's share of the score, and the attention it received.

For each column, attention is the share the hidden cells paid to it while the model filled them
in (every cell in leave_one_out; in the masked models, the cells its fixed scoring masks hide,
averaged over the masks), i.e. which columns the model used to predict the others. It is read
from the model that scores each row (attnad.tabular.crossfit).

    expl = explain_table_rows(det, selected_rows_table, their_positions_in_the_file)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from attnad.explanation import RowExplanation, by_source, cell_text, shares
from attnad.tabular.crossfit import fold_groups
from attnad.tabular.training import to_tensors
from attnad.threshold import row_probability, row_thresholds

NO_ATTENTION = ("attention not available for this model (wide table with pooled columns, or a "
                "model without attention maps)")


@torch.no_grad()
def feature_attention(det, table: pa.Table) -> np.ndarray | None:
    """(n, F) attention each feature received from the hidden cells, averaged over scoring masks,
    read from the model that scores each row."""
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


def explain_table_rows(det, table: pa.Table, positions: list[int]) -> list[RowExplanation]:
    """Explanations of the rows of `table` (found at `positions` of the file)."""
    scores, contrib, _ = det.score_with_contributions(table)
    sources = det.feature_sources
    cols, c = by_source(contrib, sources)
    share = shares(c)
    att = feature_attention(det, table)
    att_share = None if att is None else shares(by_source(att, sources)[1])
    note = None if att is not None else NO_ATTENTION
    prob = row_probability(scores, det.threshold_, None)
    flags = scores > row_thresholds(det.threshold_, None, len(scores))
    id_cols = [k for k in det.schema_.names("id") if k in table.schema.names]
    out = []
    for i, pos in enumerate(positions):
        order = np.argsort(-share[i], kind="stable")
        feats = [{"column": cols[j], "value": cell_text(table, cols[j], i),
                  "share": float(share[i, j]),
                  "attention": None if att_share is None else float(att_share[i, j])}
                 for j in order]
        out.append(RowExplanation(pos, {k: table.column(k)[i].as_py() for k in id_cols},
                                  float(scores[i]), float(prob[i]), bool(flags[i]), feats,
                                  attention_note=note))
    return out
