"""Tiny inputs for the batch-inference tests: a windows file and a mixtures file with tiny priors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mixdvae.data.mixtures import Mixtures, save_mixtures
from mixdvae.data.windows import save_windows
from mixdvae.tracking.synthetic import synthetic_windows
from separation._tiny import SR, low_high, tiny_priors

CPU = ["--device", "cpu", "--no-progress"]


def windows_file(path: Path, count: int = 12, length: int = 20) -> Path:
    """``count`` synthetic windows of ``length`` frames, 3 sources."""
    save_windows(path, synthetic_windows(count, length, 3, seed=1))
    return path


def mixtures_file(path: Path, count: int = 5, seconds: float = 0.5) -> Path:
    """``count`` mixtures of a low and a high sine (different phases), speech + flute."""
    src = []
    for i in range(count):
        sources, _ = low_high(seconds, seed=i)
        src.append(sources)
    length = (src[0].shape[-1] - 1) // 256 * 256
    src = np.stack(src)[:, :, :length]
    mix = Mixtures(src.sum(1), src, ["speech", "flute"], SR, length // 256 + 1, np.zeros(count, np.float32),
                   np.full((count, 2), "x"), np.zeros((count, 2), np.int64), 0)
    save_mixtures(path, mix)
    return path


def separate_args(folder: Path, mixtures: Path, out: Path) -> list[str]:
    a, b = tiny_priors(folder)
    return ["separate", str(mixtures), "--out", str(out), "--weights", f"speech={a}", "--weights", f"flute={b}",
            "--iterations", "3", *CPU]


def arrays(path: Path, drop: tuple[str, ...] = ("seconds",)) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files if k not in drop}
