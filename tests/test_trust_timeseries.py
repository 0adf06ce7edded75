"""Time-series mode: per-entity POT thresholds, --explain signals, `attnad explain`, HTML report."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from attnad.config import Config
from attnad.detector import Detector
from attnad.pipeline import score_file
from attnad.threshold import row_thresholds
from tests.test_timeseries import N, TS_FAST, make_series

runner = CliRunner()


@pytest.fixture(scope="module")
def ts_setup(tmp_path_factory):
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


def test_per_entity_thresholds_are_fitted_and_used(ts_setup):
    det, root, test, path, _ = ts_setup
    ents = det.threshold_["entities"]
    assert set(ents) == {"h0", "h1", "h2"}
    assert ents["h2"]["value"] > max(ents["h0"]["value"], ents["h1"]["value"])
    out = root / "flags.parquet"
    score_file(det, path, out, flags=True)
    got = pd.read_parquet(out)
    keys = test["host"].to_numpy(object)
    expect = got["anomaly_score"].to_numpy() > row_thresholds(det.threshold_, keys, len(got))
    assert (got["anomaly_flag"].to_numpy() == expect).all()
    # one threshold given for the run overrides the per-entity ones
    score_file(det, path, out, flags=True, threshold=1e9)
    assert not pd.read_parquet(out)["anomaly_flag"].any()
    back = Detector.load(root / "model")
    assert back.threshold_["entities"] == ents


@pytest.mark.parametrize("batch_size", [100_000, 333])
def test_explain_names_the_corrupted_signal(ts_setup, batch_size):
    det, root, test, path, kinds = ts_setup
    out = root / f"expl{batch_size}.csv"
    score_file(det, path, out, flags=False, explain=2, batch_size=batch_size)
    got = pd.read_csv(out, keep_default_na=False)
    first = got["top_features"].str.split(";").str[0]
    assert first[kinds["spike"][0]] == "c"
    assert (first[kinds["level_shift"]] == "a").mean() >= 0.8
    assert (got["top_features"] != "").all()  # every row explained, not only the top ones


def test_explain_command_shows_time_steps(ts_setup):
    det, root, test, path, kinds = ts_setup
    row = int(kinds["spike"][0])
    r = runner.invoke(app, ["explain", str(path), "-m", str(root / "model"), "--rows", str(row),
                            "--index"])
    assert r.exit_code == 0, r.output
    assert f"row {row}" in r.output and "offset" in r.output and "signal" in r.output
    from attnad.explain import explain_rows
    e = explain_rows(det, path, [str(row)], by_index=True)[0]
    assert e.features[0]["column"] == "c"
    assert len(e.steps) == 8 and all(s["offset"] <= 0 for s in e.steps)
    assert sum(s["attention"] for s in e.steps) <= 1.0 + 1e-6


def test_html_report_for_time_series(ts_setup):
    det, root, test, path, kinds = ts_setup
    scored = root / "detected.parquet"
    html_path = root / "report.html"
    r = runner.invoke(app, ["detect", str(path), "-m", str(root / "model"), "-o", str(scored),
                            "--explain", "2", "--report", str(html_path), "-q"])
    assert r.exit_code in (0, 1), r.output
    text = html_path.read_text()
    assert text.count("<svg") == 1 + 2 * 3  # histogram + signals and scores per host
    for host in ("h0", "h1", "h2"):
        assert f"host = {host}" in text
    assert "Top flagged rows" in text and "Model card" in text and "schema sha256" in text
    assert "GPD tail" in text and "per-entity thresholds for 3 entities" in text
    assert 'opacity="0.18"' in text  # flagged spans shaded
    _self_contained(text)


def _self_contained(text: str) -> None:
    """No scripts, no external resources: the only URL is the SVG namespace."""
    lowered = text.lower()
    assert "<script" not in lowered and "<link" not in lowered and "src=" not in lowered
    assert lowered.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0


def test_report_from_a_csv_with_numeric_steps(tmp_path):
    train, _ = make_series(seed=1, start=0, planted=False)
    train["ts"] = np.tile(np.arange(N), 3)  # integer steps
    det = Detector(Config.model_validate({**TS_FAST, "train": {**TS_FAST["train"],
                                                               "max_steps": 20}})).fit(train)
    det.save(tmp_path / "m")
    train.to_csv(tmp_path / "in.csv", index=False)
    r = runner.invoke(app, ["detect", str(tmp_path / "in.csv"), "-m", str(tmp_path / "m"),
                            "-o", str(tmp_path / "out.csv"), "-q"])
    assert r.exit_code in (0, 1), r.output
    r = runner.invoke(app, ["report", str(tmp_path / "out.csv"), "-m", str(tmp_path / "m"),
                            "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "r.html").read_text()
    assert ">step<" in text and text.count("<svg") == 7
    # without the model: histogram and top rows only
    r = runner.invoke(app, ["report", str(tmp_path / "out.csv"), "-o", str(tmp_path / "r2.html")])
    assert r.exit_code == 0, r.output
    t2 = (tmp_path / "r2.html").read_text()
    assert t2.count("<svg") == 1 and "No model given" in t2
    r = runner.invoke(app, ["report", str(tmp_path / "in.csv"), "-o", str(tmp_path / "r3.html")])
    assert r.exit_code == 2 and "no anomaly_score column" in r.output
    r = runner.invoke(app, ["report", str(tmp_path / "out.csv"), "-o", str(tmp_path / "r.pdf")])
    assert r.exit_code == 2 and ".html" in r.output
