import json

import numpy as np
import pyarrow as pa

from attnad.config import DataConfig
from attnad.data.preprocess import MISSING, UNKNOWN, Preprocessor, squash
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
