"""Small building blocks: the MLP used by every family, input transforms."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["MLP", "lstm_step", "make_activation", "shift_right"]


def make_activation(name: str) -> nn.Module:
    """``tanh`` or ``relu`` module."""
    return nn.Tanh() if name == "tanh" else nn.ReLU()


class MLP(nn.Module):
    """A stack of ``Linear -> activation`` blocks (the reference's ``Linear, act, Dropout(0)``).

    With no sizes it is the identity. Parameters are named ``layers.{i}.weight`` / ``.bias``.

    Shape: (..., in_dim) -> (..., out_dim)
    """

    def __init__(self, in_dim: int, sizes: Sequence[int], activation: str = "tanh"):
        super().__init__()
        dims = [in_dim, *sizes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.act = make_activation(activation)
        self.in_dim = in_dim
        self.out_dim = dims[-1]

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = self.act(layer(x))
        return x


def shift_right(x: Tensor) -> Tensor:
    """x_{t-1} for every t, with x_0 = 0.  Shape: (B, T, D) -> (B, T, D)."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)


def lstm_step(
    lstm: nn.LSTM, u: Tensor, state: tuple[Tensor, Tensor] | None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One step of a single-layer ``nn.LSTM`` with its own weights, via the fused cell.

    Equal to ``lstm(u[:, None], state)`` but without the sequence-call overhead, which dominates
    the per-frame recursions of the VEM. ``state`` is (h, c), each (B, H), or None for zeros.
    Shape: u (B, I) -> h (B, H), (h, c)
    """
    if state is None:
        zeros = u.new_zeros(u.shape[0], lstm.hidden_size)
        state = (zeros, zeros)
    h, c = torch.lstm_cell(u, state, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    return h, (h, c)
