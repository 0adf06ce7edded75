"""`detect --events`: the events file against the flags of the output file, across scoring
batches, across files with --sorted-input and in unsorted input; CSV and Parquet; the gate; and
tables, which have no events (exit 2)."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from attnad.metrics import flag_runs

runner = CliRunner()
COLUMNS = ["entity", "start", "end", "first_row", "last_row", "steps", "flagged_steps",
           "peak_score", "peak_time", "peak_probability", "signals", "signal_shares"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def detect(src, model, out, *extra):
    r = run("detect", src, "-m", model, "-o", out, *extra)
    assert r.exit_code == 0, r.output
    return r


def expected_spans(scored: pd.DataFrame, merge_gap: int, min_steps: int) -> list[tuple]:
    """The events the output's own anomaly_flag column makes, by the in-memory rule."""
    out = []
    for _, g in scored.reset_index(drop=True).groupby("host", sort=False):
        g = g.sort_values("ts", kind="stable")
        rows = g.index.to_numpy()
        out += [(int(rows[a]), int(rows[b])) for a, b in
                flag_runs(g["anomaly_flag"].to_numpy(), merge_gap, min_steps)]
    return sorted(out)


def spans(events: pd.DataFrame) -> list[tuple]:
    return sorted(zip(events.first_row.astype(int), events.last_row.astype(int)))


@pytest.fixture(scope="module")
def whole(ts_setup, tmp_path_factory):
    """The reference run: one file, default batch size."""
    det, root, test, test_path, kinds = ts_setup
    tmp = tmp_path_factory.mktemp("events")
    detect(test_path, root / "model", tmp / "out.parquet", "--events", tmp / "ev.parquet",
           "--summary-json", tmp / "s.json")
    return (pd.read_parquet(tmp / "out.parquet"), pd.read_parquet(tmp / "ev.parquet"),
            json.loads((tmp / "s.json").read_text()))


def test_events_are_the_runs_of_the_output_flags(ts_setup, whole):
    det, _, _, _, kinds = ts_setup
    scored, events, summary = whole
    assert list(events.columns) == COLUMNS
    cfg = det.config.threshold
    assert spans(events) == expected_spans(scored, cfg.merge_gap, cfg.min_event_steps)
    assert len(events) >= 4  # the planted anomalies
    for kind, rows in kinds.items():  # each planted anomaly is inside one event
        hit = events[(events.first_row <= rows[-1]) & (events.last_row >= rows[0])]
        assert len(hit) >= 1, kind
    spike = events[(events.first_row <= kinds["spike"][0]) & (events.last_row >= kinds["spike"][0])]
    assert spike.signals.iloc[0].split(";")[0] == "c"  # planted in c: the largest share
    assert summary["events"]["count"] == len(events)
    top = summary["top_events"]
    assert top[0]["peak_score"] == events.peak_score.max()
    assert [e["peak_score"] for e in top] == sorted((e["peak_score"] for e in top), reverse=True)
    for _, e in events.iterrows():  # hosts are in blocks here: an event's rows are contiguous
        inside = scored.anomaly_score.iloc[e.first_row:e.last_row + 1]
        assert e.peak_score == inside.max() and e.flagged_steps == \
            scored.anomaly_flag.iloc[e.first_row:e.last_row + 1].sum()
        peak = scored.ts.iloc[e.first_row + int(inside.to_numpy().argmax())]
        assert e.peak_time == peak.tz_localize("UTC")  # naive times are read as UTC
    assert (events.peak_probability <= 1).all() and (events.flagged_steps <= events.steps).all()


def test_tiny_batches_give_the_same_events(ts_setup, whole, tmp_path):
    det, root, _, test_path, _ = ts_setup
    detect(test_path, root / "model", tmp_path / "o.parquet", "--events", tmp_path / "e.parquet",
           "--batch-size", 7)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "e.parquet"), whole[1])


def test_sorted_input_events_cross_files(ts_setup, whole, tmp_path):
    det, root, test, _, kinds = ts_setup
    cut = int(kinds["level_shift"][10])  # inside the level shift of h1: its event spans the cut
    (tmp_path / "in").mkdir()
    test.iloc[:cut].to_parquet(tmp_path / "in" / "part-0.parquet", index=False)
    test.iloc[cut:].to_parquet(tmp_path / "in" / "part-1.parquet", index=False)
    detect(tmp_path / "in", root / "model", tmp_path / "out", "--sorted-input",
           "--events", tmp_path / "e.parquet", "--batch-size", 50)
    events = pd.read_parquet(tmp_path / "e.parquet")
    pd.testing.assert_frame_equal(events, whole[1])
    assert ((events.first_row < cut) & (events.last_row >= cut)).any()


