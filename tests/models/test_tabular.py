"""Fitted-attribute contract, planted anomalies, save/load and determinism, for both models."""

import numpy as np
import pytest

from attnad.config import Config
from attnad.detector import Detector
from tests.factories import FAST, make_table


def _rank_of(scores, row):
    return int((scores > scores[row]).sum())  # 0 = highest score


def test_fitted_attributes(fitted):
    for attr in ("schema_", "preprocessor_", "model_", "threshold_", "error_scales_", "masks_", "models_"):
        assert hasattr(fitted, attr)
    assert Detector(fitted.config).config is fitted.config  # constructor only stores


def test_unfitted_detector_refuses_to_score(table):
    with pytest.raises(RuntimeError, match="not fitted"):
        Detector().score(table[0])


def test_planted_anomalies_rank_on_top(table, fitted):
    df, kinds = table
    scores = fitted.score(df)
    assert np.all(np.isfinite(scores)) and len(scores) == len(df)
    for kind, row in kinds.items():
        # top 2% of 1,200 rows (a random score would rank about 600): each kind stands out
        assert _rank_of(scores, row) < 24, f"{kind} ranked {_rank_of(scores, row)}"


def test_contributions_name_the_corrupt_column(table, fitted):
    df, kinds = table
    _, contrib, _ = fitted.score_with_contributions(df.iloc[[kinds["extreme"]]])
    names = fitted.preprocessor_.feature_names
    assert names[int(np.argmax(contrib[0]))] == "c"


def test_save_load_gives_identical_scores(table, fitted, tmp_path):
    df, _ = table
    fitted.save(tmp_path / "m")
    again = Detector.load(tmp_path / "m")
    assert np.array_equal(fitted.score(df), again.score(df))
    assert again.threshold_["value"] == fitted.threshold_["value"]


def test_same_seed_same_scores_and_refit_is_reproducible(fast_config):
    df, _ = make_table(400, seed=3)
    det = Detector(fast_config)
    a = det.fit(df).score(df)
    b = det.fit(df).score(df)  # refit of the same object: seeds resolved inside fit
    assert np.array_equal(a, b)


def test_attention_pooling_model_detects_planted_anomalies(table):
    df, kinds = table
    # one model on all rows: this tests the model type; cross-fitting
    # (tests/tabular/test_crossfit.py) halves each model's rows, which on this 1,200-row table
    # moves the rare combination 14 -> 38
    cfg = Config.model_validate({**FAST, "data": {"id_columns": ["id"]},
                                 "train": {**FAST["train"], "cross_fit": 1},
                                 "model": {"type": "attention_pooling", "d_model": 16}})
    det = Detector(cfg).fit(df)
    scores = det.score(df)
    assert _rank_of(scores, kinds["extreme"]) < 12
    assert _rank_of(scores, kinds["rare_combination"]) < 24


def test_pooling_weights_are_a_distribution():
    import torch

    from attnad.models.pooling import AttentionPooling
    pool = AttentionPooling(8)
    x = torch.randn(4, 5, 8)
    hidden = torch.zeros(4, 5, dtype=torch.bool)
    hidden[:, 0] = True
    z, a = pool(x, hidden)
    assert torch.allclose(a.sum(-1), torch.ones(4)) and torch.all(a[:, 0] == 0)
    assert torch.allclose(z, (a.unsqueeze(-1) * x).sum(1))


@pytest.mark.parametrize("n_columns,max_tokens", [(100, 64), (150, 16), (65, 64)])
def test_grouped_columns_fill_every_token(n_columns, max_tokens):
    from attnad.models.masked import GroupedNumericCells
    g = GroupedNumericCells(n_columns, 8, max_tokens)
    assert g.g <= max_tokens and bool((g.real.sum(-1) > 0).all())  # no empty token
    assert int(g.real.sum()) == n_columns


def test_wide_table_pools_columns_and_still_finds_a_corrupt_one():
    rng = np.random.default_rng(0)
    n, f = 600, 150
    base = rng.normal(size=(n, 3))
    x = base @ rng.normal(size=(3, f)) + 0.05 * rng.normal(size=(n, f))  # 150 correlated columns
    import pandas as pd
    df = pd.DataFrame(x, columns=[f"c{i}" for i in range(f)])
    df["colour"] = rng.choice(["a", "b"], n)
    df.loc[7, "c42"] += 15.0  # breaks the low-rank structure in one cell
    cfg = Config.model_validate({**FAST, "model": {**FAST["model"], "max_tokens": 16},
                                 "train": {**FAST["train"], "min_steps": 300}})
    det = Detector(cfg).fit(df)
    assert det.model_.grouped
    scores, contrib, _ = det.score_with_contributions(df)
    # one cell of 150 is diluted in the row's mean, so the row ranks well but not first (47th
    # of 600 before the column-tail part, 65th with it: 150 mixtures of 3 factors make rows
    # with extreme factors extreme in every column); the contributions must still name the cell
    assert _rank_of(scores, 7) < 90
    assert det.preprocessor_.feature_names[int(np.argmax(contrib[7]))] == "c42"


@pytest.mark.parametrize("n_numeric,cardinalities,n_layers", [
    (12, [], 2),          # numbers only, the default depth
    (5, [3, 7, 2], 2),    # numbers with missing cells and categories
    (4, [5], 1),          # one block: first and last at once
    (0, [4, 6, 3], 3),    # categories only, three blocks
])
def test_scoring_shortcut_equals_the_plain_forward_pass(n_numeric, cardinalities, n_layers):
    """TabularTransformer.masked_errors skips work that the masks repeat; it must give the
    errors of running every (row, mask) pair through the model."""
    import torch

    from attnad.config import TabularTransformerConfig
    from attnad.models.masked import MaskedCellModel, scoring_masks
    from attnad.models.tabular import TabularTransformer
    torch.manual_seed(0)
    model = TabularTransformer(TabularTransformerConfig(n_layers=n_layers), n_numeric,
                               cardinalities).eval()
    rows = 70
    num = torch.randn(rows, n_numeric) * 3
    missing = torch.rand(rows, n_numeric) < 0.15
    num = num.masked_fill(missing, 0.0)
    cat = torch.stack([torch.randint(0, c, (rows,)) for c in cardinalities], 1) \
        if cardinalities else torch.zeros(rows, 0, dtype=torch.long)
    masks = scoring_masks(n_numeric + len(cardinalities), 0.3, 8, seed=1)
    with torch.inference_mode():
        plain = MaskedCellModel.masked_errors(model, num, missing, cat, masks)
        fast = model.masked_errors(num, missing, cat, masks)
    assert fast.shape == plain.shape == (len(masks), rows, n_numeric + len(cardinalities))
    assert torch.equal(fast.isnan(), plain.isnan())
    assert (~plain.isnan()).sum() > 0
    torch.testing.assert_close(fast.nan_to_num(0), plain.nan_to_num(0), rtol=1e-5, atol=1e-5)
