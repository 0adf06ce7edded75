"""Drift figures (attnad.data.profile, attnad.data.drift) on generated data with known answers:
PSI computed by hand from the bins, shares beyond the range, missing and unseen shares, and
the level change and start time of a series."""

import numpy as np
import pytest
from scipy.stats import norm

from attnad.data.drift import DriftCounts, changed, drift_lines
from attnad.data.preprocess import Encoded
from attnad.data.profile import (BINS, POOLED, SHARE_FLOOR, category_profile, numeric_profile,
                                 psi, series_profile)


def _table(columns: dict) -> dict:
    return {"kind": "table", "rows": 0,
            "columns": {k: {**v, "source": k} for k, v in columns.items()}}


def _enc(x: np.ndarray, cat: np.ndarray | None = None) -> Encoded:
    x = np.asarray(x, dtype=np.float64)
    miss = np.isnan(x)
    num = np.where(miss, 0.0, x).astype(np.float32)[:, None]
    cat = np.zeros((len(x), 0), np.int64) if cat is None else cat[:, None]
    return Encoded(num, miss[:, None], cat)


def _hand_psi(then, now) -> float:
    total = 0.0
    for a, b in zip(then, now):
        a, b = max(a, SHARE_FLOOR), max(b, SHARE_FLOOR)
        total += (b - a) * np.log(b / a)
    return total


def test_psi_of_known_shares():
    then = [0.5, 0.3, 0.2]
    now = [0.2, 0.3, 0.5]
    assert psi(then, now) == pytest.approx(2 * 0.3 * np.log(0.5 / 0.2))
    assert psi(then, then) == 0.0
    # an empty bin is floored, not infinite
    assert psi([0.5, 0.5], [1.0, 0.0]) == pytest.approx(_hand_psi([0.5, 0.5], [1.0, 0.0]))


def test_a_column_shifted_by_a_known_amount_gives_the_psi_computed_by_hand():
    train = np.arange(1000, dtype=np.float64)  # deciles at 99.9, 199.8, ...: 100 values a bin
    prof = numeric_profile(train, len(train))
    assert prof["shares"] == pytest.approx([0.1] * BINS)
    counts = DriftCounts(_table({"x": prof}))
    counts.add_table(_enc(train + 250), {})  # every value moves 2.5 bins up
    row = counts.figures()[0]
    # by hand: bin 0 (< 99.9) empty; bins 1 and 2 empty as well (values start at 250);
    # bin k (k = 3..8) holds [99.9k, 99.9(k+1)) - 250 ... counted directly from the edges:
    edges = np.array(prof["edges"])
    now = np.bincount(np.searchsorted(edges, train + 250, side="right"), minlength=BINS) / 1000
    assert now[:2].sum() == 0 and now[-1] > 0.3
    assert row["psi"] == pytest.approx(_hand_psi([0.1] * BINS, now))
    assert row["beyond_range"] == pytest.approx(0.25)  # 999 < x for x in 1000..1249
    assert changed(row)


def test_a_normal_column_shifted_half_a_spread_gives_the_normal_psi():
    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, 200_000)
    counts = DriftCounts(_table({"x": numeric_profile(train, len(train))}))
    counts.add_table(_enc(rng.normal(0.5, 1, 200_000)), {})
    # by hand from the normal distribution: decile edges z_k, shares now Phi(z_k - 0.5) steps
    z = norm.ppf(np.arange(1, BINS) / BINS)
    now = np.diff(np.r_[0.0, norm.cdf(z - 0.5), 1.0])
    assert counts.figures()[0]["psi"] == pytest.approx(_hand_psi([0.1] * BINS, now), abs=0.01)


def test_an_unshifted_file_stays_stable_at_10k_rows():
    rng = np.random.default_rng(1)
    cols = {f"x{i}": numeric_profile(rng.normal(0, 1 + i, 10_000), 10_000) for i in range(5)}
    counts = DriftCounts(_table(cols))
    for i, name in enumerate(cols):  # one column at a time: each its own Encoded
        one = DriftCounts(_table({name: cols[name]}))
        one.add_table(_enc(rng.normal(0, 1 + i, 10_000)), {})
        counts.merge(one)
    rows = counts.figures()
    assert len(rows) == 5 and all(r["psi"] < 0.1 for r in rows)
    assert not any(changed(r) for r in rows)


