"""Checks on output paths made before any work, so a long run does not fail at its last step.

    check_output("in.csv", "out.parquet")   # raises UserError naming the option and the fix
"""

from __future__ import annotations

import os
from pathlib import Path

from attnad.data.io import file_format
from attnad.errors import UserError


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
