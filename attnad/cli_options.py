"""Options shared by several `attnad` commands, defined once (Typer `Annotated` aliases).

    def score(data: Data, model: ModelOpt, output: OutOpt, set_: SetOpt = None): ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Data = Annotated[Path, typer.Argument(help="Input file (.csv, .csv.gz or .parquet), or a "
                                      "directory or quoted glob of them (-o is then a directory).",
                                      show_default=False, metavar="DATA")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file.")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", metavar="KEY=VALUE", help="Override a config key by dotted path, e.g. --set train.epochs=3 (repeatable).")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides train.seed).")]
DeviceOpt = Annotated[Optional[str], typer.Option(
    "--device", help="auto | cpu | cuda (overrides train.device).")]
OutOpt = Annotated[Path, typer.Option("--output", "-o", help="Output file; .csv, .csv.gz or "
                                      ".parquet decides the format.", show_default=False)]
ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Model directory from `attnad train`.",
                                        show_default=False)]
KeepOpt = Annotated[Optional[list[str]], typer.Option(
    "--keep", metavar="COLUMN", help="Input columns to copy to the output (repeatable; default: all).")]
BatchOpt = Annotated[Optional[int], typer.Option(
    "--batch-size", help="Rows read and scored at a time (overrides score.batch_size).", min=1)]
ExplainOpt = Annotated[int, typer.Option(
    "--explain", help="Add top_features and top_contributions columns: the K input columns with "
    "the largest share of each row's score (\";\"-separated).", min=0, max=100)]
SortedOpt = Annotated[bool, typer.Option(
    "--sorted-input", help="Time series in several files: the files, in name order, hold rows "
    "sorted by (group, time), so an entity may continue from one file into the next.")]
EngineOpt = Annotated[str, typer.Option(
    "--engine", help="local, or ray (Ray Data; needs the `ray` extra and Parquet input).")]
RayAddressOpt = Annotated[Optional[str], typer.Option(
    "--ray-address", help="--engine ray: the cluster to join (default: start a local Ray).")]
FailDriftOpt = Annotated[Optional[float], typer.Option(
    help="Exit 1 when any model column's PSI against its training deciles exceeds this (rule "
    "of thumb: under 0.1 stable, 0.1-0.25 moderate, over 0.25 large).")]
FailMissingOpt = Annotated[Optional[float], typer.Option(
    help="Exit 1 when a model column's share of missing cells rose by more than this since "
    "training (0.1 = ten percentage points).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
