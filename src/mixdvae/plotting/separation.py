"""Plot a separation: spectrograms of the mixture, each estimate and each reference, the masks
(assignment posteriors) and the ELBO per iteration (takes arrays, never models).

:func:`plot_separation` draws one recording; :func:`plot_separation_results` draws chosen mixtures
of a mixtures file with their estimates, and the ELBO of every chunk in one figure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from mixdvae.errors import DataFormatError
from mixdvae.plotting.elbo import plot_elbo
from mixdvae.plotting.save import save_figure

__all__ = ["plot_separation", "plot_separation_results", "log_spectrogram"]

_SR, _HOP, _NFFT = 16000, 256, 1024


def log_spectrogram(x: np.ndarray) -> np.ndarray:
    """10 log10(|STFT|^2 + 1e-10) with the package's STFT (sine window 1024, hop 256).  (L,) -> (F, T)."""
    import torch

    from mixdvae.data.audio import stft

    spec = stft(torch.as_tensor(np.asarray(x, dtype=np.float32)))  # (T, F)
    return (10 * np.log10(spec.abs().numpy() ** 2 + 1e-10)).T


def plot_separation(
    path: str | os.PathLike,
    mixture: np.ndarray,
    estimates: np.ndarray,
    names: Sequence[str],
    references: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    elbo: np.ndarray | None = None,
    title: str = "separation",
) -> Path:
    """PNG: one row for the mixture, one per source (estimate | reference | mask), and the ELBO.

    Spectrograms in dB share one colour scale (the mixture's top 80 dB); masks are in [0, 1];
    the ELBO panel shows every chunk's curve per VEM iteration. Written atomically.

    Shape: mixture (L,); estimates (N, L); references (N, L); masks (N, T, F); elbo (I, C).
    """
    mixture = np.asarray(mixture, dtype=np.float32)
    estimates = np.asarray(estimates, dtype=np.float32)
    N = len(names)
    if estimates.ndim != 2 or estimates.shape[0] != N or mixture.ndim != 1:
        raise DataFormatError(f"plot_separation: mixture {mixture.shape}, estimates {estimates.shape} for {N} sources")
    if references is not None and np.shape(references) != estimates.shape:
        raise DataFormatError(f"plot_separation: references {np.shape(references)}, expected {estimates.shape}")
    if masks is not None and (np.ndim(masks) != 3 or np.shape(masks)[0] != N):
        raise DataFormatError(f"plot_separation: masks {np.shape(masks)}, expected ({N}, T, F)")
    cols = 1 + (references is not None) + (masks is not None)
    rows = 1 + N + (elbo is not None)
    fig = Figure(figsize=(4.5 * cols, 2.6 * rows), constrained_layout=True)
    axes = fig.subplots(rows, cols, squeeze=False)
    dur = mixture.shape[0] / _SR
    extent = (0, dur, 0, _SR / 2000)
    mix_db = log_spectrogram(mixture)
    vmax = float(mix_db.max())
    vmin = vmax - 80
    kw = dict(origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap="magma")

    def show(ax, db, label):
        im = ax.imshow(db, **kw)
        ax.set_title(label, fontsize=9)
        ax.set_ylabel("kHz")
        return im

    im = show(axes[0, 0], mix_db, "mixture")
    for c in range(1, cols):
        axes[0, c].axis("off")
    fig.colorbar(im, ax=axes[0, 0], label="dB")
    for n, name in enumerate(names):
        show(axes[1 + n, 0], log_spectrogram(estimates[n]), f"estimate: {name}")
        c = 1
        if references is not None:
            show(axes[1 + n, c], log_spectrogram(np.asarray(references)[n]), f"reference: {name}")
            c += 1
        if masks is not None:
            m = np.asarray(masks)[n].T  # (T, F) -> (F, T)
            imm = axes[1 + n, c].imshow(m, origin="lower", aspect="auto", extent=extent, vmin=0, vmax=1, cmap="viridis")
            axes[1 + n, c].set_title(f"mask (assignment posterior): {name}", fontsize=9)
            fig.colorbar(imm, ax=axes[1 + n, c])
    for ax in axes[1 + N - 1, :]:
        ax.set_xlabel("s")
    if elbo is not None:
        e = np.asarray(elbo, dtype=np.float64)
        ax = axes[-1, 0]
        ax.plot(np.arange(1, e.shape[0] + 1), e, lw=0.8, alpha=0.7)
        ax.set_xlabel("VEM iteration")
        ax.set_ylabel("ELBO per chunk")
        ax.set_title("ELBO", fontsize=9)
        for c in range(1, cols):
            axes[-1, c].axis("off")
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=90)


def plot_separation_results(
    out_dir: str | os.PathLike,
    mixture: np.ndarray,
    estimates: np.ndarray,
    references: np.ndarray,
    names: Sequence[str],
    indices: Sequence[int],
    titles: Sequence[str] | None = None,
    elbo: np.ndarray | None = None,
    method: str = "estimate",
    masks: np.ndarray | None = None,
) -> list[Path]:
    """Write ``mixture_{m:04d}.png`` (:func:`plot_separation`: mixture, then estimate | reference | mask
    per source) for each m of ``indices``, then ``elbo.png`` (:func:`~mixdvae.plotting.elbo.plot_elbo`,
    one curve per chunk) when ``elbo`` holds values. Returns the paths written, in that order.

    Shape: mixture (M, L); estimates, references (M, N, L); elbo (I, C), C chunks over all mixtures
    (as in an estimates .npz); masks (M, N, T, F) or None.
    """
    out_dir = Path(out_dir)
    mixture, estimates = np.asarray(mixture), np.asarray(estimates)
    M = mixture.shape[0]
    if estimates.shape[:1] != (M,) or np.shape(references) != estimates.shape:
        raise DataFormatError(
            f"plot_separation_results: mixture {mixture.shape}, estimates {estimates.shape}, references "
            f"{np.shape(references)}: expected (M, L), (M, N, L), (M, N, L)"
        )
    if masks is not None and (np.ndim(masks) != 4 or np.shape(masks)[:2] != estimates.shape[:2]):
        raise DataFormatError(f"plot_separation_results: masks {np.shape(masks)}, expected ({M}, {estimates.shape[1]}, T, F)")
    if titles is not None and len(titles) != len(indices):
        raise DataFormatError(f"plot_separation_results: {len(titles)} titles for {len(indices)} mixtures")
    written = []
    for k, m in enumerate(indices):
        title = titles[k] if titles is not None else f"{method}: mixture {m}"
        written.append(plot_separation(out_dir / f"mixture_{m:04d}.png", mixture[m], estimates[m], names,
                                       references=np.asarray(references)[m],
                                       masks=None if masks is None else np.asarray(masks[m], dtype=np.float32), title=title))
    if elbo is not None:
        path = plot_elbo(out_dir / "elbo.png", np.asarray(elbo).T, unit="chunk",
                         title=f"{method}: ELBO of {np.shape(elbo)[1]} chunks")
        if path is not None:
            written.append(path)
    return written
