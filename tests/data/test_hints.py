"""Hints about columns that are probably not features (attnad.data.hints): a label-like name, a
time axis in table mode. attnad keeps the column's role and says the exact --set that changes it."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from attnad.config import Config
from attnad.detector import Detector
from attnad.data.hints import looks_like_label
from tests.factories import TINY

runner = CliRunner()
FAST_CFG = {"train": {"min_steps": 20, "max_steps": 20, "threads": 1},
            "model": {"d_model": 8, "n_heads": 2, "n_layers": 1}}


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": 2 * a + rng.normal(0, 0.1, n),
                         "is_anomaly": (rng.random(n) < 0.02).astype(int)})


def _fit_warnings(df: pd.DataFrame, **data) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Detector(Config.model_validate({**FAST_CFG, "data": data})).fit(df)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("name,label", [("is_anomaly", True), ("Label", True), ("target", True),
                                        ("y", True), ("is-fraud", True), ("attack", True),
                                        ("amount", False), ("yield", False), ("classroom", False)])
def test_label_like_names(name, label):
    assert looks_like_label(name) is label


def test_a_label_like_feature_is_said_with_the_exact_set():
    said = _fit_warnings(_frame())
    assert any("'is_anomaly' looks like a label" in w
               and "--set data.label_column=is_anomaly" in w for w in said), said
    assert not any("looks like a label" in w for w in _fit_warnings(_frame(),
                                                                  label_column="is_anomaly"))


def test_detect_puts_the_label_hint_in_the_summary_json(tmp_path):
    p = tmp_path / "t.csv"
    _frame().to_csv(p, index=False)
    out, js = tmp_path / "o.csv", tmp_path / "s.json"
    r = runner.invoke(app, ["detect", str(p), "-o", str(out), "--summary-json", str(js), *TINY])
    assert r.exit_code == 0, r.output
    summary = json.loads(js.read_text())
    assert sum("looks like a label" in w for w in summary["warnings"]) == 1, summary["warnings"]
    assert r.stderr.count("looks like a label") == 1  # said once, in the summary


def test_an_ordered_time_column_in_table_mode_gets_one_hint():
    df = _frame().drop(columns=["is_anomaly"])
    df["timestamp"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(len(df)), unit="min")
    said = [w for w in _fit_warnings(df) if "time axis" in w]
    assert len(said) == 1 and "--set data.time_column=timestamp" in said[0]
    shuffled = df.sample(frac=1, random_state=0)  # dates in no order: a feature, no hint
    assert not [w for w in _fit_warnings(shuffled) if "time axis" in w]
    step = df.drop(columns=["timestamp"]).assign(step=np.arange(len(df)))
    assert [w for w in _fit_warnings(step) if "time axis" in w and "'step'" in w]
