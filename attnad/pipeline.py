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

from attnad.data.dataset import Files, check_output_dir, mirror, row_counts
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


class BatchScorer:
    """The scoring transform: one Arrow record batch in, the same rows with the output columns
    out. The local engine, Ray Data (attnad.engines.ray_engine), Spark `mapInArrow` and Dask all
    call it; only the reading and writing differ.

        f = BatchScorer(det, batch.schema, flags=True)
        out = f(batch)   # kept input columns + anomaly_score [+ anomaly_flag, anomaly_probability]

    Tables: any batch. Time series: a batch must hold each of its entities' rows whole (the
    local engine streams a file itself and only uses `output`).
    """

    def __init__(self, det, schema: pa.Schema, *, flags: bool, threshold: float | None = None,
                 keep: list[str] | None = None, source: str = "data", explain: int = 0):
        names = schema.names
        self.det, self.flags, self.warnings = det, flags, []
        if keep:
            unknown = [c for c in keep if c not in names]
            if unknown:
                raise DataError(f"--keep: column(s) not in {source}: {', '.join(unknown)}")
        kept = keep if keep else names
        added = ["anomaly_score"] + (["anomaly_flag", "anomaly_probability"] if flags else []) \
            + (["top_features", "top_contributions"] if explain else [])
        clash = [c for c in added if c in kept]
        if clash:
            self.warnings.append(f"{source}: input column(s) {', '.join(clash)} are replaced by "
                                 "attnad's output")
            kept = [c for c in kept if c not in clash]
        self.kept = kept
        fields = [schema.field(c) for c in kept] + [pa.field("anomaly_score", pa.float64())]
        if flags:
            fields += [pa.field("anomaly_flag", pa.bool_()),
                       pa.field("anomaly_probability", pa.float64())]
        if explain:
            fields += [pa.field("top_features", pa.string()),
                       pa.field("top_contributions", pa.string())]
        self.schema = pa.schema(fields)
        self.explain = explain
        self.threshold = det.threshold_["value"] if threshold is None else float(threshold)
        # per-entity thresholds (time series) apply unless one threshold was given for this run
        self.group = det.config.data.group_column if det.is_timeseries else None
        self.per_entity = threshold is None and bool(det.threshold_.get("entities"))

    def _keys(self, batch: pa.RecordBatch, n: int) -> np.ndarray | None:
        if not self.per_entity:
            return None
        names = batch.schema.names
        return entity_keys(batch.column(names.index(self.group)) if self.group else None, n)

    def flag(self, scores: np.ndarray, keys: np.ndarray | None) -> np.ndarray:
        return scores > (row_thresholds(self.det.threshold_, keys, len(scores)) if self.per_entity
                         else self.threshold)

    def output(self, batch: pa.RecordBatch, scores: np.ndarray,
               contrib: np.ndarray | None = None) -> tuple[pa.RecordBatch, np.ndarray]:
        """The output batch, and each row's flag (for statistics, also when flags are not
        written)."""
        names = batch.schema.names
        keys = self._keys(batch, len(scores))
        flag = self.flag(scores, keys)
        arrays = [batch.column(names.index(c)) for c in self.kept]
        arrays.append(pa.array(scores, type=pa.float64()))
        if self.flags:
            arrays.append(pa.array(flag, type=pa.bool_()))
            arrays.append(pa.array(row_probability(scores, self.det.threshold_, keys),
                                   type=pa.float64()))
        if self.explain:
            arrays += [pa.array(col, type=pa.string()) for col in
                       explain_columns(contrib, self.det.feature_sources, self.explain)]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema), flag

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
        if isinstance(batch, pa.Table):
            batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else \
                pa.RecordBatch.from_pylist([], schema=batch.schema)
        if not batch.num_rows:
            scores, contrib = np.zeros(0), np.zeros((0, len(self.det.feature_sources)))
        else:
            scores, contrib, _ = self.det.score_with_contributions(batch)
        return self.output(batch, scores, contrib)[0]


def score_file(det, in_path: str | Path, out_path: str | Path, *, flags: bool,
               threshold: float | None = None, keep: list[str] | None = None,
               batch_size: int | None = None, progress=None, explain: int = 0,
               stats: RunStats | None = None) -> RunStats:
    """Score one file (or, for a sorted time series, a Files list written to a list of outputs:
    see score_dataset). `stats` accumulates over several calls."""
    many = isinstance(out_path, list)
    if not many:
        check_output(in_path, out_path)
    schema = input_schema(in_path, CsvFormat.of(det.config.data))
    names = schema.names
    stats = stats if stats is not None else RunStats()
    stats.warnings += det.schema_.check_input(names, str(in_path))
    out = BatchScorer(det, schema, flags=flags, threshold=threshold, keep=keep,
                      source=str(in_path), explain=explain)
    stats.warnings += out.warnings
    t = out.threshold
    stats.threshold = t
    label = det.config.data.label_column
    id_cols = [c for c in det.schema_.names("id") if c in names]
    sources = det.feature_sources
    rng = np.random.default_rng(0)
    bs = batch_size or det.config.score.batch_size
    writer_cm = _SplitWriter(out_path, row_counts(in_path, CsvFormat.of(det.config.data)),
                             out.schema) if many else AtomicWriter(out_path, out.schema)
    with writer_cm as writer:
        for batch, scores, contrib, invalid in _scored_batches(det, in_path, bs, stats,
                                                               bool(explain)):
            written, flag = out.output(batch, scores, contrib)
            writer.write(written)
            _update_stats(stats, batch, names, scores, contrib, flag, invalid, id_cols, sources,
                          label, rng)
            if progress:
                progress(stats.rows)
    return stats


