"""File-level scoring: stream batches in, append score columns, write atomically, keep statistics.

Memory is bounded by the batch size: only the statistics a summary needs are kept (a fixed-size
random sample of scores for quantiles, the top rows, and labels+scores when a label column is
present, at 5 bytes a row, for AUROC).

    stats = score_file(det, "in.parquet", "out.csv", flags=True)
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from attnad.data.io import AtomicWriter, CsvFormat, file_format, input_schema, iter_batches
from attnad.data.schema import to_float
from attnad.errors import DataError, UserError
from attnad.data.windows import entity_keys
from attnad.threshold import row_probability, row_thresholds

SCORE_SAMPLE = 200_000  # scores kept for quantiles
TOP_ROWS = 10


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


def check_output(in_path: str | Path, out_path: str | Path, option: str = "-o",
                 any_name: bool = False) -> None:
    """Everything about an output path that can be checked before any work: a known format
    (unless `any_name`), not the input itself, a directory that exists and can be written."""
    if not any_name:
        file_format(out_path)
    if Path(out_path).exists() and Path(in_path).exists() and \
            os.path.samefile(Path(in_path), Path(out_path)):
        raise UserError(f"{option} {out_path}: is the input file; write the output somewhere else")
    parent = Path(out_path).parent
    if str(parent) and not parent.is_dir():
        raise UserError(f"{option} {out_path}: directory {parent} does not exist")
    if Path(out_path).is_dir():
        raise UserError(f"{option} {out_path}: is a directory; give a file name")
    if not os.access(parent if str(parent) else ".", os.W_OK):
        raise UserError(f"{option} {out_path}: directory {parent} is not writable")


def _top_features(contrib: np.ndarray, sources: list[str], k: int = 3) -> list[list]:
    """Per row, the input columns that contributed most, with their share of the score."""
    uniq = list(dict.fromkeys(sources))
    pos = {s: i for i, s in enumerate(uniq)}
    agg = np.zeros((contrib.shape[0], len(uniq)))
    for j, s in enumerate(sources):
        agg[:, pos[s]] += contrib[:, j]
    total = agg.sum(1, keepdims=True)
    share = np.divide(agg, total, out=np.zeros_like(agg), where=total > 0)
    order = np.argsort(-agg, axis=1)[:, :k]
    return [[(uniq[j], float(share[r, j])) for j in order[r]] for r in range(agg.shape[0])]


def explain_columns(contrib: np.ndarray, sources: list[str], k: int) -> tuple[list, list]:
    """`top_features` and `top_contributions` cells: the k input columns with the largest share of
    each row's score, as ";"-joined text a spreadsheet or SQL can split ("amount;merchant",
    "0.712;0.120"). Empty for a row with no contributions (e.g. every cell missing)."""
    feats, shares = [], []
    for row in _top_features(contrib, sources, k):
        row = [(c, sh) for c, sh in row if sh > 0]
        feats.append(";".join(c for c, _ in row))
        shares.append(";".join(f"{sh:.3f}" for _, sh in row))
    return feats, shares


def score_file(det, in_path: str | Path, out_path: str | Path, *, flags: bool,
               threshold: float | None = None, keep: list[str] | None = None,
               batch_size: int | None = None, progress=None, explain: int = 0) -> RunStats:
    check_output(in_path, out_path)
    schema = input_schema(in_path, CsvFormat.of(det.config.data))
    names = schema.names
    stats = RunStats()
    stats.warnings += det.schema_.check_input(names, str(in_path))
    if keep:
        unknown = [c for c in keep if c not in names]
        if unknown:
            raise DataError(f"--keep: column(s) not in {in_path}: {', '.join(unknown)}")
    kept = keep if keep else names
    added = ["anomaly_score"] + (["anomaly_flag", "anomaly_probability"] if flags else []) \
        + (["top_features", "top_contributions"] if explain else [])
    clash = [c for c in added if c in kept]
    if clash:
        stats.warnings.append(f"{in_path}: input column(s) {', '.join(clash)} are replaced by "
                              "attnad's output")
        kept = [c for c in kept if c not in clash]
    out_fields = [schema.field(c) for c in kept] + [pa.field("anomaly_score", pa.float64())]
    if flags:
        out_fields += [pa.field("anomaly_flag", pa.bool_()),
                       pa.field("anomaly_probability", pa.float64())]
    if explain:
        out_fields += [pa.field("top_features", pa.string()),
                       pa.field("top_contributions", pa.string())]
    out_schema = pa.schema(out_fields)
    t = det.threshold_["value"] if threshold is None else float(threshold)
    stats.threshold = t
    # per-entity thresholds (time series) apply unless one threshold was given for this run
    group = det.config.data.group_column if det.is_timeseries else None
    per_entity = threshold is None and bool(det.threshold_.get("entities"))
    label = det.config.data.label_column
    id_cols = [c for c in det.schema_.names("id") if c in names]
    sources = det.feature_sources
    rng = np.random.default_rng(0)
    bs = batch_size or det.config.score.batch_size
    with AtomicWriter(out_path, out_schema) as writer:
        for batch, scores, contrib, invalid in _scored_batches(det, in_path, bs, stats,
                                                               bool(explain)):
            arrays = [batch.column(names.index(c)) for c in kept]
            arrays.append(pa.array(scores, type=pa.float64()))
            keys = None
            if per_entity:
                keys = entity_keys(batch.column(names.index(group)) if group else None, len(scores))
            flag = scores > (row_thresholds(det.threshold_, keys, len(scores)) if per_entity else t)
            if flags:
                arrays.append(pa.array(flag, type=pa.bool_()))
                arrays.append(pa.array(row_probability(scores, det.threshold_, keys),
                                       type=pa.float64()))
            if explain:
                arrays += [pa.array(col, type=pa.string())
                           for col in explain_columns(contrib, sources, explain)]
            writer.write(pa.RecordBatch.from_arrays(arrays, schema=out_schema))
            _update_stats(stats, batch, names, scores, contrib, flag, invalid, id_cols, sources,
                          label, rng)
            if progress:
                progress(stats.rows)
    return stats


def _scored_batches(det, in_path, batch_size: int, stats: RunStats, explain: bool = False):
    """(batch, scores, contributions, invalid counts) in input order. Tables: batch by batch.
    Time series: two passes (attnad.timeseries), since a row's windows reach into later batches."""
    if det.is_timeseries:
        from attnad.timeseries import scored_batches
        yield from scored_batches(det, in_path, batch_size, stats.warnings, explain)
        return
    for batch in iter_batches(in_path, batch_size, CsvFormat.of(det.config.data)):
        yield (batch, *det.score_with_contributions(batch))


def _update_stats(stats, batch, names, scores, contrib, flag, invalid, id_cols, sources, label,
                  rng) -> None:
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
            feats = _top_features(contrib[cand], sources)
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
