"""Build a DVAE of any family from its config."""

from __future__ import annotations

import torch

from mixdvae.dvae.base import DVAE
from mixdvae.dvae.config import DVAEConfig

__all__ = ["build_dvae", "family_class"]


def family_class(family: str) -> type[DVAE]:
    """The class implementing ``family``."""
    from mixdvae.dvae.deep_ar import DeepAR
    from mixdvae.dvae.dkf import DKF
    from mixdvae.dvae.rvae import RVAE
    from mixdvae.dvae.srnn import SRNN
    from mixdvae.dvae.vrnn import VRNN

    return {"srnn": SRNN, "vrnn": VRNN, "dkf": DKF, "rvae": RVAE, "deep_ar": DeepAR}[family]


def build_dvae(config: DVAEConfig, device: str | torch.device = "cpu", seed: int | None = None) -> DVAE:
    """A freshly initialised DVAE on ``device``; ``seed`` makes the initial weights reproducible
    without touching the global RNG state of the caller."""
    cls = family_class(config.family)
    if seed is None:
        return cls(config).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    return model.to(device)
