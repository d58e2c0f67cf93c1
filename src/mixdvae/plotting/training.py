"""Training curves of a DVAE pretraining run (the records of ``log.jsonl``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from mixdvae.plotting.save import save_figure

__all__ = ["plot_loss_curves"]


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_loss_curves(path: str | os.PathLike, history: Sequence[dict[str, Any]]) -> Path:
    """Write a figure of the training and validation losses against the epoch.

    Top panel: the loss per frame (train: the warmed-up objective; validation: recon + beta KL),
    the best validation epoch marked. Bottom panel: its two terms, reconstruction -log p(x | z)
    and KL per frame, for training and validation. The format follows the suffix of ``path``
    (``.png``, ``.pdf``, ``.svg``); the file is written atomically, without pyplot's global state.

    ``history``: records with ``epoch``, ``train_loss``, ``val_loss`` (None when not validated),
    and optionally ``train_recon``, ``train_kl``, ``val_recon``, ``val_kl``.
    """
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(7.0, 6.0), layout="constrained")
    ax_loss, ax_terms = fig.subplots(2, 1, sharex=True)
    for key, label, style in (("train_loss", "train", "-"), ("val_loss", "validation", "-")):
        epochs, values = _series(history, key)
        if values:
            ax_loss.plot(epochs, values, style, label=label, marker="." if len(values) < 50 else None)
    epochs, values = _series(history, "val_loss")
    if values:
        best = min(range(len(values)), key=values.__getitem__)
        ax_loss.axvline(epochs[best], color="0.5", linestyle="--", linewidth=1)
        ax_loss.plot([epochs[best]], [values[best]], "o", color="C3",
                     label=f"best: epoch {epochs[best]}, {values[best]:.4g}")
    ax_loss.set_ylabel("loss per frame")
    ax_loss.set_title("DVAE pretraining")
    ax_loss.legend(loc="upper right")
    ax_loss.grid(alpha=0.3)
    for i, (prefix, label) in enumerate((("train", "train"), ("val", "validation"))):
        for key, term, style in ((f"{prefix}_recon", "recon", "-"), (f"{prefix}_kl", "KL", ":")):
            epochs, values = _series(history, key)
            if values:
                ax_terms.plot(epochs, values, style, color=f"C{i}", label=f"{label} {term}")
    ax_terms.set_xlabel("epoch")
    ax_terms.set_ylabel("per frame")
    if ax_terms.lines:
        ax_terms.legend(loc="upper right", fontsize="small")
    ax_terms.grid(alpha=0.3)
    return save_figure(fig, path, dpi=120, fmt=path.suffix.lstrip(".").lower() or "png")