class _SplitWriter:
    """Writes one stream of batches into several files, `counts[i]` rows into `paths[i]`, each
    file atomically (a sorted time series read across files is scored as one stream)."""

    def __init__(self, paths: list[Path], counts: list[int], schema: pa.Schema):
        self.paths, self.counts, self.schema = paths, counts, schema
        self.i, self.left, self.current = -1, 0, None

    def __enter__(self) -> "_SplitWriter":
        return self

    def _next(self) -> None:
        if self.current is not None:
            self.current.__exit__(None, None, None)
            self.current = None
        self.i += 1
        if self.i < len(self.paths):
            self.paths[self.i].parent.mkdir(parents=True, exist_ok=True)
            self.current = AtomicWriter(self.paths[self.i], self.schema).__enter__()
            self.left = self.counts[self.i]

    def write(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            while self.current is None or self.left == 0:
                self._next()
            head = batch.slice(0, self.left)
            self.current.write(head)
            self.left -= head.num_rows
            batch = batch.slice(head.num_rows)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            if self.current is not None:
                self.current.__exit__(exc_type, exc, tb)
            return
        while self.i < len(self.paths):  # the rest (empty files included) are committed
            self._next()


def score_dataset(det, files: Files, out_dir: Path, *, flags: bool, sorted_input: bool = False,
                  **kw) -> RunStats:
    """Score every file of a directory or glob into out_dir, mirroring the input layout.

    Tables: file by file, in bounded memory. Time series: each file is scored on its own, so an
    entity must not span files (checked, exit 2) unless `sorted_input` declares that the files,
    in name order, hold rows sorted by (group, time): then they are scored as one stream and an
    entity's windows carry from one file into the next. Row numbers in the statistics count
    across the files in that order.
    """
    check_output_dir(files, out_dir)
    outs = mirror(files, out_dir)
    stats = RunStats()
    if det.is_timeseries and sorted_input:
        csv = CsvFormat.of(det.config.data)
        first = input_schema(files[0], csv).names
        for p in files[1:]:
            if input_schema(p, csv).names != first:
                raise DataError(f"{p}: columns differ from {files[0]}; --sorted-input reads the "
                                "files as one stream, so they need the same columns in the same "
                                "order")
        return score_file(det, files, outs, flags=flags, stats=stats, **kw)
    if det.is_timeseries:
        check_entities_per_file(det, files)
    for src, dst in zip(files, outs):
        dst.parent.mkdir(parents=True, exist_ok=True)
        score_file(det, src, dst, flags=flags, stats=stats, **kw)
    return stats


def score_data(det, src: Path | Files, out: Path, *, flags: bool, sorted_input: bool = False,
               **kw) -> RunStats:
    """What the commands call: one file (attnad.data.dataset.open_data gave a Path), or the files
    of a directory or glob."""
    if isinstance(src, Files):
        return score_dataset(det, src, out, flags=flags, sorted_input=sorted_input, **kw)
    return score_file(det, src, out, flags=flags, **kw)


def check_entities_per_file(det, files: Files) -> None:
    """Time series scored file by file: each entity's rows must all be in one file."""
    import pyarrow.compute as pc
    group = det.config.data.group_column
    if group is None and len(files) > 1:
        raise DataError(f"{files}: time series without data.group_column is one series, spread "
                        f"over {len(files)} files; merge them, or pass --sorted-input if the "
                        "files in name order hold the rows in time order")
    if group is None:
        return
    seen: dict[str, Path] = {}
    for p in files:
        mine: set[str] = set()
        for batch in iter_batches(p, csv=CsvFormat.of(det.config.data)):
            if group not in batch.schema.names:
                break  # the scorer names the missing column
            mine.update(str(v) for v in pc.unique(batch.column(group)).to_pylist())
        for key in mine:
            if key in seen:
                raise DataError(
                    f"{files}: entity {key!r} ({group}) has rows in {seen[key]} and {p}; scored "
                    "file by file, an entity's rows must all be in one file. Put each entity in "
                    "one file, or pass --sorted-input if the files, in name order, hold the rows "
                    f"sorted by ({group}, {det.config.data.time_column})")
            seen[key] = p


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
