"""N pretrained spectral DVAEs (one per source) as the source prior of the audio VEM: E-Z and E-S.

Each source n has its own DVAE with a complex-variance head: s_n,t ~ CN(0, v^s_n,t) with
v^s_n,t = decoder(h_t, z_t), h_t = LSTM(MLP(u_{t-1})) driven by a power sequence u of source n.

E-Z: q(z_n | s_n) is the DVAE's encoder applied to a power sequence u_n standing for s_n: the
expected power E_q|s_n|^2 = |m|^2 + gamma (default) or a power sample |s~|^2 with s~ ~ q(s_n)
(reference, section 6.3; with Gaussian noise, not the original's uniform noise unless asked).

E-S (:func:`mixdvae.inference.spectral_steps.e_step_s_wiener`) needs v^s, which depends on the past
of s_n through h_t. Two recursions:
- ``parallel`` (default): h_t is driven by the previous iteration's u_{t-1}, so v^s for all t comes
  from one teacher-forced pass and E-S is elementwise over (B, T, N, F);
- ``sequential`` (reference): h_t is driven by the estimate of frame t-1 made in the same sweep
  (u_t from q(s_t) just computed), one frame at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from mixdvae.dvae.base import DVAE, kl_diag_gauss
from mixdvae.dvae.heads import Gauss
from mixdvae.dvae.layers import shift_right
from mixdvae.errors import ConfigError
from mixdvae.inference.spectral_steps import (
    SpectralSources,
    abs2,
    e_step_s_mixture,
    e_step_s_wiener,
    expected_power,
    source_elbo_spectral,
    source_mean,
)

__all__ = ["SpectralPriorOptions", "DVAESpectralPrior"]


@dataclass(frozen=True)
class SpectralPriorOptions:
    """Options of the spectral DVAE prior.

    Attributes:
        recursion: ``parallel`` or ``sequential`` (see the module docstring).
        feedback: what stands for s_n in the networks: ``expected`` power |m|^2 + gamma, the
            ``masked`` mixture power eta_n |X|^2 (the power of the assignment-masked mixture, the
            estimate a hard EM would feed back; at the first iteration eta = 1/N), a
            ``sample`` |s~|^2 (reference), or the ``mixture`` power |X|^2 at every iteration
            (v^s stays the priors' first reading; the loop then refines only the assignments).
        noise: the sampling noise with ``feedback = 'sample'``: ``gaussian`` (correct) or
            ``uniform`` (the original code's U[0, 1) noise, reference section 10 item 6).
        sample_z: E-Z takes one sample of q(z | u) (reference) instead of its mean.
        first_input: the first LSTM input: ``zero`` (as in pretraining) or ``first_frame`` of u
            (reference, section 6.3).
        min_var: floor on v^s relative to the mean mixture power (keeps E-S finite).
        latent: E-Z from the ``encoder`` q(z | u) (the reference), or the ``prior`` mean path
            z_t = E p(z_t | h_t, z_{t-1}): a prediction of frame t from the past of u only, which
            cannot copy the current estimate of frame t back into v^s.
        posterior: the E-S update: ``mean_field`` (the reference, :func:`e_step_s_wiener`) or
            ``mixture`` (:func:`e_step_s_mixture`, moment-matched over the assignment).
        mixture_levels_db: the levels L (dB) at which the DVAEs read the mixture power (the first
            reading, and every reading with ``feedback = 'mixture'``): each reads g |X|^2 with
            g = 10^(L / 10), and v^s is the geometric mean of v(g u) / g over the levels
            (:meth:`DVAESpectralPrior.read_power`). The priors were trained on segments at random
            gains in [-20, 0] dB, and the level of a source inside a chunk is not known.
        estimate_level_db: the level at which the DVAEs read their own estimates (``expected``,
            ``masked`` or ``sample`` feedback).
    """

    recursion: Literal["parallel", "sequential"] = "parallel"
    feedback: Literal["expected", "masked", "sample", "mixture"] = "expected"
    noise: Literal["gaussian", "uniform"] = "gaussian"
    sample_z: bool = False
    first_input: Literal["zero", "first_frame"] = "zero"
    min_var: float = 1e-8
    posterior: Literal["mean_field", "mixture"] = "mean_field"
    latent: Literal["encoder", "prior"] = "encoder"
    mixture_levels_db: tuple[float, ...] = (0.0,)
    estimate_level_db: float = 0.0

    def __post_init__(self) -> None:
        for name, allowed in (("recursion", ("parallel", "sequential")), ("feedback", ("expected", "masked", "sample", "mixture")),
                              ("noise", ("gaussian", "uniform")), ("first_input", ("zero", "first_frame")),
                              ("posterior", ("mean_field", "mixture")), ("latent", ("encoder", "prior"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"SpectralPriorOptions.{name} = {getattr(self, name)!r}: expected one of {list(allowed)}")
        if not self.min_var > 0:
            raise ConfigError(f"SpectralPriorOptions.min_var = {self.min_var!r}: must be > 0")
        levels = tuple(self.mixture_levels_db) + (self.estimate_level_db,)
        if len(self.mixture_levels_db) < 1 or not all(math.isfinite(x) and -60 <= x <= 60 for x in levels):
            raise ConfigError(f"SpectralPriorOptions: mixture_levels_db = {self.mixture_levels_db!r} and "
                              f"estimate_level_db = {self.estimate_level_db!r} must be finite levels in [-60, 60] dB "
                              "(at least one mixture level)")
        frame_by_frame = (self.recursion, self.first_input) != ("parallel", "zero")
        if frame_by_frame and (self.estimate_level_db != 0.0 or (self.feedback == "mixture" and tuple(self.mixture_levels_db) != (0.0,))):
            raise ConfigError("SpectralPriorOptions: reading at other levels than 0 dB inside the loop needs "
                              "recursion = 'parallel' and first_input = 'zero'")


def sample_power(q: SpectralSources, noise: str, generator: torch.Generator | None, mix: Tensor | None = None) -> Tensor:
    """|s~|^2 with s~ = m + sqrt(gamma / 2) (e_r + i e_i); e ~ N(0, 1) (``gaussian``) or U[0, 1)
    (``uniform``, the original code); ``mix`` X (B, T, F) forms m = c X where q holds a gain.
    Shape: (..., F) -> (..., F)"""
    shape, dev, dt = q.var.shape, q.var.device, q.var.dtype
    draw = torch.randn if noise == "gaussian" else torch.rand
    e_r = draw(shape, generator=generator, device=dev, dtype=dt)
    e_i = draw(shape, generator=generator, device=dev, dtype=dt)
    s = source_mean(q, mix) + torch.sqrt(q.var / 2) * torch.complex(e_r, e_i)
    return abs2(s)


class DVAESpectralPrior:
    """E-Z + E-S with one pretrained spectral DVAE per source (``models[n]`` for source n)."""

    def __init__(self, models: list[DVAE], options: SpectralPriorOptions = SpectralPriorOptions()):
        if len(models) < 1:
            raise ConfigError("DVAESpectralPrior needs at least one source model")
        for m in models:
            if m.config.head != "complex_variance":
                raise ConfigError(f"a '{m.family}' DVAE with a '{m.config.head}' head cannot model spectra: "
                                  "it needs head = 'complex_variance'")
            if not hasattr(m, "h_step") or not hasattr(m, "decode_from_h"):
                raise ConfigError(f"a '{m.family}' DVAE cannot drive the VEM (it needs srnn or deep_ar)")
            if m.x_dim != models[0].x_dim:
                raise ConfigError(f"source models disagree on the number of bins: {[x.x_dim for x in models]}")
        self.models = [m.eval() for m in models]
        for m in self.models:
            for p in m.parameters():
                p.requires_grad_(False)
        self.options = options
        # feedback = "mixture": the networks read the same |X|^2 at every iteration, so their
        # output (v^s per source and the KL) is kept with the mixture power it was computed on
        # (by initial_variance or the first E-step) and reused while the power is the same
        self._mixture_reading: tuple[Tensor, list[Tensor], Tensor] | None = None

    @property
    def _reading_is_fixed(self) -> bool:
        """Whether v^s does not change over the iterations: the mixture feedback with the encoder mean
        and the parallel recursion, so that one reading of |X|^2 serves every E-step."""
        o = self.options
        return o.feedback == "mixture" and not o.sample_z and o.recursion == "parallel" and o.first_input == "zero"

    def _cached_reading(self, power: Tensor) -> tuple[list[Tensor], Tensor] | None:
        """The kept reading (v^s per source, KL) when it was made on this mixture power (B, T, F)."""
        cached = self._mixture_reading
        if cached is None or cached[0].shape != power.shape or cached[0].device != power.device:
            return None
        if cached[0] is not power and not torch.equal(cached[0], power):
            return None
        return cached[1], cached[2]

    @property
    def num_sources(self) -> int:
        return len(self.models)

    # ------------------------------------------------------------------ helpers
    def _latents(self, model: DVAE, u: Tensor, generator) -> tuple[Tensor, Gauss | None, Tensor]:
        """E-Z: z ~ q(z | u) (or its mean), q(z), and h = LSTM(u_{<t}).  u (B, T, F) -> z (B, T, Z), h (B, T, H)."""
        net_in = model.net_input(u)  # the log of every bin, computed once for the two networks
        h = model.deterministic_h(u, net_in=net_in)
        if model.z_dim == 0:
            return u.new_zeros(*u.shape[:2], 0), None, h
        if self.options.latent == "prior":
            z_prev, zs = h.new_zeros(h.shape[0], model.z_dim), []
            for t in range(h.shape[1]):
                z_prev = model.prior_from_h(h[:, t], z_prev).mean
                zs.append(z_prev)
            return torch.stack(zs, 1), None, h
        z, qz = model.encode_from_features(model.encoder_features(u, h, net_in=net_in), self.options.sample_z, generator)
        return z, qz, h

    def _decode(self, model: DVAE, h: Tensor, z: Tensor) -> Tensor:
        return model.decode_from_h(h, z if model.z_dim > 0 else None).var

    def read_power(self, model: DVAE, u: Tensor, levels_db: tuple[float, ...],
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """v^s and KL of ``model`` reading the power sequence u at the levels L_l dB, g_l = 10^(L_l / 10):

            log v^s_t = (1 / G) sum_l [log v_theta(g_l u_{<t}, z_{l,t}) - log g_l],
            KL = sum_l sum_t KL(q(z_{l,t} | g_l u) || p(z_{l,t} | h_{l,t}, z_{l,t-1})),

        a product of G copies of the network, one per level, with their latents stacked (as for an
        ensemble of seeds, :mod:`mixdvae.dvae.ensemble`), so the ELBO stays exact. One level of
        0 dB is the plain reading. The G levels run as one batch.

        Shape: u (B, T, F) -> v^s (B, T, F), KL (B,)
        """
        B = u.shape[0]
        gains = [10.0 ** (level / 10.0) for level in levels_db]
        plain = gains == [1.0]
        x = u if plain else torch.cat([g * u for g in gains], dim=0)  # (G B, T, F)
        z, qz, h = self._latents(model, x, generator)
        v = self._decode(model, h, z)
        if not plain:
            log_g = torch.log(torch.tensor(gains, dtype=v.dtype, device=v.device))[:, None, None, None]
            v = torch.exp((torch.log(v).unflatten(0, (len(gains), B)) - log_g).mean(0))
        if qz is None:
            return v, u.new_zeros(B)
        kl = kl_diag_gauss(qz, model.prior_from_h(h, shift_right(z))).sum(-1)  # (G B,)
        return v, kl.unflatten(0, (len(gains), B)).sum(0)

    def _e_step_s(self, mix, eta, noise_var, prior_var) -> SpectralSources:
        step = e_step_s_mixture if self.options.posterior == "mixture" else e_step_s_wiener
        return step(mix, eta, noise_var, prior_var)

    def _feedback(self, q: SpectralSources, mix: Tensor, power: Tensor, generator) -> Tensor:
        """The power sequence the DVAEs read: E_q |s|^2 or a sample |s~|^2.  q (B, T, N, F), mix and
        power (B, T, F) -> (B, T, N, F)"""
        if self.options.feedback in ("expected", "masked"):
            return expected_power(q, power)
        return sample_power(q, self.options.noise, generator, mix)

    # ------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def initial_variance(self, mix_power: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """v^s_n from running DVAE n teacher-forced on the mixture power (reference section 6.2), or
        on a power of its own per source (B, T, N, F), e.g. the true sources' in a diagnostic.

        Shape: mix_power (B, T, F) or (B, T, N, F) -> (B, T, N, F)
        """
        floor = self.options.min_var * mix_power.mean(dim=tuple(range(1, mix_power.ndim))).clamp_min(1e-20)[:, None, None]
        keep = self._reading_is_fixed and mix_power.ndim == 3
        if keep and (cached := self._cached_reading(mix_power)) is not None:
            return torch.stack(cached[0], dim=2)
        out, kl = [], mix_power.new_zeros(mix_power.shape[0])
        for n, model in enumerate(self.models):
            power = mix_power if mix_power.ndim == 3 else mix_power[:, :, n]
            v_s, kl_n = self.read_power(model, power, self.options.mixture_levels_db, generator)
            out.append(torch.maximum(v_s, floor))
            kl = kl + kl_n
        if keep:  # the mixture-feedback loop's E-steps read the same |X|^2 at the same levels
            self._mixture_reading = (mix_power, out, kl)
        return torch.stack(out, dim=2)

    # ------------------------------------------------------------------ E-Z + E-S
    @torch.no_grad()
    def e_step(
        self, mix: Tensor, eta: Tensor, noise_var: Tensor, q_prev: SpectralSources,
        generator: torch.Generator | None = None,
    ) -> tuple[SpectralSources, Tensor, Tensor]:
        """New q(s), the prior part of the ELBO per mixture, E_q[log p(s | z)] + H[q(s)] - KL(q(z) || p(z)),
        and v^s.

        Shape: mix (B, T, F), eta (B, T, F, N), noise_var (B, T, F), q_prev (B, T, N, F)
               -> q (B, T, N, F), elbo (B,), prior_var (B, T, N, F)
        """
        B, T, N, F = q_prev.var.shape
        power = abs2(mix)  # (B, T, F)
        floor = self.options.min_var * power.mean(dim=(1, 2)).clamp_min(1e-20)[:, None]  # (B, 1)
        if self.options.feedback == "masked":
            u_all = eta.transpose(-1, -2) * power[:, :, None, :]  # (B, T, F, N) -> (B, T, N, F)
        elif self.options.feedback == "mixture":
            u_all = power[:, :, None, :].expand(B, T, N, F)
        else:
            u_all = self._feedback(q_prev, mix, power, generator)  # (B, T, N, F)
        parallel = self.options.recursion == "parallel" and self.options.first_input == "zero"
        levels = self.options.mixture_levels_db if self.options.feedback == "mixture" else (self.options.estimate_level_db,)
        fixed = self._reading_is_fixed
        cached = self._cached_reading(power) if fixed else None
        kl = cached[1] if cached is not None else mix.real.new_zeros(B)
        gains, variances, priors = [], [], []
        for n, model in enumerate(self.models):
            if cached is not None:
                v_s = cached[0][n]
            elif parallel:
                v_s, kl_n = self.read_power(model, u_all[:, :, n], levels, generator)
                v_s = torch.maximum(v_s, floor[:, :, None])
                kl = kl + kl_n
            else:
                u = u_all[:, :, n]
                z, qz, hs = self._latents(model, u, generator)
                q_n, v_s, hs = self._sequential(model, mix, power, eta[..., n], noise_var, u, z, floor, generator)
                if qz is not None:
                    kl = kl + kl_diag_gauss(qz, model.prior_from_h(hs, shift_right(z))).sum(-1)  # (B, T) -> (B,)
            if not parallel:
                gains.append(q_n.gain[:, :, 0])
                variances.append(q_n.var[:, :, 0])
            priors.append(v_s)
        prior_var = torch.stack(priors, 2)  # (B, T, N, F)
        if parallel:  # E-S is elementwise given v^s: all sources at once
            q = self._e_step_s(mix, eta, noise_var, prior_var)
        else:
            q = SpectralSources(None, torch.stack(variances, 2), torch.stack(gains, 2))
        if fixed and cached is None:
            self._mixture_reading = (power, priors, kl)
        elbo = source_elbo_spectral(q, prior_var, power) - kl
        return q, elbo, prior_var

    def _sequential(self, model, mix, power, eta_n, noise_var, u, z, floor, generator):
        """Frame-by-frame E-S: h_t from the current sweep's u_{t-1} (or u_1 of the input at t = 1
        with ``first_input = 'first_frame'``); ``power`` is |X|^2 (B, T, F).
        -> q (B, T, 1, F), v^s (B, T, F), h (B, T, H)"""
        B, T, F = mix.shape
        state, u_prev = None, None
        if self.options.first_input == "first_frame":
            u_prev = u[:, 0]
        parallel_h = self.options.recursion == "parallel"
        hs, vs, cs, gs = [], [], [], []
        for t in range(T):
            if parallel_h and t > 0:
                u_prev = u[:, t - 1]
            h_t, state = model.h_step(u_prev, state, B)
            v_t = torch.maximum(self._decode(model, h_t, z[:, t]), floor)
            q_t = self._e_step_s(mix[:, t:t + 1], eta_n[:, t:t + 1, :, None], noise_var[:, t:t + 1], v_t[:, None, None, :])
            if self.options.feedback == "masked":
                u_prev = eta_n[:, t] * power[:, t]
            elif self.options.feedback == "mixture":
                u_prev = power[:, t]
            else:  # q_t (B, 1, 1, F) of frame t
                u_prev = self._feedback(q_t, mix[:, t:t + 1], power[:, t:t + 1], generator)[:, 0, 0]
            hs.append(h_t)
            vs.append(v_t)
            cs.append(q_t.gain[:, 0])
            gs.append(q_t.var[:, 0])
        st = lambda xs: torch.stack(xs, 1)  # noqa: E731
        return SpectralSources(None, st(gs), st(cs)), st(vs), st(hs)
