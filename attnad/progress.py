"""Progress bars on a terminal, silence elsewhere (cron jobs and CI logs get no bar codes).

    with step_progress(console, "training") as update: update(done, total, loss)
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

LARGE_FILE_BYTES = 32 << 20  # a scoring bar is only worth showing for files this big


def _enabled(console) -> bool:
    return console.is_terminal and not console.quiet


@contextmanager
def step_progress(console, label: str):
    if not _enabled(console):
        yield None
        return
    with Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label, total=None, loss=float("nan"))

        def update(done: int, total: int, loss: float) -> None:
            bar.update(task, completed=done, total=total, loss=loss)
        yield update


@contextmanager
def row_progress(console, path: Path):
    try:
        big = Path(path).stat().st_size >= LARGE_FILE_BYTES
    except OSError:
        big = False
    if not (_enabled(console) and big):
        yield None
        return
    with Progress(TextColumn("scoring"), TextColumn("{task.completed:,} rows"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("scoring", total=None)

        def update(rows: int) -> None:
            bar.update(task, completed=rows)
        yield update
