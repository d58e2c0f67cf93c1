"""The DVAE interface shared by every family.

A DVAE models p(x_{1:T}, z_{1:T}) = prod_t p(x_t | x_{1:t-1}, z_{1:t}) p(z_t | x_{1:t-1}, z_{1:t-1})
and infers q(z_{1:T} | x_{1:T}). Each family implements three teacher-forced maps, vectorised over
the batch, and a free-running sampler:

- :meth:`DVAE.encode`: z ~ q(z_{1:T} | x_{1:T}) (or its mean), sequential over t where z_{t-1} feeds
  the encoder;
- :meth:`DVAE.prior_z`: p(z_t | x_{1:t-1}, z_{1:t-1}) for every t given x and z;
- :meth:`DVAE.decode`: p(x_t | x_{1:t-1}, z_{1:t}) for every t given x and z;
- :meth:`DVAE.generate`: ancestral sampling of x_{1:T}.

Everything else is built on those: the ELBO (:meth:`DVAE.loss`, :meth:`DVAE.elbo`) and one-step
prediction (:meth:`DVAE.predict_next`).
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from mixdvae.dvae.config import DVAEConfig
from mixdvae.dvae.heads import Gauss, make_head
from mixdvae.dvae.layers import shift_right
from mixdvae.errors import DataFormatError

__all__ = ["DVAE", "Gauss", "ElboTerms", "kl_diag_gauss"]


class ElboTerms(NamedTuple):
    """Per-frame averages over a batch: ``loss = recon + kl_weight * beta * kl`` (the negative ELBO
    per frame when kl_weight * beta = 1). All scalars."""

    loss: Tensor
    recon: Tensor
    kl: Tensor


def kl_diag_gauss(q: Gauss, p: Gauss) -> Tensor:
    """KL(q || p) = 1/2 sum_d [log p.var - log q.var + (q.var + (q.mean - p.mean)^2) / p.var - 1].

    The true KL (the original code drops the -1, reference section 0).  Shape: (B, T, Z) -> (B, T)
    """
    return 0.5 * (
        torch.log(p.var) - torch.log(q.var) + (q.var + (q.mean - p.mean) ** 2) / p.var - 1.0
    ).sum(-1)


class DVAE(nn.Module):
    """Base class of the DVAE families. Subclasses set ``family`` and ``causal_encoder``."""

    head: nn.Module
    """The output distribution p(x_t | ...): a :class:`GaussianHead` or :class:`ComplexVarianceHead`."""
    family: ClassVar[str] = ""
    causal_encoder: ClassVar[bool] = False
    """True when q(z_t | ...) depends on x_{1:t} only (z_t does not move when x after t changes)."""

    def __init__(self, config: DVAEConfig):
        super().__init__()
        self.config = config
        self.x_dim = config.x_dim
        self.z_dim = config.z_dim

    # ----------------------------------------------------------------- helpers for subclasses
    def _make_head(self, in_dim: int) -> nn.Module:
        return make_head(self.config.head, in_dim, self.config.x_dim)

    @property
    def net_in_dim(self) -> int:
        """Size of what the networks see of one frame (2 x_dim with the ``delta`` transform)."""
        kind = self.config.input_transform
        return {"delta": 2, "delta2": 3}.get(kind, 1) * self.x_dim

    def net_input(self, x: Tensor) -> Tensor:
        """What the networks see of a sequence: x, log(x + 1e-8), or [x_t, k (x_t - x_{t-1})] with
        the first difference 0.  Shape: (B, T, D) -> (B, T, net_in_dim)."""
        kind = self.config.input_transform
        if kind == "log":
            return torch.log(x.clamp_min(0) + 1e-8)
        if kind in ("delta", "delta2"):
            k = self.config.delta_scale
            delta = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)  # 0 at t = 1
            if kind == "delta":
                return torch.cat([x, k * delta], dim=-1)
            delta2 = torch.cat([torch.zeros_like(x[:, :2]), delta[:, 2:] - delta[:, 1:-1]], dim=1)[:, : x.shape[1]]
            return torch.cat([x, k * delta, k * k * delta2], dim=-1)
        return x

    def net_input_step(self, x_t: Tensor, x_prev: Tensor | None, x_prev2: Tensor | None = None) -> Tensor:
        """:meth:`net_input` for one frame given the frames before (None: they do not exist).
        Shape: (B, D) -> (B, net_in_dim)."""
        kind = self.config.input_transform
        if kind == "log":
            return torch.log(x_t.clamp_min(0) + 1e-8)
        if kind in ("delta", "delta2"):
            k = self.config.delta_scale
            delta = torch.zeros_like(x_t) if x_prev is None else x_t - x_prev
            if kind == "delta":
                return torch.cat([x_t, k * delta], dim=-1)
            delta2 = torch.zeros_like(x_t) if (x_prev is None or x_prev2 is None) else delta - (x_prev - x_prev2)
            return torch.cat([x_t, k * delta, k * k * delta2], dim=-1)
        return x_t

    def residual_base(self, x_prev: Tensor | None, x_prev2: Tensor | None) -> Tensor | None:
        """What a residual decoder adds its output to at one frame: None (no residual, or the first
        frame), x_{t-1}, or 2 x_{t-1} - x_{t-2} with ``residual_velocity`` (x_{t-1} when x_{t-2}
        does not exist).  Shape: (B, D) -> (B, D)."""
        if not self.config.residual or x_prev is None:
            return None
        if self.config.residual_velocity and x_prev2 is not None:
            return 2 * x_prev - x_prev2
        return x_prev

    def residual_base_seq(self, x: Tensor) -> Tensor | None:
        """:meth:`residual_base` for every frame of a sequence (0 at the first frame).
        Shape: (B, T, D) -> (B, T, D)."""
        if not self.config.residual:
            return None
        base = shift_right(x)
        if self.config.residual_velocity and x.shape[1] > 2:
            velocity = torch.zeros_like(x)
            velocity[:, 2:] = x[:, 1:-1] - x[:, :-2]
            base = base + velocity
        return base

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`DataFormatError` for a wrong shape (expects (B, T, x_dim))."""
        if x.ndim != 3 or x.shape[-1] != self.x_dim or x.shape[1] < 1:
            raise DataFormatError(
                f"{self.family}: expected input of shape (B, T, {self.x_dim}), got {tuple(x.shape)}"
            )

    @staticmethod
    def _randn(shape: torch.Size, like: Tensor, generator: torch.Generator | None) -> Tensor:
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)

    def _reparam(self, mean: Tensor, logvar: Tensor, sample: bool, generator: torch.Generator | None) -> Tensor:
        if not sample:
            return mean
        return mean + torch.exp(0.5 * logvar) * self._randn(mean.shape, mean, generator)

    # ----------------------------------------------------------------- family interface
    def encode(
        self, x: Tensor, sample: bool = True, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Gauss]:
        """z ~ q(z_{1:T} | x) and the Gaussians q(z_t | ...).  Shape: x (B, T, D) -> (B, T, Z) each."""
        raise NotImplementedError

    def prior_z(self, x: Tensor, z: Tensor) -> Gauss:
        """p(z_t | x_{1:t-1}, z_{1:t-1}) for all t.  Shape: x (B, T, D), z (B, T, Z) -> (B, T, Z)."""
        raise NotImplementedError

    def decode(self, x: Tensor, z: Tensor) -> Gauss:
        """p(x_t | x_{1:t-1}, z_{1:t}) for all t.  Shape: x (B, T, D), z (B, T, Z) -> (B, T, D)."""
        raise NotImplementedError

    def generate(
        self, batch: int, length: int, generator: torch.Generator | None = None, first: Tensor | None = None
    ) -> Tensor:
        """Free generation x_{1:T} ~ p(x) by ancestral sampling.  -> (B, T, D).

        ``first`` (B, D), if given, fixes x_1 and the rest is sampled conditionally.
        """
        raise NotImplementedError

    def teacher_forced(
        self, x: Tensor, ss_prob: float = 0.0, generator: torch.Generator | None = None
    ) -> tuple[Gauss, Gauss, Gauss]:
        """q(z | x), p(z_t | ...) and p(x_t | ...) along one posterior sample.

        ``ss_prob`` is the scheduled-sampling probability: families whose generator feeds x_{t-1}
        back replace it by their own sample with this probability (others ignore it).
        """
        z, q = self.encode(x, sample=True, generator=generator)
        return q, self.prior_z(x, z), self.decode(x, z)

    # ----------------------------------------------------------------- built on the interface
    def loss(
        self,
        x: Tensor,
        kl_weight: float = 1.0,
        ss_prob: float = 0.0,
        generator: torch.Generator | None = None,
        forecast_weight: float = 0.0,
        x_in: Tensor | None = None,
    ) -> ElboTerms:
        """Negative ELBO per frame: (1/BT) sum_{b,t} [-log p(x_t | ...) + kl_weight beta KL(q(z_t) || p(z_t))],
        plus ``forecast_weight`` x (1/2) log of the mean squared error of the one-step point forecast
        (:meth:`predict_next`, the mean of p(x_t | x_{<t}) with z_t from the prior).

        The ELBO trains the decoder on latents inferred from x_t itself; the forecast term trains
        the path used to predict (z_t from the prior), on the point forecast whose error the
        variance of the NLL would otherwise absorb. Its log makes it scale-free.
        Single-sample reparameterised estimate; ``kl_weight`` is the KL warm-up factor.
        ``x_in``: what the networks read instead of x (a corrupted view of it, as in
        :mod:`mixdvae.dvae.leakage`); the likelihood still scores x.
        Shape: x (B, T, D), x_in (B, T, D) -> scalars.
        """
        self.check_input(x)
        seen = x if x_in is None else x_in
        q, pz, px = self.teacher_forced(seen, ss_prob=ss_prob, generator=generator)
        recon = self.head.nll(x, px).mean()
        kl = kl_diag_gauss(q, pz).mean() if q is not None else x.new_zeros(())
        loss = recon + kl_weight * self.config.beta * kl
        if forecast_weight > 0 and x.shape[1] > 1:
            mse = ((self.predict_next(seen).mean - x[:, 1:]) ** 2).mean()
            loss = loss + forecast_weight * 0.5 * torch.log(mse + 1e-20)
        return ElboTerms(loss, recon, kl)

    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """ELBO per sequence, E_q[log p(x, z) - log q(z | x)] (one sample, beta = 1).  -> (B,)"""
        self.check_input(x)
        q, pz, px = self.teacher_forced(x, generator=generator)
        value = -self.head.nll(x, px).sum(-1)
        if q is not None:
            value = value - kl_diag_gauss(q, pz).sum(-1)
        return value

    def predict_next(self, x: Tensor) -> Gauss:
        """One-step-ahead prediction p(x_t | x_{1:t-1}) for t = 2..T, with latents at their means.

        z_{1:t-1} = mean of q(z | x_{1:t-1}) (the encoder run on the prefix only, so nothing after
        t-1 is seen), z_t = mean of p(z_t | x_{1:t-1}, z_{1:t-1}), then p(x_t | x_{1:t-1}, z_{1:t}).
        This generic version re-encodes every prefix (O(T^2)); families with a causal encoder
        override it with an O(T) pass that gives the same result.

        Shape: x (B, T, D) -> Gauss (B, T-1, D), entry t-1 predicting x_t.
        """
        self.check_input(x)
        B, T, D = x.shape
        means, variances = [], []
        for t in range(1, T):
            prefix = x[:, :t]
            z, _ = self.encode(prefix, sample=False)
            x_ext = torch.cat([prefix, torch.zeros_like(x[:, :1])], dim=1)
            z_ext = torch.cat([z, torch.zeros_like(z[:, :1])], dim=1)
            pz = self.prior_z(x_ext, z_ext)
            z_ext = torch.cat([z, pz.mean[:, t:t + 1]], dim=1)
            px = self.decode(x_ext, z_ext)
            means.append(px.mean[:, t])
            variances.append(px.var[:, t])
        return Gauss(torch.stack(means, 1), torch.stack(variances, 1))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
