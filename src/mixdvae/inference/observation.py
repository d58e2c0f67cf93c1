"""The observation-model protocol through which applications plug into the VEM engine."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from mixdvae.dvae.heads import Gauss

__all__ = ["ObservationModel", "SourcePrior"]


@runtime_checkable
class ObservationModel(Protocol):
    """p(o_tk | s_tn, w_tk = n) = N(o_tk; s_tn, Phi_tk), diagonal Phi.

    o: (B, T, K, D), mask: (B, T, K), r: (B, T, K, N), s: Gauss (B, T, N, D).
    """

    def obs_var(self) -> Tensor:
        """Phi_tk.  -> (B, T, K, D)"""

    def m_step(self, o: Tensor, mask: Tensor, r: Tensor, s: Gauss) -> "ObservationModel":
        """M: re-estimate Phi; return a new model and leave self unchanged."""


@runtime_checkable
class SourcePrior(Protocol):
    """p(s_n, z_n) for the N sources: computes E-Z and E-S from the observation messages."""

    def e_step(
        self, prec_msg: Tensor, info_msg: Tensor, q_prev: Gauss, generator=None
    ) -> tuple[Gauss, Tensor]:
        """New q(s) (B, T, N, D) and E_q[log p(s, z)] - E_q[log q(s, z)] per window (B,)."""
