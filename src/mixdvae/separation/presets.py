"""Separation presets: ``reference`` reproduces the original code, ``default`` is our best.

Each difference between the two is justified in docs/separation.md by a figure of
``mixdvae bench separation``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mixdvae.errors import ConfigError
from mixdvae.inference.spectral_prior import SpectralPriorOptions
from mixdvae.inference.spectral_vem import SpectralVEMConfig

__all__ = ["SeparationConfig", "PRESETS", "get_preset", "METHODS"]

METHODS = ("mixdvae", "deep-ar", "dvae-init", "nmf", "temporal-nmf", "oracle-ibm", "oracle-wiener", "mixture")
"""Every separation method behind ``mixdvae separate --method``."""


@dataclass(frozen=True)
class SeparationConfig:
    """Everything the separator needs besides the priors' weights.

    Attributes:
        chunk_frames: STFT frames per chunk T (the reference: 50); longer inputs are cut into
            chunks overlapping by ``overlap_frames`` and stitched with linear cross-fades.
        overlap_frames: frames shared by consecutive chunks.
        vem, prior: options of the VEM loop and of the spectral DVAE prior.
        nmf_iterations: activation updates of the NMF baselines.
        temporal_weight: alpha of the temporal-continuity penalty (temporal NMF, Virtanen 2007).
        batch_size: chunks per VEM batch.
        estimate: what the VEM methods return for source n: the ``posterior_mean`` m_n of q(s_n)
            (the reference), or the ``mask`` estimate eta_n X, the posterior mean of s_n given X
            under q(w) as v^x -> 0 (E[s_n | X] = eta_n g_n X with the Wiener gain g_n -> 1). The
            mean-field m_n passes every bin where eta v^s >> v^x, however small eta is.
        mixture_gate_db: None, or G dB: the VEM methods also run the loop with the priors reading
            the mixture at every iteration (``feedback = "mixture"``: v^s stays their first
            reading, only the assignments iterate) and keep, per chunk, that estimate where it
            agrees with the one of ``prior`` (mean over sources of the SI-SDR of one estimate
            against the other, on the STFT) above G dB. With a prior that reads mixtures well the
            mixture feedback refines that reading; where the first reading failed the two disagree,
            and the feedback of the estimates is what rescued it (docs/separation.md).
        init_blend: b in [0, 1]: the VEM methods return (1 - b) times their estimate plus b times
            the estimate of the Wiener gains of the priors' first reading, g_n = v^s_n / sum_m v^s_m
            (the ``dvae-init`` estimate; masks blended the same way). The two err differently: the
            VEM's assignments at temperature 0.3 are sharp, the first reading's gains are soft.
    """

    chunk_frames: int = 50
    overlap_frames: int = 10
    vem: SpectralVEMConfig = field(default_factory=SpectralVEMConfig)
    prior: SpectralPriorOptions = field(default_factory=SpectralPriorOptions)
    nmf_iterations: int = 100
    temporal_weight: float = 1.0
    batch_size: int = 64
    estimate: str = "posterior_mean"
    mixture_gate_db: float | None = None
    init_blend: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.init_blend <= 1.0:
            raise ConfigError(f"SeparationConfig.init_blend = {self.init_blend!r}: must be in [0, 1]")
        if self.mixture_gate_db is not None and not math.isfinite(self.mixture_gate_db):
            raise ConfigError(f"SeparationConfig.mixture_gate_db = {self.mixture_gate_db!r}: must be a finite number of dB or None")
        if self.estimate not in ("posterior_mean", "mask"):
            raise ConfigError(f"SeparationConfig.estimate = {self.estimate!r}: expected 'posterior_mean' or 'mask'")
        if not isinstance(self.chunk_frames, int) or self.chunk_frames < 2:
            raise ConfigError(f"SeparationConfig.chunk_frames = {self.chunk_frames!r}: must be an integer >= 2")
        if not isinstance(self.overlap_frames, int) or not 0 <= self.overlap_frames < self.chunk_frames:
            raise ConfigError(f"SeparationConfig.overlap_frames = {self.overlap_frames!r}: must be in [0, chunk_frames)")
        if self.nmf_iterations < 1:
            raise ConfigError(f"SeparationConfig.nmf_iterations = {self.nmf_iterations!r}: must be >= 1")
        if not self.temporal_weight >= 0:
            raise ConfigError(f"SeparationConfig.temporal_weight = {self.temporal_weight!r}: must be >= 0")
        if self.batch_size < 1:
            raise ConfigError(f"SeparationConfig.batch_size = {self.batch_size!r}: must be >= 1")


REFERENCE = SeparationConfig(
    vem=SpectralVEMConfig(iterations=70, tol=None, noise_ratio=0.03, m_step=False),
    prior=SpectralPriorOptions(recursion="sequential", feedback="sample", noise="uniform", sample_z=True,
                               first_input="first_frame"),
)
"""Reference section 6: v^x = 0.03 |X|^2 fixed, eta = 1/N at start, E-S/E-Z then E-W, sampled-power
feedback with the original U[0, 1) noise, sampled z, frame-by-frame recursion whose first LSTM input
is the first frame, 70 iterations."""

DEFAULT = SeparationConfig(
    vem=SpectralVEMConfig(iterations=10, tol=None, noise_ratio=0.03, m_step=False, assignment="marginal",
                          temperature=0.3, assignment_prior="frequency", prior_concentration=0.1,
                          prior_block=50),
    prior=SpectralPriorOptions(recursion="parallel", feedback="mixture", sample_z=False, first_input="zero",
                               mixture_levels_db=(0.0, -10.0)),
    estimate="mask",
    init_blend=0.5,
)
"""Our defaults, chosen on the development sets and reported by ``mixdvae bench separation``
(docs/separation.md). Since stop 27 the priors read the mixture at every iteration
(``feedback = "mixture"``): v^s is their first reading, and the loop refines the assignments and
pi_bfn; the loop that fed the priors their own estimates, and the gate between the two, are gone."""

PRESETS = {"reference": REFERENCE, "default": DEFAULT}


def get_preset(name: str) -> SeparationConfig:
    if name not in PRESETS:
        raise ConfigError(f"--preset: '{name}' is not a preset (choose from {sorted(PRESETS)})")
    return PRESETS[name]
