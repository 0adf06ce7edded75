"""The one way training rows are sampled, from a file (`attnad train`) or a table (the Python API).

Each row gets a seeded random key and the rows with the `max_rows` smallest keys are kept, in
their original order (bottom-k sampling). Keys are drawn in row order from one generator, so a
file read in batches of any size and the same rows handed over as one table give the same sample,
and a file never needs to fit in memory.

    table, total = read_sample("big.csv", 200_000, seed=0)   # == sample_rows(whole file, ...)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from attnad.data.io import DEFAULT_CSV, CsvFormat, iter_batches
from attnad.errors import DataError

READ_ROWS = 65_536  # rows read at a time while sampling a file


def _smallest(keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest keys, in row order."""
    return np.sort(np.argpartition(keys, k - 1)[:k])


def sample_rows(table: pa.Table, max_rows: int, seed: int) -> pa.Table:
    """At most `max_rows` rows of `table`, in table order (the table itself when it is small)."""
    if table.num_rows <= max_rows:
        return table
    keys = np.random.default_rng(seed).random(table.num_rows)
    return table.take(pa.array(_smallest(keys, max_rows)))


def read_sample(path: str | Path, max_rows: int, seed: int,
                csv: CsvFormat = DEFAULT_CSV) -> tuple[pa.Table, int]:
    """`sample_rows` of a whole file in bounded memory; also returns the file's row count."""
    rng = np.random.default_rng(seed)
    kept: pa.Table | None = None
    kept_keys = np.empty(0)
    total = 0
    for batch in iter_batches(path, batch_size=READ_ROWS, csv=csv):
        keys = rng.random(batch.num_rows)
        total += batch.num_rows
        table = pa.Table.from_batches([batch])
        if kept is None:
            kept, kept_keys = table, keys
        else:
            kept = pa.concat_tables([kept, table], promote_options="permissive")
            kept_keys = np.concatenate([kept_keys, keys])
        if kept.num_rows > max_rows:
            idx = _smallest(kept_keys, max_rows)
            kept, kept_keys = kept.take(pa.array(idx)), kept_keys[idx]
    if kept is None:
        raise DataError(f"{path}: the file has a header but no rows")
    return kept.combine_chunks(), total
