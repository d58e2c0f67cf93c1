"""Shared test helpers: where ../shared/data is, small fixtures."""

from __future__ import annotations

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
