"""SeriesDetector end to end (attnad.timeseries.detector): planted anomalies rank on top, one
threshold for every entity, row order, save and load, unseen entities, odd timestamps, the CLI."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from attnad.config import Config
from attnad.detector import Detector
from attnad.errors import DataError
from tests.factories import TS_FAST, WINDOW, normal_rows

runner = CliRunner()


def test_fitted_attributes_and_every_row_scored(series, ts_fitted, ts_scores):
    for attr in ("schema_", "series_", "model_", "threshold_", "training_"):
        assert hasattr(ts_fitted, attr)
    assert ts_fitted.series_.features == ["a", "b", "c"]
    assert set(ts_fitted.series_.entities) == {"h0", "h1", "h2"}
    assert len(ts_scores) == len(series[1]) and np.isfinite(ts_scores).all()
    first = series[1].groupby("host").head(5).index  # the first steps of every series
    assert (ts_scores[first] > 0).all()


@pytest.mark.parametrize("kind", ["spike", "level_shift", "broken_correlation", "frozen"])
def test_planted_anomalies_rank_on_top(series, ts_scores, kind):
    _, test, kinds = series
    normal = ts_scores[normal_rows(len(test), kinds)]
    planted = ts_scores[kinds[kind]]
    assert planted.max() > normal.max(), f"{kind}: {planted.max():.3g} <= {normal.max():.3g}"
    assert np.median(planted) > np.quantile(normal, 0.99)


def test_one_threshold_for_all_entities(series, ts_fitted, ts_scores):
    """Hosts differ 3x in spread and by 10 in level; normalised normal scores must not."""
    _, test, kinds = series
    ok = normal_rows(len(test), kinds)
    medians = [np.median(ts_scores[ok & (test.host == h).to_numpy()]) for h in ("h0", "h1", "h2")]
    assert max(medians) < 1.5 * min(medians)
    flagged = ts_scores[ok] > ts_fitted.threshold_["value"]
    assert flagged.mean() < 0.05


def test_shuffled_input_gives_the_same_score_per_row(series, ts_fitted, ts_scores):
    test = series[1]
    perm = np.random.default_rng(0).permutation(len(test))
    got = ts_fitted.score(test.iloc[perm].reset_index(drop=True))
    assert np.array_equal(got, ts_scores[perm])


def test_save_load_gives_identical_scores(tmp_path, series, ts_fitted, ts_scores):
    ts_fitted.save(tmp_path / "m")
    again = Detector.load(tmp_path / "m")
    assert np.array_equal(again.score(series[1]), ts_scores)
    assert again.threshold_["value"] == ts_fitted.threshold_["value"]


def test_unseen_entity_is_scored_with_a_warning(series, ts_fitted):
    test = series[1].copy()
    test["host"] = test["host"].replace({"h2": "new-host"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = ts_fitted.score(test)
    assert any("not seen in training" in str(w.message) and "new-host" in str(w.message)
               for w in caught)
    assert np.isfinite(scores).all() and len(scores) == len(test)


def test_duplicate_timestamps_and_gaps_are_kept_as_steps(series, ts_fitted):
    test = series[1].iloc[:300].copy()
    test.loc[10, "ts"] = test.loc[9, "ts"]  # a duplicate timestamp
    test = test.drop(index=range(100, 150)).reset_index(drop=True)  # a gap
    scores = ts_fitted.score(test)
    assert len(scores) == len(test) and np.isfinite(scores).all()


def test_missing_timestamp_is_an_error_naming_the_row(series, ts_fitted):
    test = series[1].iloc[:100].copy()
    test["ts"] = test["ts"].astype(object)
    test.loc[42, "ts"] = None
    with pytest.raises(DataError, match="row 42"):
        ts_fitted.score(test)


def test_attention_pooling_works_over_steps(series):
    train, test, kinds = series
    cfg = Config.model_validate({**TS_FAST, "model": {"type": "attention_pooling",
                                                       "window": WINDOW, "d_model": 16,
                                                       "signal_masks": True}})
    det = Detector(cfg).fit(train)
    scores = det.score(test)
    normal = scores[normal_rows(len(test), kinds)]
    assert scores[kinds["spike"]].max() > normal.max()
    assert np.median(scores[kinds["level_shift"]]) > np.quantile(normal, 0.99)


def test_cli_train_score_detect(tmp_path, series):
    train, test, kinds = series
    train.to_parquet(tmp_path / "train.parquet")
    shuffled = test.sample(frac=1.0, random_state=0)
    shuffled.to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "ts.yaml").write_text(
        "data:\n  time_column: ts\n  group_column: host\n  label_column: label\n")
    sets = [f"--set=model.{k}={v}" for k, v in TS_FAST["model"].items()] + \
           [f"--set=train.{k}={v}" for k, v in TS_FAST["train"].items()]
    r = runner.invoke(app, ["train", str(tmp_path / "train.parquet"), "-c", str(tmp_path / "ts.yaml"),
                            "-o", str(tmp_path / "m"), *sets])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "test.csv"), "-m", str(tmp_path / "m"),
                            "-o", str(tmp_path / "s.parquet"), "--batch-size", "1000"])
    assert r.exit_code == 0, r.output
    got = pd.read_parquet(tmp_path / "s.parquet")
    assert len(got) == len(test) and got["ts"].tolist() == shuffled["ts"].astype(str).tolist()
    assert np.isfinite(got.anomaly_score).all()
    js = tmp_path / "sum.json"
    r = runner.invoke(app, ["detect", str(tmp_path / "test.csv"), "-m", str(tmp_path / "m"),
                            "-o", str(tmp_path / "d.csv"), "--summary-json", str(js)])
    assert r.exit_code == 0, r.output
    summary = json.loads(js.read_text())
    assert summary["rows"] == len(test) and summary["label_metrics"]["auroc"] > 0.9
    # the summary names the signal that drove each top row: the one the anomaly was planted in
    column = {"spike": "c", "level_shift": "a", "broken_correlation": "b", "frozen": "a"}
    kind_of = {int(np.flatnonzero(shuffled.index.to_numpy() == r)[0]): k
               for k, rows in kinds.items() for r in rows}
    explained = [(kind_of[t["row"]], t["top_features"][0]["column"])
                 for t in summary["top_rows"] if t["row"] in kind_of]
    assert len(explained) >= len(summary["top_rows"]) // 2
    assert all(col == column[k] for k, col in explained), explained
    bad = test.iloc[:50].astype({"ts": str})
    bad.loc[7, "ts"] = "not a time"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    r = runner.invoke(app, ["score", str(tmp_path / "bad.csv"), "-m", str(tmp_path / "m"),
                            "-o", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and "row 7" in r.output and "Traceback" not in r.output
