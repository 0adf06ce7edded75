"""`attnad score DATA -m MODEL -o OUT --engine ray`: Ray Data reads Parquet, scores, writes Parquet.

Each scoring actor loads the model once and applies attnad.pipeline.BatchScorer, the same
Arrow-batch-in, Arrow-batch-out transform the local engine uses, so scores are identical. Actors
ask for one CPU each and there is one fewer actor than the cluster has CPUs, so read and write
tasks always find a CPU (with all CPUs held by actors the read never runs and the job hangs).
Time series: rows are grouped by `data.group_column` (`map_groups`), so every entity is scored
whole in one task; a series without a group column cannot be split and is refused.

Needs the `ray` extra: pip install 'attnad[ray]'.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pyarrow as pa
import torch

from attnad.data.io import file_format
from attnad.detector import Detector
from attnad.errors import UserError
from attnad.pipeline import BatchScorer


class _ScoreActor:
    """Loads the model once per actor; called on pyarrow batches."""

    def __init__(self, model_dir: str, overrides: list[str], schema_bytes: bytes,
                 keep: list[str] | None, threads: int):
        torch.set_num_threads(threads)
        det = Detector.load(model_dir, device="cpu").apply_overrides(overrides)
        schema = pa.ipc.read_schema(pa.py_buffer(schema_bytes))
        self.fn = BatchScorer(det, schema, flags=False, keep=keep)

    def __call__(self, batch):
        return pa.Table.from_batches([self.fn(batch)])


def score_ray(model_dir: Path, det, src, output: Path, *, keep: list[str] | None = None,
              batch_size: int | None = None, address: str | None = None,
              overrides: list[str] | None = None, threads: int = 1) -> int:
    """Score src (a Parquet file or Files) into the directory `output`; returns the rows written."""
    try:
        import pyarrow.parquet as pq
        import ray
        import ray.data
    except ImportError:
        raise UserError("--engine ray needs Ray: pip install 'attnad[ray]'") from None
    paths = [str(p) for p in (src if isinstance(src, list) else [src])]
    for p in paths:
        if file_format(p) != "parquet":
            raise UserError(f"{p}: --engine ray reads Parquet only; convert it, or use the local "
                            "engine")
    if output.exists() and not output.is_dir():
        raise UserError(f"-o {output}: --engine ray writes a directory of Parquet files")
    group = det.entity_column
    if det.ordered and not group:
        raise UserError("--engine ray: a time series without data.group_column is one series "
                        "and cannot be split across tasks; use the local engine")
    schema = pq.ParquetFile(paths[0]).schema_arrow
    warnings = det.schema_.check_input(schema.names, paths[0])
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # asks Ray to keep blocks in order; it does not
    # always (README, Ray): the output is every row once, in no guaranteed order
    ctx.enable_progress_bars = False
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = max(1, cpus - 1)
    kwargs = dict(model_dir=str(model_dir), overrides=list(overrides or []),
                  schema_bytes=schema.serialize().to_pybytes(), keep=keep, threads=threads)
    ds = ray.data.read_parquet(paths, partitioning=None)
    if det.ordered:  # a series' rows must reach one scorer whole: windows span them
        ds = ds.groupby(group).map_groups(_ScoreActor, batch_format="pyarrow",
                                          fn_constructor_kwargs=kwargs, num_cpus=1,
                                          compute=ray.data.ActorPoolStrategy(size=actors))
    else:
        ds = ds.map_batches(_ScoreActor, batch_format="pyarrow", fn_constructor_kwargs=kwargs,
                            batch_size=batch_size or det.config.score.batch_size, num_cpus=1,
                            compute=ray.data.ActorPoolStrategy(size=actors))
    ds.write_parquet(str(output))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return sum(pq.ParquetFile(str(p)).metadata.num_rows for p in output.glob("*.parquet"))
