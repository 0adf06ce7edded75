"""Drift in a scoring run: the summary (stderr and --summary-json), the gates' exit codes, the
Python API on a 10k-row table, and series figures per entity and signal from a streamed file."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from attnad.detector import Detector
from attnad.data.profile import BINS
from tests.factories import make_table

runner = CliRunner()


def _detect(*args):
    return runner.invoke(app, ["detect", *map(str, args), "--device", "cpu"])


def test_a_shifted_column_leads_the_summary_and_breaks_the_drift_gate(tmp_path, model_dir,
                                                                      table, fitted):
    df = table[0].copy()
    df["a"] += 1.0  # a is N(0, 1): one spread
    p, js = tmp_path / "shifted.csv", tmp_path / "s.json"
    df.to_csv(p, index=False)
    rep = tmp_path / "r.html"
    r = _detect(p, "-m", model_dir, "-o", tmp_path / "o.csv", "--summary-json", js,
                "--fail-on-drift", "0.25", "--report", rep)
    assert r.exit_code == 1, r.output
    assert "gate breached: fail-on-drift 0.25" in r.stderr and "in column a)" in r.stderr
    assert "drift since training" in r.stderr
    drift = json.loads(js.read_text())["drift"]
    assert [c["column"] for c in drift["columns"]][0] == "a"
    assert sorted(c["column"] for c in drift["columns"]) == \
        sorted(fitted.preprocessor_.feature_names)  # every column, not only the changed ones
    assert drift["changed"][0] == "a" and drift["columns"][0]["psi"] > 0.25
    assert len(drift["columns"][0]["bins"]["now"]) == BINS
    gate = json.loads(js.read_text())["gates"]["fail_on_drift"]
    assert gate["column"] == "a" and gate["breached"]
    html = rep.read_text()  # one small plot per changed column, the shifted one first
    assert "Drift since training" in html and html.count('class="dplot"') == len(drift["changed"])
    assert html.index("PSI " + format(drift["columns"][0]["psi"], ".3f")) > html.index("dplot")


def test_the_training_file_holds_the_drift_and_missing_gates(tmp_path, model_dir, csv_file):
    r = _detect(csv_file, "-m", model_dir, "-o", tmp_path / "o.csv", "--fail-on-drift", "0.1",
                "--fail-on-missing", "0.01")
    assert r.exit_code == 0, r.output
    assert "drift since training: no column changed" in r.stderr


def test_more_missing_cells_break_the_missing_gate(tmp_path, model_dir, table):
    df = table[0].copy()
    df.loc[df.index % 5 == 0, "c"] = np.nan  # 20% more missing cells in c
    p, js = tmp_path / "gaps.csv", tmp_path / "s.json"
    df.to_csv(p, index=False)
    args = ["-m", model_dir, "-o", tmp_path / "o.csv", "--summary-json", js]
    r = _detect(p, *args, "--fail-on-missing", "0.1")
    assert r.exit_code == 1 and "gate breached: fail-on-missing 0.1" in r.stderr
    gate = json.loads(js.read_text())["gates"]["fail_on_missing"]
    assert gate["column"] == "c" and gate["value"] == pytest.approx(0.2, abs=0.02)
    assert _detect(p, *args, "--fail-on-missing", "0.3").exit_code == 0


@pytest.mark.parametrize("option,value", [("--fail-on-drift", "-1"),
                                          ("--fail-on-missing", "1.5")])
def test_a_gate_limit_that_means_nothing_is_a_usage_error(tmp_path, model_dir, csv_file,
                                                          option, value):
    r = _detect(csv_file, "-m", model_dir, "-o", tmp_path / "o.csv", option, value)
    assert r.exit_code == 2 and option in r.output


@pytest.fixture(scope="module")
def big():
    train, _ = make_table(n=10_000, seed=0, planted=False)
    cfg = {"train": {"threads": 1, "seed": 0, "min_steps": 20, "max_steps": 20,
                     "batch_size": 256},
           "model": {"d_model": 8, "n_layers": 1, "n_heads": 1}}
    return Detector(cfg).fit(train), train


def test_the_python_api_on_10k_rows_stable_then_shifted(big):
    det, train = big
    new, _ = make_table(n=10_000, seed=1, planted=False)
    stable = det.drift(new)
    assert (stable["psi"] < 0.1).all(), stable
    new["c"] += 0.5 * train["c"].std()
    got = det.drift(new).set_index("column")
    assert got["psi"].idxmax() == "c"
    # by hand, in the column's own units: training deciles, then this file's shares
    x = train["c"].dropna().to_numpy()
    edges = np.quantile(x, np.arange(1, BINS) / BINS)
    then = np.bincount(np.searchsorted(edges, x, side="right"), minlength=BINS) / len(x)
    y = new["c"].dropna().to_numpy()
    now = np.bincount(np.searchsorted(edges, y, side="right"), minlength=BINS) / len(y)
    assert got.loc["c", "psi"] == pytest.approx(np.sum((now - then) * np.log(now / then)),
                                                rel=1e-3)
    assert got.loc["c", "beyond_range"] == pytest.approx(np.mean(y > x.max()) + np.mean(y < x.min()))


def test_series_drift_per_entity_and_signal_from_a_streamed_file(tmp_path, ts_setup):
    det, root, test, _, _ = ts_setup
    df = test.copy()
    h1 = (df["host"] == "h1").to_numpy()
    spread = det.profile_["entities"]["h1"]["a"]["spread"]
    df.loc[h1, "a"] -= 6 * spread
    sorted_path, shuffled_path = tmp_path / "s.csv", tmp_path / "x.csv"
    df.to_csv(sorted_path, index=False)
    df.sample(frac=1.0, random_state=0).to_csv(shuffled_path, index=False)  # not in time order
    sections = []
    for p in (sorted_path, shuffled_path):
        js = tmp_path / f"{p.stem}.json"
        r = _detect(p, "-m", root / "model", "-o", tmp_path / f"{p.stem}_o.csv",
                    "--summary-json", js, "--batch-size", "500")
        assert r.exit_code == 0, r.output
        sections.append(json.loads(js.read_text())["drift"])
    assert "drift on h1: a level" in r.stderr and "spreads below" in r.stderr
    ordered, shuffled = sections
    def by_key(section, approx=False):  # sums add up in another order after the restart
        return {(c["entity"], c["column"]): {**c, "level": pytest.approx(c["level"])
                                             if approx else c["level"]}
                for c in section["columns"]}
    assert by_key(shuffled) == by_key(ordered, approx=True)  # the restart counts each row once
    row = next(c for c in ordered["columns"] if c["entity"] == "h1" and c["column"] == "a")
    assert row["level"] == pytest.approx(-6, abs=1.0) and row["psi"] > 0.25
    first = df.loc[h1].sort_values("ts")
    lo = det.profile_["entities"]["h1"]["a"]["lo"]
    assert row["since"] == first.loc[first["a"] < lo, "ts"].iloc[0].isoformat()
    others = [c for c in ordered["columns"] if c["entity"] in ("h0", "h2")]
    assert others and max(c["psi"] for c in others) < 0.25
