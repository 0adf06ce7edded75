"""Shared fixtures: a fitted table model and its files, and a series model with per-entity
thresholds, each built once per session from the seeded makers in tests.factories."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from tests.factories import FAST, N, TS_FAST, make_series, make_table

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


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


@pytest.fixture(scope="session")
def ts_setup(tmp_path_factory):
    """A series model with per-entity POT thresholds, saved, and a test file with planted
    anomalies: (det, root, test, test_path, kinds). Host h2 is noisier than the others in
    training and testing, so its own threshold is higher."""
    from attnad.config import Config
    from attnad.detector import Detector
    root = tmp_path_factory.mktemp("trust_ts")
    train, _ = make_series(seed=1, start=0, planted=False)
    test, kinds = make_series(seed=2, start=N, planted=True)
    # host h2 is noisier than the others in training and testing: its own threshold is higher
    for df in (train, test):
        h2 = df["host"] == "h2"
        df.loc[h2, "c"] += np.random.default_rng(9).normal(0, 0.6, h2.sum())
    cfg = Config.model_validate({**TS_FAST, "threshold": {"method": "pot", "risk": 1e-3,
                                                          "per_entity": True}})
    det = Detector(cfg).fit(train)
    det.save(root / "model")
    test_path = root / "test.parquet"
    test.to_parquet(test_path, index=False)
    return det, root, test, test_path, kinds
