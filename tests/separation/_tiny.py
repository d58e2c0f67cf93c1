"""Tiny fixtures shared by the separation tests: spectral DVAE checkpoints, NMF bases, synthetic audio.

Everything is seeded and small enough that a 2-mixture, 3-chunk separation runs in well under a second
on one core.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mixdvae.baselines.nmf import save_nmf_bases
from mixdvae.dvae.checkpoint import save_dvae
from mixdvae.dvae.config import DVAEConfig
from mixdvae.dvae.factory import build_dvae

SR = 16000
BINS = 513

TINY_LAYERS = dict(dense_x=(8,), rnn_dim=8, dense_g=(8,), g_dim=8, dense_enc=(8,), dense_prior=(8,), dense_dec=(8,))


def tiny_config(family: str = "srnn", x_dim: int = BINS, head: str = "complex_variance") -> DVAEConfig:
    """A tiny spectral DVAE: x_dim bins, z_dim 2, 8-unit layers, log input."""
    transform = "log" if head == "complex_variance" else "identity"
    return DVAEConfig(family=family, x_dim=x_dim, z_dim=2, head=head, encoder="backward",
                      input_transform=transform, **TINY_LAYERS)


def tiny_checkpoint(path: Path, family: str = "srnn", seed: int = 0, head: str = "complex_variance",
                    x_dim: int = BINS) -> Path:
    """An untrained tiny DVAE saved as NAME.safetensors + NAME.json; returns the .safetensors path."""
    return save_dvae(path, build_dvae(tiny_config(family, x_dim, head), seed=seed))


def tiny_priors(folder: Path, family: str = "srnn") -> list[Path]:
    """One tiny checkpoint per source (speech, flute), different seeds."""
    return [tiny_checkpoint(folder / f"{name}_{family}", family, seed=i) for i, name in enumerate(("speech", "flute"))]


def tiny_bases(path: Path, names=("speech", "flute"), components: int = 4, seed: int = 0) -> Path:
    """Random nonnegative NMF bases (513, components) per source."""
    g = torch.Generator().manual_seed(seed)
    return save_nmf_bases(path, {n: torch.rand(BINS, components, generator=g) + 0.01 for n in names})


def low_high(seconds: float = 1.5, seed: int = 0, low_hz: float = 200.0, high_hz: float = 3000.0):
    """Two sources with disjoint spectra (a low and a high sine) and their sum.  -> (2, L), (L,)"""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    sources = np.stack([0.3 * np.sin(2 * np.pi * low_hz * t + phase[0]),
                        0.3 * np.sin(2 * np.pi * high_hz * t + phase[1])]).astype(np.float32)
    return sources, sources.sum(0)


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A harmonic, amplitude-modulated low tone plus a little noise (stands for speech)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(110, 160)
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (0.2 * x + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def flute_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A vibrato high sine plus a little noise (stands for a flute)."""
    rng = np.random.default_rng(seed + 100)
    t = np.arange(int(seconds * SR)) / SR
    f = rng.uniform(900, 1300)
    x = np.sin(2 * np.pi * f * t + 2 * np.sin(2 * np.pi * 5 * t))
    return (0.3 * x + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def write_wav(path: Path, x: np.ndarray, sample_rate: int = SR) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sample_rate, subtype="PCM_16")
    return path