def test_unsorted_input_gives_the_same_events(ts_setup, whole, tmp_path):
    """Rows out of time order are sorted in memory and pass 1 starts again: the events built
    before it noticed are thrown away, not doubled."""
    det, root, test, _, _ = ts_setup
    order = np.random.default_rng(0).permutation(len(test))
    test.iloc[order].to_parquet(tmp_path / "shuffled.parquet", index=False)
    r = detect(tmp_path / "shuffled.parquet", root / "model", tmp_path / "o.parquet",
               "--events", tmp_path / "e.parquet", "--batch-size", 500)
    assert "not in time order" in r.output
    events = pd.read_parquet(tmp_path / "e.parquet")
    back = {int(new): int(old) for new, old in enumerate(order)}  # shuffled row -> original row
    got = sorted((back[a], back[b]) for a, b in zip(events.first_row, events.last_row))
    assert got == spans(whole[1])


def test_csv_and_parquet_events_files_hold_the_same_events(ts_setup, whole, tmp_path):
    det, root, _, test_path, _ = ts_setup
    detect(test_path, root / "model", tmp_path / "o.csv", "--events", tmp_path / "e.csv")
    csv = pd.read_csv(tmp_path / "e.csv", keep_default_na=False)
    ref = whole[1]
    assert list(csv.columns) == COLUMNS and len(csv) == len(ref)
    assert spans(csv) == spans(ref)
    np.testing.assert_allclose(csv.peak_score, ref.peak_score)
    assert (pd.to_datetime(csv.start, utc=True) == ref.start).all()
    assert (csv.signals == ref.signals).all()


def test_every_step_flagged_is_one_event_per_entity_from_first_to_last_row(ts_setup, tmp_path):
    det, root, test, test_path, _ = ts_setup
    detect(test_path, root / "model", tmp_path / "o.parquet", "--events", tmp_path / "e.parquet",
           "--threshold", -1e9)
    events = pd.read_parquet(tmp_path / "e.parquet")
    firsts = test.reset_index().groupby("host").index.agg(["min", "max"])
    assert sorted(events.entity) == sorted(firsts.index)
    for _, e in events.iterrows():
        assert (e.first_row, e.last_row) == tuple(firsts.loc[e.entity])
        assert e.steps == e.flagged_steps == e.last_row - e.first_row + 1


def test_merge_gap_and_min_event_steps_from_set(ts_setup, whole, tmp_path):
    det, root, _, test_path, _ = ts_setup
    detect(test_path, root / "model", tmp_path / "o.parquet", "--events", tmp_path / "e.parquet",
           "--set", "threshold.merge_gap=1", "--set", "threshold.min_event_steps=3")
    events = pd.read_parquet(tmp_path / "e.parquet")
    assert spans(events) == expected_spans(whole[0], 1, 3)
    assert (events.steps >= 3).all() and (events.steps == events.flagged_steps).all()


def test_fail_on_events_breaks_above_n_not_at_n(ts_setup, whole, tmp_path):
    det, root, _, test_path, _ = ts_setup
    n = len(whole[1])
    args = ["detect", test_path, "-m", root / "model", "-o", tmp_path / "o.parquet"]
    assert run(*args, "--fail-on-events", n).exit_code == 0
    r = run(*args, "--fail-on-events", n - 1, "--summary-json", tmp_path / "s.json")
    assert r.exit_code == 1 and "fail-on-events" in r.output
    gate = json.loads((tmp_path / "s.json").read_text())["gates"]["fail_on_events"]
    assert gate == {"limit": n - 1, "value": n, "breached": True}
    assert run(*args, "--fail-on-events", -1).exit_code == 2


@pytest.mark.parametrize("option", [["--events", "{tmp}/e.csv"], ["--fail-on-events", "0"]])
def test_tables_have_no_events_exit_2(tmp_path, csv_file, model_dir, option):
    option = [o.replace("{tmp}", str(tmp_path)) for o in option]
    for how in (["-m", model_dir], ["--set=train.max_steps=5"]):  # saved model, or fitted here
        r = run("detect", csv_file, *how, "-o", tmp_path / "o.csv", *option)
        assert r.exit_code == 2, r.output
        assert "time series" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "e.csv").exists()


def test_events_path_must_differ_from_the_output(ts_setup, tmp_path):
    det, root, _, test_path, _ = ts_setup
    r = run("detect", test_path, "-m", root / "model", "-o", tmp_path / "o.csv",
            "--events", tmp_path / "o.csv")
    assert r.exit_code == 2 and "--events" in r.output
