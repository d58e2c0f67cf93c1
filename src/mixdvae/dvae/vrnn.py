"""VRNN: variational recurrent neural network (Chung et al. 2015).

    h_t = LSTM([phi_x(x_{t-1}), phi_z(z_{t-1})], h_{t-1}),  x_0 = z_0 = 0
    p(z_t | h_t) = N from MLP_prior(h_t)
    p(x_t | z_t, h_t) from MLP_dec([phi_z(z_t), h_t])
    q(z_t | x_t, h_t) = N from MLP_enc([phi_x(x_t), h_t])       (filtering: causal)

Config fields used: dense_x (phi_x), dense_z (phi_z), rnn_dim, dense_enc, dense_prior, dense_dec.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mixdvae.dvae.base import DVAE
from mixdvae.dvae.heads import Gauss
from mixdvae.dvae.layers import MLP, shift_right

__all__ = ["VRNN"]


class VRNN(DVAE):
    family = "vrnn"
    causal_encoder = True

    def __init__(self, config):
        super().__init__(config)
        c = config
        act = c.activation
        self.phi_x = MLP(c.x_dim, c.dense_x, act)
        self.phi_z = MLP(c.z_dim, c.dense_z, act)
        self.rnn = nn.LSTM(self.phi_x.out_dim + self.phi_z.out_dim, c.rnn_dim, batch_first=True)
        self.mlp_enc = MLP(self.phi_x.out_dim + c.rnn_dim, c.dense_enc, act)
        self.inf_z_mean = nn.Linear(self.mlp_enc.out_dim, c.z_dim)
        self.inf_z_logvar = nn.Linear(self.mlp_enc.out_dim, c.z_dim)
        self.mlp_prior = MLP(c.rnn_dim, c.dense_prior, act)
        self.prior_z_mean = nn.Linear(self.mlp_prior.out_dim, c.z_dim)
        self.prior_z_logvar = nn.Linear(self.mlp_prior.out_dim, c.z_dim)
        self.mlp_dec = MLP(self.phi_z.out_dim + c.rnn_dim, c.dense_dec, act)
        self.head = self._make_head(self.mlp_dec.out_dim)

    def _h(self, x: Tensor, z: Tensor) -> Tensor:
        """h_t for all t from x_{t-1}, z_{t-1}.  (B, T, D), (B, T, Z) -> (B, T, H)."""
        u = torch.cat([self.phi_x(shift_right(self.net_input(x))), self.phi_z(shift_right(z))], dim=-1)
        return self.rnn(u)[0]

    def _prior_from_h(self, h: Tensor) -> Gauss:
        f = self.mlp_prior(h)
        return Gauss(self.prior_z_mean(f), torch.exp(self.prior_z_logvar(f)))

    def _decode_from_h(self, h: Tensor, z: Tensor) -> Gauss:
        return self.head(self.mlp_dec(torch.cat([self.phi_z(z), h], dim=-1)))

    def encode(self, x, sample=True, generator=None):
        B, T, _ = x.shape
        fx = self.phi_x(self.net_input(x))
        x_prev_f = self.phi_x(x.new_zeros(B, self.x_dim))
        z_prev = x.new_zeros(B, self.z_dim)
        state = None
        zs, means, logvars = [], [], []
        for t in range(T):
            u = torch.cat([x_prev_f, self.phi_z(z_prev)], dim=-1)[:, None]
            h, state = self.rnn(u, state)
            f = self.mlp_enc(torch.cat([fx[:, t], h[:, 0]], dim=-1))
            mean, logvar = self.inf_z_mean(f), self.inf_z_logvar(f)
            z_prev = self._reparam(mean, logvar, sample, generator)
            x_prev_f = fx[:, t]
            zs.append(z_prev)
            means.append(mean)
            logvars.append(logvar)
        return torch.stack(zs, 1), Gauss(torch.stack(means, 1), torch.exp(torch.stack(logvars, 1)))

    def prior_z(self, x, z):
        return self._prior_from_h(self._h(x, z))

    def decode(self, x, z):
        return self._decode_from_h(self._h(x, z), z)

    def teacher_forced(self, x, ss_prob=0.0, generator=None):
        z, q = self.encode(x, True, generator)
        h = self._h(x, z)
        return q, self._prior_from_h(h), self._decode_from_h(h, z)

    @torch.no_grad()
    def generate(self, batch, length, generator=None, first=None):
        device = next(self.parameters()).device
        x_prev = torch.zeros(batch, self.x_dim, device=device)
        z_prev = torch.zeros(batch, self.z_dim, device=device)
        state = None
        xs = []
        for t in range(length):
            u = torch.cat([self.phi_x(self.net_input(x_prev) if t else x_prev), self.phi_z(z_prev)], dim=-1)
            h, state = self.rnn(u[:, None], state)
            pz = self._prior_from_h(h[:, 0])
            z_prev = pz.mean + torch.sqrt(pz.var) * self._randn(pz.mean.shape, pz.mean, generator)
            if t == 0 and first is not None:
                x_prev = first.to(device)
            else:
                x_prev = self.head.sample(self._decode_from_h(h[:, 0], z_prev), generator)
            xs.append(x_prev)
        return torch.stack(xs, 1)

    def predict_next(self, x):
        """O(T) version: the filtering encoder makes q(z_{t-1} | x) depend on x_{1:t-1} only."""
        self.check_input(x)
        z, _ = self.encode(x, sample=False)
        h = self._h(x, z)[:, 1:]
        pz = self._prior_from_h(h)
        return self._decode_from_h(h, pz.mean)
