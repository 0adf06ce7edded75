"""Leave-one-out cell attention: no cell sees itself, every cell is scored in one pass."""

import numpy as np
import pytest
import torch

from attnad.config import Config, LeaveOneOutConfig
from attnad.detector import Detector
from attnad.models import build_model
from tests.factories import FAST


def _inputs(n_numeric, cardinalities, rows=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    num = torch.randn(rows, n_numeric, generator=g)
    miss = torch.rand(rows, n_numeric, generator=g) < 0.2
    cat = torch.stack([torch.randint(0, c, (rows,), generator=g) for c in cardinalities], 1) \
        if cardinalities else torch.zeros(rows, 0, dtype=torch.long)
    return num, miss, cat


@pytest.mark.parametrize("n_numeric,cardinalities,max_tokens", [
    (6, [], 64),         # numbers only
    (4, [3, 5], 64),     # numbers, missing cells and categories
    (0, [4, 3], 64),     # categories only
    (12, [3], 4),        # wide: numeric columns pooled three to a token
])
def test_no_cell_sees_its_own_value(n_numeric, cardinalities, max_tokens):
    """Changing one cell must leave that cell's prediction unchanged (and change others'):
    a model that could see the cell would learn to copy it and score nothing."""
    torch.manual_seed(0)
    cfg = LeaveOneOutConfig(d_model=8, n_heads=2, n_layers=3, max_tokens=max_tokens)
    model = build_model(cfg, n_numeric, cardinalities).eval()
    num, miss, cat = _inputs(n_numeric, cardinalities)
    base_num, base_cat = model.predict(num, miss, cat)
    own_group = (lambda j: j // model.numeric_groups.s) if model.grouped else (lambda j: j)
    for j in range(n_numeric):
        bumped = num.clone()
        bumped[:, j] += 3.0
        pred, _ = model.predict(bumped, torch.zeros_like(miss), cat)
        ref, _ = model.predict(num, torch.zeros_like(miss), cat)
        same = [k for k in range(n_numeric) if own_group(k) == own_group(j)]
        assert torch.allclose(pred[:, same], ref[:, same], atol=1e-6), f"column {j} sees itself"
        others = [k for k in range(n_numeric) if k not in same]
        if others:
            assert not torch.allclose(pred[:, others], ref[:, others])
    for j, c in enumerate(cardinalities):
        changed = cat.clone()
        changed[:, j] = (changed[:, j] + 1) % c
        num_pred, logits = model.predict(num, miss, changed)
        assert torch.allclose(logits[:, j], base_cat[:, j], atol=1e-6), f"category {j} sees itself"
        if n_numeric:  # the other cells do see it
            assert not torch.allclose(base_num, num_pred)


def test_every_present_cell_is_scored_in_one_pass():
    torch.manual_seed(0)
    model = build_model(LeaveOneOutConfig(d_model=8, n_heads=2), 5, [3]).eval()
    masks = model.scoring_masks(0)
    assert masks.shape == (1, 6) and bool(masks.all())
    num, miss, cat = _inputs(5, [3])
    err = model.masked_errors(num, miss, cat, masks)  # (1, B, F)
    assert torch.equal(torch.isnan(err[0, :, :5]), miss)  # only missing numbers lack an error
    assert not torch.isnan(err[0, :, 5:]).any()


def test_one_column_predicts_from_nothing():
    model = build_model(LeaveOneOutConfig(d_model=8, n_heads=2), 1, []).eval()
    num, miss, cat = _inputs(1, [])
    pred, _ = model.predict(num, torch.zeros_like(miss), cat)
    assert torch.isfinite(pred).all()
    assert torch.allclose(pred, pred[:1].expand_as(pred))  # no other cell: one prediction for all


def test_detector_with_leave_one_out_finds_planted_anomalies(table, tmp_path):
    df, kinds = table
    cfg = Config.model_validate({**FAST, "data": {"id_columns": ["id"]},
                                 "model": {"type": "leave_one_out", "d_model": 16, "n_heads": 2}})
    det = Detector(cfg).fit(df)
    scores = det.score(df)
    ranks = {k: int((scores > scores[row]).sum()) for k, row in kinds.items()}
    assert all(r < 24 for r in ranks.values()), ranks  # top 2% of 1,200 rows
    det.save(tmp_path / "m")
    again = Detector.load(tmp_path / "m")
    assert np.array_equal(again.score(df), scores)
