"""Missing cells are evidence where training was (almost) never missing (issue 19, item 2): a
blank row must not score as the most normal row, and explanations name the missing columns."""

import copy

import numpy as np
import pandas as pd
import torch

from attnad.models.marginal import missing_surprisal
from attnad.pipeline import explain_columns
from tests.factories import make_table


def test_missing_surprisal_follows_the_training_missing_share():
    mask = torch.zeros(999, 3, dtype=torch.bool)
    mask[:10, 1] = True  # 1% missing
    mask[:600, 2] = True  # 60% missing: half the rows or more, no evidence
    s = missing_surprisal(mask)
    assert abs(float(s[0]) - np.log(1000 / 2)) < 1e-9  # never missing: as if 1 in n + 1
    assert abs(float(s[1]) - float(-np.log(2 * 10 / 999))) < 1e-9
    assert s[2] == 0


def test_a_blank_row_ranks_near_the_top_and_is_explained_by_its_missing_columns(fitted):
    test, _ = make_table(300, seed=1, planted=False)
    blank = pd.DataFrame([{c: None for c in test.columns}]).assign(id="blank")
    one_gap = test.head(1).assign(id="gap", a=np.nan)  # 'a' is never missing in training
    rows = pd.concat([test, blank, one_gap], ignore_index=True)
    scores, contrib, _ = fitted.score_with_contributions(rows)
    assert scores[-2] > np.quantile(scores[:-2], 0.99)  # the blank row: top 1%
    assert scores[-1] > fitted.score_samples(test.head(1))[0]  # one gap raises the score
    feats, _ = explain_columns(contrib[-1:], fitted.feature_sources, 1)
    assert feats == ["a"]
    blank_feats, _ = explain_columns(contrib[-2:-1], fitted.feature_sources, 3)
    assert blank_feats[0] != ""


def test_rows_without_missing_cells_score_as_without_the_missing_term(fitted):
    """The missing term only adds where cells are missing: a model saved before it existed (no
    missing shares) scores complete rows bit for bit as today's."""
    test, _ = make_table(300, seed=1, planted=False)
    complete = test.dropna()
    old = copy.copy(fitted)
    old.marginal_ = copy.copy(fitted.marginal_)
    old.marginal_.missing = None
    assert np.array_equal(old.score_samples(complete), fitted.score_samples(complete))
