"""Explicit random generators. No global seeding inside the library; the CLI seeds once."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["torch_generator", "numpy_generator"]


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A :class:`torch.Generator` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed))
    return gen


def numpy_generator(seed: int) -> np.random.Generator:
    """A NumPy ``Generator`` (PCG64) seeded with ``seed``."""
    return np.random.default_rng(int(seed))
