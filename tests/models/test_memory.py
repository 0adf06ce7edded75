import numpy as np
import torch

from attnad.models.memory import RowMemory, temperature


def _cloud(n=600, d=4, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


def test_far_points_score_higher_than_near_ones():
    x = _cloud()
    mem = RowMemory.fit(x, size=128, count=8, seed=0)
    probe = torch.tensor([[0.0, 0, 0, 0], [6.0, 6, 0, 0]])
    e = mem.energy(probe)
    assert e[1] > e[0] + 5


def test_own_copy_does_not_vouch_for_a_training_row():
    x = _cloud()
    x[0] = torch.tensor([8.0, 8, 8, 8])  # an anomaly inside the training data
    mem = RowMemory.fit(x, size=600, count=1, seed=0)  # the memory holds every row, itself too
    e = mem.energy(x)
    assert int(torch.argmax(e)) == 0
    # a second identical anomaly is a real neighbour and does lower the score
    x2 = torch.cat([x, x[:1]])
    e2 = RowMemory.fit(x2, size=601, count=1, seed=0).energy(x2[:1])
    assert e2[0] < e[0]


def test_own_copy_is_recognised_in_wide_rows_with_large_values():
    """Squared distances come from |x|^2 + |m|^2 - 2 x.m, whose float32 rounding grows with the
    norms: an exact copy must still be recognised as one (it was missed in about a third of
    the rows of 40 columns of scale 3, which then vouched for themselves)."""
    x = _cloud(300, 40) * 3.0
    mem = RowMemory.fit(x, size=300, count=1, seed=0)  # every row is in the memory
    e_self = mem.energy(x[:150])
    reference = []
    for i in range(150):
        others = torch.cat([x[:i], x[i + 1:]])
        d = ((x[i] - others) ** 2).sum(1)
        reference.append(-torch.logsumexp(-d / mem.taus[0], 0))
    assert torch.allclose(e_self, torch.stack(reference), rtol=1e-4, atol=1e-3)


def test_energy_equals_the_direct_formula():
    x = _cloud(500, 12) * 2.0
    mem = RowMemory.fit(x[:400], size=100, count=5, seed=3)
    probe = x[400:]  # not in any memory: no copy to drop
    d = ((probe[:, None, None] - mem.memories[None]) ** 2).sum(-1)  # (n, J, m)
    direct = -torch.logsumexp(-d / mem.taus[None, :, None], -1).mean(1)
    assert torch.allclose(mem.energy(probe), direct, rtol=1e-4, atol=1e-3)


def test_temperature_is_scale_free():
    x = _cloud()
    assert np.isclose(temperature(x * 10) / temperature(x), 100.0, rtol=1e-3)


def test_state_round_trip():
    x = _cloud()
    mem = RowMemory.fit(x, size=64, count=4, seed=1)
    again = RowMemory.from_state(mem.state())
    assert torch.equal(mem.energy(x), again.energy(x))
