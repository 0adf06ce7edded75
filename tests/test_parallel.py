"""Work on several threads at once (attnad.parallel): every row once, errors and Ctrl-C stop the
other threads, and a fit or a score does not depend on the number of threads."""

import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch

from attnad.config import Config
from attnad.detector import Detector
from attnad.parallel import Cancelled, for_chunks, run_parallel


@pytest.mark.parametrize("n,chunk,workers", [(0, 4, 2), (3, 4, 2), (4, 4, 2), (9, 4, 2),
                                             (10, 1, 3), (100, 7, 4), (5, 2, 8)])
def test_every_row_is_worked_on_once_in_the_same_chunks(n, chunk, workers):
    seen = np.zeros(n, int)
    chunks = []
    lock = threading.Lock()

    def work(start, stop):
        with lock:
            seen[start:stop] += 1
            chunks.append((start, stop))

    for_chunks(n, chunk, work, workers)
    assert (seen == 1).all()
    assert sorted(chunks) == [(s, min(s + chunk, n)) for s in range(0, n, chunk)]


def test_results_come_back_in_order_and_threads_are_restored():
    before = torch.get_num_threads()
    out = run_parallel([lambda i=i: (i, torch.get_num_threads()) for i in range(5)], workers=2)
    assert [i for i, _ in out] == list(range(5))
    assert all(t == max(1, before // 2) for _, t in out)
    assert torch.get_num_threads() == before


def test_workers_run_in_the_callers_autograd_mode():
    with torch.inference_mode():
        modes = run_parallel([torch.is_inference_mode_enabled] * 2, workers=2)
    assert modes == [True, True]
    with torch.no_grad():
        assert run_parallel([torch.is_grad_enabled] * 2, workers=2) == [False, False]
    assert run_parallel([torch.is_grad_enabled] * 2, workers=2) == [True, True]


def test_a_failure_stops_the_others_and_is_raised():
    cancel = threading.Event()
    stopped = threading.Event()

    def fails():
        time.sleep(0.05)
        raise ValueError("broken")

    def long_task():
        for _ in range(2000):  # 20 s unless cancelled
            if cancel.is_set():
                stopped.set()
                raise Cancelled()
            time.sleep(0.01)
        return "finished"

    t0 = time.monotonic()
    with pytest.raises(ValueError, match="broken"):
        run_parallel([long_task, fails], workers=2, cancel=cancel)
    assert stopped.is_set() and time.monotonic() - t0 < 10


def _table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) @ rng.normal(size=(2, 6)) + 0.2 * rng.normal(size=(n, 6))
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])
    df["kind"] = rng.choice(["a", "b", "c"], n)
    return df


def test_fit_and_scores_do_not_depend_on_the_threads():
    """Two cross-fitted models train at once on two threads, one torch thread each; the same
    models come out as trained one after the other on one thread, and scoring split over two
    threads gives the same scores to the last bit."""
    df = _table()
    scores = {}
    for threads in (1, 2):
        cfg = Config.model_validate({"train": {"threads": threads, "seed": 3, "min_steps": 30,
                                               "max_steps": 30}})
        det = Detector(cfg).fit(df)
        assert len(det.models_) == 2
        scores[threads] = det.score(df)
        det2 = Detector(cfg).fit(df)  # and again: the same
        np.testing.assert_array_equal(det2.score(df), scores[threads])
    np.testing.assert_array_equal(scores[1], scores[2])


def test_progress_counts_the_steps_of_every_model():
    df = _table()
    seen = []
    cfg = Config.model_validate({"train": {"threads": 2, "seed": 0, "min_steps": 20,
                                           "max_steps": 20}})
    Detector(cfg).fit(df, progress=lambda done, total, loss: seen.append((done, total)))
    assert seen[-1] == (40, 40)
    assert [d for d, _ in seen] == list(range(1, 41))


def test_ctrl_c_in_the_caller_stops_every_thread():
    """SIGINT and SIGTERM (the CLI raises it as KeyboardInterrupt) reach the main thread while
    it waits for the workers: they must stop at their next check, not finish their work."""
    cancel = threading.Event()
    stopped = []

    def long_task():
        for _ in range(2000):  # 20 s unless cancelled
            if cancel.is_set():
                stopped.append(1)
                raise Cancelled()
            time.sleep(0.01)

    def interrupt(signum, frame):  # as the CLI's SIGTERM handler does
        raise KeyboardInterrupt()

    previous = signal.signal(signal.SIGUSR1, interrupt)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_parallel([long_task, long_task], workers=2, cancel=cancel)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(stopped) == 2 and time.monotonic() - t0 < 10
