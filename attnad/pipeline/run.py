"""File-level scoring: stream batches in, append score columns, write atomically, keep statistics.

One file, or every file of a directory or glob (the output mirrors the input layout). Memory is
bounded by the batch size (attnad.pipeline.stats says what is kept for the summary).

    stats = score_file(det, "in.parquet", "out.csv", flags=True)
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np

from attnad.data.dataset import Files, check_output_dir, mirror, row_counts
from attnad.data.hints import label_hints
from attnad.data.io import AtomicWriter, CsvFormat, file_format, input_schema
from attnad.data.schema import decimal_comma_count
from attnad.errors import DataError
from attnad.pipeline.batch import BatchScorer
from attnad.pipeline.events import EventSink, time_type_of
from attnad.pipeline.paths import check_output
from attnad.pipeline.quality import check_numbers_parse, invalid_warnings
from attnad.pipeline.stats import RunStats, update_stats
from attnad.pipeline.writers import SplitWriter


def score_file(det, in_path: str | Path, out_path: str | Path, *, flags: bool,
               threshold: float | None = None, keep: list[str] | None = None,
               batch_size: int | None = None, progress=None, explain: int = 0,
               stats: RunStats | None = None, events: EventSink | None = None) -> RunStats:
    """Score one file (or, for a sorted time series, a Files list written to a list of outputs:
    see score_dataset). `stats` accumulates over several calls; so does `events`."""
    many = isinstance(out_path, list)
    if not many:
        check_output(in_path, out_path)
    schema = input_schema(in_path, CsvFormat.of(det.config.data))
    names = schema.names
    stats = stats if stats is not None else RunStats()
    stats.warnings += det.schema_.check_input(names, str(in_path))
    stats.warnings += label_hints(det.schema_, str(in_path))
    out = BatchScorer(det, schema, flags=flags, threshold=threshold, keep=keep,
                      source=str(in_path), explain=explain,
                      typed=not many and file_format(out_path) == "parquet")
    stats.warnings += out.warnings
    if stats.drift is None:
        stats.drift = det.drift_counts()
    if stats.drift is not None:
        stats.drift.note_columns(names, det.schema_)
    t = out.threshold
    stats.threshold = t
    label = det.config.data.label_column
    id_cols = [c for c in det.schema_.names("id") if c in names]
    sources = det.feature_sources
    rng = np.random.default_rng(0)
    bs = batch_size or det.config.score.batch_size
    writer_cm = SplitWriter(out_path, row_counts(in_path, CsvFormat.of(det.config.data)),
                            out.schema) if many else AtomicWriter(out_path, out.schema)
    rows_before, invalid_before, commas = stats.rows, dict(stats.invalid_cells), {}
    if events is not None:
        events.row_offset = rows_before  # event row numbers count across files, as stats do
    with writer_cm as writer:
        for batch, scores, contrib, invalid in det.scored_batches(
                in_path, bs, stats.warnings, bool(explain), stats.drift,
                **({"events": events} if events is not None else {})):
            written, flag = out.output(batch, scores, contrib)
            writer.write(written)
            update_stats(stats, batch, names, scores, contrib, flag, invalid, id_cols, sources,
                         label, rng)
            for column in det.schema_.names("numeric"):
                if invalid.get(column) and column in names:  # what the bad cells look like
                    commas[column] = commas.get(column, 0) + \
                        decimal_comma_count(batch.column(names.index(column)))
            if progress:
                progress(stats.rows)
        here = {k: v - invalid_before.get(k, 0) for k, v in stats.invalid_cells.items()}
        check_numbers_parse(det, here, stats.rows - rows_before, str(in_path), commas)
    stats.warnings += invalid_warnings(det, here, stats.rows - rows_before, str(in_path), commas)
    return stats


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
    if det.ordered and sorted_input:
        csv = CsvFormat.of(det.config.data)
        first = input_schema(files[0], csv).names
        for p in files[1:]:
            if input_schema(p, csv).names != first:
                raise DataError(f"{p}: columns differ from {files[0]}; --sorted-input reads the "
                                "files as one stream, so they need the same columns in the same "
                                "order")
        return score_file(det, files, outs, flags=flags, stats=stats, **kw)
    det.check_files(files)
    for src, dst in zip(files, outs):
        dst.parent.mkdir(parents=True, exist_ok=True)
        score_file(det, src, dst, flags=flags, stats=stats, **kw)
    return stats


def score_data(det, src: Path | Files, out: Path, *, flags: bool, sorted_input: bool = False,
               events_file: Path | None = None, **kw) -> RunStats:
    """What the commands call: one file (attnad.data.dataset.open_data gave a Path), or the files
    of a directory or glob. A time series with flags also gets its events (stats.events, and
    `events_file` when given)."""
    sink = None
    if flags and det.ordered:
        first = src[0] if isinstance(src, Files) else src
        names = input_schema(first, CsvFormat.of(det.config.data))
        tcol = det.series_.time_column
        sink = EventSink(det, events_file, threshold=kw.get("threshold"),
                         time_type=time_type_of(det, names.field(tcol).type
                                                if tcol in names.names else None))
    elif events_file is not None:
        raise DataError(f"--events {events_file}: events are runs of flagged steps of a time "
                        "series; this model scores rows of a table (set data.time_column and "
                        "data.group_column to detect events)")
    with sink if sink is not None else nullcontext():
        if isinstance(src, Files):
            stats = score_dataset(det, src, out, flags=flags, sorted_input=sorted_input,
                                  events=sink, **kw)
        else:
            stats = score_file(det, src, out, flags=flags, events=sink, **kw)
    if sink is not None:
        stats.events = sink.stats()
    return stats

