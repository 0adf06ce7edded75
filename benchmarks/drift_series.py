#!/usr/bin/env python
"""Drift stress test for time series: does a slowly wandering signal flood the flags, and are
abrupt anomalies still found beside it?

    python benchmarks/drift_series.py                          # seeds 0 1, default model
    python benchmarks/drift_series.py --set model.input_level=entity --tag entity

Fleets are built from the developer data's normal parts (the train parts of SMD and ASD, which
carry no labelled anomalies): each source machine is one entity of a multi-entity file, with six
signals drawn (per seed) from those that vary on every machine. The
earlier rows of each entity are the training file ("January"), later rows the scored file
("March"). Then, per entity, two signals get
- `walk`: a slow random walk (step 0.02 of the signal's spread) through training and scoring,
- `trend`: a slow linear trend reaching +6 spreads at the end of the scored part,
- `spread`: deviations from the centre growing slowly to twice their size at the end,
or nothing (`none`). The scored part is scored clean and with planted anomalies (per entity: 3
one-step spikes, 2 level shifts of 4 spreads over 60 steps, 2 broken couplings where a signal
replays an unrelated stretch of itself for 100 steps, 2 frozen signals for 100 steps).

Reported per fleet, drift and seed: the share of normal scored rows flagged at the default
threshold (nominal: threshold.contamination, 1%), and on the planted file AUROC, AUPRC and the
share of planted anomalies with at least one flagged row (event recall). Writes
benchmarks/results/drift_series[.TAG].json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnad.config import Config  # noqa: E402
from attnad.detector import Detector  # noqa: E402
from attnad.metrics import auprc, auroc  # noqa: E402

FLEETS = {  # fleet -> (source files' manifest names, fit rows, gap rows, scored rows per entity)
    "smd": (["smd_machine-1-6", "smd_machine-2-1", "smd_machine-3-3"], 6000, 6000, 6000),
    "asd": (["asd_omi-1", "asd_omi-3", "asd_omi-5"], 4000, 320, 4320),
}
DRIFTS = ("none", "walk", "trend", "spread")
WALK_STEP = 0.02  # random-walk step, in the signal's training spreads
TREND_END = 6.0  # trend: spreads above the start by the end of the scored part
SPREAD_END = 2.0  # spread: the signal's deviations from its centre grow to this factor
DRIFTING_SIGNALS = 2
SIGNALS = 6  # signals per fleet (varying in every entity), so one signal is a sixth of a row


def spread(x: np.ndarray) -> float:
    mad = 1.4826 * np.median(np.abs(x - np.median(x)))
    return float(mad if mad > 0 else np.std(x))


def varying_signals(x: np.ndarray, rng, k: int) -> list[int]:
    """k signals with a real spread and many distinct values (not a flag or a constant)."""
    ok = [j for j in range(x.shape[1]) if is_varying(x[:, j])]
    return sorted(rng.choice(ok, size=min(k, len(ok)), replace=False).tolist())


def add_drift(x: np.ndarray, kind: str, signals: list[int], scales: list[float], n_fit: int,
              rng) -> None:
    n = len(x)
    for j, s in zip(signals, scales):
        if kind == "walk":
            x[:, j] += s * np.cumsum(rng.normal(0.0, WALK_STEP, n))
        elif kind == "trend":
            x[:, j] += s * TREND_END * np.arange(n) / (n - 1)
        elif kind == "spread":
            c = np.median(x[:n_fit, j])
            x[:, j] = c + (x[:, j] - c) * (1 + (SPREAD_END - 1) * np.arange(n) / (n - 1))


KINDS = ("spike", "shift", "coupling", "frozen")


def plant(x: np.ndarray, rng, scales: np.ndarray, avoid: list[int]) -> np.ndarray:
    """Plant anomalies into the scored rows x (in place); returns each row's kind: 0 normal,
    1 + KINDS.index(kind) planted."""
    n, F = x.shape
    y = np.zeros(n, np.int8)
    cand = varying_signals(x, rng, F)
    cand = [j for j in cand if j not in avoid] or cand
    slots = np.linspace(300, n - 300, 10).astype(int)  # anomalies apart, never at the edges
    rng.shuffle(slots)
    kinds = ["spike"] * 3 + ["shift"] * 2 + ["coupling"] * 2 + ["frozen"] * 2
    for kind, at in zip(kinds, slots):
        j = int(rng.choice(cand))
        s = scales[j]
        code = 1 + KINDS.index(kind)
        if kind == "spike":
            x[at, j] += rng.choice([-1, 1]) * 8 * s
            y[at] = code
        elif kind == "shift":
            x[at:at + 60, j] += rng.choice([-1, 1]) * 4 * s
            y[at:at + 60] = code
        elif kind == "coupling":
            src = (at + n // 2) % (n - 100)
            x[at:at + 100, j] = x[src:src + 100, j]
            y[at:at + 100] = code
        else:
            x[at:at + 100, j] = x[at, j]
            y[at:at + 100] = code
    return y


def is_varying(x: np.ndarray) -> bool:
    return np.median(np.abs(x - np.median(x))) > 0 and len(np.unique(x)) > 50


def fleet_frames(data: Path, fleet: str, drift: str, seed: int):
    names, n_fit, gap, n_score = FLEETS[fleet]
    manifest = {d["name"]: d for d in json.loads((data / "manifest.json").read_text())}
    rng = np.random.default_rng([seed, sum(map(ord, fleet + drift))])
    parts = {n: pd.read_parquet(data / manifest[n]["files"]["train"]).iloc[:n_fit + gap + n_score]
             for n in names}
    shared = [c for c in manifest[names[0]]["feature_columns"]
              if all(is_varying(parts[n][c].to_numpy(np.float64)[:n_fit]) for n in names)]
    cols = sorted(rng.choice(shared, size=min(SIGNALS, len(shared)), replace=False).tolist(),
                  key=shared.index)
    fits, scores, planted, labels = [], [], [], []
    for name in names:
        x = parts[name][cols].to_numpy(np.float64).copy()
        scales = np.array([spread(x[:n_fit, j]) or 1.0 for j in range(len(cols))])
        drifting = varying_signals(x[:n_fit], rng, DRIFTING_SIGNALS)
        add_drift(x, drift, drifting, [scales[j] for j in drifting], n_fit, rng)
        entity = name.split("_", 1)[1]
        t = np.arange(len(x))

        def frame(rows, values):
            f = pd.DataFrame(values, columns=cols)
            f.insert(0, "step", t[rows])
            f.insert(0, "machine", entity)
            return f

        fit_rows = slice(0, n_fit)
        score_rows = slice(n_fit + gap, n_fit + gap + n_score)
        fits.append(frame(fit_rows, x[fit_rows]))
        scores.append(frame(score_rows, x[score_rows]))
        xp = x[score_rows].copy()
        labels.append(plant(xp, rng, scales, drifting))
        planted.append(frame(score_rows, xp))
    return (pd.concat(fits, ignore_index=True), pd.concat(scores, ignore_index=True),
            pd.concat(planted, ignore_index=True), np.concatenate(labels))


def event_recall(y: np.ndarray, flags: np.ndarray) -> float:
    """Share of planted runs (y > 0) with a flagged row."""
    y = (y > 0).astype(np.int8)
    starts = np.flatnonzero(np.diff(np.r_[0, y]) == 1)
    ends = np.flatnonzero(np.diff(np.r_[y, 0]) == -1) + 1
    found = [flags[s:e].any() for s, e in zip(starts, ends)]
    return float(np.mean(found)) if found else float("nan")


def run_one(data: Path, fleet: str, drift: str, seed: int, sets: list[str], threads: int) -> dict:
    fit, clean, planted, y = fleet_frames(data, fleet, drift, seed)
    raw = {"data": {"time_column": "step", "group_column": "machine"},
           "train": {"seed": seed, "threads": threads}}
    for item in sets:
        key, _, value = item.partition("=")
        d = raw
        *head, last = key.split(".")
        for p in head:
            d = d.setdefault(p, {})
        d[last] = yaml.safe_load(value)
    t0 = time.perf_counter()
    det = Detector(Config.model_validate(raw)).fit(fit)
    fit_s = time.perf_counter() - t0
    flags_clean = det.predict(clean)
    s = det.score_samples(planted)
    flags = s > det.threshold_["value"]
    kind = y
    y = (kind > 0).astype(np.int8)
    return {"fleet": fleet, "drift": drift, "seed": seed, "rows_fit": len(fit),
            "signals": [c for c in fit.columns if c not in ("machine", "step")],
            "rows_scored": len(clean), "fit_seconds": round(fit_s, 1),
            "flag_rate_normal": float(np.mean(flags_clean)),
            "flag_rate_normal_planted_file": float(np.mean(flags[y == 0])),
            "auroc": auroc(y, s), "auprc": auprc(y, s), "event_recall": event_recall(y, flags),
            "recall_by_kind": {k: event_recall(np.where(kind == 1 + i, 1, 0), flags)
                               for i, k in enumerate(KINDS)},
            "auroc_by_kind": {k: auroc(y[(kind == 0) | (kind == 1 + i)],
                                       s[(kind == 0) | (kind == 1 + i)])
                              for i, k in enumerate(KINDS)},
            "nominal": det.config.threshold.contamination}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--fleets", nargs="+", default=list(FLEETS), choices=list(FLEETS))
    p.add_argument("--drifts", nargs="+", default=list(DRIFTS), choices=list(DRIFTS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for attnad, e.g. model.input_level=entity")
    p.add_argument("--tag", default="", help="results file suffix (drift_series.TAG.json)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    data = Path(args.data)
    rows = []
    print(f"{'fleet':5} {'drift':6} {'seed':>4} {'flag% normal':>12} {'flag% (planted file)':>20} "
          f"{'AUROC':>6} {'AUPRC':>6} {'events found':>12} {'fit s':>6}")
    for fleet in args.fleets:
        for drift in args.drifts:
            for seed in args.seeds:
                r = run_one(data, fleet, drift, seed, args.set, args.threads)
                rows.append(r)
                print(f"{fleet:5} {drift:6} {seed:4d} {100 * r['flag_rate_normal']:12.2f} "
                      f"{100 * r['flag_rate_normal_planted_file']:20.2f} {r['auroc']:6.3f} "
                      f"{r['auprc']:6.3f} {r['event_recall']:12.2f} {r['fit_seconds']:6.1f}",
                      flush=True)
    means = {}
    for drift in args.drifts:
        sel = [r for r in rows if r["drift"] == drift]
        means[drift] = {k: float(np.mean([r[k] for r in sel])) for k in
                        ("flag_rate_normal", "flag_rate_normal_planted_file", "auroc", "auprc",
                         "event_recall")}
        for k in KINDS:
            means[drift][f"auroc_{k}"] = float(np.mean([r["auroc_by_kind"][k] for r in sel]))
            means[drift][f"recall_{k}"] = float(np.mean([r["recall_by_kind"][k] for r in sel]))
        m = means[drift]
        print(f"mean  {drift:6}      {100 * m['flag_rate_normal']:12.2f} "
              f"{100 * m['flag_rate_normal_planted_file']:20.2f} {m['auroc']:6.3f} "
              f"{m['auprc']:6.3f} {m['event_recall']:12.2f}")
    print("\nby kind of planted anomaly (mean over fleets and seeds): AUROC / share found")
    print(f"{'drift':6} " + " ".join(f"{k:>14}" for k in KINDS))
    for drift, m in means.items():
        print(f"{drift:6} " + " ".join(f"{m['auroc_' + k]:8.3f} {m['recall_' + k]:5.2f}"
                                       for k in KINDS))
    out = Path(args.out) / f"drift_series{'.' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": "python benchmarks/drift_series.py " + " ".join(argv or sys.argv[1:]),
        "settings": args.set, "python": platform.python_version(), "machine": platform.machine(),
        "walk_step": WALK_STEP, "trend_end": TREND_END, "results": rows, "means": means},
        indent=1))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
