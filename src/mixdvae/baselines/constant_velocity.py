"""Constant-velocity one-step forecast: the simplest motion prior to beat."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

__all__ = ["constant_velocity_forecast"]

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def constant_velocity_forecast(x: Array) -> Array:
    """One-step-ahead constant-velocity prediction of x_t from x_{0:t-1}, for t = 1 … T−1.

        x̂_1 = x_0                                   (no velocity yet)
        x̂_t = x_{t−1} + (x_{t−1} − x_{t−2}) = 2 x_{t−1} − x_{t−2},   t >= 2

    Works on NumPy arrays and torch tensors (same type, dtype and device back). NaN inputs
    propagate to the forecasts that use them.

    Shape:
        x: (B, T, D), or any (..., T, D) with T >= 2 -> (B, T − 1, D): row t − 1 forecasts frame t.

    Raises:
        ValueError: ``x`` has fewer than 2 dimensions or fewer than 2 frames.
    """
    if x.ndim < 2 or x.shape[-2] < 2:
        raise ValueError(f"constant_velocity_forecast: x has shape {tuple(x.shape)}, expected (B, T, D) with T >= 2")
    first = x[..., :1, :]  # (..., 1, D): x̂_1 = x_0
    later = 2 * x[..., 1:-1, :] - x[..., :-2, :]  # (..., T - 2, D): x̂_t for t = 2 … T - 1
    if isinstance(x, torch.Tensor):
        return torch.cat([first, later], dim=-2)
    return np.concatenate([first, later], axis=-2)
