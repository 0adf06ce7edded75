"""The HTML report (attnad.report): plots inline, top flagged rows explained, model card; for a
table, and for a time series (signals and scores per entity, flagged spans shaded), from
`attnad detect --report` and from `attnad report` on a scored file."""

import re

import numpy as np
from typer.testing import CliRunner

from attnad.cli import app
from attnad.config import Config
from attnad.detector import Detector
from attnad.report import nice_ticks
from tests.factories import N, TS_FAST, make_series

runner = CliRunner()


def test_detect_report_for_a_table(tmp_path, model_dir, csv_file, table):
    df, kinds = table
    out, rep = tmp_path / "d.csv", tmp_path / "r.html"
    r = runner.invoke(app, ["detect", str(csv_file), "-m", str(model_dir), "-o", str(out),
                            "--report", str(rep), "-q"])  # no --explain: the summary explains
    assert r.exit_code == 0, r.output
    text = rep.read_text()
    _self_contained(text)
    assert text.count("<svg") == 1 and "threshold" in text and "rows (log scale)" in text
    rid = df.loc[kinds["extreme"], "id"]
    row = re.search(rf"<tr><td>{kinds['extreme']}</td><td>{rid}</td>.*?</tr>", text)
    assert row and "c 9" in row.group(0)  # the extreme c, with its share (9x%)
    for key in ("leave_one_out", "schema sha256", "1,200 rows", "quantile",
                "2 cell models; each row is scored by the one that did not train on it"):
        assert key in text
    missing_dir = tmp_path / "x" / "r.html"
    r = runner.invoke(app, ["report", str(out), "-m", str(model_dir), "-o", str(missing_dir)])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_nice_ticks():
    assert nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0.13, 0.91, 4) == [0.2, 0.4, 0.6000000000000001, 0.8]


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
