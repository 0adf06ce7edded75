"""Tests for attnad.metrics on generated data (fast: no model, no files)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attnad.metrics import (
    auprc,
    auroc,
    best_f1,
    range_auc_curves,
    segments,
    vus,
    vus_pr,
    vus_roc,
)

POINT_METRICS = [auroc, auprc, best_f1]
RANGE_METRICS = [vus_pr, vus_roc]


def _tabular(n=2000, rate=0.05, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    y[:2] = [0, 1]  # both classes guaranteed
    return y, rng


def _series(n=3000, segs=((500, 540), (1500, 1520), (2400, 2480))):
    y = np.zeros(n, dtype=int)
    for s, e in segs:
        y[s : e + 1] = 1
    return y


# ---------------------------------------------------------------------------- point metrics
@pytest.mark.parametrize("metric", POINT_METRICS)
def test_perfect_scores_give_one(metric):
    y, _ = _tabular()
    assert metric(y, y * 10.0 + 1.0) == pytest.approx(1.0)


def test_reversed_scores_are_low():
    y, _ = _tabular(rate=0.05)
    rev = -y.astype(float)
    assert auroc(y, rev) == pytest.approx(0.0)
    # every normal outranks every anomaly: AP is roughly the base rate, far below 0.5
    assert auprc(y, rev) < 0.1
    # best F1 can still pick "flag everything": F1 = 2p/(1+p) with p the base rate
    p = y.mean()
    assert best_f1(y, rev) == pytest.approx(2 * p / (1 + p), rel=1e-6)


def test_random_scores_near_chance():
    y, rng = _tabular(n=20000, rate=0.1, seed=1)
    s = rng.random(y.size)
    assert auroc(y, s) == pytest.approx(0.5, abs=0.03)
    assert auprc(y, s) == pytest.approx(y.mean(), abs=0.02)


def test_informative_beats_random():
    y, rng = _tabular(n=5000, rate=0.05, seed=2)
    good = y * 1.5 + rng.normal(size=y.size)
    rand = rng.normal(size=y.size)
    assert auroc(y, good) > auroc(y, rand) + 0.2
    assert auprc(y, good) > auprc(y, rand) + 0.1
    assert best_f1(y, good) > best_f1(y, rand) + 0.1


def test_auroc_counts_ties_as_half():
    y = np.array([0, 1, 0, 1])
    assert auroc(y, np.zeros(4)) == pytest.approx(0.5)


def test_best_f1_known_value():
    # threshold 0.8 flags 2 of 3 anomalies and no normal: P=1, R=2/3 -> F1=0.8
    y = np.array([1, 1, 1, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.1, 0.3, 0.2, 0.0])
    assert best_f1(y, s) == pytest.approx(0.8)


@pytest.mark.parametrize("metric", POINT_METRICS + RANGE_METRICS)
@pytest.mark.parametrize("const", [0, 1])
def test_single_class_is_nan(metric, const):
    y = np.full(200, const)
    assert math.isnan(metric(y, np.arange(200.0)))


@pytest.mark.parametrize("metric", POINT_METRICS + RANGE_METRICS)
def test_nan_scores_raise(metric):
    y = _series(300, ((100, 110),))
    s = np.zeros(300)
    s[5] = np.nan
    with pytest.raises(ValueError):
        metric(y, s)


def test_infinite_scores_keep_ranking():
    y = np.array([0, 0, 1, 1])
    s = np.array([-np.inf, 0.0, 1.0, np.inf])
    assert auroc(y, s) == pytest.approx(1.0)


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        auroc([0, 1], [0.1, 0.2, 0.3])


# ---------------------------------------------------------------------------- VUS
def test_segments():
    y = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1])
    assert segments(y).tolist() == [[0, 1], [4, 4], [6, 8]]
    assert segments(np.zeros(5)).shape == (0, 2)


@pytest.mark.parametrize("metric", RANGE_METRICS)
def test_vus_perfect_is_one(metric):
    y = _series()
    assert metric(y, y.astype(float), max_window=40) == pytest.approx(1.0)


def test_vus_reversed_is_low():
    y = _series()
    assert vus_pr(y, -y.astype(float), max_window=40) < 0.1
    assert vus_roc(y, -y.astype(float), max_window=40) < 0.2


def test_vus_random_low_and_informative_high():
    rng = np.random.default_rng(3)
    y = _series()
    rand = rng.random(y.size)
    good = y + 0.3 * rng.random(y.size)
    assert vus_pr(y, rand, max_window=40) < 0.25
    assert vus_pr(y, good, max_window=40) > 0.9
    assert vus_roc(y, good, max_window=40) > vus_roc(y, rand, max_window=40) + 0.3


def test_vus_rewards_near_miss_over_far_miss():
    """A detector that fires just before each segment beats one that fires far away."""
    y = _series()
    near = np.zeros(y.size)
    far = np.zeros(y.size)
    for s, e in segments(y):
        near[s - 8 : s] = 1.0  # 8 steps early
        far[s - 300 : s - 292] = 1.0  # same shape, 300 steps early
    # point-wise metrics cannot tell them apart (neither overlaps a label) ...
    assert auprc(y, near) == pytest.approx(auprc(y, far))
    # ... VUS-PR gives the near miss partial credit through the buffer
    assert vus_pr(y, near, max_window=40) > 2 * vus_pr(y, far, max_window=40)
    assert vus_roc(y, near, max_window=40) > vus_roc(y, far, max_window=40)
    # with no buffer there is nothing to reward
    r0_near, p0_near = (c[0] for c in range_auc_curves(y, near, max_window=0))
    r0_far, p0_far = (c[0] for c in range_auc_curves(y, far, max_window=0))
    assert p0_near == pytest.approx(p0_far)


def test_vus_rewards_detecting_every_segment():
    """Existence: flagging part of every segment beats flagging one segment completely."""
    y = _series(segs=((500, 539), (1500, 1539), (2400, 2439)))
    spread = np.zeros(y.size)
    one = np.zeros(y.size)
    for s, _ in segments(y):
        spread[s : s + 13] = 1.0  # 39 flagged points spread over all segments
    one[500:540] = 1.0  # 40 flagged points, one segment only
    assert vus_pr(y, spread, max_window=20) > vus_pr(y, one, max_window=20)


def test_vus_window_zero_close_to_auprc_for_point_scores():
    rng = np.random.default_rng(4)
    y = _series()
    s = y * 0.5 + rng.random(y.size)
    rocs, prs = range_auc_curves(y, s, max_window=0, n_thresholds=None)
    assert rocs.shape == prs.shape == (1,)
    assert rocs[0] == pytest.approx(auroc(y, s), abs=0.02)
    assert prs[0] == pytest.approx(auprc(y, s), abs=0.05)


def test_vus_curves_shape_and_mean():
    rng = np.random.default_rng(5)
    y = _series()
    s = y * 0.5 + rng.random(y.size)
    rocs, prs = range_auc_curves(y, s, max_window=10)
    assert rocs.shape == prs.shape == (11,)
    assert np.all((prs >= 0) & (prs <= 1)) and np.all((rocs >= 0) & (rocs <= 1))
    assert vus(y, s, 10) == pytest.approx((rocs.mean(), prs.mean()))


def test_vus_segment_at_series_edges():
    y = _series(500, ((0, 9), (490, 499)))
    assert vus_pr(y, y.astype(float), max_window=30) == pytest.approx(1.0)


def test_vus_deterministic_on_100k():
    """A long series with many segments: the same value on every call, and a score that follows
    the labels beats shuffled scores. How fast: benchmarks/metrics_speed.py (a wall-clock bound
    here failed on busy machines)."""
    rng = np.random.default_rng(6)
    n = 100_000
    y = np.zeros(n, dtype=int)
    for s in rng.integers(0, n - 200, 60):
        y[s : s + rng.integers(1, 120)] = 1
    sc = rng.normal(size=n) + y
    a = vus(y, sc, max_window=200)
    assert a == vus(y, sc, max_window=200)
    assert 0 < a[0] < 1 and 0 < a[1] < 1
    shuffled = vus(y, rng.permutation(sc), max_window=200)
    assert a[0] > shuffled[0] + 0.1 and a[1] > shuffled[1] + 0.05


def test_event_scores_count_ranges_found_and_false_events():
    from attnad.metrics import event_scores, flag_runs
    truth = [[10, 19], [40, 44], [70, 70]]
    pred = [[0, 2], [15, 25], [18, 30], [69, 71]]  # one false, two on one range, one on the spike
    got = event_scores(pred, truth)
    assert (got["true_events"], got["found_ranges"]) == (3, 2)
    assert got["precision"] == pytest.approx(3 / 4) and got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 * 0.75 * (2 / 3) / (0.75 + 2 / 3))
    # flagging everything is one event that finds every range: precision 1, but one event, not
    # a point-adjusted F1 of 1 for every flagged point
    everything = flag_runs(np.ones(100, bool))
    assert event_scores(everything, truth)["recall"] == 1.0
    nothing = event_scores(np.zeros((0, 2)), truth)
    assert np.isnan(nothing["precision"]) and nothing["recall"] == 0 and nothing["f1"] == 0
    assert np.isnan(event_scores(pred, np.zeros((0, 2)))["f1"])  # no labelled range: undefined
