"""Thresholds without labels (quantile, POT, fixed; one per entity in a series model) and the
calibrated anomaly_probability."""

import numpy as np
import pandas as pd
import pytest

from attnad.config import Config, ThresholdConfig, build_config
from attnad.detector import Detector
from attnad.errors import ConfigError, UserError
from attnad.pipeline import score_file
from attnad.threshold import (fit_entity_thresholds, fit_tail, fit_threshold, probability,
                              refit_threshold, row_probability, row_thresholds, tail_sf)


def pot(risk, level=0.98):
    return ThresholdConfig(method="pot", risk=risk, pot_quantile=level)


@pytest.mark.parametrize("dist", ["exponential", "pareto", "normal", "very_heavy"])
@pytest.mark.parametrize("risk", [1e-3, 1e-4])
def test_pot_threshold_flag_rate_on_fresh_normal_scores_is_close_to_the_risk(dist, risk):
    rng = np.random.default_rng(0)
    draw = {"exponential": lambda n: rng.exponential(1.0, n),
            "pareto": lambda n: rng.pareto(4.0, n),  # heavy tail: shape 0.25
            "normal": lambda n: rng.normal(0, 1, n),  # light tail: shape < 0
            # shape 1.4, no finite mean: squared errors of heavy-tailed data look like this
            "very_heavy": lambda n: rng.pareto(0.7, n)}[dist]
    state = fit_threshold(draw(20_000), pot(risk))
    fresh = draw(1_000_000)
    rate = float((fresh > state["value"]).mean())
    # far beyond the 20,000 calibration scores: within a factor of 2.5 of the risk (an empirical
    # quantile cannot even be computed at 1e-4 with 20,000 scores)
    assert risk / 2.5 < rate < risk * 2.5, (dist, risk, rate)
    # a smaller risk is always a higher threshold (a shape clamped with a zero scale was not)
    values = [fit_threshold(draw(20_000), pot(r))["value"] for r in (1e-2, 1e-3, 1e-4)]
    assert values[0] < values[1] < values[2]


def test_pot_differs_from_quantile_and_fixed_is_fixed():
    s = np.random.default_rng(1).exponential(1.0, 20_000)
    q = fit_threshold(s, ThresholdConfig(method="quantile", contamination=0.01))
    p = fit_threshold(s, pot(1e-4))
    f = fit_threshold(s, ThresholdConfig(method="fixed", value=3.5))
    assert q["value"] == pytest.approx(np.quantile(s, 0.99))
    assert p["value"] == pytest.approx(-np.log(1e-4), rel=0.15)  # the true 1 - 1e-4 quantile
    assert f["value"] == 3.5
    # a risk inside the sample is the plain quantile
    assert fit_threshold(s, pot(0.05))["value"] == pytest.approx(np.quantile(s, 0.95), rel=1e-3)


def test_gpd_fit_recovers_the_tail_shape():
    rng = np.random.default_rng(2)
    assert abs(fit_tail(rng.exponential(1.0, 50_000), 0.95)["shape"]) < 0.05
    assert fit_tail(rng.pareto(2.0, 50_000), 0.95)["shape"] == pytest.approx(0.5, abs=0.1)
    assert fit_tail(rng.uniform(0, 1, 50_000), 0.95)["shape"] == pytest.approx(-1.0, abs=0.1)
    assert fit_tail(np.ones(100), 0.98)["n"] == 0  # a flat top has no tail
    assert fit_tail(np.ones(3), 0.98) is None


def test_probability_is_calibrated_monotone_and_graded_beyond_the_sample():
    rng = np.random.default_rng(3)
    s = rng.exponential(1.0, 20_000)
    state = fit_threshold(s, pot(1e-3))
    grid = np.linspace(0, 30, 3001)
    p = probability(grid, state)
    assert np.all(np.diff(p) >= -1e-12) and p[0] >= 0 and p[-1] <= 1
    # the same meaning at every level: P(score < x) of the true distribution, far past the sample
    for level in (0.5, 0.99, 0.999, 0.9999, 0.99999):
        x = -np.log(1 - level)
        assert probability(np.array([x]), state)[0] == pytest.approx(level, abs=(1 - level) * 0.5)
    # beyond every training score it still separates a big score from a bigger one
    a, b = probability(np.array([s.max() + 1, s.max() + 3]), state)
    assert a < b < 1.0
    # continuous where the empirical part hands over to the tail
    u = state["tail"]["u"]
    lo, hi = probability(np.array([u - 1e-9, u + 1e-9]), state)
    assert hi - lo < 1e-6
    assert probability(np.array([np.nan]), state)[0] == 1.0  # as before: NaN counts as extreme


def test_probability_of_an_older_model_without_a_tail_is_empirical():
    s = np.random.default_rng(4).normal(0, 1, 5000)
    state = fit_threshold(s, ThresholdConfig())
    state.pop("tail")
    assert probability(np.array([100.0]), state)[0] == 1.0
    assert probability(np.array([0.0]), state)[0] == pytest.approx(0.5, abs=0.02)


def test_tail_sf_edges():
    assert tail_sf(np.array([0.0]), 0.3, 1.0)[0] == 1.0
    assert tail_sf(np.array([5.0]), -0.5, 1.0)[0] == 0.0  # past the end point of a bounded tail
    assert tail_sf(np.array([1.0]), 0.0, 1.0)[0] == pytest.approx(np.exp(-1))


