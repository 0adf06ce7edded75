"""How a table's score parts are added (model.combine): as robust z-scores, or each as its surprise
among the training rows' own scores, where a heavy-tailed part cannot swamp the others."""

import numpy as np
import pytest

from attnad.config import Config
from attnad.detector import Detector
from attnad.tabular.scorer import combine_components, fit_component_scale
from tests.factories import FAST, make_table


def _parts(rng, n=4000):
    """Part `even`: a normal's spread. Part `spiky`: nothing in most rows, huge in 2%."""
    even = rng.normal(0.0, 1.0, n)
    spiky = np.where(rng.random(n) < 0.02, rng.uniform(1e3, 1e4, n), rng.normal(0.0, 0.01, n))
    return {"even": even, "spiky": spiky}


@pytest.mark.parametrize("surprise", [True, False])
def test_a_heavy_tailed_part_does_not_swamp_the_others(surprise):
    rng = np.random.default_rng(0)
    train = _parts(rng)
    comps = {k: {**fit_component_scale(v, surprise), "weight": 1.0} for k, v in train.items()}
    # row 0: 6 spreads out on `even`, ordinary on `spiky`; row 1: ordinary on `even`, a spike of
    # a size `spiky` had in 2% of training rows
    rows = {"even": np.array([6.0, 0.0]), "spiky": np.array([0.0, 5e3])}
    s = combine_components(rows, comps)
    if surprise:
        assert s[0] > s[1]
    else:  # the z-sum: the ordinary spike outranks a six-spread anomaly
        assert s[1] > s[0]


def test_surprise_keeps_each_parts_order():
    rng = np.random.default_rng(1)
    train = _parts(rng)
    comps = {k: {**fit_component_scale(v, True), "weight": 1.0} for k, v in train.items()}
    grid = np.linspace(-5, 40, 200)
    s = combine_components({"even": grid, "spiky": np.zeros(200)}, comps)
    assert np.all(np.diff(s) >= 0) and s[-1] > s[0]


def test_a_model_combining_by_surprise_saves_loads_and_scores_the_same(tmp_path):
    df, kinds = make_table(seed=3)
    cfg = Config.model_validate({**FAST, "data": {"id_columns": ["id"]},
                                 "model": {**FAST["model"], "combine": "surprise"}})
    det = Detector(cfg).fit(df)
    assert all("tails" in c for c in det.components_.values())
    scores = det.score(df)
    det.save(tmp_path / "m")
    again = Detector.load(tmp_path / "m")
    assert np.array_equal(again.score(df), scores)
    assert scores[kinds["extreme"]] > np.quantile(scores, 0.99)


def test_models_saved_before_the_option_add_z_scores():
    assert Config.model_validate({}).model.combine == "zscore"  # the default: see tabular.yaml
    rng = np.random.default_rng(2)
    train = _parts(rng)
    old = {k: {**fit_component_scale(v), "weight": 1.0} for k, v in train.items()}
    assert not any("tails" in c for c in old.values())
    rows = {"even": np.array([1.0]), "spiky": np.array([0.0])}
    expected = sum((rows[k] - c["center"]) / c["scale"] for k, c in old.items())
    assert np.allclose(combine_components(rows, old), expected)
