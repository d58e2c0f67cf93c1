"""The variational EM loop of MixDVAE for audio: E-S/E-Z, E-W, M, with the ELBO per iteration.

Order as in the reference (section 6.3): E-S/E-Z first (from eta = 1/N and the DVAE's reading of
the mixture at the first iteration), then E-W, then the optional M-steps on the noise variance and
on a per-frequency assignment prior pi_bfn (used by the next E-W).
Only this module holds loop state; the steps are pure (:mod:`mixdvae.inference.spectral_steps`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

from mixdvae.errors import ConfigError, NumericalError
from mixdvae.inference.spectral_prior import DVAESpectralPrior
from mixdvae.inference.spectral_steps import (
    SpectralSources,
    abs2,
    assignment_entropy_spectral,
    dirichlet_log_density,
    e_step_w_spectral,
    expected_log_likelihood_spectral,
    m_step_frequency_prior,
    m_step_noise_ratio,
    marginal_log_likelihood_spectral,
    prior_blocks,
    source_mean,
)
from mixdvae.inference.stopping import PerItemStop

__all__ = ["SpectralVEMConfig", "SpectralVEMResult", "run_spectral_vem", "spectral_elbo"]


@dataclass(frozen=True)
class SpectralVEMConfig:
    """Options of the audio VEM loop.

    Attributes:
        iterations: maximum number of iterations (reference: 70).
        tol: stop a chunk when its ELBO per bin changed by less than ``tol``; the loop ends when
            every chunk has stopped (None: run all iterations).
        min_iterations: never stop before this many iterations.
        noise_ratio: lambda in v^x = lambda (|X|^2 + eps) at the start (reference: 0.03, fixed).
        m_step: re-estimate lambda per mixture (the reference never does).
        temperature: E-W temperature (1: exact).
        assignment: E-W from ``mean_field`` E_q(s) log CN(X; s_n, v^x) (the reference; with the ELBO as
            written, exact coordinate ascent) or from the ``marginal`` log CN(X; 0, v^s_n + v^x), which
            integrates s_n out under its DVAE prior instead of using q(s_n), whose gain already
            carries the previous eta (a collapsed, structured update).
        eps_rel: eps of v^x relative to the mean mixture power (avoids v^x = 0 on silent bins,
            which the reference divides by; section 10 item 25).
        assignment_prior: p(w_ft = n): ``uniform`` 1/N (the reference) or ``frequency``, a pi_bfn
            per mixture, frequency f and block b of about ``prior_block`` frames, re-estimated after
            every E-W (:func:`~mixdvae.inference.spectral_steps.m_step_frequency_prior`): a
            sustained note holds its bins for a while, which the per-frame DVAE variances alone do
            not say.
        prior_concentration: with ``frequency``, the Dirichlet pseudo-frames of that M-step as a
            fraction of each block's frames (a_b = prior_concentration * L_b).
        prior_block: with ``frequency``, frames per block (round(T / prior_block) blocks of
            near-equal length, at least one).
    """

    iterations: int = 70
    tol: float | None = None
    min_iterations: int = 5
    noise_ratio: float = 0.03
    m_step: bool = False
    temperature: float = 1.0
    eps_rel: float = 1e-6
    assignment: str = "mean_field"
    assignment_prior: str = "uniform"
    prior_concentration: float = 0.1
    prior_block: int = 50

    def __post_init__(self) -> None:
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise ConfigError(f"SpectralVEMConfig.iterations = {self.iterations!r}: must be an integer >= 1")
        if self.tol is not None and not self.tol >= 0:
            raise ConfigError(f"SpectralVEMConfig.tol = {self.tol!r}: must be >= 0")
        if not (0 < self.noise_ratio <= 1):
            raise ConfigError(f"SpectralVEMConfig.noise_ratio = {self.noise_ratio!r}: must be in (0, 1]")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ConfigError(f"SpectralVEMConfig.temperature = {self.temperature!r}: must be a finite number > 0")
        if self.assignment not in ("mean_field", "marginal"):
            raise ConfigError(f"SpectralVEMConfig.assignment = {self.assignment!r}: expected 'mean_field' or 'marginal'")
        if self.assignment_prior not in ("uniform", "frequency"):
            raise ConfigError(f"SpectralVEMConfig.assignment_prior = {self.assignment_prior!r}: expected 'uniform' or 'frequency'")
        if not (self.prior_concentration >= 0 and math.isfinite(self.prior_concentration)):
            raise ConfigError(f"SpectralVEMConfig.prior_concentration = {self.prior_concentration!r}: must be a finite number >= 0")
        if not isinstance(self.prior_block, int) or self.prior_block < 1:
            raise ConfigError(f"SpectralVEMConfig.prior_block = {self.prior_block!r}: must be an integer >= 1")
        if not self.eps_rel > 0:
            raise ConfigError(f"SpectralVEMConfig.eps_rel = {self.eps_rel!r}: must be > 0")


class SpectralVEMResult(NamedTuple):
    """q(s) (B, T, N, F), eta (B, T, F, N), v^s (B, T, N, F), the noise ratio lambda (B,), the ELBO
    history (I, B) and the number of iterations run."""

    sources: SpectralSources
    eta: Tensor
    prior_var: Tensor
    noise_ratio: Tensor
    elbo: Tensor
    iterations: int


def spectral_elbo(loglik: Tensor, eta: Tensor, log_prior: Tensor, prior_elbo: Tensor) -> Tensor:
    """ELBO = sum_{f,t,n} eta_ftn (log pi_ftn + E_q log CN(X_ft; s_n,ft, v^x_ft)) + H[q(w)]
    + E_q[log p(s | z)] + H[q(s)] - KL(q(z) || p(z)), with pi_ftn = 1/N or the block-wise prior.

    Shape: loglik, eta (B, T, F, N), log_prior (N,) or (B, T, F, N), prior_elbo (B,) -> (B,)
    """
    return (eta * (log_prior + loglik)).sum(dim=(1, 2, 3)) + assignment_entropy_spectral(eta) + prior_elbo


def run_spectral_vem(
    mix: Tensor,
    prior: DVAESpectralPrior,
    config: SpectralVEMConfig = SpectralVEMConfig(),
    generator: torch.Generator | None = None,
    progress: bool = False,
    init_masks: Tensor | None = None,
    first_reading: Tensor | None = None,
) -> SpectralVEMResult:
    """Separate the mixtures ``mix`` into ``prior.num_sources`` sources.

    ``init_masks``: start from these assignments eta (a warm start, or the oracle masks in
    ``benchmarks/separation_diagnostics.py``): q(s_n) = eta_n X with no variance, so the first E-Z
    reads the masked mixtures; by default eta = 1/N and q(s_n) = CN(0, v^s_n) with v^s_n the DVAE's
    reading of the mixture, or ``first_reading`` when the caller has it already (the same
    ``prior.initial_variance(|X|^2)``, computed once for several loops).

    Shape: mix (B, T, F) complex, init_masks (B, T, F, N), first_reading (B, T, N, F) -> q(s) (B, T, N, F)
    """
    if not torch.is_complex(mix) or mix.ndim != 3:
        raise ConfigError(f"run_spectral_vem: expected a complex mixture STFT (B, T, F), got {tuple(mix.shape)} {mix.dtype}")
    if not torch.isfinite(torch.view_as_real(mix)).all():
        raise NumericalError("run_spectral_vem: the mixture STFT holds NaN or inf")
    if prior.options.posterior == "mixture" and config.assignment != "marginal":
        raise ConfigError("the 'mixture' E-S needs the 'marginal' E-W (its q(s) carries the prior variance of the "
                          "other assignments, which the mean-field E-W would count as a misfit)")
    B, T, F = mix.shape
    N = prior.num_sources
    power = abs2(mix)  # (B, T, F)
    eps = config.eps_rel * power.mean(dim=(1, 2)).clamp_min(1e-20)  # (B,)
    ratio = torch.full((B,), config.noise_ratio, dtype=power.dtype, device=power.device)
    log_prior = torch.full((N,), -math.log(N), dtype=power.dtype, device=power.device)
    if init_masks is None:
        eta = torch.full((B, T, F, N), 1.0 / N, dtype=power.dtype, device=power.device)
        v_init = prior.initial_variance(power, generator) if first_reading is None else first_reading  # (B, T, N, F)
        if tuple(v_init.shape) != (B, T, N, F):
            raise ConfigError(f"run_spectral_vem: first_reading of shape {tuple(v_init.shape)}, expected {(B, T, N, F)}")
        q = SpectralSources(None, v_init, torch.zeros_like(v_init))
    else:
        if tuple(init_masks.shape) != (B, T, F, N):
            raise ConfigError(f"run_spectral_vem: init_masks of shape {tuple(init_masks.shape)}, expected {(B, T, F, N)}")
        eta = init_masks.to(power.dtype)
        gain = eta.transpose(-1, -2).contiguous()  # q(s_n) = eta_n X: (B, T, N, F)
        q = SpectralSources(None, torch.zeros_like(gain), gain)
    blocks = prior_blocks(T, config.prior_block).to(power.device)  # (T,)
    history: list[Tensor] = []
    # Each chunk stops on its own ELBO per bin (inference.stopping), so its result does not depend
    # on the batch.
    stop = PerItemStop(B, config.iterations, config.tol, config.min_iterations, T * F, power.device)
    bar = tqdm(range(config.iterations), desc="VEM", disable=not progress, leave=False)
    for it in bar:
        noise_var = ratio[:, None, None] * (power + eps[:, None, None])
        q, prior_elbo, prior_var = prior.e_step(mix, eta, noise_var, q, generator)
        ll = expected_log_likelihood_spectral(mix, noise_var, q, power)
        if config.assignment == "marginal":
            eta = e_step_w_spectral(marginal_log_likelihood_spectral(mix, noise_var, prior_var, power), log_prior, config.temperature)
        else:
            eta = e_step_w_spectral(ll, log_prior, config.temperature)
        if config.m_step:
            ratio = m_step_noise_ratio(mix, eta, q, eps)
            noise_var = ratio[:, None, None] * (power + eps[:, None, None])
            ll = expected_log_likelihood_spectral(mix, noise_var, q, power)
        if config.assignment_prior == "frequency":
            log_pi = m_step_frequency_prior(eta, blocks, config.prior_concentration)  # (B, nb, F, N)
            log_prior = log_pi[:, blocks]  # (B, T, F, N)
            elbo = spectral_elbo(ll, eta, log_prior, prior_elbo) + dirichlet_log_density(log_pi, blocks, config.prior_concentration)
        else:
            elbo = spectral_elbo(ll, eta, log_prior, prior_elbo)
        if not torch.isfinite(elbo).all():  # NaN anywhere in q(s) reaches the ELBO through E|s|^2
            raise NumericalError(f"audio VEM iteration {it + 1}: the ELBO or the source estimates became non-finite")
        history.append(elbo)
        if progress:
            bar.set_postfix(elbo=f"{elbo.mean().item() / (T * F):.3f}")
        if stop.update(it, history, (q.gain, q.var, eta, prior_var, ratio)):
            break
    gain, var, eta, prior_var, ratio = stop.select((q.gain, q.var, eta, prior_var, ratio))
    q = SpectralSources(source_mean(SpectralSources(None, var, gain), mix), var, gain)
    return SpectralVEMResult(q, eta, prior_var, ratio, stop.elbo_history(history), len(history))
