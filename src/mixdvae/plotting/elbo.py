"""ELBO per VEM iteration over many independent runs (tracking windows, separation chunks).

One figure for a whole results file: the median and inter-quartile band of the ELBO L_i across runs,
and the same for the progress (L_i - L_1) / (L_I - L_1), which puts runs of very different ELBO on
one scale. Takes arrays, builds a matplotlib ``Figure`` without pyplot's global state, writes it
atomically.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mixdvae.plotting.save import save_figure

__all__ = ["plot_elbo", "elbo_progress"]

log = logging.getLogger(__name__)

_DPI = 110


def elbo_progress(elbo: np.ndarray) -> np.ndarray:
    """(L_i - L_1) / (L_I - L_1) per run: 0 at the first iteration, 1 at the last; NaN for a run whose
    ELBO did not move (L_I = L_1).

    Shape: elbo (W, I) -> (W, I).
    """
    elbo = np.asarray(elbo, dtype=np.float64)
    span = elbo[:, -1:] - elbo[:, :1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.abs(span) > 0, (elbo - elbo[:, :1]) / span, np.nan)


def plot_elbo(
    path: str | os.PathLike,
    elbo: np.ndarray | None,
    labels: Sequence[str] | None = None,
    num_curves: int = 5,
    title: str = "",
    unit: str = "window",
) -> Path | None:
    """PNG of the ELBO L_i per VEM iteration i over W runs; None (and a log line) if no ELBO.

    Left: median and inter-quartile band across runs, with the first ``num_curves`` runs drawn thin
    (named by ``labels``, default ``{unit} w``). Right: the same for the progress
    (L_i - L_1) / (L_I - L_1) (:func:`elbo_progress`; runs whose ELBO did not move are left out).
    NaN values are ignored. ``unit`` names a run in the legend: ``window`` (tracking), ``chunk``
    (separation).

    Shape:
        elbo: (W, I).
    """
    if elbo is None or np.size(elbo) == 0:
        log.info("plot_elbo: no ELBO history, %s not written", path)
        return None
    elbo = np.asarray(elbo, dtype=np.float64)
    if elbo.ndim != 2:
        raise ValueError(f"plot_elbo: elbo has shape {elbo.shape}, expected (W, I)")
    if not np.isfinite(elbo).any():
        log.info("plot_elbo: ELBO history is all NaN, %s not written", path)
        return None
    W, I = elbo.shape
    if labels is not None and len(labels) != W:
        raise ValueError(f"plot_elbo: {len(labels)} labels for {W} {unit}s")
    names = list(labels) if labels is not None else [f"{unit} {w}" for w in range(W)]
    iters = np.arange(1, I + 1)
    progress = elbo_progress(elbo)  # (W, I)

    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, values, ylabel in ((axes[0], elbo, "ELBO"), (axes[1], progress, r"$(L_i - L_1)\,/\,(L_I - L_1)$")):
        keep = np.isfinite(values).any(axis=1)
        if keep.any():
            with warnings.catch_warnings():  # "All-NaN slice" where every run is NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                q1, med, q3 = np.nanpercentile(values[keep], [25, 50, 75], axis=0)
            ax.fill_between(iters, q1, q3, color="tab:blue", alpha=0.2, linewidth=0, label="inter-quartile range")
            ax.plot(iters, med, color="tab:blue", linewidth=2.2, label=f"median of {int(keep.sum())} {unit}s")
        for w in range(min(num_curves, W)):
            ax.plot(iters, values[w], linewidth=0.9, alpha=0.8, color=f"C{w + 1}", label=names[w],
                    marker="." if I <= 30 else None, markersize=4)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("VEM iteration")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_title("ELBO per iteration", fontsize=10)
    axes[1].set_title("progress towards the final ELBO", fontsize=10)
    axes[1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=_DPI)