def test_missing_invalid_and_unseen_shares_now_and_then():
    x = np.arange(1000, dtype=np.float64)
    x[:20] = np.nan  # 2% missing in training
    prof = numeric_profile(x, 1000, invalid=0.01)
    codes = np.r_[np.full(500, 2), np.full(450, 3), np.full(50, 1)]  # 5% outside the vocabulary
    cat = category_profile(codes, ["red", "blue"])
    counts = DriftCounts({"kind": "table", "rows": 1000,
                          "columns": {"x": {**prof, "source": "x"}, "c": {**cat, "source": "c"}}})
    now = np.arange(1000, dtype=np.float64)
    now[:120] = np.nan  # 12% missing now
    now_codes = np.r_[np.full(400, 2), np.full(300, 3), np.full(200, 1), np.full(100, 0)]
    counts.add_table(Encoded(np.nan_to_num(now).astype(np.float32)[:, None],
                             np.isnan(now)[:, None], now_codes[:, None]), {"x": 50})
    x_row, c_row = counts.figures()
    assert (x_row["missing_then"], x_row["missing_now"]) == (pytest.approx(0.02), 0.12)
    assert (x_row["invalid_then"], x_row["invalid_now"]) == (0.01, 0.05)
    assert c_row["missing_now"] == pytest.approx(0.1)
    assert c_row["unseen_then"] == pytest.approx(0.05)
    assert c_row["unseen_now"] == pytest.approx(200 / 900)
    then = [0.05, 0.5, 0.45]
    assert c_row["psi"] == pytest.approx(_hand_psi(then, [200 / 900, 400 / 900, 300 / 900]))
    assert changed(x_row) and changed(c_row)


def test_a_series_level_change_in_spreads_and_the_time_it_left_the_range():
    t = np.arange(2000, dtype=np.float64) * 60.0  # minutes, as epoch seconds
    rng = np.random.default_rng(2)
    keys = np.array(["press-a"] * 1000 + ["press-b"] * 1000, dtype=object)
    raw = rng.uniform(-1, 1, (2000, 1))  # bounded: no new value leaves the range by chance
    raw[1000:] += 50  # press-b lives elsewhere: pooled bins would hide press-a's move
    entities = {"press-a": {"center": [0.0], "scale": [1.0]},
                "press-b": {"center": [50.0], "scale": [1.0]}}
    prof = series_profile(keys, raw, ["pressure"], {}, entities, ([25.0], [25.0]), "datetime")
    assert set(prof["entities"]) == {POOLED, "press-a", "press-b"}
    new = rng.uniform(-0.99, 0.99, (2000, 1))
    new[1000:] += 50
    new[500:1000] -= 6  # press-a drops 6 spreads from its 500th step
    counts = DriftCounts(prof)
    for s in range(0, 2000, 300):  # in batches, as scoring streams them
        sl = slice(s, s + 300)
        counts.add_series(keys[sl], t[sl] + 10_000 * 60, new[sl], {})
    rows = {(r["entity"], r["column"]): r for r in counts.figures()}
    a, b = rows[("press-a", "pressure")], rows[("press-b", "pressure")]
    assert a["level"] == pytest.approx(np.mean(new[:1000]), abs=1e-9)  # centre 0, spread 1
    assert a["level"] == pytest.approx(-3.0, abs=0.1)
    assert a["since"] == str(np.datetime64(int(t[500] + 10_000 * 60), "s"))
    assert a["beyond_range"] == pytest.approx(0.5)
    assert a["psi"] > 0.25 and b["psi"] < 0.1 and abs(b["level"]) < 0.2
    lines = drift_lines(list(rows.values()), per_entity=True)
    assert len(lines) == 1 and lines[0].startswith(
        "drift on press-a: pressure level 3.0 spreads below its training centre, beyond its "
        f"training range since {a['since']}")


def test_counts_merged_from_parts_equal_one_pass():
    rng = np.random.default_rng(3)
    prof = _table({"x": numeric_profile(rng.normal(0, 1, 5000), 5000)})
    x = rng.normal(0.3, 1.2, 4000)
    x[::7] = np.nan
    whole, a, b = DriftCounts(prof), DriftCounts(prof), DriftCounts(prof)
    whole.add_table(_enc(x), {"x": 3})
    a.add_table(_enc(x[:1500]), {"x": 1})
    b.add_table(_enc(x[1500:]), {"x": 2})
    a.merge(b)
    assert a.figures() == whole.figures()
