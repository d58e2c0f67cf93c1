"""Writing a figure: every plotting module saves through :func:`save_figure`, atomically."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from mixdvae.utils.io import atomic_path

__all__ = ["save_figure"]


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int, fmt: str = "png") -> Path:
    """Write ``fig`` to ``path`` in the format ``fmt`` at ``dpi`` through a temporary file renamed onto
    ``path`` (:func:`mixdvae.utils.io.atomic_path`: an interrupted write leaves nothing). Returns ``path``."""
    out = Path(path)
    with atomic_path(out, suffix=f".{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return out
