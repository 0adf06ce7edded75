"""In-memory tables: what the Python API accepts, and the fingerprint a model card keeps of it.

    table = as_table(df)                      # pandas DataFrame or pyarrow Table/RecordBatch
    card = data_fingerprint(table, schema)    # rows, columns, SHA-256 digests
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pyarrow as pa

from attnad.data.schema import Schema

FINGERPRINT_ROWS = 100  # rows hashed at each end of the training table


def as_table(data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise TypeError(f"expected a pandas DataFrame or pyarrow Table, got {type(data).__name__}")


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def data_fingerprint(table: pa.Table, schema: Schema) -> dict:
    """What the model was trained on, for the model card: row count, and SHA-256 digests of the
    column roles and of a sample of rows (the first and last 100), so two training files can be
    told apart without keeping either."""
    n, k = table.num_rows, FINGERPRINT_ROWS
    idx = sorted(set(range(min(k, n))) | set(range(max(0, n - k), n)))
    sample = table.take(pa.array(idx, type=pa.int64())).to_pylist()
    return {"rows": int(n), "columns": table.num_columns,
            "schema_sha256": _digest(schema.to_dict()), "sample_sha256": _digest(sample)}
