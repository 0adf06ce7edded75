"""Data bigger than one file: a directory of files or a glob, scored file by file.

DATA may name a file, a directory (every .parquet/.csv/.csv.gz file under it, recursively, in
name order; files and directories whose names start with '.' or '_', such as _SUCCESS or
_temporary/, are skipped, as Spark and Hive do) or a glob
('data/2026-*/*.parquet', quoted so the shell leaves it alone). With several files, `-o` names a
directory and each output file mirrors its input's path below the input root (the directory, or
the glob's fixed leading part), so Hive partition directories (`day=2026-01-05/`) are kept.

    files = open_data("events/")          # Files([...]) or a single checked Path
    outs = mirror(files, Path("scored/"))  # scored/day=2026-01-05/part-0.parquet, ...
"""

from __future__ import annotations

import glob
from pathlib import Path

import pyarrow.parquet as pq

from attnad.data.io import DEFAULT_CSV, check_input, file_format, iter_batches
from attnad.errors import DataError, UserError

GLOB_CHARS = "*?["
SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")


class Files(list):
    """Input files in the order they are read, with the root their output paths mirror."""

    def __init__(self, files: list[Path], root: Path, source: str):
        super().__init__(files)
        self.root = root
        self.source = source

    def __str__(self) -> str:  # messages name what the user typed
        return self.source


def is_many(data: str | Path) -> bool:
    text = str(data)
    return any(c in text for c in GLOB_CHARS) or Path(text).is_dir()


def _wanted(p: Path) -> bool:
    return p.is_file() and p.name.lower().endswith(SUFFIXES) and not p.name.startswith((".", "_"))


def open_data(data: str | Path) -> Path | Files:
    """A single checked file, or the files of a directory or glob (exit 2 when there are none)."""
    text = str(data)
    if not is_many(text):
        return check_input(text)
    if Path(text).is_dir():
        root = Path(text)
        found = sorted(p for p in root.rglob("*") if _wanted(p) and not _hidden(p, root))
    else:
        fixed = text[:min(text.index(c) for c in GLOB_CHARS if c in text)]
        root = Path(fixed) if fixed.endswith(("/", "\\")) else Path(fixed).parent
        found = sorted(Path(p) for p in glob.glob(text, recursive=True)
                       if _wanted(Path(p)) and not _hidden(Path(p), root))
    if not found:
        raise DataError(f"{text}: no .parquet, .csv or .csv.gz files found")
    for p in found:
        check_input(p)
    return Files(found, root, text)


def _hidden(p: Path, root: Path) -> bool:
    """Inside a directory named .x or _x below the root (_temporary, .spark-staging)."""
    return any(part.startswith((".", "_")) for part in p.relative_to(root).parts[:-1])


def mirror(files: Files, out_dir: Path) -> list[Path]:
    """Output path of each input file: the same relative path below out_dir."""
    return [out_dir / p.relative_to(files.root) for p in files]


def check_output_dir(files: Files, out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"-o {out_dir}: DATA {files} names several files, so -o must be a "
                        "directory (the output mirrors the input's file layout)")
    try:
        file_format(out_dir)
    except DataError:
        pass
    else:
        raise UserError(f"-o {out_dir}: DATA {files} names several files; give a directory, "
                        "not a file name")
    out = out_dir.resolve()
    root = files.root.resolve()
    if out == root or root in out.parents and any(p.resolve().is_relative_to(out) for p in files):
        raise UserError(f"-o {out_dir}: overlaps the input files; write the output elsewhere")


def row_counts(files: Files, csv=None) -> list[int]:
    """Rows per file: Parquet from its footer, CSV by reading it (with `csv`, a CsvFormat)."""
    counts = []
    for p in files:
        if file_format(p) == "parquet":
            counts.append(pq.ParquetFile(str(p)).metadata.num_rows)
        else:
            counts.append(sum(b.num_rows for b in iter_batches(p, csv=csv or DEFAULT_CSV)))
    return counts
