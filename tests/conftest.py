"""Shared test helpers: where ../shared/data is, small fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (the CI clone has it there too)."""
    return REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny tensors run fastest on one thread, and a shared 2-core machine oversubscribed with
    2 OpenMP threads per process slows down by an order of magnitude."""
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture
def accelerator() -> str:
    """The device of the accelerator tests: ``cuda``, skipped where CUDA is missing (CI).

    ``MIXDVAE_TEST_ACCELERATOR=cpu`` runs the same tests on the CPU, to try them on a machine
    without a GPU (they then compare the CPU with itself)."""
    import torch

    device = os.environ.get("MIXDVAE_TEST_ACCELERATOR", "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return device


@pytest.fixture
def tone_mixtures():
    """Factory ``(path, length_frames=64, m=2) -> (path, Mixtures)``: m mixtures of a harmonic "speech"
    (120 Hz upwards, 3 Hz tremolo) and a vibrato "flute" (550 Hz upwards) at 16 kHz, 0 dB, written
    with :func:`mixdvae.data.mixtures.save_mixtures`."""
    import numpy as np

    from mixdvae.data.mixtures import Mixtures, save_mixtures

    def make(path: Path, length_frames: int = 64, m: int = 2):
        sr = 16000
        rng = np.random.default_rng(0)
        L = (length_frames - 1) * 256
        t = np.arange(L) / sr
        speech = np.stack([sum(np.sin(2 * np.pi * (120 + 30 * i) * h * t) / h for h in range(1, 6))
                           * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) for i in range(m)])
        flute = np.stack([np.sin(2 * np.pi * (550 + 40 * i) * t + 2 * np.sin(2 * np.pi * 5 * t)) for i in range(m)])
        sources = (0.2 * np.stack([speech, flute], axis=1) + 0.001 * rng.standard_normal((m, 2, L))).astype(np.float32)
        mix = Mixtures(
            mixture=sources.sum(1, dtype=np.float32), sources=sources, source_names=["speech", "flute"],
            sample_rate=sr, length_frames=length_frames, ratio_db=np.zeros(m, np.float32),
            files=np.array([["s.flac", "f.flac"]] * m), offsets=np.zeros((m, 2), np.int64), seed=0,
        )
        save_mixtures(path, mix)
        return path, mix

    return make
