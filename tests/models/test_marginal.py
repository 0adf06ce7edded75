import math

import numpy as np
import torch

from attnad.models.marginal import MarginalTails


def _cloud(n=2000, d=3, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


def test_surprise_is_zero_at_the_median_and_grows_into_either_tail():
    x = _cloud()
    tails = MarginalTails.fit(x)
    probe = torch.tensor([[0.0, 0, 0], [2.0, 0, 0], [-2.0, 0, 0], [3.0, 0, 0], [50.0, 0, 0]])
    s = tails.surprise(probe).numpy()
    assert s[0] < 0.1
    assert 2.0 < s[1] < 4.5 and 2.0 < s[2] < 4.5  # P(|z| > 2) ~ 4.6%: -log(0.046) ~ 3.1
    assert s[3] > s[1]
    # beyond every training value: capped at log((K + 1) / 2), not infinite
    cells = tails.column_surprise(probe[4:]).numpy()[0]
    assert math.isclose(cells[0], math.log((1024 + 1) / 2), rel_tol=1e-4)


def test_exact_below_the_grid_size():
    x = _cloud(n=500)  # fewer rows than quantiles kept: the grid is the sorted column
    tails = MarginalTails.fit(x)
    assert tails.grid.shape == (3, 500)
    assert torch.equal(tails.grid[0], x[:, 0].sort().values)
    far = tails.surprise(torch.tensor([[99.0, 0, 0]])).item()
    assert math.isclose(far, math.log(501 / 2), abs_tol=0.2)  # the two median cells add ~0


def test_a_rare_category_is_as_surprising_as_it_is_rare():
    n = 4000
    flag = np.zeros((n, 1), np.float32)
    flag[:40] = 1.0  # set on 1% of rows, as a one-hot column of row_vectors would be
    tails = MarginalTails.fit(torch.from_numpy(flag))
    s = tails.surprise(torch.tensor([[0.0], [1.0]])).numpy()
    assert s[0] == 0.0  # the common value carries no surprise
    assert abs(s[1] - (-math.log(2 * 0.01))) < 0.1


def test_tail_probabilities_from_the_grid_match_the_exact_ones():
    x = _cloud(n=50_000, d=2, seed=3)
    approx = MarginalTails.fit(x).column_surprise(x[:5000])
    exact = MarginalTails.fit(x, grid_size=50_000).column_surprise(x[:5000])
    # up to the grid's resolution: two-sided tail probabilities within ~1/1,024 of the exact
    gap = (torch.exp(-approx) - torch.exp(-exact)).abs().max().item()
    assert gap < 3 / 1024


def test_state_round_trip():
    x = _cloud()
    tails = MarginalTails.fit(x)
    again = MarginalTails.from_state(tails.state())
    assert torch.equal(tails.surprise(x), again.surprise(x))


def test_a_dense_group_of_anomalies_in_training_stays_surprising():
    """The case this part is for: 30% of the training rows are one tight group, 4 spreads out
    on half the columns. Row attention finds them close neighbours of each other (measured
    here: AUROC 0.20); their values stay in the tails of those columns (0.81)."""
    from sklearn.metrics import roc_auc_score

    from attnad.models.memory import RowMemory
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 10)).astype(np.float32)
    x[:450, :5] = 4.0 + 0.01 * rng.normal(size=(450, 5))
    y = np.r_[np.ones(450), np.zeros(1050)]
    v = torch.from_numpy(x)
    marginal = roc_auc_score(y, MarginalTails.fit(v).surprise(v).numpy())
    memory = roc_auc_score(y, RowMemory.fit(v, 256, 8, seed=0).energy(v).numpy())
    assert memory < 0.5 < 0.75 < marginal


def _fit(df, **model):
    from attnad.config import Config
    from attnad.detector import Detector
    from tests.factories import FAST
    cfg = Config.model_validate({**FAST, "data": {"id_columns": ["id"]},
                                 "train": {**FAST["train"], "min_steps": 50, "max_steps": 50},
                                 "model": {**FAST["model"], **model}})
    return Detector(cfg).fit(df)


def test_detector_adds_the_tails_as_a_third_part_and_saves_them(tmp_path):
    from attnad.detector import Detector
    from tests.factories import make_table
    df, kinds = make_table(400, seed=5)
    det = _fit(df)
    assert set(det.components_) == {"reconstruction", "memory", "marginal"}
    assert det.components_["marginal"]["weight"] == 1.0
    parts = det._component_scores(det.encode(df)[0])
    c = det.preprocessor_.feature_names.index("c")
    cells = det.marginal_.column_surprise(torch.from_numpy(
        det.preprocessor_.row_vectors(det.encode(df)[0])))[:, c]
    assert cells[kinds["extreme"]] == cells.max() > 4  # c = 25 spreads out: the column's far tail
    assert parts["marginal"][kinds["extreme"]] > np.quantile(parts["marginal"], 0.9)
    det.save(tmp_path / "m")
    again = Detector.load(tmp_path / "m")
    assert torch.equal(again.marginal_.grid, det.marginal_.grid)
    assert np.array_equal(again.score(df), det.score(df))
    off = _fit(df, marginal_weight=0.0)
    assert off.marginal_ is None and "marginal" not in off.components_


def test_a_model_saved_before_the_tails_still_loads_and_scores_the_same(tmp_path):
    import json

    import pytest

    from attnad.detector import Detector
    from attnad.errors import ModelError
    from tests.factories import make_table
    df, _ = make_table(300, seed=6)
    det = _fit(df, marginal_weight=0.0)  # the parts and files of a model from before
    det.save(tmp_path / "m")
    meta_path = tmp_path / "m" / "attnad.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["model"]["marginal_weight"]
    meta_path.write_text(json.dumps(meta))
    old = Detector.load(tmp_path / "m")
    assert old.marginal_ is None
    assert np.array_equal(old.score(df), det.score(df))
    # components that name tails the files do not hold: refused, not silently scored without
    meta["components"]["marginal"] = {"center": 0.0, "scale": 1.0, "weight": 1.0}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="marginal"):
        Detector.load(tmp_path / "m")


def test_a_rows_surprise_does_not_depend_on_its_batch():
    """Scores must not change with the batch a row arrives in (the Ray engine cuts files into
    other batches than the local one): float32 sums differed by ~1e-7 between batch sizes."""
    x = _cloud(n=3000, d=37, seed=4)
    tails = MarginalTails.fit(x)
    whole = tails.surprise(x)
    for size in (1, 7, 192, 1000):
        parts = torch.cat([tails.surprise(x[i:i + size]) for i in range(0, len(x), size)])
        assert torch.equal(parts, whole), size
