"""The variational EM loop: E-W, E-S/E-Z, M, with the ELBO recorded per iteration.

Only this module holds loop state; the steps are pure functions (:mod:`mixdvae.inference.steps`),
the source prior and the observation model are plugged in (:mod:`mixdvae.inference.observation`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

from mixdvae.dvae.heads import Gauss
from mixdvae.errors import ConfigError, NumericalError
from mixdvae.inference.observation import ObservationModel, SourcePrior
from mixdvae.inference.stopping import PerItemStop
from mixdvae.inference.steps import (
    Responsibilities,
    assignment_entropy,
    e_step_w,
    expected_log_likelihood,
    source_messages,
)

__all__ = ["VEMConfig", "VEMResult", "run_vem", "vem_elbo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VEMConfig:
    """Options of the VEM loop.

    Attributes:
        iterations: maximum number of iterations (reference: 70, section 4.5).
        tol: stop a window when its ELBO per observation changed by less than ``tol`` between
            two iterations; the loop ends when every window has stopped (None: run all
            iterations, as the reference does).
        min_iterations: never stop before this many iterations.
        temperature: E-W temperature c in exp(c E log N) (1: exact; reference: 0.008).
        m_step: re-estimate the observation variance (the reference never does).
        clutter_prob: prior probability pi_0 of the clutter class (None: no clutter class).
        clutter_log_density: log of the uniform clutter density over normalised boxes.
    """

    iterations: int = 70
    tol: float | None = None
    min_iterations: int = 5
    temperature: float = 1.0
    m_step: bool = True
    clutter_prob: float | None = None
    clutter_log_density: float = 0.0

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ConfigError(f"VEMConfig.iterations = {self.iterations}: must be >= 1")
        if self.tol is not None and not self.tol >= 0:
            raise ConfigError(f"VEMConfig.tol = {self.tol}: must be >= 0")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ConfigError(f"VEMConfig.temperature = {self.temperature}: must be a finite number > 0")
        if self.clutter_prob is not None and not 0 < self.clutter_prob < 1:
            raise ConfigError(f"VEMConfig.clutter_prob = {self.clutter_prob}: must be in (0, 1)")


class VEMResult(NamedTuple):
    """q(s) (B, T, N, D) and responsibilities, each window's at its own stop; the observation
    model of the last iteration run; the ELBO history (I, B), where a window that stopped early
    repeats its last value; the number of iterations run (by the slowest window)."""

    sources: Gauss
    resp: Responsibilities
    obs_model: ObservationModel
    elbo: Tensor
    iterations: int


def _log_priors(config: VEMConfig, num_sources: int) -> tuple[float, float | None]:
    """log pi_n for every source and log pi_0 for clutter (uniform over sources)."""
    if config.clutter_prob is None:
        return -math.log(num_sources), None
    return math.log((1 - config.clutter_prob) / num_sources), math.log(config.clutter_prob)


def vem_elbo(
    loglik: Tensor, mask: Tensor, resp: Responsibilities, prior_elbo: Tensor, config: VEMConfig
) -> Tensor:
    """ELBO = sum_{t,k} [sum_n r_tkn (log pi_n + E log N(o_tk; s_tn, Phi_tk)) + r_tk0 (log pi_0 + log u)]
    + H[q(w)] + E_q[log p(s, z)] - E_q[log q(s, z)].

    Shape: loglik (B, T, K, N), mask (B, T, K), prior_elbo (B,) -> (B,)
    """
    log_pi, log_pi0 = _log_priors(config, loglik.shape[-1])
    ll = torch.nan_to_num(loglik, nan=0.0) * mask[..., None]
    value = (resp.r * (log_pi + ll)).sum(dim=(1, 2, 3))
    if log_pi0 is not None:
        value = value + (resp.clutter * (log_pi0 + config.clutter_log_density)).sum(dim=(1, 2))
    return value + assignment_entropy(resp) + prior_elbo


def run_vem(
    o: Tensor,
    mask: Tensor,
    prior: SourcePrior,
    obs_model: ObservationModel,
    init: Gauss,
    config: VEMConfig = VEMConfig(),
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> VEMResult:
    """Alternate E-W, E-S/E-Z and M from the initial q(s) ``init``.

    Shape: o (B, T, K, D) (NaN where missing), mask (B, T, K), init (B, T, N, D).
    """
    B, T, N, D = init.mean.shape
    log_pi, log_pi0 = _log_priors(config, N)
    log_prior = torch.full((N,), log_pi, dtype=o.dtype, device=o.device)
    q_s = init
    history: list[Tensor] = []
    # Each window stops on its own ELBO per observation (inference.stopping), so its result is the
    # same whichever windows share its batch (batch size, chunks, ranks, device).
    n_obs = mask.sum(dim=(1, 2)).clamp_min(1).to(o.dtype)  # (B,) observations per window
    stop = PerItemStop(B, config.iterations, config.tol, config.min_iterations, n_obs, o.device)
    bar = tqdm(range(config.iterations), desc="VEM", disable=not progress, leave=False)
    phi = obs_model.obs_var()
    ll = expected_log_likelihood(o, phi, q_s)
    for it in bar:
        resp = e_step_w(ll, mask, log_prior, log_pi0, config.clutter_log_density, config.temperature)
        prec, info = source_messages(o, mask, resp.r, phi)
        q_s, prior_elbo = prior.e_step(prec, info, q_s, generator)
        if config.m_step:
            obs_model = obs_model.m_step(o, mask, resp.r, q_s)
            phi = obs_model.obs_var()
        # E_q log N(o; s, Phi) at the new q(s) and Phi: the ELBO's term now, the next E-W's input
        ll = expected_log_likelihood(o, phi, q_s)
        elbo = vem_elbo(ll, mask, resp, prior_elbo, config)
        if not torch.isfinite(elbo).all() or not torch.isfinite(q_s.mean).all():
            raise NumericalError(f"VEM iteration {it + 1}: the ELBO or the source means became non-finite")
        history.append(elbo)
        if progress:
            bar.set_postfix(elbo=f"{elbo.mean().item():.2f}")
        if stop.update(it, history, (q_s.mean, q_s.var, ll)):
            break
    mean, var, ll = stop.select((q_s.mean, q_s.var, ll))
    q_s = Gauss(mean, var)
    # Final E-W so that the responsibilities match the returned sources.
    resp = e_step_w(ll, mask, log_prior, log_pi0, config.clutter_log_density, config.temperature)
    return VEMResult(q_s, resp, obs_model, stop.elbo_history(history), len(history))
