"""The time-step models: shapes, padding, encoders; errors only where cells were hidden."""

import pytest
import torch

from attnad.config import AttentionPoolingConfig, TemporalTransformerConfig
from attnad.models import build_series_model
from attnad.timeseries.masks import cell_patterns


def _inputs(B=3, T=16, F=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    hidden = torch.rand(B, T, F, generator=g) < 0.25
    valid = torch.ones(B, T, dtype=torch.bool)
    valid[0, :6] = False  # a window longer than its series: left padding
    return x, hidden, valid


@pytest.mark.parametrize("cfg", [TemporalTransformerConfig(window=16, d_model=8, n_heads=2,
                                                           encoder=e)
                                 for e in ("linear", "cnn", "gru", "lstm")]
                         + [AttentionPoolingConfig(window=16, d_model=8)],
                         ids=["linear", "cnn", "gru", "lstm", "pooling"])
def test_shapes_errors_and_padding_is_ignored(cfg):
    torch.manual_seed(0)
    model = build_series_model(cfg, 4).eval()
    x, hidden, valid = _inputs()
    target = hidden & valid[..., None]
    err = model.cell_errors(x, hidden, target, valid)
    assert err.shape == (3, 16, 4)
    assert torch.all(err[~target] == 0) and torch.all(err[target] > 0)
    # whatever sits in the padding cannot change the prediction of real steps
    x2 = x.clone()
    x2[0, :6] = 100.0
    with torch.no_grad():
        a, b = model(x, hidden, valid), model(x2, hidden, valid)
    assert torch.allclose(a[:, 6:], b[:, 6:], atol=1e-5)


def test_scoring_masks_hide_every_cell_exactly_once():
    pat = cell_patterns(window=16, n_features=5, masks=4, seed=0)
    assert pat.shape == (4, 16, 5)
    assert torch.all(pat.sum(0) == 1)
    assert all(0 < int(m.sum()) < 16 * 5 for m in pat)


def test_model_learns_to_fill_in_a_smooth_signal():
    """A few steps of training must beat predicting zeros on a sine wave (the model can fail)."""
    torch.manual_seed(0)
    cfg = TemporalTransformerConfig(window=16, d_model=16, n_heads=2)
    model = build_series_model(cfg, 1)
    t = torch.arange(16).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    valid = torch.ones(64, 16, dtype=torch.bool)
    for _ in range(300):  # a linear encoder needs ~200 steps to find its neighbours
        x = torch.sin(t / 2 + torch.rand(64, 1) * 6.28).unsqueeze(-1)  # (64, 16, 1)
        hidden = torch.rand(64, 16, 1) < 0.25
        loss = model.cell_errors(x, hidden, hidden, valid).sum() / hidden.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        x = torch.sin(t / 2 + torch.rand(64, 1) * 6.28).unsqueeze(-1)
        hidden = torch.rand(64, 16, 1) < 0.25
        mse = model.cell_errors(x, hidden, hidden, valid).sum() / hidden.sum()
    assert mse < 0.2 * (x[hidden] ** 2).mean()


def test_latent_bottleneck_passes_a_window_through_latents_times_latent_dim_numbers():
    """With model.latents K and latent_dim r every output of a window is a function of K * r
    numbers: the Jacobian of outputs with respect to inputs has rank at most K * r."""
    from attnad.config import TemporalTransformerConfig
    from attnad.models.temporal import TemporalTransformer
    torch.manual_seed(0)
    cfg = TemporalTransformerConfig(window=12, d_model=16, n_heads=2, latents=2, latent_dim=1)
    model = TemporalTransformer(cfg, n_features=3).eval()
    hidden = torch.zeros(1, 12, 3, dtype=torch.bool)
    valid = torch.ones(1, 12, dtype=torch.bool)
    x = torch.randn(1, 12, 3)
    jac = torch.autograd.functional.jacobian(lambda v: model(v, hidden, valid).flatten(), x)
    assert torch.linalg.matrix_rank(jac.reshape(36, 36), atol=1e-5) <= 2
    plain = TemporalTransformer(TemporalTransformerConfig(window=12, d_model=16, n_heads=2), 3)
    jac = torch.autograd.functional.jacobian(lambda v: plain.eval()(v, hidden, valid).flatten(), x)
    assert torch.linalg.matrix_rank(jac.reshape(36, 36), atol=1e-5) > 2
