"""What a scoring run keeps for its summary, in memory bounded by the batch size: a fixed-size
random sample of scores for quantiles, the top rows, labels with scores when a label column
is present (5 bytes a row, for AUROC), and drift counts (a few numbers per column).

    stats = RunStats(); update_stats(stats, batch, names, scores, contrib, flag, ...)
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from attnad.data.schema import to_float
from attnad.pipeline.batch import top_features

SCORE_SAMPLE = 200_000  # scores kept for quantiles
TOP_ROWS = 10  # rows listed in the summary


@dataclass
class RunStats:
    rows: int = 0
    flagged: int = 0
    invalid_cells: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    score_sample: list[np.ndarray] = field(default_factory=list)
    top: list = field(default_factory=list)  # heap of (score, row, ids, features)
    labels: list[np.ndarray] = field(default_factory=list)
    label_scores: list[np.ndarray] = field(default_factory=list)
    threshold: float | None = None
    drift: object = None  # attnad.data.drift.DriftCounts, when the model has a training profile
    events: dict | None = None  # time series with flags: attnad.pipeline.events.EventSink.stats


def update_stats(stats, batch, names, scores, contrib, flag, invalid, id_cols, sources, label,
                 rng) -> None:
    """Add one scored batch to the run's statistics."""
    start = stats.rows
    n = len(scores)
    stats.rows += n
    stats.flagged += int(flag.sum())
    for k, v in invalid.items():
        stats.invalid_cells[k] = stats.invalid_cells.get(k, 0) + v
    take = min(n, max(1, SCORE_SAMPLE * n // max(stats.rows, 1)))
    stats.score_sample.append(rng.choice(scores, size=take, replace=False) if take < n else scores)
    if n:
        cand = np.argsort(-scores)[:TOP_ROWS]
        cand = [i for i in cand if len(stats.top) < TOP_ROWS or scores[i] > stats.top[0][0]]
        if cand:
            feats = top_features(contrib[cand], sources)
            for i, f in zip(cand, feats):
                ids = {c: batch.column(names.index(c))[int(i)].as_py() for c in id_cols}
                item = (float(scores[i]), start + int(i), ids, f)
                if len(stats.top) < TOP_ROWS:
                    heapq.heappush(stats.top, item)
                else:
                    heapq.heappushpop(stats.top, item)
    if label and label in names:
        y, _ = to_float(batch.column(names.index(label)))
        stats.labels.append(y.astype(np.float32))
        stats.label_scores.append(scores.astype(np.float32))
