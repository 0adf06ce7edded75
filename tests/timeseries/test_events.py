"""Events from flags: the streaming run builder at its edges, and its agreement with the
in-memory rule (attnad.metrics.flag_runs) however the steps are cut into pieces."""

import numpy as np
import pytest

from attnad.metrics import flag_runs
from attnad.timeseries.events import EventBuilder


def build(flags, merge_gap, min_steps, cuts=(), key="e", scores=None):
    """Events of one entity's flags pushed in pieces cut at `cuts`, as (first_row, last_row)."""
    flags = np.asarray(flags, bool)
    n = len(flags)
    scores = np.arange(n, dtype=float) if scores is None else np.asarray(scores, float)
    b = EventBuilder(merge_gap, min_steps)
    out = []
    bounds = [0, *cuts, n]
    for a, z in zip(bounds[:-1], bounds[1:]):
        r = np.arange(a, z)
        out += b.push(key, r, r * 60.0, scores[a:z], scores[a:z] / n, flags[a:z],
                      np.ones((z - a, 2)))
    return out + b.finish()


def spans(events):
    return [(e.first_row, e.last_row) for e in events]


def test_a_gap_of_exactly_merge_gap_steps_splits_one_step_less_merges():
    #        run 0..1, gap of 3 unflagged steps, run 5..6
    flags = [1, 1, 0, 0, 0, 1, 1, 0]
    assert spans(build(flags, merge_gap=3, min_steps=1)) == [(0, 1), (5, 6)]
    merged = build(flags, merge_gap=4, min_steps=1)
    assert spans(merged) == [(0, 6)]
    assert (merged[0].steps, merged[0].flagged) == (7, 4)  # the gap counts as steps, not flags
    assert spans(build(flags, merge_gap=1, min_steps=1)) == [(0, 1), (5, 6)]  # 1: never merge


def test_events_at_the_first_and_last_step_of_an_entity():
    flags = [1, 0, 0, 0, 0, 0, 1]
    assert spans(build(flags, merge_gap=2, min_steps=1)) == [(0, 0), (6, 6)]
    every = build([1] * 5, merge_gap=2, min_steps=1)
    assert spans(every) == [(0, 4)] and every[0].steps == 5


def test_short_events_are_dropped_by_their_span_after_merging():
    flags = [1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1]
    assert spans(build(flags, merge_gap=3, min_steps=2)) == [(4, 5), (9, 11)]
    assert spans(build(flags, merge_gap=3, min_steps=3)) == [(9, 11)]  # span 3: 9, (10), 11
    assert spans(build(flags, merge_gap=3, min_steps=4)) == []


@pytest.mark.parametrize("cuts", [(1,), (2, 3), (4,), (5,), (1, 2, 3, 4, 5, 6, 7)])
def test_pieces_do_not_change_the_events(cuts):
    """A cut anywhere (inside a run, inside a gap, at the edge of either) gives the same events:
    the scorer hands out steps in batches of any size."""
    flags = [1, 1, 0, 0, 1, 0, 0, 0, 1]
    whole = build(flags, 3, 1)
    cut = build(flags, 3, 1, cuts)
    assert spans(cut) == spans(whole) == [(0, 4), (8, 8)]
    assert [(e.steps, e.flagged, e.peak_row) for e in cut] == \
        [(e.steps, e.flagged, e.peak_row) for e in whole]


def test_streaming_agrees_with_flag_runs_on_random_flags():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 80))
        flags = rng.random(n) < rng.uniform(0.05, 0.7)
        mg, ms = int(rng.integers(1, 7)), int(rng.integers(1, 5))
        cuts = sorted(set(rng.integers(1, n + 1, int(rng.integers(0, 6))).tolist()) - {n})
        got = build(flags, mg, ms, cuts)
        assert spans(got) == [tuple(r) for r in flag_runs(flags, mg, ms)]
        for e in got:
            assert e.steps == e.last_row - e.first_row + 1
            assert e.flagged == flags[e.first_row:e.last_row + 1].sum()


def test_peak_contributions_and_interleaved_entities():
    b = EventBuilder(merge_gap=2, min_steps=1)
    r = np.arange(4)
    c = np.array([[1.0, 0.0], [0.0, 3.0], [1.0, 1.0], [5.0, 5.0]])
    # entity a: flagged 0..2; entity b, pushed in between, flagged at its step 1 only
    done = b.push("a", r[:2], r[:2] * 1.0, np.array([2.0, 9.0]), np.array([0.9, 0.99]),
                  [True, True], c[:2])
    done += b.push("b", np.array([10, 11]), np.array([0.0, 1.0]), np.array([1.0, 4.0]),
                   np.array([0.5, 0.95]), [False, True], c[2:])
    done += b.push("a", r[2:], r[2:] * 1.0, np.array([3.0, 0.0]), np.array([0.95, 0.1]),
                   [True, False], c[2:])
    assert done == []  # both still open: fewer than merge_gap unflagged steps since
    done = b.finish()
    a, bb = sorted(done, key=lambda e: e.entity)
    assert (a.first_row, a.last_row, a.peak_row, a.peak_score, a.peak_probability) == \
        (0, 2, 1, 9.0, 0.99)
    assert a.contrib.tolist() == [2.0, 4.0]  # summed over the flagged steps only
    assert (bb.first_row, bb.last_row, bb.contrib.tolist()) == (11, 11, [5.0, 5.0])


def test_an_event_closes_once_merge_gap_unflagged_steps_follow_it():
    b = EventBuilder(merge_gap=3, min_steps=1)
    r = np.arange(6)
    one = np.ones((6, 1))
    out = b.push("a", r, r * 1.0, r * 1.0, r / 6, [1, 0, 0, 1, 0, 0], one)
    assert out == [] and "a" in b.open
    out = b.push("a", r + 6, r * 1.0, r * 1.0, r / 6, [0, 0, 0, 0, 0, 0], one)
    assert spans(out) == [(0, 3)] and b.open == {}  # memory: no open event is left


def test_bad_rules_are_refused():
    with pytest.raises(ValueError):
        EventBuilder(0, 1)
