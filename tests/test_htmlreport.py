"""The HTML report of a table: plots inline, top flagged rows explained, model card."""

import re

from typer.testing import CliRunner

from attnad.cli import app
from attnad.report import nice_ticks
from tests.test_trust_timeseries import _self_contained

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
