"""Explaining series rows (attnad.timeseries.explain): --explain names the signal an anomaly was
planted in, and `attnad explain` shows the time steps a row was compared with. The model is the
session's per-entity POT series model (ts_setup in tests/conftest.py)."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from attnad.pipeline import score_file

runner = CliRunner()


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
