"""Output distributions p(x_t | ...) of the decoders.

- :class:`GaussianHead`: x_t ~ N(mean, diag var), for continuous vectors such as boxes.
- :class:`ComplexVarianceHead`: s_t ~ CN(0, diag v) for STFT coefficients, scored on the power
  x = |s|^2; its negative log-likelihood equals the Itakura-Saito divergence IS(x, v) up to terms in
  x only (reference section 1.3).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["Gauss", "GaussianHead", "ComplexVarianceHead", "make_head", "itakura_saito"]


class Gauss(NamedTuple):
    """A diagonal Gaussian: ``mean`` and ``var`` of the same shape (B, T, D)."""

    mean: Tensor
    var: Tensor


class GaussianHead(nn.Module):
    """(mean, log-variance) = (Linear(f), Linear(f)).  Shape: (..., in_dim) -> Gauss (..., x_dim)."""

    def __init__(self, in_dim: int, x_dim: int):
        super().__init__()
        self.mean = nn.Linear(in_dim, x_dim)
        self.logvar = nn.Linear(in_dim, x_dim)

    def forward(self, features: Tensor) -> Gauss:
        return Gauss(self.mean(features), torch.exp(self.logvar(features)))

    @staticmethod
    def nll(x: Tensor, p: Gauss) -> Tensor:
        """-log N(x; mean, var) = 1/2 sum_d [log 2 pi + log var_d + (x_d - mean_d)^2 / var_d].

        Shape: x (B, T, D) -> (B, T)
        """
        return 0.5 * (math.log(2 * math.pi) + torch.log(p.var) + (x - p.mean) ** 2 / p.var).sum(-1)

    @staticmethod
    def sample(p: Gauss, generator: torch.Generator | None = None) -> Tensor:
        """x = mean + sqrt(var) * eps, eps ~ N(0, I)."""
        eps = torch.randn(p.mean.shape, generator=generator, device=p.mean.device, dtype=p.mean.dtype)
        return p.mean + torch.sqrt(p.var) * eps


def itakura_saito(x: Tensor, v: Tensor, eps: float = 1e-10) -> Tensor:
    """IS(x, v) = sum_d [x/v - log(x/v) - 1], with ``eps`` added to x and v.  Shape: (B, T, D) -> (B, T)."""
    ratio = (x + eps) / (v + eps)
    return (ratio - torch.log(ratio) - 1).sum(-1)


class ComplexVarianceHead(nn.Module):
    """log v = Linear(f): the variance of s_t ~ CN(0, diag v).  Gauss.mean is 0 (the complex mean)."""

    def __init__(self, in_dim: int, x_dim: int):
        super().__init__()
        self.logvar = nn.Linear(in_dim, x_dim)

    def forward(self, features: Tensor) -> Gauss:
        logvar = self.logvar(features)
        return Gauss(torch.zeros_like(logvar), torch.exp(logvar))

    @staticmethod
    def nll(x: Tensor, p: Gauss) -> Tensor:
        """-log CN(s; 0, v) with |s|^2 = x: sum_d [log(pi v_d) + x_d / v_d].

        Equals IS(x, v) + sum_d [log(pi x_d) + 1].  Shape: x (B, T, D) power -> (B, T)
        """
        return (math.log(math.pi) + torch.log(p.var) + x / p.var).sum(-1)

    @staticmethod
    def sample(p: Gauss, generator: torch.Generator | None = None) -> Tensor:
        """A power sample |s|^2 with s ~ CN(0, v): v * E, E ~ Exponential(1) (Gaussian real and
        imaginary parts, not the uniform noise of the original code, reference section 10 item 6)."""
        u = torch.rand(p.var.shape, generator=generator, device=p.var.device, dtype=p.var.dtype)
        return -p.var * torch.log1p(-u.clamp(max=1 - 1e-7))


def make_head(kind: str, in_dim: int, x_dim: int) -> nn.Module:
    return GaussianHead(in_dim, x_dim) if kind == "gaussian" else ComplexVarianceHead(in_dim, x_dim)
