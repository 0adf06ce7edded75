"""attnad.progress on a recording console that claims to be a terminal: what a user sees while
training and scoring, and that cron jobs (no terminal) and --quiet see nothing."""

from __future__ import annotations

import io
import re
import time

import pandas as pd
import pytest
from rich.console import Console

from attnad import progress as progress_module
from attnad.progress import row_progress, step_progress

ETA = re.compile(r"eta \d+:\d\d:\d\d")


@pytest.fixture(autouse=True)
def quick_display(monkeypatch):
    """Delayed displays appear after 50 ms here, not half a second."""
    monkeypatch.setattr(progress_module, "SHOW_AFTER_S", 0.05, raising=False)


def terminal(**kw) -> Console:
    return Console(file=io.StringIO(), record=True, force_terminal=True, width=100, **kw)


def cron() -> Console:
    return Console(file=io.StringIO(), record=True, force_terminal=False, width=100)


def seen(console: Console) -> str:
    """Every frame drawn so far, cursor moves left out."""
    return console.export_text(clear=False)


def wait_for(console: Console, text: str, timeout: float = 3.0) -> str:
    """What has been drawn once `text` appears (a delayed display starts on a timer thread)."""
    end = time.monotonic() + timeout
    while text not in seen(console) and time.monotonic() < end:
        time.sleep(0.01)
    return seen(console)


def feed(update, values, pause=0.06):
    for v in values:
        update(*v) if isinstance(v, tuple) else update(v)
        time.sleep(pause)


def test_training_bar_says_starting_before_the_first_step_then_counts_with_an_eta():
    console = terminal()
    with step_progress(console, "training") as update:
        first = seen(console)
        feed(update, [(1, 200, 1.7), (2, 200, 1.5), (3, 200, 1.4)])
    running = seen(console)  # up to the last frame, drawn when the bar closes
    assert "training" in first and "starting" in first
    assert "None" not in first and "nan" not in first.lower()
    assert not ETA.search(first)  # no total, no time left
    assert "3/200 steps" in running and "loss 1.4000" in running
    assert ETA.search(running), running


def test_training_bar_after_the_last_step_says_calibrating():
    console = terminal()
    with step_progress(console, "training") as update:
        feed(update, [(1, 2, 1.0), (2, 2, 0.9)])
    last = seen(console).splitlines()[-1]
    assert "2/2 steps" in last and "calibrating" in last and "eta" not in last


def test_a_small_file_gets_a_scoring_display_on_a_terminal_and_none_elsewhere(tmp_path):
    path = tmp_path / "small.csv"
    pd.DataFrame({"a": range(10)}).to_csv(path, index=False)
    console = terminal()
    with row_progress(console, path) as update:
        assert update is not None
        # longer than a moment: the display appears before the first batch
        waiting_text = wait_for(console, "scoring")
        feed(update, [4, 8, 10])
    shown = seen(console)
    assert "scoring" in waiting_text and "starting" in waiting_text
    assert "10 rows" in shown and "rows/s" in shown
    assert "None" not in shown and "nan" not in shown.lower()
    assert not ETA.search(shown)  # a CSV's row count is not known without reading it
    for quiet_console in (cron(), terminal(quiet=True)):
        with row_progress(quiet_console, path) as update:
            time.sleep(0.2)
        assert update is None and seen(quiet_console) == ""


def test_a_quick_scoring_run_draws_nothing_and_a_slow_one_draws(tmp_path, monkeypatch):
    path = tmp_path / "small.csv"
    path.write_text("a\n1\n")
    monkeypatch.setattr(progress_module, "SHOW_AFTER_S", 5.0, raising=False)
    quick = terminal()
    with row_progress(quick, path) as update:
        update(1)
    assert seen(quick) == ""  # no flicker for a file scored in no time
    monkeypatch.setattr(progress_module, "SHOW_AFTER_S", 0.05, raising=False)
    slow = terminal()
    with row_progress(slow, path) as update:
        wait_for(slow, "scoring")
        update(1)
    assert "scoring" in seen(slow)


def test_parquet_row_count_from_the_footer_gives_a_bar_and_an_eta(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": range(1000)}).to_parquet(path)
    console = terminal()
    with row_progress(console, path) as update:
        wait_for(console, "scoring")
        feed(update, [100, 200, 300])
    shown = seen(console)
    assert "300/1,000 rows" in shown and ETA.search(shown), shown


@pytest.mark.parametrize("kind", ["directory", "glob", "files", "missing"])
def test_directories_globs_and_file_lists_are_handled(tmp_path, kind):
    for i in range(2):
        pd.DataFrame({"a": range(50)}).to_parquet(tmp_path / f"p{i}.parquet")
    data = {"directory": tmp_path, "glob": str(tmp_path / "*.parquet"),
            "files": sorted(tmp_path.glob("*.parquet")), "missing": tmp_path / "gone.parquet"}[kind]
    console = terminal()
    with row_progress(console, data) as update:
        wait_for(console, "scoring")
        feed(update, [50, 100])
    shown = seen(console)
    # a list of files (attnad.data.dataset.Files) is summed from the footers; a directory or
    # glob is counted without a total (which files count is the reader's rule, not this one's)
    assert ("100/100 rows" if kind == "files" else "100 rows") in shown, shown
    assert "None" not in shown


def test_waiting_shows_a_spinner_for_a_slow_step_only_on_a_terminal():
    from attnad.progress import waiting  # new with the delayed displays
    console = terminal()
    with waiting(console, "reading {bank}.csv"):
        shown = wait_for(console, "reading {bank}.csv")
    assert "reading {bank}.csv" in shown and "0:00:0" in shown
    for quiet_console in (cron(), terminal(quiet=True)):
        with waiting(quiet_console, "reading x.csv"):
            time.sleep(0.2)
        assert seen(quiet_console) == ""
