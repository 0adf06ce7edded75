"""The scoring transform of one Arrow record batch, shared by every engine, and the explanation
columns it can add.

    f = BatchScorer(det, batch.schema, flags=True)
    out = f(batch)   # kept input columns + anomaly_score [+ anomaly_flag, anomaly_probability]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from attnad.data.windows import entity_keys
from attnad.errors import DataError
from attnad.pipeline.typed import OUTPUT_TYPES, typed_array, typed_columns
from attnad.threshold import row_probability, row_thresholds


def top_features(contrib: np.ndarray, sources: list[str], k: int = 3) -> list[list]:
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
    for row in top_features(contrib, sources, k):
        row = [(c, sh) for c, sh in row if sh > 0]
        feats.append(";".join(c for c, _ in row))
        shares.append(";".join(f"{sh:.3f}" for _, sh in row))
    return feats, shares


def run_flags(det, threshold: float, per_entity: bool, scores: np.ndarray,
              keys: np.ndarray | None) -> np.ndarray:
    """Flags of a run: above the run's threshold, or each row's entity's (`per_entity`). The
    output's anomaly_flag and the events (attnad.pipeline.events) both come from here."""
    return scores > (row_thresholds(det.threshold_, keys, len(scores)) if per_entity
                     else threshold)


def run_probability(det, scores: np.ndarray, keys: np.ndarray | None) -> np.ndarray:
    """anomaly_probability: each entity's own calibration where `keys` (per-entity runs)."""
    return row_probability(scores, det.threshold_, keys)


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
                 keep: list[str] | None = None, source: str = "data", explain: int = 0,
                 typed: bool = False):
        """`typed`: write the model's numeric, boolean and datetime columns typed when they
        arrive as text (Parquet output of a CSV input: attnad.pipeline.typed)."""
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
        self.convert = typed_columns(schema, kept, det.schema_) if typed else {}
        fields = [pa.field(c, OUTPUT_TYPES[self.convert[c]]) if c in self.convert
                  else schema.field(c) for c in kept] + [pa.field("anomaly_score", pa.float64())]
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
        self.group = det.entity_column
        self.per_entity = threshold is None and bool(det.threshold_.get("entities"))

    def _keys(self, batch: pa.RecordBatch, n: int) -> np.ndarray | None:
        if not self.per_entity:
            return None
        names = batch.schema.names
        return entity_keys(batch.column(names.index(self.group)) if self.group else None, n)

    def flag(self, scores: np.ndarray, keys: np.ndarray | None) -> np.ndarray:
        return run_flags(self.det, self.threshold, self.per_entity, scores, keys)

    def output(self, batch: pa.RecordBatch, scores: np.ndarray,
               contrib: np.ndarray | None = None) -> tuple[pa.RecordBatch, np.ndarray]:
        """The output batch, and each row's flag (for statistics, also when flags are not
        written)."""
        names = batch.schema.names
        keys = self._keys(batch, len(scores))
        flag = self.flag(scores, keys)
        decimal = self.det.config.data.decimal
        arrays = [typed_array(batch.column(names.index(c)), self.convert[c], decimal)
                  if c in self.convert else batch.column(names.index(c)) for c in self.kept]
        arrays.append(pa.array(scores, type=pa.float64()))
        if self.flags:
            arrays.append(pa.array(flag, type=pa.bool_()))
            arrays.append(pa.array(run_probability(self.det, scores, keys), type=pa.float64()))
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
