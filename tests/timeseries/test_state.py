"""A series model's fitted statistics (attnad.timeseries.state): the calibration rows held out of
training, and models saved before a setting existed keep scoring as they did."""

import numpy as np
import pandas as pd

from attnad.config import Config
from attnad.detector import Detector
from tests.factories import N, TS_FAST


def test_holdout_keeps_the_last_rows_of_each_long_enough_entity():
    from attnad.timeseries.state import holdout_rows
    starts, ends = np.array([0, 100, 130]), np.array([100, 130, 330])
    held = holdout_rows(starts, ends, 0.1, window=32)
    assert held[90:100].all() and not held[:90].any()
    assert not held[100:130].any()  # 30 rows: the rest would be shorter than one window
    assert held[310:330].all() and not held[130:310].any()
    assert not holdout_rows(starts, ends, 0.0, window=32).any()


def test_calibration_rows_are_held_out_of_training(series):
    train = series[0]
    det = Detector(Config.model_validate(
        {**TS_FAST, "train": {**TS_FAST["train"], "calibration_fraction": 0.25}})).fit(train)
    assert det.training_["calibration_rows"] == 3 * int(N * 0.25)
    assert det.training_["rows"] == len(train) - 3 * int(N * 0.25)


def test_default_threshold_holds_when_the_training_data_ends_quietly():
    """The series ends in a quiet stretch (noise 4x lower). Calibrating on that tail alone
    (calibration_fraction) sets the threshold far too low for later normal rows; the default
    calibrates on all training rows and keeps the flag rate near the 1% target."""
    rng = np.random.default_rng(5)
    n = 2000
    t = np.arange(n)
    noise = np.where(t < int(n * 0.9), 0.3, 0.075)
    a = np.sin(2 * np.pi * t / 40) + rng.normal(0, 1, n) * noise
    b = np.cos(2 * np.pi * t / 40) + rng.normal(0, 1, n) * noise
    train = pd.DataFrame({"ts": t, "a": a, "b": b})
    t2 = np.arange(n, 2 * n)
    later = pd.DataFrame({"ts": t2, "a": np.sin(2 * np.pi * t2 / 40) + rng.normal(0, 0.3, n),
                          "b": np.cos(2 * np.pi * t2 / 40) + rng.normal(0, 0.3, n)})
    base = {"data": {"time_column": "ts"}, "model": TS_FAST["model"], "train": TS_FAST["train"]}
    rates = {}
    for frac in (0.0, 0.1):
        cfg = {**base, "train": {**base["train"], "calibration_fraction": frac}}
        det = Detector(Config.model_validate(cfg)).fit(train)
        rates[frac] = float((det.score(later) > det.threshold_["value"]).mean())
    assert rates[0.0] < 0.05, rates
    assert rates[0.1] > 0.2, rates  # the failure the default avoids


def test_models_saved_before_error_units_keep_scoring_in_squashed_units(ts_fitted):
    from attnad.timeseries.state import SeriesState
    old = ts_fitted.series_.to_dict()
    old.pop("error_units")
    assert SeriesState.from_dict(old).error_units == "squashed"
    assert Config.model_validate({"data": {"time_column": "t"}}).model.error_units == "robust"
