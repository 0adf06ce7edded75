"""Time-series mode end to end: planted anomalies, row order, batch sizes, entities, CLI."""

import csv
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from attnad.cli import app
from attnad.config import Config, build_config
from attnad.detector import Detector
from attnad.errors import ConfigError, DataError
from attnad.pipeline import score_file

N = 800  # steps per entity
WINDOW = 32
TS_FAST = {"data": {"time_column": "ts", "group_column": "host", "label_column": "label"},
           "model": {"window": WINDOW, "d_model": 16, "n_heads": 2},
           "train": {"threads": 1, "seed": 0, "min_steps": 300, "max_steps": 300}}
runner = CliRunner()


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


@pytest.fixture(scope="module")
def series():
    train, _ = make_series(seed=1, start=0, planted=False)
    test, kinds = make_series(seed=2, start=N, planted=True)
    return train, test, kinds


@pytest.fixture(scope="module")
def ts_fitted(series):
    return Detector(Config.model_validate(TS_FAST)).fit(series[0])


@pytest.fixture(scope="module")
def ts_scores(series, ts_fitted):
    return ts_fitted.score(series[1])


def _normal_rows(n: int, kinds: dict) -> np.ndarray:
    """Rows more than a window away from every planted anomaly."""
    ok = np.ones(n, bool)
    for r in kinds.values():
        ok[max(0, r[0] - WINDOW):r[-1] + WINDOW + 1] = False
    return ok


def test_config_defaults_to_the_temporal_model_in_time_series_mode():
    assert Config.model_validate({"data": {"time_column": "t"}}).model.type == "temporal_transformer"
    assert Config.model_validate({"data": {"time_column": "t"}, "model": {"window": 8}}).model.window == 8
    assert Config().model.type == "leave_one_out"
    with pytest.raises(ConfigError, match="does not work in time-series mode"):
        build_config({"data": {"time_column": "t"}, "model": {"type": "tabular_transformer"}})
    with pytest.raises(ConfigError, match="needs data.time_column"):
        build_config({"model": {"type": "temporal_transformer"}})


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
    normal = ts_scores[_normal_rows(len(test), kinds)]
    planted = ts_scores[kinds[kind]]
    assert planted.max() > normal.max(), f"{kind}: {planted.max():.3g} <= {normal.max():.3g}"
    assert np.median(planted) > np.quantile(normal, 0.99)


def test_one_threshold_for_all_entities(series, ts_fitted, ts_scores):
    """Hosts differ 3x in spread and by 10 in level; normalised normal scores must not."""
    _, test, kinds = series
    ok = _normal_rows(len(test), kinds)
    medians = [np.median(ts_scores[ok & (test.host == h).to_numpy()]) for h in ("h0", "h1", "h2")]
    assert max(medians) < 1.5 * min(medians)
    flagged = ts_scores[ok] > ts_fitted.threshold_["value"]
    assert flagged.mean() < 0.05


def test_shuffled_input_gives_the_same_score_per_row(series, ts_fitted, ts_scores):
    test = series[1]
    perm = np.random.default_rng(0).permutation(len(test))
    got = ts_fitted.score(test.iloc[perm].reset_index(drop=True))
    assert np.array_equal(got, ts_scores[perm])


def test_batch_size_does_not_change_scores_and_order_is_kept(tmp_path, series, ts_fitted,
                                                             ts_scores):
    test = series[1]
    test.to_csv(tmp_path / "in.csv", index=False)
    test.to_parquet(tmp_path / "in.parquet")
    outs = {}
    for name in ("in.csv", "in.parquet"):
        for bs in (1000, 65536):
            out = tmp_path / f"{name}.{bs}.parquet"
            stats = score_file(ts_fitted, tmp_path / name, out, flags=True, batch_size=bs)
            assert not stats.warnings  # sorted input streams without the sorting fallback
            outs[(name, bs)] = pd.read_parquet(out)
    ref = outs[("in.parquet", 65536)]
    assert ref["a"].tolist() == test["a"].tolist()  # input order
    assert np.array_equal(ref.anomaly_score.to_numpy(), ts_scores)
    for got in outs.values():
        assert np.array_equal(got.anomaly_score.to_numpy(), ts_scores)


