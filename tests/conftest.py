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
