"""Same data, config and seed, twice: byte-identical scores and weights (in separate processes,
as two cron runs would be)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

from attnad.artifact import META
from tests.factories import TINY, make_table

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _detect(data, out, model, *extra):
    cmd = [sys.executable, "-m", "attnad", "detect", str(data), "-o", str(out), "--save-model",
           str(model), "--set=data.id_columns=[id]", *TINY, "--set=train.min_steps=60",
           "--set=train.max_steps=60", "--quiet", *extra]
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr


def test_same_data_config_seed_give_byte_identical_scores(tmp_path):
    data = tmp_path / "t.csv"
    make_table(600, seed=5)[0].to_csv(data, index=False)
    runs = []
    for i in range(2):
        out, model = tmp_path / f"o{i}.parquet", tmp_path / f"m{i}"
        _detect(data, out, model)
        runs.append((pd.read_parquet(out), json.loads((model / META).read_text())))
    (a, ma), (b, mb) = runs
    for col in ("anomaly_score", "anomaly_probability"):
        assert a[col].to_numpy().tobytes() == b[col].to_numpy().tobytes()
    assert a.anomaly_flag.tolist() == b.anomaly_flag.tolist()
    assert ma["weights_sha256"] == mb["weights_sha256"]
    assert ma["threshold"] == mb["threshold"]
    # and the seed matters: another seed gives other weights and scores
    out, model = tmp_path / "o_seed1.parquet", tmp_path / "m_seed1"
    _detect(data, out, model, "--seed=1")
    assert json.loads((model / META).read_text())["weights_sha256"] != ma["weights_sha256"]
    assert not np.array_equal(pd.read_parquet(out).anomaly_score, a.anomaly_score)
