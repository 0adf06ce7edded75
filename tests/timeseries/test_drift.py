"""Slow drift is not an anomaly; an abrupt change is (model.input_level, default local).

A signal whose level wanders slowly (a random walk through training, an unseen stretch and
scoring) must not flood the flags once it leaves its training range, while a level shift of the
same size inside one step is still flagged. With model.input_level: entity (how models scored
before the option) the wandering signal floods them: that case is here too, so the test shows
what the option is for.
"""

import numpy as np
import pytest

from attnad.config import Config
from attnad.detector import Detector
from tests.factories import N, TS_FAST, WINDOW, make_series

NOMINAL = 0.01  # threshold.contamination
WALK_STEP = 0.04  # per step, in units of signal c (spread about 1)


def _walk(seed: int, n: int) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).normal(0.0, WALK_STEP, n))


@pytest.fixture(scope="module")
def drifting():
    """Train and test parts of make_series, signal c of every host on one random walk that runs
    through the training part, N unseen steps and the test part."""
    train, _ = make_series(seed=1, start=0, planted=False)
    test, _ = make_series(seed=2, start=N, planted=False)
    for e, host in enumerate(("h0", "h1", "h2")):
        walk = _walk(100 + e, 3 * N)
        train.loc[train.host == host, "c"] += walk[:N]
        test.loc[test.host == host, "c"] += walk[2 * N:]
    return train, test


def _fit(train, level: str | None = None):
    model = TS_FAST["model"] if level is None else {**TS_FAST["model"], "input_level": level}
    return Detector(Config.model_validate({**TS_FAST, "model": model})).fit(train)


def _beyond_training(train, test) -> float:
    """Share of test rows whose c lies outside its host's training range."""
    out = []
    for host in ("h0", "h1", "h2"):
        c0, c1 = train.c[train.host == host], test.c[test.host == host]
        out.append((c1 > c0.max()) | (c1 < c0.min()))
    return float(np.mean(np.concatenate(out)))


@pytest.fixture(scope="module")
def default_model(drifting):
    return _fit(drifting[0])


def test_the_walk_leaves_the_training_range(drifting):
    assert _beyond_training(*drifting) > 0.25  # else this file would test nothing


def test_slow_drift_stays_within_twice_the_nominal_flag_rate(drifting, default_model):
    flags = default_model.predict(drifting[1])
    assert flags.mean() <= 2 * NOMINAL, f"{flags.mean():.1%} of drifting normal rows flagged"


def test_measured_against_the_training_centre_the_drift_floods(drifting):
    flags = _fit(drifting[0], "entity").predict(drifting[1])
    assert flags.mean() > 5 * NOMINAL  # what input_level: local is for


def test_a_level_shift_of_the_same_size_inside_one_step_is_flagged(drifting, default_model):
    """The walk's largest excursion, applied to a clean test part in one step."""
    train, test = drifting
    size = float(np.max(np.abs(test.c[test.host == "h1"] - np.median(train.c[train.host == "h1"]))))
    clean, _ = make_series(seed=2, start=N, planted=False)
    host = (clean.host == "h1").to_numpy()
    at = np.flatnonzero(host)[N // 2]
    shifted = clean.copy()
    shifted.loc[host & (np.arange(len(clean)) >= at), "c"] += size
    scores = default_model.score(shifted)
    near = scores[at - WINDOW // 2:at + WINDOW // 2]
    assert near.max() > default_model.threshold_["value"], \
        f"shift of {size:.1f}: peak {near.max():.3g} <= threshold {default_model.threshold_['value']:.3g}"
    # and it stands out from the same host's rows far from the shift
    far = scores[np.flatnonzero(host)[:N // 2 - WINDOW]]
    assert near.max() > 2 * np.quantile(far, 0.99)