def test_unsorted_file_falls_back_to_sorting_and_keeps_input_order(tmp_path, series, ts_fitted,
                                                                   ts_scores):
    test = series[1]
    perm = np.random.default_rng(1).permutation(len(test))
    test.iloc[perm].to_parquet(tmp_path / "shuffled.parquet", index=False)
    stats = score_file(ts_fitted, tmp_path / "shuffled.parquet", tmp_path / "o.csv", flags=False,
                       batch_size=1000)
    assert any("not in time order" in w for w in stats.warnings)
    got = pd.read_csv(tmp_path / "o.csv")
    # the file's exact values through Python's float(): pandas 3.0's default parser reads some
    # 17-digit numbers one unit in the last place off (seen: 10.592336207522603 -> ...605), and
    # pandas 3.1 deprecates asking it for round-trip parsing
    with open(tmp_path / "o.csv", newline="") as fh:
        written = [float(row["a"]) for row in csv.DictReader(fh)]
    assert written == test["a"].iloc[perm].tolist()
    assert np.allclose(got.anomaly_score.to_numpy(), ts_scores[perm], rtol=1e-12)


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
    normal = scores[_normal_rows(len(test), kinds)]
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


def test_span_patterns_hide_every_cell_once_in_blocks():
    from attnad.timeseries.masks import span_patterns
    pats = span_patterns(window=10, n_features=3, masks=4)
    assert pats.shape == (4, 10, 3)
    assert (pats.sum(0) == 1).all()  # every cell hidden by exactly one mask
    for p in pats:  # each mask hides one run of consecutive steps, in every signal alike
        steps = torch.nonzero(p[:, 0]).flatten()
        assert (steps.diff() == 1).all() and (p == p[:, :1]).all()


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


@pytest.mark.parametrize("row_score", ["step", "window"])
def test_row_score_window_spreads_a_spike_over_its_windows(series, row_score):
    train, test, kinds = series
    model = {**TS_FAST["model"], "row_score": row_score, "span_masks": row_score == "window"}
    det = Detector(Config.model_validate({**TS_FAST, "model": model})).fit(train)
    assert det.series_.n_errors == 3 * (2 if row_score == "window" else 1)
    scores = det.score(test)
    normal = scores[_normal_rows(len(test), kinds)]
    spike = int(kinds["spike"][0])
    near = scores[spike + WINDOW // 4]  # a normal step inside the windows that hold the spike
    assert scores[spike] > np.quantile(normal, 0.99)
    if row_score == "window":  # it shares the spike's windows, so it shares their error
        assert near > np.quantile(normal, 0.99)
    else:  # its own cells are normal
        assert near < np.quantile(normal, 0.99)


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


def test_errors_in_robust_units_keep_the_weight_of_an_extreme_value(series):
    """The model reads squashed inputs (a value 30 spreads out enters as about 10), but a spike is
    scored by its miss in robust units, so its margin over normal rows is far wider than when
    the error is measured in the squashed units (the default before error_units existed)."""
    train, test, kinds = series
    test = test.copy()
    spike = int(kinds["spike"][0])
    test.loc[spike, "c"] += 30  # about 40 robust spreads above the others
    margin = {}
    for units in ("robust", "squashed"):
        model = {**TS_FAST["model"], "error_units": units, "row_score": "step"}
        det = Detector(Config.model_validate({**TS_FAST, "model": model})).fit(train)
        assert det.series_.error_units == units
        scores = det.score(test)
        margin[units] = scores[spike] / np.quantile(scores[_normal_rows(len(test), kinds)], 0.99)
    assert margin["squashed"] > 1
    assert margin["robust"] > 5 * margin["squashed"], margin


def test_models_saved_before_error_units_keep_scoring_in_squashed_units(ts_fitted):
    from attnad.timeseries.state import SeriesState
    old = ts_fitted.series_.to_dict()
    old.pop("error_units")
    assert SeriesState.from_dict(old).error_units == "squashed"
    assert Config.model_validate({"data": {"time_column": "t"}}).model.error_units == "robust"


def test_latent_bottleneck_passes_a_window_through_latents_times_latent_dim_numbers():
    """With model.latents K and latent_dim r every output of a window is a function of K * r
    numbers: the Jacobian of outputs with respect to inputs has rank at most K * r."""
    from attnad.config import TemporalTransformerConfig
    from attnad.models.temporal import TemporalTransformer
    torch.manual_seed(0)
    cfg = TemporalTransformerConfig(window=12, d_model=16, n_heads=2, latents=2, latent_dim=1)
    model = TemporalTransformer(cfg, n_features=3).eval()
    hidden = torch.zeros(1, 12, 3, dtype=torch.bool)
    valid = torch.ones(1, 12, dtype=torch.bool)
    x = torch.randn(1, 12, 3)
    jac = torch.autograd.functional.jacobian(lambda v: model(v, hidden, valid).flatten(), x)
    assert torch.linalg.matrix_rank(jac.reshape(36, 36), atol=1e-5) <= 2
    plain = TemporalTransformer(TemporalTransformerConfig(window=12, d_model=16, n_heads=2), 3)
    jac = torch.autograd.functional.jacobian(lambda v: plain.eval()(v, hidden, valid).flatten(), x)
    assert torch.linalg.matrix_rank(jac.reshape(36, 36), atol=1e-5) > 2