@pytest.mark.parametrize("raw, key", [
    ({"threshold": {"method": "pot", "risk": 0}}, "threshold.risk"),
    ({"threshold": {"method": "pot", "risk": 0.7}}, "threshold.risk"),
    ({"threshold": {"pot_quantile": 0.3}}, "threshold.pot_quantile"),
    ({"threshold": {"method": "evt"}}, "threshold.method"),
    ({"threshold": {"per_entity": True}}, "threshold.per_entity"),
])
def test_threshold_config_is_validated(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config(raw)


def test_refit_on_stored_calibration_and_pot_quantile_is_fixed():
    s = np.random.default_rng(5).exponential(1.0, 20_000)
    state = fit_threshold(s, ThresholdConfig())
    new = refit_threshold(state, pot(1e-4))
    assert new["method"] == "pot" and new["value"] > state["value"]
    assert new["calibration_quantiles"] == state["calibration_quantiles"]
    with pytest.raises(ValueError, match="pot_quantile"):
        refit_threshold(state, pot(1e-4, level=0.9))


def test_per_entity_thresholds_and_probabilities():
    rng = np.random.default_rng(6)
    scores = np.r_[rng.exponential(1.0, 3000), rng.exponential(3.0, 3000), rng.exponential(1, 50)]
    keys = np.array(["a"] * 3000 + ["b"] * 3000 + ["tiny"] * 50, dtype=object)
    cfg = ThresholdConfig(method="pot", risk=1e-3, per_entity=True)
    state = fit_threshold(scores, cfg)
    state["entities"] = fit_entity_thresholds(scores, keys, cfg)
    assert set(state["entities"]) == {"a", "b"}  # too few rows: pooled
    ta, tb = state["entities"]["a"]["value"], state["entities"]["b"]["value"]
    assert tb == pytest.approx(3 * ta, rel=0.35)
    t = row_thresholds(state, np.array(["a", "b", "tiny", "new"], dtype=object), 4)
    assert t.tolist() == [ta, tb, state["value"], state["value"]]
    p = row_probability(np.array([5.0, 5.0]), state, np.array(["a", "b"], dtype=object))
    assert p[0] > p[1]  # 5 is rarer for a than for b
    assert refit_threshold(state, ThresholdConfig(method="pot", risk=1e-3)).get("entities") is None


def test_set_threshold_pot_on_a_trained_model(fitted):
    import copy
    det = copy.copy(fitted)
    det.apply_overrides(["threshold.method=pot", "threshold.risk=0.0001"])
    assert det.threshold_["method"] == "pot"
    assert det.threshold_["value"] > fitted.threshold_["value"]
    det2 = copy.copy(fitted)
    with pytest.raises(UserError, match="pot_quantile"):
        det2.apply_overrides(["threshold.pot_quantile=0.9"])
    with pytest.raises(UserError, match="per_entity"):
        copy.copy(fitted).apply_overrides(["threshold.per_entity=true"])


def test_pot_is_stored_in_the_model(tmp_path, table):
    from attnad.detector import Detector
    from tests.factories import FAST
    df, _ = table
    cfg = Config.model_validate({**FAST, "data": {"id_columns": ["id"]},
                                 "train": {**FAST["train"], "max_steps": 30},
                                 "threshold": {"method": "pot", "risk": 1e-4}})
    det = Detector(cfg).fit(df)
    det.save(tmp_path / "m")
    back = Detector.load(tmp_path / "m")
    assert back.threshold_["method"] == "pot" and back.threshold_["tail"]["n"] > 0
    assert back.threshold_["value"] == det.threshold_["value"]
    assert back.training_["fingerprint"]["rows"] == len(df)


def test_pot_raises_the_tail_start_past_a_cluster_of_high_normal_scores():
    """As on adbench_http: 1% of normal rows score far above the rest. A GPD fitted across that
    jump put the 1e-3 threshold past every score (0 flags); the tail must start above the jump."""
    rng = np.random.default_rng(7)

    def draw(n):
        return np.where(rng.random(n) < 0.01, rng.uniform(1000, 3000, n), rng.exponential(1, n))

    state = fit_threshold(draw(20_000), pot(1e-3))
    assert state["tail"]["level"] > 0.99 and state["tail"]["fit_pvalue"] > 0.05
    rate = float((draw(1_000_000) > state["value"]).mean())
    assert 1e-3 / 2.5 < rate < 1e-3 * 2.5, rate


def test_per_entity_thresholds_are_fitted_and_used(ts_setup):
    det, root, test, path, _ = ts_setup
    ents = det.threshold_["entities"]
    assert set(ents) == {"h0", "h1", "h2"}
    assert ents["h2"]["value"] > max(ents["h0"]["value"], ents["h1"]["value"])
    out = root / "flags.parquet"
    score_file(det, path, out, flags=True)
    got = pd.read_parquet(out)
    keys = test["host"].to_numpy(object)
    expect = got["anomaly_score"].to_numpy() > row_thresholds(det.threshold_, keys, len(got))
    assert (got["anomaly_flag"].to_numpy() == expect).all()
    # one threshold given for the run overrides the per-entity ones
    score_file(det, path, out, flags=True, threshold=1e9)
    assert not pd.read_parquet(out)["anomaly_flag"].any()
    back = Detector.load(root / "model")
    assert back.threshold_["entities"] == ents
