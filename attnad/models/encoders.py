"""Per-step encoders: turn each time step's input vector into a d-dimensional token.

The article's step 2: before attention mixes the steps of a window, each step is embedded, either
on its own (linear), with its close neighbours (a small 1-D CNN, which sees local shape such as a
spike's edges), or with the whole window in order (a bidirectional GRU or LSTM, which sees trends).
Every encoder maps (B, T, C) to (B, T, d) and keeps the time axis, so one step stays one token.

    enc = build_encoder("cnn", in_features=2 * F, d=32)
    tokens = enc(x)   # (B, T, 32)
"""

from __future__ import annotations

import torch
from torch import nn

ENCODERS = ("linear", "cnn", "gru", "lstm")
CNN_KERNEL = 5  # odd, so that padding keeps every step at its own position


class LinearEncoder(nn.Module):
    """One step in, one token out: the encoder with the least inductive bias."""

    def __init__(self, in_features: int, d: int):
        super().__init__()
        self.proj = nn.Linear(in_features, d)

    def forward(self, x):
        return self.proj(x)  # (B, T, d)


class ConvEncoder(nn.Module):
    """Two same-padded 1-D convolutions: each token sees CNN_KERNEL + 4 neighbouring steps."""

    def __init__(self, in_features: int, d: int):
        super().__init__()
        pad = CNN_KERNEL // 2
        self.net = nn.Sequential(nn.Conv1d(in_features, d, CNN_KERNEL, padding=pad), nn.GELU(),
                                 nn.Conv1d(d, d, CNN_KERNEL, padding=pad))

    def forward(self, x):
        return self.net(x.transpose(1, 2)).transpose(1, 2)  # (B, C, T) inside, (B, T, d) out


class RecurrentEncoder(nn.Module):
    """A bidirectional GRU/LSTM; the two directions' states (d/2 each) are concatenated."""

    def __init__(self, in_features: int, d: int, cell: str):
        super().__init__()
        if d % 2:
            raise ValueError(f"model.d_model ({d}) must be even for the {cell} encoder")
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(in_features, d // 2, batch_first=True, bidirectional=True)

    def forward(self, x):
        out, _ = self.rnn(x)  # (B, T, d)
        return out


def build_encoder(name: str, in_features: int, d: int) -> nn.Module:
    if name == "linear":
        return LinearEncoder(in_features, d)
    if name == "cnn":
        return ConvEncoder(in_features, d)
    if name in ("gru", "lstm"):
        return RecurrentEncoder(in_features, d, name)
    raise ValueError(f"unknown encoder {name!r}; choose from {', '.join(ENCODERS)}")
