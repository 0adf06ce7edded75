"""Seeded test data with planted anomalies of known kinds, and small fast configs to fit it.

Each maker returns the data and where it planted what (`{kind: rows}`), so a test can assert that
every kind of anomaly ranks on top and that its explanation names the column it was planted in.
The same seed gives the same data on every run. The configs are small and fast: tests check
behaviour, benchmarks check accuracy.

    df, kinds = make_table()                                  # a mixed-type table
    train, _ = make_series(seed=1, start=0, planted=False)    # three hosts, three signals each
    test, kinds = make_series(seed=2, start=N, planted=True)
    normal = scores[normal_rows(len(test), kinds)]            # rows away from every planted one
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# --- tables ---------------------------------------------------------------------------------

# small and fast: tests check behaviour, benchmarks check accuracy
FAST = {"train": {"batch_size": 128, "threads": 1, "seed": 0, "min_steps": 400,
                   "max_steps": 400},
        "model": {"d_model": 16, "n_layers": 2, "n_heads": 2}}

# a tiny model as CLI options: for tests of behaviour on odd files, not accuracy
TINY = ["--set=train.threads=1", "--set=train.min_steps=20", "--set=train.max_steps=20",
        "--set=train.batch_size=64", "--set=model.d_model=8", "--set=model.n_layers=1",
        "--set=model.n_heads=1", "--set=model.n_memories=2", "--set=model.memory_size=32",
        "--seed=0"]


def make_table(n: int = 1200, seed: int = 0, planted: bool = True) -> tuple[pd.DataFrame, dict]:
    """Mixed table; returns it and {kind: row index} of planted anomalies.

    Normal rows: b = 2a + noise, c independent, count small integer, colour/shape pairs follow
    fixed rules (red->circle, blue->square, green->any), flag boolean, a datetime in daytime.
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, n)
    b = 2 * a + rng.normal(0, 0.1, n)
    c = rng.normal(5, 2, n)
    count = rng.integers(0, 5, n)
    colour = rng.choice(["red", "blue", "green"], n, p=[0.45, 0.45, 0.1])
    shape = np.where(colour == "red", "circle", np.where(colour == "blue", "square",
                     rng.choice(["circle", "square"], n)))
    flag = rng.random(n) < 0.3
    ts = pd.Timestamp("2026-01-05") + pd.to_timedelta(rng.integers(0, 20, n), unit="D") \
        + pd.to_timedelta(rng.uniform(9, 17, n), unit="h")
    df = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "a": a, "b": b, "c": c,
                       "count": count, "colour": colour, "shape": shape, "flag": flag, "ts": ts})
    df.loc[rng.choice(n, n // 50, replace=False), "c"] = np.nan  # missing cells are normal
    kinds = {}
    if planted:
        rows = rng.choice(np.arange(n), 3, replace=False)
        kinds["extreme"] = int(rows[0])
        df.loc[rows[0], "c"] = 5 + 2 * 25.0
        kinds["broken_relation"] = int(rows[1])
        df.loc[rows[1], "a"] = 1.0
        df.loc[rows[1], "b"] = -2.0
        kinds["rare_combination"] = int(rows[2])
        df.loc[rows[2], ["colour", "shape"]] = ["red", "square"]
    return df, kinds


# --- time series ----------------------------------------------------------------------------

N = 800  # steps per entity
WINDOW = 32
TS_FAST = {"data": {"time_column": "ts", "group_column": "host", "label_column": "label"},
           "model": {"window": WINDOW, "d_model": 16, "n_heads": 2},
           "train": {"threads": 1, "seed": 0, "min_steps": 300, "max_steps": 300}}


def make_series(seed: int, start: int, planted: bool) -> tuple[pd.DataFrame, dict]:
    """Three hosts, three signals each: a and b follow one latent cycle (b partly predictable from
    a), c has its own period; each host has its own level and spread. Planted (test part only):
    a spike in c, a level shift in a, b broken away from a, and a frozen a."""
    rng = np.random.default_rng(seed)
    frames = []
    for e in range(3):
        t = np.arange(start, start + N)
        ph = rng.uniform(0, 2 * np.pi)
        base = np.sin(2 * np.pi * t / 50 + ph)
        a = base + rng.normal(0, 0.1, N)
        b = 0.8 * base + 0.6 * np.cos(2 * np.pi * t / 50 + ph) + rng.normal(0, 0.1, N)
        c = np.cos(2 * np.pi * t / 23 + ph) + rng.normal(0, 0.1, N)
        frames.append(pd.DataFrame({
            "host": f"h{e}", "ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(t, unit="min"),
            "a": a * (1 + e) + 10 * e, "b": b * (1 + e) - 5 * e, "c": c + e}))
    df = pd.concat(frames, ignore_index=True)
    kinds = {}
    if planted:
        def rows(e, s, k):
            return np.arange(e * N + s, e * N + s + k)
        kinds["spike"] = rows(0, 300, 1)
        df.loc[kinds["spike"], "c"] += 8
        kinds["level_shift"] = rows(1, 400, 30)
        df.loc[kinds["level_shift"], "a"] += 6
        kinds["broken_correlation"] = rows(2, 500, 30)
        df.loc[kinds["broken_correlation"], "b"] = -df.loc[kinds["broken_correlation"], "b"] - 20
        kinds["frozen"] = rows(0, 600, 40)
        df.loc[kinds["frozen"], "a"] = df.loc[kinds["frozen"][0], "a"]
    df["label"] = 0
    for r in kinds.values():
        df.loc[r, "label"] = 1
    return df, kinds


def normal_rows(n: int, kinds: dict) -> np.ndarray:
    """Rows more than a window away from every planted anomaly."""
    ok = np.ones(n, bool)
    for r in kinds.values():
        ok[max(0, r[0] - WINDOW):r[-1] + WINDOW + 1] = False
    return ok
