"""The estimator contract both modes share (attnad.estimator): the config picks the mode, the
saved kind picks the class on load, scikit-learn / PyOD names for scores, one sampling routine."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from attnad.config import Config
from attnad.detector import Detector, SeriesDetector, TableDetector
from attnad.errors import UserError
from tests.factories import FAST, TS_FAST, make_series, make_table

runner = CliRunner()
TINY_TS = {**TS_FAST, "train": {**TS_FAST["train"], "min_steps": 30, "max_steps": 30}}


@pytest.fixture(scope="module")
def series_model(tmp_path_factory):
    train, _ = make_series(seed=1, start=0, planted=False)
    det = Detector(Config.model_validate(TINY_TS)).fit(train)
    path = tmp_path_factory.mktemp("ts") / "m"
    det.save(path)
    return det, path, train


def test_the_config_picks_the_mode_and_both_are_detectors():
    table, series = Detector(Config()), Detector({"data": {"time_column": "t"}})
    assert type(table) is TableDetector and type(series) is SeriesDetector
    assert isinstance(table, Detector) and isinstance(series, Detector)
    assert not table.is_timeseries and series.is_timeseries


def test_the_constructor_only_stores_the_config():
    det = Detector({"train": {"seed": 3}})
    assert det.config.train.seed == 3
    assert [k for k in vars(det) if k.endswith("_")] == []


def test_scores_under_every_name_agree(fitted, table):
    df = table[0].head(300)
    s = fitted.score_samples(df)
    assert np.array_equal(s, fitted.decision_function(df))
    assert np.array_equal(s, fitted.score(df))
    assert np.array_equal(fitted.predict(df), s > fitted.threshold_["value"])


def test_load_picks_the_class_from_the_saved_kind(model_dir, series_model):
    assert type(Detector.load(model_dir)) is TableDetector
    assert type(Detector.load(series_model[1])) is SeriesDetector
    assert type(SeriesDetector.load(series_model[1])) is SeriesDetector
    with pytest.raises(UserError, match="timeseries model"):
        TableDetector.load(series_model[1])


def test_fine_tuning_loads_the_source_model_once(monkeypatch, model_dir, table):
    calls = []
    real = Detector.load.__func__

    def counting(cls, path, device="auto"):
        calls.append(path)
        return real(cls, path, device)
    monkeypatch.setattr(Detector, "load", classmethod(counting))
    cfg = Config.model_validate({**FAST, "data": {"id_columns": ["id"]},
                                 "train": {**FAST["train"], "cross_fit": 2, "max_steps": 20,
                                           "min_steps": 20}})
    det = Detector(cfg).fit(table[0].head(400), init_from=model_dir)
    assert len(det.models_) == 2 and calls == [model_dir]
    assert det.training_["init_from"]["tensors_copied"] > 0


def test_a_series_model_cannot_start_a_table_model(series_model, table):
    with pytest.raises(UserError, match="is a time-series model"):
        Detector(Config.model_validate(FAST)).fit(table[0].head(100), init_from=series_model[1])


def test_cli_and_python_api_train_on_the_same_sample_of_a_big_file(tmp_path):
    """train.max_rows: `attnad train FILE` and `Detector.fit(whole table)` keep the same rows,
    so the same seed gives the same model."""
    df, _ = make_table(n=600, seed=4)
    df = df.drop(columns=["ts"])
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False)
    settings = {**FAST, "train": {**FAST["train"], "max_rows": 250, "max_steps": 30,
                                  "min_steps": 30}, "data": {"id_columns": ["id"]}}
    r = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "m"), "--seed", "0",
                            "--set", "train.max_rows=250", "--set", "train.max_steps=30",
                            "--set", "train.min_steps=30", "--set", "train.batch_size=128",
                            "--set", "train.threads=1", "--set", "model.d_model=16",
                            "--set", "model.n_layers=2", "--set", "model.n_heads=2",
                            "--set", "data.id_columns=[id]"])
    assert r.exit_code == 0, r.output
    assert "random sample of 250 of 600 rows" in r.output
    from_cli = Detector.load(tmp_path / "m", device="cpu")
    from_api = Detector(Config.model_validate(settings)).fit(pd.read_csv(path))
    probe = pd.read_csv(path).head(100)
    assert np.array_equal(from_api.score_samples(probe), from_cli.score_samples(probe))
