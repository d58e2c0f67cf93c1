"""Dynamical VAEs behind one interface: SRNN, VRNN, DKF, RVAE (causal) and the Deep AR baseline."""

from mixdvae.dvae.base import DVAE, ElboTerms, Gauss, kl_diag_gauss
from mixdvae.dvae.config import DVAEConfig
from mixdvae.dvae.factory import build_dvae
from mixdvae.dvae.reference import load_reference_checkpoint

__all__ = ["DVAE", "DVAEConfig", "ElboTerms", "Gauss", "build_dvae", "kl_diag_gauss", "load_reference_checkpoint"]
