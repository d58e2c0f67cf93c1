"""Plot one-step forecasts of box trajectories against the truth (takes arrays, never models)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mixdvae.errors import ConfigError
from mixdvae.plotting.save import save_figure

__all__ = ["plot_forecasts"]

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def _centres(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """xyxy -> box centre ((x1 + x2) / 2, (y1 + y2) / 2).  (..., 4) -> (...), (...)."""
    return (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2


def plot_forecasts(
    path: str | os.PathLike,
    target: np.ndarray,
    predictions: dict[str, np.ndarray],
    num: int = 6,
    title: str = "One-step forecasts (box centre)",
) -> Path:
    """PNG grid: for the first ``num`` trajectories, box centre x and y over time, truth and forecasts.

    One row per trajectory, columns centre x = (x1 + x2) / 2 and centre y = (y1 + y2) / 2 (y down),
    the truth as a solid black line and each named forecast dashed. A forecast with T_p <= T frames
    is drawn on the last T_p frames, so the (B, T − 1, 4) output of
    :func:`mixdvae.baselines.constant_velocity.constant_velocity_forecast` lands on frames 1 … T − 1.
    NaN values leave gaps. Written atomically.

    Shape:
        target: (B, T, 4) xyxy; predictions[name]: (B, T_p, 4), T_p <= T.

    Raises:
        ConfigError: ``num`` < 1.
        ValueError: shapes that do not match the above.
    """
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        raise ConfigError(f"num = {num!r}: must be an integer >= 1")
    target = np.asarray(target, dtype=np.float64)
    if target.ndim != 3 or target.shape[-1] != 4:
        raise ValueError(f"plot_forecasts: target has shape {target.shape}, expected (B, T, 4)")
    B, T, _ = target.shape
    preds = {}
    for name, pred in predictions.items():
        pred = np.asarray(pred, dtype=np.float64)
        if pred.ndim != 3 or pred.shape[0] != B or pred.shape[-1] != 4 or pred.shape[1] > T:
            raise ValueError(
                f"plot_forecasts: prediction '{name}' has shape {pred.shape}, expected ({B}, T_p <= {T}, 4)"
            )
        preds[name] = pred

    rows = min(num, B)
    fig = Figure(figsize=(10, 1.9 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False, sharex=True)
    frames = np.arange(T)
    tx, ty = _centres(target[:rows])  # (rows, T) each
    for i in range(rows):
        for col, (truth, label) in enumerate(((tx, "centre x"), (ty, "centre y (down)"))):
            ax = axes[i, col]
            ax.plot(frames, truth[i], color="black", linewidth=1.6, label="truth")
            for k, (name, pred) in enumerate(preds.items()):
                px, py = _centres(pred[i])
                t_p = pred.shape[1]
                ax.plot(
                    frames[T - t_p :],
                    (px, py)[col],
                    color=_COLOURS[k % len(_COLOURS)],
                    linestyle="--",
                    linewidth=1.1,
                    label=name,
                )
            ax.set_ylabel(f"#{i} {label}", fontsize=8)
            ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("frame")
    axes[0, 1].legend(fontsize=7, loc="best")
    fig.suptitle(title)
    return save_figure(fig, path, dpi=100)
