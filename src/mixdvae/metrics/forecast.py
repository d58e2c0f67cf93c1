"""Scores of trajectory forecasts (pure functions of arrays; never imports a model)."""

from __future__ import annotations

import numpy as np
import torch

from mixdvae.errors import NumericalError

__all__ = ["forecast_rmse"]


def _as_float64(a: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def forecast_rmse(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """Root mean squared error over the elements where the target is known.

        RMSE = sqrt( Σ_i m_i (x̂_i − x_i)² / Σ_i m_i ),   m_i = 1 if x_i is not NaN, else 0

    A NaN in ``target`` marks a missing value (e.g. a missed detection) and is skipped.

    >>> forecast_rmse(np.array([1.0, 2.0, 5.0]), np.array([1.0, 4.0, np.nan]))
    1.4142135623730951

    Shape:
        pred, target: any equal shapes -> float

    Raises:
        ValueError: the shapes differ.
        NumericalError: ``target`` holds ±inf, holds no known value, or ``pred`` is NaN or ±inf
            where ``target`` is known.
    """
    p, t = _as_float64(pred), _as_float64(target)
    if p.shape != t.shape:
        raise ValueError(f"forecast_rmse: pred has shape {p.shape} but target has shape {t.shape}")
    known = ~np.isnan(t)
    if np.isinf(t).any():
        raise NumericalError(f"forecast_rmse: target holds {int(np.isinf(t).sum())} infinite values")
    if not known.any():
        raise NumericalError("forecast_rmse: target holds no known (non-NaN) value")
    bad = known & ~np.isfinite(p)
    if bad.any():
        first = tuple(int(v) for v in np.argwhere(bad)[0])
        raise NumericalError(
            f"forecast_rmse: pred is non-finite at {int(bad.sum())} known target elements (first at index {first})"
        )
    diff = p[known] - t[known]
    return float(np.sqrt(np.mean(diff * diff)))
