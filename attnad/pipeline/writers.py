"""Writing one stream of scored batches into several files (a series read across files).

    with SplitWriter([out1, out2], [rows1, rows2], schema) as w: w.write(batch)
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from attnad.data.io import AtomicWriter


class SplitWriter:
    """Writes one stream of batches into several files, `counts[i]` rows into `paths[i]`, each
    file atomically (a sorted time series read across files is scored as one stream)."""

    def __init__(self, paths: list[Path], counts: list[int], schema: pa.Schema):
        self.paths, self.counts, self.schema = paths, counts, schema
        self.i, self.left, self.current = -1, 0, None

    def __enter__(self) -> "SplitWriter":
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
