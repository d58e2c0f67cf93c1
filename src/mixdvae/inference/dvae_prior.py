"""A pretrained DVAE as the source prior p(s_n, z_n) of the VEM: the E-Z and E-S steps.

E-Z: q(z_n | s_n) is the DVAE's encoder applied to the current posterior mean m_n (its mean, or
one sample), optionally refined per window by a few gradient steps on the ELBO of the latent part
(semi-amortised inference: the refined parameters belong to one window and one source only, so
nothing leaks across windows).

E-S: a forward recursion over t driven by the posterior means (reference section 4.5b):
    h_t = LSTM(MLP(m_{t-1})),  (mu_t, sigma2_t) = decoder(h_t, z_t),
    q(s_t) = N(mu_t, sigma2_t) x prod_k N(o_tk; s_t, Phi_tk)^{r_tkn}   (product of Gaussians),
    m_t feeds h_{t+1}.
Works for every family with a deterministic forward state driven by x (SRNN, Deep AR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from mixdvae.data.boxes import box_size
from mixdvae.dvae.base import DVAE, kl_diag_gauss
from mixdvae.dvae.heads import Gauss
from mixdvae.dvae.layers import shift_right
from mixdvae.errors import ConfigError
from mixdvae.inference.lgssm import check_gap_options, cv_bias_smoother, cv_smoother, detected_frames, gap_jumps
from mixdvae.inference.srnn_kernel import FusedSRNN
from mixdvae.inference.steps import e_step_s

__all__ = ["DVAEPriorOptions", "DVAESourcePrior"]


@dataclass(frozen=True)
class DVAEPriorOptions:
    """Options of the DVAE source prior.

    Attributes:
        sample_z: E-Z takes one sample of q(z | m) (reference) instead of its mean (default).
        anchor_first_frame: reference behaviour: the first LSTM input is the anchor box and the
            t = 1 prior is N(anchor, 1e-5) (reference section 4.5b); otherwise the first input is 0
            as in pretraining.
        ez_steps, ez_lr: per-window gradient refinement of q(z) (0 = the encoder output as is).
        min_var: floor on the decoder variance sigma2_t.
        extra_std: added prior noise, relative to each source's box size (w, h, w, h) at its anchor:
            sigma2_t + (extra_std * size)^2. A prior pretrained on smooth synthetic motion is
            over-confident on real detections; 0 keeps the DVAE's own variance (reference).
        smoother: two-filter smoothing with a second, time-reversed pass (the reference is a
            forward filter only, reference section 4.5).
        predictive: the prior of s_t is the DVAE's one-step prediction p(s_t | s_{<t}): z_t is the
            mean of p(z_t | h_t, z_{t-1}) with z_{t-1} from E-Z, so the prior carries no
            information from frame t itself. The reference decodes the E-Z latent z_t, which the
            encoder inferred from the previous estimate of s_t: the "prior" then mostly
            reconstructs the previous iteration and the VEM hardly moves from its initialisation.
        posterior: how E-S combines the prior with the observations. ``filter`` (reference): the
            forward recursion above, q(s_t) from frames <= t only. ``kalman``: the DVAE is
            linearised along the previous posterior means m: its one-step prediction becomes a
            velocity change u_t ~ N(a_t, sigma2_t + (extra_std size)^2) with
            a_t = mu_t(m_{<t}) - (2 m_{t-1} - m_{t-2}), in a constant-velocity state-space model
            [s_t, v_t]; q(s) is then that model's exact posterior given all frames (Kalman filter
            and RTS smoother, :func:`mixdvae.inference.lgssm.cv_smoother`), i.e. an iterated
            extended smoother: the DVAE supplies the dynamics, inference uses past and future.
        kalman_acc_std, kalman_init_std, kalman_vel_std: with ``kalman``, the floor on the
            acceleration noise and the initial position and velocity spreads, relative to the box
            size (as the VKF prior's acc_std, init_std, vel_std).
        kalman_learn_noise: with ``kalman``, an M-step on the added step variance of each source
            and coordinate (extra_std sets its first value): with u_t = v_t - v_{t-1} - a_t,
            r = max(floor, mean_t E_q[u_t^2] - q_vv - sigma2_t), E_q[u_t^2] from the smoothed
            velocities and their lag-one covariance (:attr:`SmootherResult.lag_cov_v`).
        kalman_noise_lag: L frames per velocity increment in that M-step (1: the exact M-step
            above). With L > 1, r = max(floor, mean_t E_q[U_t^2] / L - q_vv - mean sigma2) with
            U_t = v_t - v_{t-L} - sum_{j=t-L+1..t} a_j: a white acceleration (and a velocity jump)
            gives the same r for any L, while velocity wiggle from persistent detection errors,
            which does not accumulate, is divided by about L (an Allan-variance-style estimate).
            Cov(v_t, v_{t-L}) is approximated by chaining the lag-one correlations.
        kalman_bias_rho: with ``kalman``, > 0 adds to each source and coordinate a detection
            bias b_t, an AR(1) process of lag-one correlation rho, so that a detection is
            y_t = s_t + b_t + white noise (:func:`mixdvae.inference.lgssm.cv_bias_smoother`):
            the persistent part of the detection error (MOT15's boxes stay too wide or too
            narrow for several frames) is no longer explained as motion. q(s) given to the loop
            is that of y_t (what E-W, the M-step on Phi and the ELBO score); the DVAE is
            linearised along the smoothed s_t. 0: no bias (the model above).
        kalman_bias_std: first value of the bias's stationary std, relative to the box size; it
            is re-estimated per window, source and coordinate by an M-step:
            sigma_b^2 = (E b_1^2 + sum_{t>1} E[(b_t - rho b_{t-1})^2] / (1 - rho^2)) / T.
        kalman_gap_std: with ``kalman``, > 0 lets the velocity jump where a source's detections stop
            and where they resume: a velocity change of std kalman_gap_std x box size at the last
            frame with a detection before a gap and at the first one after it
            (:func:`mixdvae.inference.lgssm.gap_jump_weights`, the ``v_step`` of the smoother), so
            an occluded stretch is crossed at one velocity, the straight line between the boxes on
            either side, instead of carrying the velocity from before the occlusion
            (benchmarks/tracking_gaps.py). Those frames are left out of the step-noise M-step.
            0: off. Not with ``kalman_bias_rho``.
    """

    sample_z: bool = False
    anchor_first_frame: bool = False
    ez_steps: int = 0
    ez_lr: float = 0.05
    min_var: float = 1e-8
    extra_std: float = 0.0
    smoother: bool = False
    predictive: bool = False
    posterior: str = "filter"
    kalman_acc_std: float = 0.005
    kalman_init_std: float = 0.5
    kalman_vel_std: float = 0.2
    kalman_learn_noise: bool = False
    kalman_noise_lag: int = 1
    kalman_bias_rho: float = 0.0
    kalman_bias_std: float = 0.02
    kalman_gap_std: float = 0.0
    kalman_gap_min_run: int = 5
    kalman_gap_min_gap: int = 1

    def __post_init__(self) -> None:
        if self.posterior not in ("filter", "kalman"):
            raise ConfigError(f"DVAEPriorOptions.posterior = {self.posterior!r}: expected 'filter' or 'kalman'")
        if self.posterior == "kalman" and (self.smoother or self.anchor_first_frame):
            raise ConfigError("DVAEPriorOptions.posterior = 'kalman' already smooths: it excludes smoother and anchor_first_frame")
        for name in ("kalman_acc_std", "kalman_init_std", "kalman_vel_std"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"DVAEPriorOptions.{name} = {getattr(self, name)}: must be > 0")
        if not self.extra_std >= 0:
            raise ConfigError(f"DVAEPriorOptions.extra_std = {self.extra_std}: must be >= 0")
        if not (isinstance(self.kalman_noise_lag, int) and self.kalman_noise_lag >= 1):
            raise ConfigError(f"DVAEPriorOptions.kalman_noise_lag = {self.kalman_noise_lag!r}: must be an integer >= 1")
        if not 0.0 <= self.kalman_bias_rho < 1.0:
            raise ConfigError(f"DVAEPriorOptions.kalman_bias_rho = {self.kalman_bias_rho}: must be in [0, 1)")
        if not self.kalman_bias_std > 0:
            raise ConfigError(f"DVAEPriorOptions.kalman_bias_std = {self.kalman_bias_std}: must be > 0")
        check_gap_options("DVAEPriorOptions", "kalman_", self.kalman_gap_std, self.kalman_gap_min_run, self.kalman_gap_min_gap)
        if self.kalman_gap_std > 0 and (self.posterior != "kalman" or self.kalman_bias_rho > 0):
            raise ConfigError("DVAEPriorOptions.kalman_gap_std needs posterior = 'kalman' and no kalman_bias_rho")
        if self.kalman_bias_rho > 0 and self.posterior != "kalman":
            raise ConfigError("DVAEPriorOptions.kalman_bias_rho needs posterior = 'kalman'")
        if self.ez_steps < 0:
            raise ConfigError(f"DVAEPriorOptions.ez_steps = {self.ez_steps}: must be >= 0")
        if not self.ez_lr > 0:
            raise ConfigError(f"DVAEPriorOptions.ez_lr = {self.ez_lr}: must be > 0")


class DVAESourcePrior:
    """E-Z + E-S with a shared pretrained DVAE for all N sources (run as a batch of B*N sequences).

    ``anchor`` (B, N, D) is used only with ``anchor_first_frame``. ``fused``: run the two
    sequential loops (E-Z encoder, E-S filter) with :class:`FusedSRNN` where it supports the model
    (same quantities, a third of the tensor operations); False forces the generic module path.
    """

    def __init__(
        self, model: DVAE, options: DVAEPriorOptions = DVAEPriorOptions(), anchor: Tensor | None = None,
        fused: bool | FusedSRNN = True,
    ):
        if not hasattr(model, "h_step") or not hasattr(model, "decode_from_h"):
            raise ConfigError(
                f"a '{model.family}' DVAE cannot drive the VEM (it needs a forward state driven by x: srnn or deep_ar)"
            )
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.options = options
        self.anchor = anchor
        if fused is True:
            fused = FusedSRNN(model) if FusedSRNN.supports(model) else False
        self.fused: FusedSRNN | None = fused or None
        # h_t = LSTM(m_{t-1}) of the last forward filter, keyed by the q(s) mean it returned: the
        # next E-Z encodes exactly that mean, so its deterministic_h pass is the filter's own h.
        self._filter_h: tuple[Tensor, Tensor] | None = None
        # kalman_learn_noise: the step variance re-estimated by the last E-S, keyed like _filter_h
        self._step_extra: tuple[Tensor, Tensor] | None = None
        # kalman_bias_rho: (returned q(y) mean, smoothed s means (BN, T, D), learned bias variance (BN, D))
        self._bias: tuple[Tensor, Tensor, Tensor] | None = None
        # kalman_gap_std: (frames with a detection (BN, D, T), their jump weights) of the last E-S; the
        # next recomputes the rows whose detected frames changed (a few per iteration)
        self._gaps: tuple[Tensor, Tensor] | None = None

    def with_anchor(self, anchor: Tensor) -> "DVAESourcePrior":
        return DVAESourcePrior(self.model, self.options, anchor, self.fused or False)

    # -------------------------------------------------------------- E-Z
    def _e_step_z(self, xbar: Tensor, s_var: Tensor, generator, h: Tensor | None = None) -> tuple[Tensor, Gauss | None]:
        """z (BN, T, Z) and q(z) from the encoder on the posterior means, optionally refined.
        ``h``: deterministic_h(xbar) when the caller already has it."""
        model = self.model
        if model.z_dim == 0:
            return xbar.new_zeros(*xbar.shape[:2], 0), None
        with torch.no_grad():
            h = model.deterministic_h(xbar) if h is None else h
            feats = model.encoder_features(xbar, h)
            if self.fused is not None and not self.options.sample_z:
                q = self.fused.encode_means(feats)
                z = q.mean
            else:
                z, q = model.encode_from_features(feats, self.options.sample_z, generator)
        if self.options.ez_steps == 0:
            return z, q
        mean = q.mean.clone().requires_grad_(True)
        logvar = torch.log(q.var).clone().requires_grad_(True)
        opt = torch.optim.Adam([mean, logvar], lr=self.options.ez_lr)
        for _ in range(self.options.ez_steps):
            opt.zero_grad()
            eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = mean + torch.exp(0.5 * logvar) * eps
            px = model.decode_from_h(h, z, model.residual_base_seq(xbar))
            pz = model.prior_from_h(h, shift_right(z))
            # -E_q[log p(s | z)] with q(s) = N(xbar, s_var), plus KL(q(z) || p(z)); summed: windows independent.
            nll = 0.5 * (torch.log(px.var) + ((xbar - px.mean) ** 2 + s_var) / px.var).sum()
            kl = kl_diag_gauss(Gauss(mean, torch.exp(logvar)), pz).sum()
            (nll + kl).backward()
            opt.step()
        q = Gauss(mean.detach(), torch.exp(logvar.detach()))
        return (q.mean if not self.options.sample_z else z.detach()), q

    # -------------------------------------------------------------- E-S
    def _filter(self, z: Tensor, prec: Tensor, info: Tensor, anchor: Tensor | None, extra_var) -> tuple[Tensor, ...]:
        """The forward recursion: prior from the DVAE driven by the posterior means, then the
        product with the observation messages.  (BN, T, D) -> m, v, mu, sigma2 (BN, T, D), h (BN, T, H)."""
        model, opts = self.model, self.options
        if self.fused is not None and not (opts.anchor_first_frame and anchor is not None):
            return self.fused.filter(z, prec, info, extra_var, opts.min_var, opts.predictive)
        BN, T, D = prec.shape
        state, u = None, None
        means, variances, mus, sig2s, hs = [], [], [], [], []
        for t in range(T):
            if t == 0 and opts.anchor_first_frame and anchor is not None:
                h_t, state = model.h_step(anchor, None, BN)
                prior = Gauss(anchor, torch.full_like(anchor, 1e-5))
            else:
                base = model.residual_base(u, None if state is None else state[2])
                h_t, state = model.h_step(u, state, BN)
                z_t = z[:, t]
                if opts.predictive and z.shape[-1] > 0:
                    z_prev = z[:, t - 1] if t > 0 else torch.zeros_like(z_t)
                    z_t = model.prior_from_h(h_t, z_prev).mean
                prior = model.decode_from_h(h_t, z_t, base)
                prior = Gauss(prior.mean, prior.var.clamp_min(opts.min_var) + extra_var)
            post = e_step_s(prior, prec[:, t], info[:, t])
            u = post.mean
            means.append(post.mean)
            variances.append(post.var)
            mus.append(prior.mean)
            sig2s.append(prior.var)
            hs.append(h_t)
        stack = lambda xs: torch.stack(xs, 1)  # noqa: E731
        return stack(means), stack(variances), stack(mus), stack(sig2s), stack(hs)

    @torch.no_grad()
    def e_step(
        self, prec_msg: Tensor, info_msg: Tensor, q_prev: Gauss, generator: torch.Generator | None = None
    ) -> tuple[Gauss, Tensor]:
        """New q(s) and the prior part of the ELBO, E_q[log p(s, z)] - E_q[log q(s)] - E_q[log q(z)]
        (decoder terms evaluated along the forward recursion).

        With ``smoother``, the recursion also runs on the time-reversed sequence (the same DVAE,
        as box motion statistics are close to time-symmetric) and q(s_t) is the two-filter
        combination N(mu_f, sigma2_f) N(mu_b, sigma2_b) prod_k N(o_tk; s_t, Phi_tk)^{r_tkn}: the
        forward prediction from frames < t, the backward one from frames > t and frame t itself.

        Shape: prec_msg, info_msg, q_prev (B, T, N, D) -> Gauss (B, T, N, D), (B,)
        """
        B, T, N, D = q_prev.mean.shape
        flat = lambda x: x.permute(0, 2, 1, 3).reshape(B * N, T, -1)  # (B, T, N, D) -> (B*N, T, D)
        xbar, sbar = flat(q_prev.mean), flat(q_prev.var)
        prec, info = flat(prec_msg), flat(info_msg)
        opts = self.options
        anchor = None if self.anchor is None else self.anchor.reshape(B * N, D)
        extra_var = 0.0
        if opts.extra_std > 0 and anchor is not None:
            extra_var = (opts.extra_std * box_size(anchor)) ** 2  # (B*N, D)
        if opts.smoother:
            # forward and time-reversed sequences as one batch of 2BN
            rev = lambda x: torch.flip(x, dims=[1])  # noqa: E731
            xbar, sbar = torch.cat([xbar, rev(xbar)]), torch.cat([sbar, rev(sbar)])
            prec, info = torch.cat([prec, rev(prec)]), torch.cat([info, rev(info)])
            if anchor is not None:
                anchor = torch.cat([anchor, xbar[B * N:, 0]])
            if torch.is_tensor(extra_var):
                extra_var = torch.cat([extra_var, extra_var])
        if opts.posterior == "kalman":
            learned = self._step_extra
            if opts.kalman_learn_noise and learned is not None and learned[0] is q_prev.mean:
                extra_var = learned[1]
            bias_var = None
            if opts.kalman_bias_rho > 0:
                cached = self._bias
                if cached is not None and cached[0] is q_prev.mean:
                    xbar, bias_var = cached[1], cached[2]
            q, elbo, step_extra = self._e_step_kalman(xbar, sbar, prec, info, anchor, extra_var, generator,
                                                      (B, N, T, D), bias_var)
            self._step_extra = (q.mean, step_extra) if opts.kalman_learn_noise else None
            return q, elbo
        with torch.enable_grad():
            cached = self._filter_h
            h_prev = cached[1] if cached is not None and cached[0] is q_prev.mean and not opts.smoother else None
            z, qz = self._e_step_z(xbar, sbar, generator, h_prev)
        m, v, mu, sig2, hs = self._filter(z, prec, info, anchor, extra_var)
        reusable = not opts.smoother and not (opts.anchor_first_frame and anchor is not None)
        if opts.smoother:
            BN = B * N
            mu_b, sig2_b = torch.flip(mu[BN:], dims=[1]), torch.flip(sig2[BN:], dims=[1])
            m, v, mu, sig2, hs, z = m[:BN], v[:BN], mu[:BN], sig2[:BN], hs[:BN], z[:BN]
            qz = None if qz is None else Gauss(qz.mean[:BN], qz.var[:BN])
            precision = 1.0 / sig2 + 1.0 / sig2_b + prec[:BN]
            m = (mu / sig2 + mu_b / sig2_b + info[:BN]) / precision
            v = 1.0 / precision
        # E_q[log p(s_t | h_t, z_t)] + H[q(s_t)]
        elbo = (-0.5 * (torch.log(2 * math.pi * sig2) + ((m - mu) ** 2 + v) / sig2) + 0.5 * torch.log(2 * math.pi * math.e * v)).sum(dim=(1, 2))
        if qz is not None:
            prior_z = self.model.prior_from_h if self.fused is None else self.fused.prior_z
            pz = prior_z(hs, shift_right(z))
            elbo = elbo - kl_diag_gauss(qz, pz).sum(1)
        unflat = lambda x: x.reshape(B, N, T, D).permute(0, 2, 1, 3)  # noqa: E731
        q = Gauss(unflat(m), unflat(v))
        self._filter_h = (q.mean, hs) if reusable else None
        return q, elbo.reshape(B, N).sum(1)

    def _e_step_kalman(self, xbar, sbar, prec, info, anchor, extra_var, generator, shape,
                       bias_var=None) -> tuple[Gauss, Tensor, Tensor | None]:
        """E-S with the DVAE linearised along the previous means (``posterior = "kalman"``), and the
        re-estimated step variance with ``kalman_learn_noise`` (else None). With ``kalman_bias_rho``
        the bias's variance ``bias_var`` (None: its first value) is re-estimated too (kept in
        ``self._bias``).

        Shape: xbar, sbar, prec, info (BN, T, D), anchor (BN, D) or None, bias_var (BN, D) or None
            -> Gauss (B, T, N, D), (B,), (BN, D)
        """
        B, N, T, D = shape
        model, opts = self.model, self.options
        h = model.deterministic_h(xbar)
        with torch.enable_grad():
            z, qz = self._e_step_z(xbar, sbar, generator, h)
        pz = None
        if z.shape[-1] > 0:  # Deep AR has no latent
            prior_z = model.prior_from_h if self.fused is None else self.fused.prior_z
            pz = prior_z(h, shift_right(z))
        z_dec = pz.mean if (opts.predictive and pz is not None) else z
        decode = model.decode_from_h if self.fused is None else self.fused.decode
        pred = decode(h, z_dec, model.residual_base_seq(xbar))  # mu_t(m_{<t}), (BN, T, D)
        cv = shift_right(xbar)
        cv[:, 2:] = 2 * xbar[:, 1:-1] - xbar[:, :-2]  # 2 m_{t-1} - m_{t-2}; m_0 at t = 1
        offset = (pred.mean - cv).transpose(1, 2)  # (BN, D, T); index 0 unused
        extra = extra_var[:, None, :] if torch.is_tensor(extra_var) else extra_var
        step_var = (pred.var.clamp_min(opts.min_var) + extra).transpose(1, 2)  # (BN, D, T)
        first = xbar[:, 0] if anchor is None else anchor
        size = box_size(first, 1e-3)  # (BN, D)
        # The step noise is rank one ([[1, 1], [1, 1]]); where it dwarfs the acceleration floor the
        # predicted 2x2 covariances are too close to singular for float32. It is capped at 1e3 x the
        # floor (a step std of 0.6 box sizes per frame with the default floor: "unknown" in practice,
        # as where the DVAE meets motion unlike its training data), which keeps float32 exact enough.
        q_floor = (opts.kalman_acc_std * size) ** 2  # (BN, D)
        lam, inf = prec.transpose(1, 2), info.transpose(1, 2)  # (BN, D, T)
        step_var = torch.minimum(step_var, 1e3 * q_floor[..., None])
        jump, jump_var = None, None
        if opts.kalman_gap_std > 0:
            seen = detected_frames(lam)  # (BN, D, T)
            cached = self._gaps
            if cached is None or cached[0].shape != seen.shape:
                jump = gap_jumps(seen, opts.kalman_gap_min_run, opts.kalman_gap_min_gap).to(lam.dtype)
            else:  # recompute only the rows whose detected frames changed (a few per iteration)
                rows = (cached[0] != seen).any(-1).reshape(-1).nonzero().squeeze(1)
                jump = cached[1]
                if rows.numel() > 0:
                    jump = jump.reshape(-1, T).clone()
                    jump[rows] = gap_jumps(seen.reshape(-1, T)[rows], opts.kalman_gap_min_run,
                                           opts.kalman_gap_min_gap).to(lam.dtype)
                    jump = jump.reshape(seen.shape)
            self._gaps = (seen, jump)
            jump_var = jump * (opts.kalman_gap_std * size[..., None]) ** 2
        rho_b = opts.kalman_bias_rho
        if rho_b > 0:
            if bias_var is None:
                bias_var = (opts.kalman_bias_std * size) ** 2
            res = cv_bias_smoother(lam, inf, q_floor, first, (opts.kalman_init_std * size) ** 2,
                                   (opts.kalman_vel_std * size) ** 2, bias_var, rho_b, offset=offset, q_step=step_var)
            m, v = res.mean_y, res.var_y
        else:
            # float64 with the gap rule: with the jumps' free velocities the loop carries float32
            # rounding to 1e-4 of the ELBO, the size of the per-window stop's tolerance (docs/tracking.md)
            res = cv_smoother(lam, inf, q_floor, first, (opts.kalman_init_std * size) ** 2, (opts.kalman_vel_std * size) ** 2,
                              offset=offset, q_step=step_var, v_step=jump_var, float64=jump_var is not None)
            m, v = res.mean_p, res.var_p
        step_extra = None
        if opts.kalman_learn_noise and T > 1:
            # M-step: E_q[u_t^2], u_t = v_t - v_{t-1} - a_t, minus the parts of its variance not learned
            dvae_var = pred.var.clamp_min(opts.min_var).transpose(1, 2)[..., 1:]
            L = min(opts.kalman_noise_lag, T - 1)
            if L == 1:
                du = res.mean_v[..., 1:] - res.mean_v[..., :-1] - offset[..., 1:]
                u2 = du ** 2 + res.var_v[..., 1:] + res.var_v[..., :-1] - 2 * res.lag_cov_v[..., 1:]
                excess = u2 - q_floor[..., None] - dvae_var
                if jump is None:
                    step_extra = excess.mean(-1).clamp_min(0.0)
                else:  # the steps where the velocity may jump say nothing about the step noise
                    keep = (1.0 - jump[..., 1:]).clamp_min(0.0)
                    step_extra = ((keep * excess).sum(-1) / keep.sum(-1).clamp_min(1e-6)).clamp_min(0.0)
            else:
                step_extra = _lagged_step_variance(res, offset, dvae_var, q_floor, L, jump)
            step_extra = torch.maximum(step_extra, (1e-3 * size) ** 2).clamp_max(size ** 2)  # (BN, D)
        # ELBO of the linearised model, in the centred form of ConstantVelocityPrior.e_step.
        observed = lam > 0
        y = torch.where(observed, inf / torch.where(observed, lam, torch.ones_like(lam)), torch.zeros_like(inf))
        expected_factor = torch.where(observed, -0.5 * lam * ((m - y) ** 2 + v), torch.zeros_like(m)).sum(dim=(1, 2))
        elbo = res.log_norm_centred.sum(dim=1) - expected_factor
        if qz is not None and pz is not None:
            elbo = elbo - kl_diag_gauss(qz, pz).sum(1)
        unflat = lambda x: x.transpose(1, 2).reshape(B, N, T, D).permute(0, 2, 1, 3)  # noqa: E731  (BN, D, T) -> (B, T, N, D)
        q = Gauss(unflat(m), unflat(v))
        if rho_b > 0:
            self._bias = (q.mean, res.mean_p.transpose(1, 2), _bias_variance(res, rho_b, size))
        return q, elbo.reshape(B, N).sum(1), step_extra


def _bias_variance(res, rho: float, size: Tensor) -> Tensor:
    """M-step on the stationary variance of the AR(1) detection bias (``kalman_bias_rho``):

        sigma_b^2 = (E_q[b_1^2] + sum_{t>1} E_q[(b_t - rho b_{t-1})^2] / (1 - rho^2)) / T,
        E_q[(b_t - rho b_{t-1})^2] = E b_t^2 - 2 rho E[b_t b_{t-1}] + rho^2 E b_{t-1}^2,

    clamped to [(1e-3 size)^2, size^2].

    Shape: res fields (M, D, T), size (M, D) -> (M, D)
    """
    b2 = res.mean_b ** 2 + res.var_b
    T = b2.shape[-1]
    total = b2[..., 0]
    if T > 1:
        cross = res.lag_cov_b[..., 1:] + res.mean_b[..., 1:] * res.mean_b[..., :-1]
        innov = b2[..., 1:] - 2 * rho * cross + rho * rho * b2[..., :-1]
        total = total + innov.sum(-1) / (1.0 - rho * rho)
    return torch.maximum(total / T, (1e-3 * size) ** 2).minimum(size ** 2)


def _lagged_step_variance(res, offset: Tensor, dvae_var: Tensor, q_floor: Tensor, lag: int,
                          jump: Tensor | None = None) -> Tensor:
    """The step-variance M-step over increments of ``lag`` frames (``kalman_noise_lag``):

        r = max(0, mean_t E_q[U_t^2] / L - q_vv - mean_t sigma2_t),
        U_t = v_t - v_{t-L} - sum_{j=t-L+1..t} a_j,
        E_q[U_t^2] = E[U_t]^2 + Var(v_t) + Var(v_{t-L}) - 2 Cov(v_t, v_{t-L}),

    with Cov(v_t, v_{t-L}) ~ sqrt(Var(v_t) Var(v_{t-L})) prod_k rho_k, rho_k the lag-one
    correlation of the smoothed velocities (exact for L = 1). With ``jump`` (the weights of
    ``kalman_gap_std``), the increments that span a jump are left out of the mean.

    Shape: res fields (M, D, T), offset (M, D, T) (index 0 unused), dvae_var (M, D, T-1),
           q_floor (M, D) -> (M, D)
    """
    zero = torch.zeros_like(offset[..., :1])
    cum_a = torch.cat([zero, offset[..., 1:].cumsum(-1)], dim=-1)  # A_t = sum_{j<=t} a_j, (M, D, T)
    mean_u = (res.mean_v[..., lag:] - res.mean_v[..., :-lag]) - (cum_a[..., lag:] - cum_a[..., :-lag])
    var_v = res.var_v.clamp_min(1e-30)
    rho = (res.lag_cov_v[..., 1:] / torch.sqrt(var_v[..., 1:] * var_v[..., :-1])).clamp(1e-12, 1.0)  # (M, D, T-1)
    cum_log_rho = torch.cat([zero, torch.log(rho).cumsum(-1)], dim=-1)  # (M, D, T)
    chain = torch.exp(cum_log_rho[..., lag:] - cum_log_rho[..., :-lag])
    cov = torch.sqrt(var_v[..., lag:] * var_v[..., :-lag]) * chain
    u2 = mean_u ** 2 + res.var_v[..., lag:] + res.var_v[..., :-lag] - 2 * cov
    if jump is None:
        return (u2.mean(-1) / lag - q_floor - dvae_var.mean(-1)).clamp_min(0.0)
    # increments that span a velocity jump of kalman_gap_std say nothing about the step noise
    cum_j = torch.cat([zero, jump[..., 1:].cumsum(-1)], dim=-1)  # jumps at frames <= t, (M, D, T)
    keep = ((cum_j[..., lag:] - cum_j[..., :-lag]) < 0.5).to(u2.dtype)  # none in (t - L, t]
    mean_u2 = (keep * u2).sum(-1) / keep.sum(-1).clamp_min(1.0)
    return (mean_u2 / lag - q_floor - dvae_var.mean(-1)).clamp_min(0.0)
