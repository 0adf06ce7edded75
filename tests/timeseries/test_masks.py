"""The masks the series model fills in (attnad.timeseries.masks)."""

import torch


def test_span_patterns_hide_every_cell_once_in_blocks():
    from attnad.timeseries.masks import span_patterns
    pats = span_patterns(window=10, n_features=3, masks=4)
    assert pats.shape == (4, 10, 3)
    assert (pats.sum(0) == 1).all()  # every cell hidden by exactly one mask
    for p in pats:  # each mask hides one run of consecutive steps, in every signal alike
        steps = torch.nonzero(p[:, 0]).flatten()
        assert (steps.diff() == 1).all() and (p == p[:, :1]).all()
