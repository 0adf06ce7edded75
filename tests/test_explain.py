"""`attnad explain` (attnad.explain): rows found by id or by row number, in the order asked, and
the command's output and errors. What the explanations of a table or a series hold is tested in
tests/tabular/test_explain.py and tests/timeseries/test_explain.py."""

import pytest
from typer.testing import CliRunner

from attnad.cli import app
from attnad.explain import explain_rows

runner = CliRunner()


def test_explain_rows_by_id_and_by_index(fitted, csv_file, table):
    df, kinds = table
    rid = df.loc[kinds["extreme"], "id"]
    by_id = explain_rows(fitted, csv_file, [rid, "r3"], by_index=False)
    by_ix = explain_rows(fitted, csv_file, [str(kinds["extreme"])], by_index=True)
    assert [e.row for e in by_id] == [kinds["extreme"], 3]  # in the order asked
    e = by_id[0]
    assert e.ids == {"id": rid} and e.flagged and e.features[0]["column"] == "c"
    assert e.features[0]["share"] == pytest.approx(by_ix[0].features[0]["share"])
    att = [f["attention"] for f in e.features]
    assert sum(att) == pytest.approx(1.0) and all(a >= 0 for a in att)


def test_explain_command(model_dir, csv_file, table):
    df, kinds = table
    rid = df.loc[kinds["broken_relation"], "id"]
    r = runner.invoke(app, ["explain", str(csv_file), "-m", str(model_dir), "--rows", rid])
    assert r.exit_code == 0, r.output
    assert f"row {kinds['broken_relation']} (id={rid})" in r.output
    assert "attention received" in r.output and "share of score" in r.output
    r = runner.invoke(app, ["explain", str(csv_file), "-m", str(model_dir), "--rows", "5",
                            "--index"])
    assert r.exit_code == 0 and "row 5 (id=r5)" in r.output
    for args, msg in ((["--rows", "nope"], "no row with id value(s) nope"),
                      (["--rows", "99999", "--index"], "no row with row number(s) 99999"),
                      (["--rows", "x", "--index"], "0-based row numbers")):
        r = runner.invoke(app, ["explain", str(csv_file), "-m", str(model_dir), *args])
        assert r.exit_code == 2 and msg in r.output, r.output
