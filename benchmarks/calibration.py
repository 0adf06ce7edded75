#!/usr/bin/env python
"""Small-table threshold check: flag rate on held-out normal rows, one model vs cross-fitted.

    python benchmarks/calibration.py --data ../shared/data          # ~10 min on 1 core
    python benchmarks/calibration.py --only adbench_wine adbench_glass

The default threshold flags the top `threshold.contamination` (1%) of the training rows' scores.
A model that has learned its training rows by heart scores them lower than rows it has not seen,
so that threshold flags more than 1% of new normal rows. Cross-fitting (`train.cross_fit`,
attnad.tabular.crossfit) scores every training row with a model that did not train on it. This fits
attnad twice per data set (`cross_fit` 1 and 2, otherwise the default config) on the clean
protocol's training half of the normal rows (the split `benchmarks/accuracy.py` uses) and
reports the share of the other half's normal rows above each threshold.

Data: the tabular sets of the manifest whose training half has at most --max-train rows (small
tables are where memorising happens). Writes benchmarks/results/calibration.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import accuracy as A  # noqa: E402  (the benchmark's manifest reader and splits)

from attnad.config import Config  # noqa: E402
from attnad.detector import Detector  # noqa: E402


def flag_rate(fit_df, held, cross_fit: int, seed: int) -> float:
    raw = {"data": {"label_column": A.LABEL},
           "train": {"seed": seed, "threads": 1, "cross_fit": cross_fit}}
    det = Detector(Config.model_validate(raw)).fit(fit_df)
    return float((det.score(held) > det.threshold_["value"]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data", help="the developer data folder")
    ap.add_argument("--only", nargs="*", default=None, help="data set names")
    ap.add_argument("--max-train", type=int, default=1000,
                    help="largest training half (rows) a data set may have")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    data = Path(args.data)
    split_args = argparse.Namespace(seed=args.seed, max_rows=A.parse_args([]).max_rows,
                                    protocols=["S"])
    results = {}
    for ds in A.load_manifest(data):
        if ds.get("kind", "tabular") != "tabular" or (args.only and ds["name"] not in args.only):
            continue
        fit_df, score_df, _ = A.tabular_splits(ds, data, split_args)["S"]
        if len(fit_df) > args.max_train:
            continue
        held = score_df[score_df[A.LABEL] == 0].reset_index(drop=True)
        start = time.perf_counter()
        rates = {k: flag_rate(fit_df, held, k, args.seed) for k in (1, 2)}
        results[ds["name"]] = {"train_rows": len(fit_df), "held_rows": len(held),
                               "one_model": rates[1], "cross_fitted": rates[2],
                               "seconds": round(time.perf_counter() - start, 1)}
        print(f"{ds['name']}: {rates[1]:.4f} vs {rates[2]:.4f}", file=sys.stderr)
    lines = ["# Small tables: held-out normal rows over the default 1% threshold", "",
             f"data `{args.data}` · seed {args.seed} · clean split of `benchmarks/accuracy.py` · "
             f"training halves up to {args.max_train:,} rows", "",
             "| data set | training rows | held-out normal rows | one model | cross-fitted |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['train_rows']:,} | {r['held_rows']:,} | "
                     f"{r['one_model']:.2%} | {r['cross_fitted']:.2%} |")
    if results:
        mean = {k: np.mean([r[k] for r in results.values()]) for k in ("one_model", "cross_fitted")}
        lines.append(f"| **mean** | | | {mean['one_model']:.2%} | {mean['cross_fitted']:.2%} |")
    md = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.md").write_text(md)
    (out / "calibration.json").write_text(json.dumps(results, indent=1))
    print(md)


if __name__ == "__main__":
    main()
