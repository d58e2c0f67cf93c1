"""SRNN: stochastic recurrent neural network (Fraccaro et al. 2016), the MixDVAE prior.

Generative model (reference-implementation.md section 1.1):
    h_t = LSTM(MLP_xh(x_{t-1}), h_{t-1}),  x_0 = 0
    p(z_t | h_t, z_{t-1}) = N(mu_p, diag sigma2_p),  (mu_p, log sigma2_p) = heads(MLP_hzz([h_t, z_{t-1}]))
    p(x_t | h_t, z_t) from heads(MLP_hzx([h_t, z_t]))
Inference:
    backward (standard): g_t = LSTM_bwd(MLP_hxg([h_t, x_t])) sees x_{t:T};
                         q(z_t | z_{t-1}, g_t) from MLP_gzz([g_t, z_{t-1}])
    causal (original MOT model): q(z_t | z_{t-1}, h_t, x_t) from MLP_gzz([h_t, x_t, z_{t-1}])

Config fields used: dense_x, rnn_dim, dense_g, g_dim (backward only), dense_enc, dense_prior,
dense_dec, encoder, head. Parameter names follow the original state_dict prefixes (``mlp_x_h``,
``rnn_h``, ``mlp_hx_g``, ``rnn_g``, ``mlp_gz_z``, ``inf_z_mean``, ...), see :mod:`mixdvae.dvae.reference`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mixdvae.dvae.base import DVAE
from mixdvae.dvae.config import DVAEConfig
from mixdvae.dvae.heads import Gauss
from mixdvae.dvae.layers import MLP, lstm_step, shift_right

__all__ = ["SRNN"]


class SRNN(DVAE):
    family = "srnn"

    def __init__(self, config: DVAEConfig):
        super().__init__(config)
        c = config
        act = c.activation
        self.mlp_x_h = MLP(self.net_in_dim, c.dense_x, act)
        self.rnn_h = nn.LSTM(self.mlp_x_h.out_dim, c.rnn_dim, batch_first=True)
        if c.encoder == "backward":
            self.mlp_hx_g = MLP(c.rnn_dim + self.net_in_dim, c.dense_g, act)
            self.rnn_g = nn.LSTM(self.mlp_hx_g.out_dim, c.g_dim, batch_first=True)
            enc_in = c.g_dim + c.z_dim
        else:
            enc_in = c.rnn_dim + self.net_in_dim + c.z_dim
        self.mlp_gz_z = MLP(enc_in, c.dense_enc, act)
        self.inf_z_mean = nn.Linear(self.mlp_gz_z.out_dim, c.z_dim)
        self.inf_z_logvar = nn.Linear(self.mlp_gz_z.out_dim, c.z_dim)
        self.mlp_hz_z = MLP(c.rnn_dim + c.z_dim, c.dense_prior, act)
        self.prior_z_mean = nn.Linear(self.mlp_hz_z.out_dim, c.z_dim)
        self.prior_z_logvar = nn.Linear(self.mlp_hz_z.out_dim, c.z_dim)
        self.mlp_hz_x = MLP(c.rnn_dim + c.z_dim, c.dense_dec, act)
        self.head = self._make_head(self.mlp_hz_x.out_dim)

    @property
    def causal_encoder(self) -> bool:  # type: ignore[override]
        return self.config.encoder == "causal"

    # ------------------------------------------------------------------ deterministic path
    def deterministic_h(self, x: Tensor, net_in: Tensor | None = None) -> Tensor:
        """h_t = LSTM(MLP_xh(x_{t-1})) for all t, x_0 = 0; ``net_in``: :meth:`net_input` of x if
        already computed.  Shape: (B, T, D) -> (B, T, H)."""
        h, _ = self.rnn_h(self.mlp_x_h(shift_right(self.net_input(x) if net_in is None else net_in)))
        return h

    def h_step(self, x_prev: Tensor | None, state: tuple | None, batch: int = 0) -> tuple[Tensor, tuple]:
        """One LSTM step h_t from x_{t-1}; ``x_prev=None`` is the first step (network input 0).
        ``state`` is (h, c, x_{t-2}, x_{t-3}) or None.

        Shape: x_prev (B, D) -> h (B, H).
        """
        if x_prev is None:
            u = self.inf_z_mean.weight.new_zeros(batch, self.net_in_dim)
        else:
            u = self.net_input_step(x_prev, None if state is None else state[2], None if state is None else state[3])
        h, (h, c) = lstm_step(self.rnn_h, self.mlp_x_h(u), None if state is None else state[:2])
        return h, (h, c, x_prev, None if state is None else state[2])

    def prior_from_h(self, h: Tensor, z_prev: Tensor) -> Gauss:
        """p(z_t | h_t, z_{t-1}).  Shape: (..., H), (..., Z) -> (..., Z)."""
        f = self.mlp_hz_z(torch.cat([h, z_prev], dim=-1))
        return Gauss(self.prior_z_mean(f), torch.exp(self.prior_z_logvar(f)))

    def decoder_features(self, h: Tensor, z: Tensor | None) -> Tensor:
        """What the output head reads: MLP_hzx([h_t, z_t]).  Shape: (..., H), (..., Z) -> (..., F)."""
        return self.mlp_hz_x(torch.cat([h, z], dim=-1))

    def decode_from_h(self, h: Tensor, z: Tensor, base: Tensor | None = None) -> Gauss:
        """p(x_t | h_t, z_t); a residual decoder's mean is ``base`` + f(h_t, z_t) with ``base`` from
        :meth:`residual_base` (None: f alone).  Shape: (..., H), (..., Z), (..., D) -> (..., D)."""
        p = self.head(self.decoder_features(h, z))
        if self.config.residual:
            scaled = p.mean * self.config.residual_scale
            return Gauss(scaled if base is None else scaled + base, p.var)
        return p

    # ------------------------------------------------------------------ DVAE interface
    def encoder_features(self, x: Tensor, h: Tensor, net_in: Tensor | None = None) -> Tensor:
        """g_t (backward) or [h_t, x_t] (causal); ``net_in`` as in :meth:`deterministic_h`.
        Shape: (B, T, D), (B, T, H) -> (B, T, G)."""
        xin = self.net_input(x) if net_in is None else net_in
        if self.config.encoder == "backward":
            u = self.mlp_hx_g(torch.cat([h, xin], dim=-1))
            g, _ = self.rnn_g(torch.flip(u, dims=[1]))
            return torch.flip(g, dims=[1])
        return torch.cat([h, xin], dim=-1)

    def encode_from_features(
        self, feats: Tensor, sample: bool = True, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Gauss]:
        """q(z_t | feats_t, z_{t-1}), sequential over t with z_0 = 0.  (B, T, G) -> (B, T, Z).

        The first layer of MLP_gzz reads [g_t, z_{t-1}]: W [g_t; z_{t-1}] + b = (W_g g_t + b) + W_z z_{t-1},
        so its g part is one matmul for all t before the loop, which then only adds W_z z_{t-1}. Without
        sampling the loop needs the means alone; the log-variances are one matmul after it.
        """
        B, T, G = feats.shape
        layers, act = self.mlp_gz_z.layers, self.mlp_gz_z.act
        if len(layers) == 0 or self.z_dim == 0:
            return self._encode_loop(feats, sample, generator)
        first = layers[0]
        pre = nn.functional.linear(feats.transpose(0, 1), first.weight[:, :G], first.bias)  # (T, B, H1)
        w_z = first.weight[:, G:].t()  # (Z, H1)
        z_prev = feats.new_zeros(B, self.z_dim)
        zs, means, logvars, last = [], [], [], []
        for t in range(T):
            a = act(torch.addmm(pre[t], z_prev, w_z))
            for layer in layers[1:]:
                a = act(layer(a))
            mean = self.inf_z_mean(a)
            if sample:
                logvar = self.inf_z_logvar(a)
                z_prev = self._reparam(mean, logvar, True, generator)
                logvars.append(logvar)
            else:
                z_prev = mean
                last.append(a)
            zs.append(z_prev)
            means.append(mean)
        logvar = torch.stack(logvars, 1) if sample else self.inf_z_logvar(torch.stack(last, 1))
        return torch.stack(zs, 1), Gauss(torch.stack(means, 1), torch.exp(logvar))

    def _encode_loop(self, feats: Tensor, sample: bool, generator: torch.Generator | None) -> tuple[Tensor, Gauss]:
        """:meth:`encode_from_features` step by step on [g_t, z_{t-1}] (an MLP_gzz without layers, or no z)."""
        B, T, _ = feats.shape
        z_prev = feats.new_zeros(B, self.z_dim)
        zs, means, logvars = [], [], []
        for t in range(T):
            f = self.mlp_gz_z(torch.cat([feats[:, t], z_prev], dim=-1))
            mean, logvar = self.inf_z_mean(f), self.inf_z_logvar(f)
            z_prev = self._reparam(mean, logvar, sample, generator)
            zs.append(z_prev)
            means.append(mean)
            logvars.append(logvar)
        return torch.stack(zs, 1), Gauss(torch.stack(means, 1), torch.exp(torch.stack(logvars, 1)))

    def encode(self, x, sample=True, generator=None):
        h = self.deterministic_h(x)
        return self.encode_from_features(self.encoder_features(x, h), sample, generator)

    def prior_z(self, x, z):
        return self.prior_from_h(self.deterministic_h(x), shift_right(z))

    def decode(self, x, z):
        return self.decode_from_h(self.deterministic_h(x), z, self.residual_base_seq(x))

    def teacher_forced(self, x, ss_prob=0.0, generator=None):
        h = self.deterministic_h(x)
        z, q = self.encode_from_features(self.encoder_features(x, h), True, generator)
        base = self.residual_base_seq(x)
        if ss_prob > 0:
            h, base = self._scheduled_h(x, z, ss_prob, generator)
        return q, self.prior_from_h(h, shift_right(z)), self.decode_from_h(h, z, base)

    def _scheduled_h(self, x: Tensor, z: Tensor, ss_prob: float, generator) -> tuple[Tensor, Tensor | None]:
        """h_t driven by x_{t-1} or, with probability ``ss_prob`` per (b, t), by the model's own
        (detached) sample of x_{t-1} (scheduled sampling, Bengio et al. 2015). Returns h and the
        residual bases of the inputs it used.  (B, T, D) -> (B, T, H), (B, T, D) or None"""
        B, T, D = x.shape
        use_pred = torch.rand((B, T), generator=generator, device=x.device) < ss_prob
        state = None
        x_prev = None
        hs, bases = [], []
        for t in range(T):
            base = self.residual_base(x_prev, None if state is None else state[2])
            h_t, state = self.h_step(x_prev, state, B)
            hs.append(h_t)
            bases.append(x.new_zeros(B, D) if base is None else base)
            x_hat = self.head.sample(self.decode_from_h(h_t, z[:, t], base), generator).detach()
            x_prev = torch.where(use_pred[:, t, None], x_hat, x[:, t])
        return torch.stack(hs, 1), (torch.stack(bases, 1) if self.config.residual else None)

    @torch.no_grad()
    def generate(self, batch, length, generator=None, first=None):
        device = next(self.parameters()).device
        x_prev = None
        z_prev = torch.zeros(batch, self.z_dim, device=device)
        state = None
        xs = []
        for t in range(length):
            base = self.residual_base(x_prev, None if state is None else state[2])
            h_t, state = self.h_step(x_prev, state, batch)
            pz = self.prior_from_h(h_t, z_prev)
            z_prev = pz.mean + torch.sqrt(pz.var) * self._randn(pz.mean.shape, pz.mean, generator)
            if t == 0 and first is not None:
                x_prev = first.to(device)
            else:
                x_prev = self.head.sample(self.decode_from_h(h_t, z_prev, base), generator)
            xs.append(x_prev)
        return torch.stack(xs, 1)

    def predict_next(self, x):
        """O(T) one-step prediction for the causal encoder (equal to the generic prefix version,
        since q(z_{t-1} | x_{1:T}) = q(z_{t-1} | x_{1:t-1}) there); the generic one otherwise."""
        if not self.causal_encoder:
            return super().predict_next(x)
        self.check_input(x)
        h = self.deterministic_h(x)
        z, _ = self.encode_from_features(self.encoder_features(x, h), sample=False)
        pz = self.prior_from_h(h[:, 1:], z[:, :-1])
        base = self.residual_base_seq(x)
        return self.decode_from_h(h[:, 1:], pz.mean, None if base is None else base[:, 1:])
