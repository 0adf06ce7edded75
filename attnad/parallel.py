"""Independent pieces of work on the CPU cores at once: one Python thread per core.

Why threads and not torch's own threads: a table's model works on 256 rows x 32 tokens x 32
numbers at a time, and torch's OpenMP threads split each of those small operations; with idle
threads sleeping between operations (OMP_WAIT_POLICY=PASSIVE, which keeps attnad polite on shared
machines, attnad/__init__.py) the second core of a 2-core machine added about 1.2x to scoring and
nothing to training (benchmarks/results/answer.md). Independent work (the cross-fitted models'
training, the row chunks of a scoring batch) needs no splitting of operations: each piece runs
whole on its own thread with one torch thread, and torch releases the GIL inside its operations.

Each worker sets torch's intra-op threads on its own thread (OpenMP keeps that setting per
thread) to the caller's count shared out among the workers, so the process never runs more
threads than it was given.

    results = run_parallel([lambda: fit(0), lambda: fit(1)], workers=2)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

import torch

T = TypeVar("T")


class Cancelled(Exception):
    """Raised inside a piece of work when another piece failed or the caller was interrupted."""


def run_parallel(tasks: Sequence[Callable[[], T]], workers: int,
                 cancel: threading.Event | None = None) -> list[T]:
    """Run `tasks` (no arguments each) and return their results in order. With `workers` <= 1
    or a single task they run here, one after the other. Otherwise on `workers` threads, each
    with torch's CPU threads set to share the caller's: the first exception is raised here
    after the others stopped (a long task should check `cancel` and raise Cancelled), and
    Ctrl-C in the caller sets `cancel` too, so no thread keeps working after the caller gave up."""
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    workers = min(workers, len(tasks))
    outer = torch.get_num_threads()
    each = max(1, outer // workers)
    cancel = cancel if cancel is not None else threading.Event()
    # autograd's modes belong to a thread: the workers take the caller's
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def call(task):
        torch.set_num_threads(each)
        if cancel.is_set():
            raise Cancelled()
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return task()

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="attnad")
    try:
        futures = [pool.submit(call, task) for task in tasks]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            cancel.set()
            wait(futures)
            errors = [f.exception() for f in futures if f.exception() is not None]
            raise next((e for e in errors if not isinstance(e, Cancelled)), errors[0])
        return [f.result() for f in futures]
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(outer)  # some builds keep one setting for the whole process


def for_chunks(n: int, chunk: int, work: Callable[[int, int], None], workers: int) -> None:
    """`work(start, stop)` for every chunk of `chunk` rows of `n`, the same chunks whatever
    `workers` is (so a row's result does not depend on it): each worker takes a contiguous run of
    them. `work` writes its rows' results in place."""
    starts = list(range(0, n, chunk))
    k = max(1, min(workers, len(starts)))
    runs = [starts[i * len(starts) // k:(i + 1) * len(starts) // k] for i in range(k)]

    def run(part):
        for start in part:
            work(start, min(start + chunk, n))

    run_parallel([lambda part=part: run(part) for part in runs], workers)


def cpu_workers(device: torch.device) -> int:
    """Threads worth running pieces of work on: torch's CPU threads on a CPU, 1 on a GPU (the
    device does the work; the host only feeds it)."""
    return torch.get_num_threads() if device.type == "cpu" else 1
