import json

import numpy as np
import pyarrow as pa

from attnad.config import DataConfig
from attnad.data.preprocess import MISSING, UNKNOWN, Preprocessor, row_vectors, squash
from attnad.data.schema import Column, Schema


def _fit(cols, roles, **cfg):
    schema = Schema([Column(n, r) for n, r in roles.items()])
    return Preprocessor.fit(cols, schema, DataConfig(**cfg))


def test_robust_scaling_ignores_outliers_and_keeps_order():
    x = np.r_[np.random.default_rng(0).normal(10, 2, 1000), 1e9]
    pre = _fit({"x": pa.array(x)}, {"x": "numeric"})
    assert abs(pre.numeric[0]["center"] - 10) < 0.3 and abs(pre.numeric[0]["scale"] - 2) < 0.3
    enc = pre.transform({"x": pa.array([10.0, 14.0, 1e9, np.inf, np.nan])})
    z = enc.num[:, 0]
    assert z[0] < z[1] < z[2] <= z[3]  # monotone, inf is the most extreme
    assert np.all(np.isfinite(z)) and enc.num_missing[:, 0].tolist() == [0, 0, 0, 0, 1]


def test_squash_is_monotone_and_identity_near_zero():
    z = np.linspace(-1e6, 1e6, 10001)
    s = squash(z)
    assert np.all(np.diff(s) >= 0)
    assert np.allclose(squash(np.array([-2.5, 0.3])), [-2.5, 0.3])


def test_categories_unknown_and_missing_slots():
    cols = {"c": pa.array(["a"] * 50 + ["b"] * 40 + ["rare"])}
    pre = _fit(cols, {"c": "categorical"}, min_category_frequency=0.05)
    enc = pre.transform({"c": pa.array(["a", "b", "rare", "never", None])})
    assert enc.cat[:, 0].tolist() == [2, 3, UNKNOWN, UNKNOWN, MISSING]


def test_datetime_becomes_recurring_parts_not_epoch():
    ts = pa.array(np.array(["2026-01-05T00:00", "2026-01-06T06:00"], dtype="datetime64[s]")
                  .astype("datetime64[s]").astype(np.int64).astype(float))
    pre = _fit({"t": ts}, {"t": "datetime"})
    assert pre.feature_names == ["t.hour_sin", "t.hour_cos", "t.weekday"]
    enc = pre.transform({"t": ts})
    assert enc.cat[:, 0].tolist() == [2 + 0, 2 + 1]  # Monday, Tuesday
    # a year later, same hour and weekday -> the same encoding
    later = pa.array(ts.to_numpy() + 364 * 86400.0)
    assert np.allclose(pre.transform({"t": later}).num, enc.num, atol=1e-5)


def test_json_round_trip():
    cols = {"x": pa.array([1.0, 2.0, 3.0]), "c": pa.array(["a", "b", "a"])}
    pre = _fit(cols, {"x": "numeric", "c": "categorical"})
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    a, b = pre.transform(cols), again.transform(cols)
    assert np.array_equal(a.num, b.num) and np.array_equal(a.cat, b.cat)


def test_a_rare_flag_adds_its_rarity_to_row_distances():
    """A 0/1 column set on 1% of rows: in row vectors (the row memory's distances) a set flag
    lies 1/spread (~10) from an unset one, as kNN on standardised columns sees it; the log
    compression meant for wild values would shrink it to log(1 + 10) = 2.4."""
    rng = np.random.default_rng(0)
    flag = (rng.random(2000) < 0.01).astype(float)
    flag[:20], flag[20:] = 1.0, 0.0
    x = rng.normal(0, 1, 2000)
    pre = _fit({"flag": pa.array(flag), "x": pa.array(x)}, {"flag": "numeric", "x": "numeric"})
    assert pre.numeric[0]["levels"] == [0.0, 1.0] and "levels" not in pre.numeric[1]
    spread = pre.numeric[0]["scale"]
    enc = pre.transform({"flag": pa.array([0.0, 1.0, 3.0, np.nan]), "x": pa.array([0.0] * 4)})
    v = pre.row_vectors(enc)[:, 0]
    assert abs((v[1] - v[0]) - 1 / spread) < 1e-3 and 1 / spread > 9
    # a value beyond the two training values is further out, but compressed there
    assert v[1] < v[2] < v[1] + np.log1p(2 / spread) + 1e-4 and v[3] == v[0]
    # the continuous column keeps its log compression
    assert np.allclose(pre.row_vectors(enc)[:, 1], row_vectors(enc, [])[:, 1])


def test_models_without_recorded_levels_keep_their_row_vectors():
    """Preprocessors saved before two-valued columns were recorded score as they did."""
    flag = pa.array([0.0] * 95 + [1.0] * 5)
    pre = _fit({"flag": flag}, {"flag": "numeric"})
    old = json.loads(json.dumps(pre.to_dict()))
    del old["numeric"][0]["levels"]
    enc = pre.transform({"flag": flag})
    assert np.array_equal(Preprocessor.from_dict(old).row_vectors(enc), row_vectors(enc, []))
    assert not np.array_equal(pre.row_vectors(enc), row_vectors(enc, []))
