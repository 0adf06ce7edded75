"""Windows per entity: ordering, timestamps, and streaming that does not depend on the batch size."""

import numpy as np
import pyarrow as pa
import pytest

from attnad.data.windows import (WindowStream, entity_keys, parse_times, recent_rows,
                                 series_order, time_kind)
from attnad.errors import DataError


def _fake_evaluate(calls):
    """An 'error' that depends on the window's content and position, so any difference in how
    windows are cut shows up in the result."""
    def evaluate(g):
        calls.append(g.x.shape[0])
        pos = np.arange(g.x.shape[1])[None, :, None]
        return np.sqrt(np.abs(g.x)) * (1 + pos) + g.valid[..., None], ~g.miss
    return evaluate


def _stream(batch, lengths=(300, 37, 5, 130, 16, 20), W=16, S=4, G=3):
    keys = np.concatenate([[f"e{i}"] * n for i, n in enumerate(lengths)]).astype(object)
    # entities interleaved, each still in time order
    keys = keys[np.argsort(np.random.default_rng(0).random(len(keys)), kind="stable")]
    keys = np.concatenate([keys[keys == k] for k in dict.fromkeys(keys)])
    keys = keys[np.random.default_rng(1).permutation(len(keys))]
    n = len(keys)
    x = np.random.default_rng(2).normal(size=(n, 2)).astype(np.float32)
    miss = np.zeros((n, 2), bool)
    miss[7, 1] = True
    calls: list[int] = []
    st = WindowStream(2, W, S, G, _fake_evaluate(calls))
    out = []
    for i in range(0, n, batch):
        sl = slice(i, i + batch)
        out += st.push(keys[sl], x[sl], miss[sl], np.arange(n)[sl])
    out += st.finish()
    res = np.full((n, 2), np.inf)
    for _, rows, err in out:
        assert np.all(np.isinf(res[rows])), "a row was released twice"
        res[rows] = err
    return res, calls


def test_every_row_released_once_with_errors_and_batch_size_does_not_matter():
    ref, _ = _stream(10_000)
    assert not np.isinf(ref).any()
    assert np.isnan(ref[7, 1]) and np.isfinite(np.delete(ref, 7, axis=0)).all()
    for batch in (1, 7, 64):
        got, _ = _stream(batch)
        assert np.array_equal(got, ref, equal_nan=True)


def test_windows_are_evaluated_in_fixed_groups():
    _, calls = _stream(5)
    # full groups of 3 while streaming; the remainder (and the last window) once at the end
    assert max(calls) <= 4 and calls.count(3) >= 20


def test_series_order_is_stable_for_duplicate_timestamps():
    keys = np.array(["b", "a", "b", "a", "b"], dtype=object)
    times = np.array([2.0, 5.0, 1.0, 5.0, 2.0])
    order = series_order(keys, times)
    assert order.tolist() == [2, 0, 4, 1, 3]  # b: t=1, then the two t=2 in input order; then a


def test_missing_or_bad_timestamp_names_the_row():
    with pytest.raises(DataError, match=r"row 12 .*'ts' is missing"):
        parse_times(pa.array([1, None], pa.int64()), "number", "ts", "f.csv", first_row=11)
    arr = pa.array(["2026-01-01 00:00", "yesterday"])
    with pytest.raises(DataError, match=r"row 1 .*'yesterday' is not a valid time"):
        parse_times(arr, "datetime", "ts", "f.csv")
    assert time_kind(pa.array(["1", "2"])) == "number"
    assert time_kind(arr) == "datetime"


def test_entity_keys_and_recent_rows():
    keys = entity_keys(pa.array([1, None, 1]), 3)
    assert keys.tolist() == ["1", "", "1"]
    sorted_keys = np.array(["a"] * 8 + ["b"] * 2, dtype=object)
    keep = recent_rows(sorted_keys, 5)
    assert keep.tolist() == [4, 5, 6, 7, 9]  # each entity's latest rows, contiguous
