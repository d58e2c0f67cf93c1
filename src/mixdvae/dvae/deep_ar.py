"""Deep AR: a deterministic autoregressive LSTM, the Deep AR baseline of the paper.

    h_t = LSTM(MLP_xh(x_{t-1}), h_{t-1}),  x_0 = 0;  p(x_t | x_{1:t-1}) from MLP_dec(h_t)
There is no latent variable (z_dim is 0 and the KL is 0); the ELBO is the exact log-likelihood.
Config fields used: dense_x, rnn_dim, dense_dec.
"""

from __future__ import annotations


import torch
from torch import Tensor, nn

from mixdvae.dvae.base import DVAE
from mixdvae.dvae.heads import Gauss
from mixdvae.dvae.layers import MLP, lstm_step, shift_right

__all__ = ["DeepAR"]


class DeepAR(DVAE):
    family = "deep_ar"
    causal_encoder = True

    def __init__(self, config):
        super().__init__(config)
        c = config
        self.z_dim = 0
        self.mlp_x_h = MLP(self.net_in_dim, c.dense_x, c.activation)
        self.rnn_h = nn.LSTM(self.mlp_x_h.out_dim, c.rnn_dim, batch_first=True)
        self.mlp_dec = MLP(c.rnn_dim, c.dense_dec, c.activation)
        self.head = self._make_head(self.mlp_dec.out_dim)

    def deterministic_h(self, x: Tensor, net_in: Tensor | None = None) -> Tensor:
        """h_t from x_{1:t-1}; ``net_in``: :meth:`net_input` of x if already computed.  (B, T, D) -> (B, T, H)."""
        return self.rnn_h(self.mlp_x_h(shift_right(self.net_input(x) if net_in is None else net_in)))[0]

    def h_step(self, x_prev: Tensor | None, state, batch: int = 0):
        """One step of h from x_{t-1} (``None``: the first step, input 0); ``state`` is
        (h, c, x_{t-2}, x_{t-3}) or None.  (B, D) -> (B, H)."""
        if x_prev is None:
            u = self.mlp_dec.layers[0].weight.new_zeros(batch, self.net_in_dim)
        else:
            u = self.net_input_step(x_prev, None if state is None else state[2], None if state is None else state[3])
        h, (h, c) = lstm_step(self.rnn_h, self.mlp_x_h(u), None if state is None else state[:2])
        return h, (h, c, x_prev, None if state is None else state[2])

    def decoder_features(self, h: Tensor, z: Tensor | None = None) -> Tensor:
        """What the output head reads: MLP_dec(h_t).  Shape: (..., H) -> (..., F)."""
        return self.mlp_dec(h)

    def decode_from_h(self, h: Tensor, z: Tensor | None = None, base: Tensor | None = None) -> Gauss:
        """p(x_t | h_t): mean ``base`` + f(h_t) for a residual decoder (see :meth:`residual_base`).
        Shape: (..., H) -> (..., D)."""
        p = self.head(self.decoder_features(h))
        if self.config.residual:
            scaled = p.mean * self.config.residual_scale
            return Gauss(scaled if base is None else scaled + base, p.var)
        return p

    def _empty(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], x.shape[1], 0)

    def encode(self, x, sample=True, generator=None):
        z = self._empty(x)
        return z, Gauss(z, torch.ones_like(z))

    def prior_z(self, x, z):
        return Gauss(z, torch.ones_like(z))

    def decode(self, x, z):
        return self.decode_from_h(self.deterministic_h(x), None, self.residual_base_seq(x))

    @torch.no_grad()
    def generate(self, batch, length, generator=None, first=None):
        state, x_prev, xs = None, None, []
        for t in range(length):
            base = self.residual_base(x_prev, None if state is None else state[2])
            h, state = self.h_step(x_prev, state, batch)
            x_prev = first if (t == 0 and first is not None) else self.head.sample(self.decode_from_h(h, None, base), generator)
            xs.append(x_prev)
        return torch.stack(xs, 1)

    def predict_next(self, x):
        self.check_input(x)
        base = self.residual_base_seq(x)
        return self.decode_from_h(self.deterministic_h(x)[:, 1:], None, None if base is None else base[:, 1:])
