#!/usr/bin/env python
"""Compare two score folders written by `accuracy.py --save-scores` bit for bit.

    python benchmarks/same_scores.py before/ after/

Prints one line per score file (identical, or the largest absolute difference) and exits 1 when
any file differs or is missing on one side: the check that a refactoring changed no score.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    a, b = (Path(p) for p in argv)
    names = sorted({p.name for p in a.glob("*.npy")} | {p.name for p in b.glob("*.npy")})
    if not names:
        print(f"no .npy files in {a} or {b}", file=sys.stderr)
        return 2
    bad = 0
    for name in names:
        if not (a / name).exists() or not (b / name).exists():
            print(f"MISSING    {name} (only in {b if (b / name).exists() else a})")
            bad += 1
            continue
        x, y = np.load(a / name), np.load(b / name)
        if x.shape == y.shape and np.array_equal(x.view(np.uint64), y.view(np.uint64)):
            print(f"identical  {name} ({x.size:,} scores)")
        else:
            diff = np.nanmax(np.abs(x - y)) if x.shape == y.shape else float("nan")
            print(f"DIFFERENT  {name} (shapes {x.shape} / {y.shape}, max |diff| {diff:.3g})")
            bad += 1
    print(f"{len(names) - bad} identical, {bad} different or missing")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
