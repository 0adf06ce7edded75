"""The HTML report (attnad.report): plots inline, top flagged rows explained, model card; for a
table, and for a time series (signals and scores per entity, flagged spans shaded), from
`attnad detect --report` and from `attnad report` on a scored file."""

import re

import numpy as np
import pandas as pd
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
    events_path = root / "report-events.parquet"
    r = runner.invoke(app, ["detect", str(path), "-m", str(root / "model"), "-o", str(scored),
                            "--explain", "2", "--report", str(html_path), "-q",
                            "--events", str(events_path)])
    assert r.exit_code in (0, 1), r.output
    text = html_path.read_text()
    assert text.count("<svg") == 1 + 2 * 3  # histogram + signals and scores per host
    for host in ("h0", "h1", "h2"):
        assert f"host = {host}" in text
    assert "Top events" in text and "Top flagged rows" not in text
    assert "Model card" in text and "schema sha256" in text
    assert "GPD tail" in text and "per-entity thresholds for 3 entities" in text
    events = pd.read_parquet(events_path)
    # the events detect wrote, each shaded on its host's signal and score panels
    assert len(events) >= 4 and text.count('opacity="0.18"') == 2 * len(events)
    top = events.sort_values("peak_score", ascending=False).iloc[0]
    row = re.search(r"<tr><td>1</td><td>" + top.entity + r"</td>.*?</tr>", text)
    assert row and top.signals.split(";")[0] + " " in row.group(0)  # its signals, from the run
    # `attnad report` later, without the run's summary: the same events from the flags
    again = root / "report-again.html"
    r = runner.invoke(app, ["report", str(scored), "-m", str(root / "model"), "-o", str(again)])
    assert r.exit_code == 0, r.output
    assert again.read_text().count('opacity="0.18"') == 2 * len(events)
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


def test_report_write_is_atomic_and_fsynced(tmp_path, monkeypatch, csv_file, model_dir):
    """The report is written like every other output (temp file beside it, fsync, rename): a
    failure at the fsync leaves the old report whole and no temporary file behind, and two
    writes use different temporary names so concurrent runs cannot clash."""
    import os

    from attnad.report import write_html_report
    scored = tmp_path / "d.csv"
    r = runner.invoke(app, ["score", str(csv_file), "-m", str(model_dir), "-o", str(scored)])
    assert r.exit_code == 0, r.output
    rep = tmp_path / "r.html"
    rep.write_text("old report")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", disk_full)
        try:
            write_html_report(scored, rep)
        except OSError as e:
            assert e.errno == 28
        else:
            raise AssertionError("the report was written without an fsync")
    assert rep.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "r.html"]
    temps = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (temps.append(str(a)), real_replace(a, b)))
    write_html_report(scored, rep)
    write_html_report(scored, rep)
    assert len(temps) == 2 and temps[0] != temps[1], temps
    assert "<svg" in rep.read_text()


def test_report_without_model_does_not_call_lowest_flag_a_threshold(tmp_path, csv_file,
                                                                     model_dir):
    """Without -m the model's threshold is unknown: the line drawn at the lowest flagged score
    is labelled as what it is, so nobody reads it as the model's threshold."""
    out = tmp_path / "d.csv"
    r = runner.invoke(app, ["detect", str(csv_file), "-m", str(model_dir), "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", str(out), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "r.html").read_text()
    assert "<th>lowest flagged score</th>" in text and ">lowest flagged score " in text
    assert "<th>threshold</th>" not in text and ">threshold" not in text
    r = runner.invoke(app, ["report", str(out), "-m", str(model_dir),
                            "-o", str(tmp_path / "m.html")])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "m.html").read_text()
    assert "<th>threshold</th>" in text and "lowest flagged score" not in text


def test_report_computes_label_metrics_from_the_scored_file(tmp_path, ts_setup):
    """With -m and the model's label column in the scored file, `attnad report` shows the same
    AUROC / AUPRC as `detect`'s summary of the same run."""
    import json
    det, root, test, path, kinds = ts_setup
    scored, summ = tmp_path / "d.csv", tmp_path / "s.json"
    r = runner.invoke(app, ["detect", str(path), "-m", str(root / "model"), "-o", str(scored),
                            "--summary-json", str(summ), "--report", str(tmp_path / "d.html"),
                            "-q"])
    assert r.exit_code in (0, 1), r.output
    lm = json.loads(summ.read_text())["label_metrics"]
    assert lm["auroc"] is not None
    line = f"<th>AUROC / AUPRC on labels</th><td>{lm['auroc']:.4f} / {lm['auprc']:.4f}</td>"
    assert line in (tmp_path / "d.html").read_text()  # from the summary
    r = runner.invoke(app, ["report", str(scored), "-m", str(root / "model"),
                            "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert line in (tmp_path / "r.html").read_text()  # computed from the scored file
    r = runner.invoke(app, ["report", str(scored), "-o", str(tmp_path / "n.html")])
    assert "AUROC" not in (tmp_path / "n.html").read_text()  # without -m: no label column known
    import pandas as pd
    one_class = pd.read_csv(scored).assign(label=0)
    one_class.to_csv(tmp_path / "z.csv", index=False)
    r = runner.invoke(app, ["report", str(tmp_path / "z.csv"), "-m", str(root / "model"),
                            "-o", str(tmp_path / "z.html")])
    assert r.exit_code == 0, r.output
    assert "labels have a single class" in (tmp_path / "z.html").read_text()


def test_time_axis_of_a_datetime_column_shows_dates():
    """A Parquet time column arrives as datetime64: it is drawn as dates, not as the raw
    microsecond count under the label "step" (every tick read 1.767e+15)."""
    import pandas as pd

    from attnad.report.panels import _time_axis
    ts = pd.Series(pd.to_datetime(["2026-01-01 00:00", "2026-01-01 12:00"]).as_unit("us"))
    t, fmt, label = _time_axis(ts)
    assert label == "time (UTC)" and fmt(t[1]) == "2026-01-01 12:00"
    assert t[1] - t[0] == 12 * 3600  # seconds
    t, fmt, label = _time_axis(pd.Series([3, 4]))
    assert label == "step" and fmt(t[0]) == "3"
