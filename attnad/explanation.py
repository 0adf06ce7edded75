"""What an explanation of one row holds, and the arithmetic both modes use to build one.

Contributions are the per-feature terms of a row's score: a column's share is how much of the
score its cells' errors make up. Attention is read from the model's attention layers while it
fills in the cells it predicts (attnad.tabular.explain, attnad.timeseries.explain).

    RowExplanation(row=17, ids={"txn_id": "t17"}, score=4.2, probability=0.99, flagged=True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa


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


def by_source(values: np.ndarray, sources: list[str]) -> tuple[list[str], np.ndarray]:
    """Per-feature values (n, F) summed per input column (a datetime column feeds several)."""
    uniq = list(dict.fromkeys(sources))
    out = np.zeros((values.shape[0], len(uniq)))
    for j, s in enumerate(sources):
        out[:, uniq.index(s)] += values[:, j]
    return uniq, out


def shares(x: np.ndarray) -> np.ndarray:
    """Each row's values as shares of the row's total (0 where the total is 0)."""
    total = x.sum(1, keepdims=True)
    return np.divide(x, total, out=np.zeros_like(x), where=total > 0)


def cell_text(table: pa.Table, col: str, i: int) -> str:
    """A cell as people read it: 6 significant digits for floats, "(missing)" for nulls."""
    if col not in table.schema.names:
        return ""
    v = table.column(col)[i].as_py()
    if v is None:
        return "(missing)"
    return f"{v:.6g}" if isinstance(v, float) else str(v)
