"""How long a table model trains by default (train.min_steps counts full batches)."""

import math

import numpy as np
import pandas as pd

from attnad.config import Config, SERIES_MIN_STEPS, TABLE_MIN_STEPS
from attnad.detector import Detector

SMALL_MODEL = {"d_model": 8, "n_layers": 1, "n_heads": 1, "n_memories": 0}


def _steps(n_rows: int, **train) -> list[int]:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(n_rows, 3)), columns=["a", "b", "c"])
    # patience: no early stop, so the steps are the budget
    cfg = Config.model_validate({"train": {"threads": 1, "patience": 1000, **train},
                                 "model": SMALL_MODEL})
    det = Detector(cfg).fit(df)
    return [m["steps"] for m in det.training_["cross_fit"]["models"]]


def test_a_table_of_a_batch_or_more_trains_min_steps_per_model():
    # 2,000 rows: each model trains on ~900 rows, 4 batches of 256 a pass: 38 whole passes
    assert _steps(2000) == [4 * math.ceil(TABLE_MIN_STEPS / 4)] * 2


def test_a_table_smaller_than_a_batch_takes_more_smaller_steps_up_to_four_times():
    # 300 rows: ~135 training rows per model, so a step is one pass of 135 rows: the model
    # sees as many rows as 150 steps of 256 (285 steps), less than the 4x cap
    steps = _steps(300)
    for s in steps:
        assert 270 <= s <= 300, steps
    # 100 rows: ~45 rows a step would need 850 steps; capped at 4x
    assert _steps(100) == [4 * TABLE_MIN_STEPS] * 2


def test_two_passes_at_least_and_max_steps_caps():
    assert _steps(2000, min_steps=1) == [2 * 4] * 2
    assert _steps(2000, max_steps=40) == [40, 40]


def test_series_keep_their_own_default():
    cfg = Config.model_validate({"data": {"time_column": "t"}})
    assert cfg.train.min_steps == SERIES_MIN_STEPS
    assert Config.model_validate({"data": {"time_column": "t"},
                                  "train": {"min_steps": 7}}).train.min_steps == 7
    assert Config.model_validate({}).train.min_steps == TABLE_MIN_STEPS
