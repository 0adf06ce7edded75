"""How long a table model trains by default: train.min_steps null means 600 steps, or 150 when
the fit scores its own file (`detect` without a model) and every model has a full batch."""

import math

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from attnad.cli import app
from attnad.config import ONE_SHOT_MIN_STEPS, SERIES_MIN_STEPS, TABLE_MIN_STEPS, Config
from attnad.detector import Detector

SMALL_MODEL = {"d_model": 8, "n_layers": 1, "n_heads": 1, "n_memories": 0}


def _table(n_rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(n_rows, 3)), columns=["a", "b", "c"])


def _fit(n_rows: int, one_shot: bool = False, **train) -> Detector:
    # patience: no early stop, so the steps are the budget
    cfg = Config.model_validate({"train": {"threads": 1, "patience": 1000, **train},
                                 "model": SMALL_MODEL})
    return Detector(cfg).fit(_table(n_rows), one_shot=one_shot)


def _steps(n_rows: int, one_shot: bool = False, **train) -> list[int]:
    return [m["steps"] for m in _fit(n_rows, one_shot, **train).training_["cross_fit"]["models"]]


def test_a_table_of_a_batch_or_more_trains_min_steps_per_model():
    # 2,000 rows: each model trains on ~900 rows, 4 batches of 256 a pass: whole passes
    assert _steps(2000, one_shot=True) == [4 * math.ceil(ONE_SHOT_MIN_STEPS / 4)] * 2
    assert _steps(2000) == [TABLE_MIN_STEPS] * 2


def test_a_table_smaller_than_a_batch_keeps_600_steps_one_shot():
    # 300 rows: ~135 training rows per model, less than a batch of 256: 600 steps (one pass
    # each); 700 rows: ~315 rows per model, a full batch each: 150 steps (2 a pass)
    assert _steps(300, one_shot=True) == [600, 600]
    assert _steps(700, one_shot=True) == [2 * math.ceil(ONE_SHOT_MIN_STEPS / 2)] * 2
    # min_steps set: followed on any table
    assert _steps(300, one_shot=True, min_steps=40) == [40, 40]


def test_two_passes_at_least_and_max_steps_caps():
    assert _steps(2000, min_steps=1) == [2 * 4] * 2
    assert _steps(2000, one_shot=True, max_steps=40) == [40, 40]


def test_the_steps_used_are_kept_in_the_config():
    assert _fit(700, one_shot=True, max_steps=2).config.train.min_steps == ONE_SHOT_MIN_STEPS
    assert _fit(300, one_shot=True, max_steps=2).config.train.min_steps == TABLE_MIN_STEPS
    assert _fit(700, max_steps=2).config.train.min_steps == TABLE_MIN_STEPS
    assert _fit(700, one_shot=True, min_steps=7, max_steps=2).config.train.min_steps == 7


def test_detect_without_a_model_fits_short_and_train_keeps_600(tmp_path):
    path = tmp_path / "t.csv"
    _table(700).to_csv(path, index=False)
    small = ["--set=model.d_model=8", "--set=model.n_layers=1", "--set=model.n_heads=1",
             "--set=train.max_steps=2", "--set=train.threads=1"]
    r = CliRunner().invoke(app, ["detect", str(path), "-o", str(tmp_path / "o.csv"),
                                 "--save-model", str(tmp_path / "m1"), *small])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["train", str(path), "-o", str(tmp_path / "m2"), *small])
    assert r.exit_code == 0, r.output
    steps = [Detector.load(tmp_path / m).config.train.min_steps for m in ("m1", "m2")]
    assert steps == [ONE_SHOT_MIN_STEPS, TABLE_MIN_STEPS]


def test_series_keep_their_own_default():
    assert Config.model_validate({"data": {"time_column": "t"}}).train.min_steps == \
        SERIES_MIN_STEPS
    assert Config.model_validate({"data": {"time_column": "t"},
                                  "train": {"min_steps": None}}).train.min_steps == \
        SERIES_MIN_STEPS
    assert Config.model_validate({"data": {"time_column": "t"},
                                  "train": {"min_steps": 7}}).train.min_steps == 7
    assert Config.model_validate({}).train.min_steps is None
