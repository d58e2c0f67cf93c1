"""Architecture config shared by every DVAE family.

One frozen dataclass describes every family; each family reads the fields it needs (the docstring
of each family module says which). Defaults are the original MOT SRNN (reference-implementation.md
section 1.2: x_dim 4, z_dim 4, MLP 4 -> LSTM 8, encoder MLP 16, 8, prior MLP 8, 8, decoder MLP 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mixdvae.errors import ConfigError

__all__ = ["DVAEConfig", "FAMILIES"]

FAMILIES = ("srnn", "vrnn", "dkf", "rvae", "deep_ar")


@dataclass(frozen=True)
class DVAEConfig:
    """Architecture of a DVAE.

    Attributes:
        family: ``srnn`` (Fraccaro et al. 2016), ``vrnn`` (Chung et al. 2015), ``dkf`` (Krishnan
            et al. 2017), ``rvae`` (causal RVAE, Leglaive et al. 2020) or ``deep_ar`` (a
            deterministic autoregressive LSTM, the Deep AR baseline: no latent at all).
        x_dim, z_dim: observation and latent sizes.
        head: ``gaussian`` (mean and log-variance, for boxes) or ``complex_variance`` (variance of a
            circular complex Gaussian, scored on the power |s|^2 with the Itakura-Saito divergence).
        encoder: SRNN only. ``backward``: q(z_t | z_{t-1}, g_t) with g a backward LSTM that sees
            x_{t:T} (the standard SRNN, and the original audio model); ``causal``: q(z_t | z_{t-1},
            h_t, x_t) (the original MOT model, reference section 1.2).
        activation: ``tanh`` (reference) or ``relu``.
        dense_x: MLP sizes applied to x before the forward LSTM (SRNN ``mlp_x_h``, VRNN phi_x).
        rnn_dim: size of the forward deterministic LSTM h.
        dense_g, g_dim: MLP before the backward encoder LSTM, and its size.
        dense_enc, dense_prior, dense_dec: MLPs of the encoder, the latent prior and the decoder.
        dense_z: VRNN phi_z / RVAE z feature MLP.
        input_transform: what the networks see of x (the likelihood is always on x itself):
            ``identity`` (reference), ``log`` (log(x + 1e-8), for power spectra) or ``delta``
            ([x_t, delta_scale * (x_t - x_{t-1})], SRNN and Deep AR only: box motion is ~1e-3 of
            the image per frame, too small for tanh units to resolve from positions alone).
            ``delta2`` adds delta_scale^2 (x_t - 2 x_{t-1} + x_{t-2}), the acceleration, which first
            differences alone give the networks too finely to use.
        delta_scale: the factor of ``delta`` (100: one-pixel-per-frame motion becomes ~0.05).
        beta: weight of the KL term in the loss (reference: 1 for MOT, 0.01 for audio).
        residual: SRNN and Deep AR with a Gaussian head only: the decoder predicts the change,
            mean_t = x_{t-1} + f(h_t, z_t) (x_0 = 0), instead of x_t itself. Boxes move by ~1e-3
            of the image per frame, which an absolute-position decoder resolves poorly; the
            reference models are not residual.
        residual_velocity: with ``residual``, predict the change from the constant-velocity
            extrapolation instead: mean_t = 2 x_{t-1} - x_{t-2} + f(h_t, z_t) (x_{t-1} at t = 2).
        residual_scale: with ``residual``, the decoder's change is residual_scale * f(h_t, z_t): box
            motion residuals are ~1e-4 of the image, far below what an O(1) output layer resolves
            (1.0: unscaled; the motion recipes use 1 / delta_scale).
    """

    family: Literal["srnn", "vrnn", "dkf", "rvae", "deep_ar"] = "srnn"
    x_dim: int = 4
    z_dim: int = 4
    head: Literal["gaussian", "complex_variance"] = "gaussian"
    encoder: Literal["backward", "causal"] = "causal"
    activation: Literal["tanh", "relu"] = "tanh"
    dense_x: tuple[int, ...] = (4,)
    rnn_dim: int = 8
    dense_g: tuple[int, ...] = (12,)
    g_dim: int = 8
    dense_enc: tuple[int, ...] = (16, 8)
    dense_prior: tuple[int, ...] = (8, 8)
    dense_dec: tuple[int, ...] = (16,)
    dense_z: tuple[int, ...] = (8,)
    input_transform: Literal["identity", "log", "delta", "delta2"] = "identity"
    delta_scale: float = 100.0
    beta: float = 1.0
    residual: bool = False
    residual_velocity: bool = False
    residual_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"DVAEConfig.family = {self.family!r}: expected one of {list(FAMILIES)}")
        for name in ("x_dim", "z_dim", "rnn_dim", "g_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"DVAEConfig.{name} = {value!r}: must be an integer >= 1")
        for name in ("dense_x", "dense_g", "dense_enc", "dense_prior", "dense_dec", "dense_z"):
            sizes = getattr(self, name)
            if any((not isinstance(s, int)) or s < 1 for s in sizes):
                raise ConfigError(f"DVAEConfig.{name} = {sizes!r}: layer sizes must be integers >= 1")
        if self.head not in ("gaussian", "complex_variance"):
            raise ConfigError(f"DVAEConfig.head = {self.head!r}: expected 'gaussian' or 'complex_variance'")
        if self.encoder not in ("backward", "causal"):
            raise ConfigError(f"DVAEConfig.encoder = {self.encoder!r}: expected 'backward' or 'causal'")
        if self.residual and (self.head != "gaussian" or self.family not in ("srnn", "deep_ar")):
            raise ConfigError("DVAEConfig.residual = true needs head 'gaussian' and family 'srnn' or 'deep_ar'")
        if self.input_transform in ("delta", "delta2") and self.family not in ("srnn", "deep_ar"):
            raise ConfigError(f"DVAEConfig.input_transform = '{self.input_transform}' is for families 'srnn' and 'deep_ar' only")
        if self.input_transform not in ("identity", "log", "delta", "delta2"):
            raise ConfigError(f"DVAEConfig.input_transform = {self.input_transform!r}: expected identity, log, delta or delta2")
        if not (isinstance(self.residual_scale, (int, float)) and self.residual_scale > 0):
            raise ConfigError(f"DVAEConfig.residual_scale = {self.residual_scale!r}: must be a number > 0")
        if self.residual_velocity and not self.residual:
            raise ConfigError("DVAEConfig.residual_velocity = true needs residual = true")
        if not (self.beta >= 0):
            raise ConfigError(f"DVAEConfig.beta = {self.beta!r}: must be >= 0")
