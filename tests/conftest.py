"""Shared test data: seeded mixed-type tables with planted anomalies of known kinds."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

# small and fast: tests check behaviour, benchmarks check accuracy
FAST = {"train": {"batch_size": 128, "threads": 1, "seed": 0, "min_steps": 400,
                   "max_steps": 400},
        "model": {"d_model": 16, "n_layers": 2, "n_heads": 2}}


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


@pytest.fixture(scope="session")
def table():
    return make_table()


@pytest.fixture(scope="session")
def fast_config():
    from attnad.config import Config
    return Config.model_validate({**FAST, "data": {"id_columns": ["id"]}})


@pytest.fixture(scope="session")
def fitted(table, fast_config):
    from attnad.detector import Detector
    df, _ = table
    return Detector(fast_config).fit(df)


@pytest.fixture(scope="session")
def csv_file(tmp_path_factory, table):
    p = tmp_path_factory.mktemp("data") / "table.csv"
    table[0].to_csv(p, index=False)
    return p


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, fitted):
    p = tmp_path_factory.mktemp("model") / "m"
    fitted.save(p)
    return p
