"""Leakage augmentation: train a source prior to read an estimate that still holds some of the
other sources, and to predict the clean source.

Inside the audio VEM each DVAE reads an estimate of its own source, and every estimate made from
the mixture leaks some of the other source. A prior pretrained on clean spectra only has never seen
leakage: it reconstructs whatever it is fed, leakage included, so the assignments drift back
towards the mixture (docs/separation.md, "Leakage-trained priors", has the measurements). Trained
on leaky inputs with the clean spectrum as the target, the prior learns to keep its own source and
drop the rest, which is what separation needs of it.

For a clean power sequence x (T, F) and a sequence o of another source drawn at random, the
network input is

    x_in = x + 10^(g / 10) (mean x / mean o) o,     g ~ U[low_db, high_db],

power spectra of independent sources adding in expectation; the reconstruction term still scores
x, so the ELBO is that of x given a corrupted view of it (a denoising objective).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["leaky_input"]


def leaky_input(x: Tensor, other: Tensor, low_db: float, high_db: float, generator: torch.Generator | None = None) -> Tensor:
    """x_in = x + 10^(g/10) (mean x / mean o) o with o a random sequence of ``other`` and
    g ~ U[low_db, high_db] per sequence (module docstring).

    Shape: x (B, T, F) power, other (M, T', F) power with T' >= T -> (B, T, F)
    """
    B, T, _ = x.shape
    dev = generator.device if generator is not None else x.device
    idx = torch.randint(0, other.shape[0], (B,), generator=generator, device=dev).to(other.device)
    o = other[idx, :T].to(x.device, x.dtype)
    gain_db = low_db + (high_db - low_db) * torch.rand(B, 1, 1, generator=generator, device=dev).to(x.device, x.dtype)
    scale = x.mean(dim=(1, 2), keepdim=True) / o.mean(dim=(1, 2), keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    return x + torch.pow(10.0, gain_db / 10) * scale * o
