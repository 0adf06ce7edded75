#!/usr/bin/env python
"""Drift figures on the developer tables: do they point at the column that changed, and how high
does PSI go when nothing changed?

    python benchmarks/drift.py                       # every tabular set; prints a table
    python benchmarks/drift.py --only adbench_wine nsl_kdd --trials 3

Each table's normal rows (``is_anomaly == 0``; NSL-KDD: its train file) are shuffled (seeded)
and split in two halves: the first is the training data, the second the "new file". Into the
second half one change is injected at a time, into one column chosen at random (``--trials``
columns per table and injection, seeded):

* ``shift 0.25 / 0.5 / 1``: the column's values plus 0.25 / 0.5 / 1 times its spread (the
  robust spread attnad scales the column by: IQR / 1.349, else the standard deviation);
* ``spread x2``: the values moved twice as far from the median;
* ``category x2``: one category (training share 5-40 %) takes twice its share, from rows of the
  other categories (tables with text columns: NSL-KDD);
* ``missing +10%``: 10 % of the column's cells emptied.

Numeric injections use columns with at least 10 distinct values. Reported per injection: how
often the changed column is the top drifting column (by PSI; for ``missing +10%`` by the rise of
the missing share, the figure its gate watches), and the changed column's PSI (median and 10th
percentile over trials); for ``none`` (the second half as it is) the largest PSI of any column,
the false-alarm level, by table size. The figures are computed by attnad's own code, the one
`fit` and `detect` run (attnad.data.profile, attnad.data.drift) on the preprocessed columns;
drift figures do not depend on the model's weights, so no model is trained here.

Writes benchmarks/results/drift.json (and .md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from attnad.config import DataConfig
from attnad.data.drift import DriftCounts
from attnad.data.preprocess import Preprocessor
from attnad.data.profile import table_profile
from attnad.data.schema import infer_schema

ROOT = Path(__file__).resolve().parents[1]
MAX_ROWS = 50_000  # normal rows used per table (seeded sample): both halves up to 25k
MIN_DISTINCT = 10  # a numeric column shifted must take at least this many values
INJECTIONS = ["none", "shift 0.25", "shift 0.5", "shift 1", "spread x2", "category x2",
              "missing +10%"]
SMALL = 1000  # rows per half below which PSI's sampling noise is reported apart


def profile_of(train: pd.DataFrame, cfg: DataConfig):
    table = pa.Table.from_pandas(train, preserve_index=False)
    schema = infer_schema(table, cfg, "train")
    cols, invalid = schema.coerce(table)
    pre = Preprocessor.fit(cols, schema, cfg)
    return schema, pre, table_profile(pre.transform(cols), pre, invalid, table.num_rows)


def figures(schema, pre, profile, new: pd.DataFrame) -> pd.DataFrame:
    counts = DriftCounts(profile)
    cols, invalid = schema.coerce(pa.Table.from_pandas(new, preserve_index=False))
    counts.add_table(pre.transform(cols), invalid)
    f = counts.frame().set_index("column")
    f["missing_rise"] = f["missing_now"] - f["missing_then"]
    return f


def spread_of(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    q1, q3 = np.percentile(x, [25, 75])
    s = (q3 - q1) / 1.349
    return s if s > 0 else (float(np.std(x)) or 1.0)


def inject(kind: str, df: pd.DataFrame, col: str, rng) -> pd.DataFrame | None:
    out = df.copy()
    if kind.startswith("shift"):
        x = out[col].to_numpy(np.float64)
        out[col] = x + float(kind.split()[1]) * spread_of(x)
    elif kind == "spread x2":
        x = out[col].to_numpy(np.float64)
        med = np.nanmedian(x)
        out[col] = med + 2 * (x - med)
    elif kind == "missing +10%":
        out[col] = out[col].astype(object)
        rows = rng.choice(len(out), size=len(out) // 10, replace=False)
        out.iloc[rows, out.columns.get_loc(col)] = None
    elif kind == "category x2":
        share = out[col].value_counts(normalize=True)
        options = share[(share >= 0.05) & (share <= 0.4)]
        if options.empty:
            return None
        value = rng.choice(options.index.to_numpy())
        others = np.flatnonzero((out[col] != value).to_numpy())
        take = rng.choice(others, size=int(round(options[value] * len(out))), replace=False)
        out.iloc[take, out.columns.get_loc(col)] = value
    return out


def load(data_dir: Path, ds: dict) -> pd.DataFrame:
    rel = ds["files"].get("train") or ds["files"].get("full")
    df = pd.read_parquet(data_dir / rel)
    df = df[df["is_anomaly"] == 0]
    cols = [c for c in ds["feature_columns"] + ds["categorical_columns"] if c in df.columns]
    return df[list(dict.fromkeys(cols))].reset_index(drop=True)


def run_table(name: str, df: pd.DataFrame, trials: int, seed: int) -> list[dict]:
    rng = np.random.default_rng([seed, *name.encode()])
    if len(df) > MAX_ROWS:
        df = df.iloc[np.sort(rng.choice(len(df), MAX_ROWS, replace=False))]
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    half = len(df) // 2
    train, new = df.iloc[:half].reset_index(drop=True), df.iloc[half:].reset_index(drop=True)
    cfg = DataConfig()
    schema, pre, profile = profile_of(train, cfg)
    numeric = [f["name"] for f in pre.numeric if f["name"] == f["source"]
               and train[f["name"]].nunique() >= MIN_DISTINCT]
    text = [c["name"] for c in pre.categorical if c["kind"] == "text"]
    base = figures(schema, pre, profile, new)
    out = [{"table": name, "rows": half, "injection": "none", "column": base["psi"].idxmax(),
            "psi": float(base["psi"].max()), "top": None}]
    for kind in INJECTIONS[1:]:
        pool = {"category x2": text, "missing +10%": numeric + text}.get(kind, numeric)
        if not pool:
            continue
        # categories: a few text columns, so columns repeat (each trial draws its own category)
        for col in rng.choice(pool, size=trials if kind == "category x2" else
                              min(trials, len(pool)), replace=kind == "category x2"):
            changed = inject(kind, new, str(col), rng)
            if changed is None:
                continue
            f = figures(schema, pre, profile, changed)
            by = "missing_rise" if kind == "missing +10%" else "psi"
            out.append({"table": name, "rows": half, "injection": kind, "column": str(col),
                        "psi": float(f.loc[col, "psi"]),
                        "missing_rise": float(f.loc[col, "missing_rise"]),
                        "top": bool(f[by].idxmax() == col)})
    return out


def summarise(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    lines = []
    for kind in INJECTIONS:
        part = df[df["injection"] == kind]
        if part.empty:
            continue
        if kind == "none":
            for label, sub in (("all tables", part), (f"half >= {SMALL} rows",
                                                      part[part["rows"] >= SMALL]),
                               (f"half < {SMALL} rows", part[part["rows"] < SMALL])):
                if sub.empty:
                    continue
                lines.append({"injection": f"none: largest PSI, {label}", "trials": len(sub),
                              "tables": sub["table"].nunique(), "top share": "",
                              "PSI median": sub["psi"].median(),
                              "PSI p10": sub["psi"].quantile(0.1),
                              "PSI p90": sub["psi"].quantile(0.9), "PSI max": sub["psi"].max(),
                              "over 0.1": (sub["psi"] > 0.1).mean(),
                              "over 0.25": (sub["psi"] > 0.25).mean()})
            continue
        for label, sub in (("", part), (f", half >= {SMALL} rows", part[part["rows"] >= SMALL])):
            if sub.empty or (label and len(sub) == len(part)):
                continue
            lines.append({"injection": kind + label, "trials": len(sub),
                          "tables": sub["table"].nunique(), "top share": sub["top"].mean(),
                          "PSI median": sub["psi"].median(), "PSI p10": sub["psi"].quantile(0.1),
                          "PSI p90": sub["psi"].quantile(0.9), "PSI max": sub["psi"].max(),
                          "over 0.1": (sub["psi"] > 0.1).mean(),
                          "over 0.25": (sub["psi"] > 0.25).mean(),
                          **({"missing rise median": sub["missing_rise"].median()}
                             if kind == "missing +10%" else {})})
    return pd.DataFrame(lines)


def markdown(table: pd.DataFrame) -> str:
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in r) + " |"
            for r in table.astype(object).where(table.notna(), "").itertuples(index=False)]
    return "\n".join([head, rule, *body])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--only", nargs="*", default=None, help="table names from manifest.json")
    ap.add_argument("--trials", type=int, default=5, help="columns per table and injection")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "drift.json")
    args = ap.parse_args()
    manifest = json.loads((args.data / "manifest.json").read_text())
    seen, rows = set(), []
    for ds in manifest:
        files = ds["files"]
        if ds["kind"] != "tabular" or ds["name"] in seen or "csv" in files or \
                (args.only and ds["name"] not in args.only):
            continue
        seen.add(ds["name"])
        got = run_table(ds["name"], load(args.data, ds), args.trials, args.seed)
        rows += got
        print(f"{ds['name']}: {got[0]['rows']:,} rows a half, largest PSI unshifted "
              f"{got[0]['psi']:.3f} ({got[0]['column']})", flush=True)
    table = summarise(rows)
    text = markdown(table)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()
                                             if k not in ("data", "out")},
                                    "summary": table.to_dict("records"), "trials": rows},
                                   indent=1, default=float))
    args.out.with_suffix(".md").write_text(
        "Command: `python benchmarks/drift.py" + (f" --only {' '.join(args.only)}"
                                                    if args.only else "")
        + f" --trials {args.trials} --seed {args.seed}`\n\n" + text + "\n")


if __name__ == "__main__":
    main()
