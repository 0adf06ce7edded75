"""Progress displays on a terminal, silence elsewhere (cron jobs and CI logs get no bar codes).

    with step_progress(console, "training") as update: update(done, total, loss)
    with row_progress(console, path) as update: update(rows_done)
    with waiting(console, f"reading {path}"): ...

Training: a bar that says "starting" until the first step, then steps, loss, elapsed time and
the time left, and "calibrating" after the last step (the fit then scores its training rows).
Scoring and waiting appear once they have taken SHOW_AFTER_S seconds, so a quick file prints
nothing; scoring shows rows done and rows/s, and a bar with the time left when the row count is
cheap to know (Parquet: the footers; CSV: unknown, it would take a second read). Nothing is shown
when the console is not a terminal or is quiet. This module imports no other attnad module.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from rich.progress import (BarColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.text import Text

SHOW_AFTER_S = 0.5  # scoring or reading quicker than this shows nothing (no flicker)
PARQUET = (".parquet", ".pq")


def _enabled(console) -> bool:
    return console.is_terminal and not console.quiet


def _speed(task) -> float | None:
    """Units per second: rich's estimate over its recent samples, or until there are two of them
    the `rate` field (units done / seconds since the work began, as of the last update)."""
    return task.speed if task.speed is not None else task.fields.get("rate")


def _rate(done: int, t0: float) -> float | None:
    gone = time.monotonic() - t0
    return done / gone if done and gone > 0 else None


class _Remaining(ProgressColumn):
    """'eta 0:01:23' once the total and a speed are known, and not in a phase without one."""

    def render(self, task) -> Text:
        speed = _speed(task)
        if task.total is None or not task.fields.get("eta", True) or not speed:
            return Text("")
        left = int(max(task.total - task.completed, 0) / speed)
        return Text(f"eta {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}",
                    style="progress.remaining")


class _Elapsed(TimeElapsedColumn):
    """Time since the work began (the `t0` field), not since a delayed display appeared."""

    def render(self, task) -> Text:
        since = task.fields.get("t0")
        if since is None or task.finished:
            return super().render(task)
        gone = int(time.monotonic() - since)
        return Text(f"{gone // 3600}:{gone // 60 % 60:02d}:{gone % 60:02d}",
                    style="progress.elapsed")


class _Rows(ProgressColumn):
    """Rows done (of the total when known), and rows per second once measured."""

    def render(self, task) -> Text:
        if not task.completed:
            return Text("starting")
        done = f"{int(task.completed):,}" + ("" if task.total is None else f"/{int(task.total):,}")
        speed = _speed(task)
        rate = "" if speed is None else f"  {speed:,.0f} rows/s"
        return Text(f"{done} rows{rate}")


@contextmanager
def step_progress(console, label: str):
    """A bar for `train_loop`'s `progress(done, total, loss)` calls, or None off a terminal."""
    if not _enabled(console):
        yield None
        return
    with Progress(TextColumn(label), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), _Remaining(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=None, info="starting")
        t0 = time.monotonic()

        def update(done: int, total: int, loss: float) -> None:
            info = f"{done:,}/{total:,} steps  loss {loss:.4f}"
            if done < total:
                bar.update(task, completed=done, total=total, info=info, eta=True,
                           rate=_rate(done, t0))
            else:  # the fit goes on (error scales, threshold): keep the clock running, no eta
                bar.update(task, completed=done, total=total + 1, info=f"{info}  calibrating",
                           eta=False)
        yield update


def total_rows(data) -> int | None:
    """Rows in a Parquet file, or in a list of Parquet files (attnad.data.dataset.Files), from
    the footers; None for CSV, a directory or glob pattern (which files count is the reader's
    rule) or anything unreadable: the display then counts rows without a total."""
    paths = list(data) if isinstance(data, (list, tuple)) else [data]
    if not paths or any(any(c in str(p) for c in "*?[") or
                        not str(p).lower().endswith(PARQUET) for p in paths):
        return None
    try:
        import pyarrow.parquet as pq
        return sum(pq.ParquetFile(str(p)).metadata.num_rows for p in paths)
    except Exception:  # noqa: BLE001 - a display never fails a run; the reader will say why
        return None


class _Delayed:
    """A transient rich Progress with one task that starts SHOW_AFTER_S seconds after creation
    (on a timer thread, so it also appears while the caller is still waiting for its first
    batch) unless closed first. `total` is called when it starts, so a quick run pays nothing."""

    def __init__(self, console, columns, label: str, total=lambda: None):
        self._console, self._columns, self._label, self._total = console, columns, label, total
        self._lock = threading.Lock()
        self._bar = self._task = None
        self._done, self._closed, self._t0 = 0, False, time.monotonic()
        self._timer = threading.Timer(SHOW_AFTER_S, self._start)
        self._timer.daemon = True
        self._timer.start()

    def _start(self) -> None:
        total = self._total()
        with self._lock:
            if self._closed:
                return
            bar = Progress(*self._columns, console=self._console, transient=True)
            self._task = bar.add_task(self._label, total=total, completed=self._done, t0=self._t0,
                                      rate=_rate(self._done, self._t0))
            bar.start()
            self._bar = bar

    def update(self, done: int) -> None:
        self._done = done
        with self._lock:
            if self._bar is not None:
                self._bar.update(self._task, completed=done, rate=_rate(done, self._t0))

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            if self._bar is not None:
                self._bar.stop()


@contextmanager
def row_progress(console, path):
    """A scoring display for `progress(rows_done)` calls, or None off a terminal. `path`: the
    data argument (a file, directory or glob) or a list of files."""
    if not _enabled(console):
        yield None
        return
    shown = _Delayed(console, [TextColumn("scoring"), BarColumn(), _Rows(), _Elapsed(),
                               _Remaining()], "scoring", lambda: total_rows(path))
    try:
        yield shown.update
    finally:
        shown.close()


@contextmanager
def waiting(console, text: str):
    """A spinner with `text` for a step without counts (reading a training file), shown once it
    has taken SHOW_AFTER_S seconds; nothing off a terminal."""
    if not _enabled(console):
        yield
        return
    literal = text.replace("{", "{{").replace("}", "}}")  # a format string for the column
    shown = _Delayed(console, [SpinnerColumn(), TextColumn(literal, markup=False), _Elapsed()],
                     text)
    try:
        yield
    finally:
        shown.close()
