"""RVAE, causal variant (Leglaive et al. 2020), in the DVAE-review form (section 11).

    p(z_t) = N(0, I) i.i.d.
    p(x_t | z_{1:t}) from MLP_dec(h_t), h_t = LSTM_fwd(MLP_z(z_{1:t}))
    q(z_t | z_{1:t-1}, x_{t:T}) from MLP_enc([g^x_t, g^z_{t-1}]), g^x = LSTM_bwd(MLP_x(x)),
                                g^z = LSTM_fwd over the sampled z
Config fields used: dense_g (MLP_x), g_dim, rnn_dim (h and g^z), dense_z (MLP_z), dense_enc, dense_dec.
"""

from __future__ import annotations

import torch
from torch import nn

from mixdvae.dvae.base import DVAE
from mixdvae.dvae.heads import Gauss
from mixdvae.dvae.layers import MLP

__all__ = ["RVAE"]


class RVAE(DVAE):
    family = "rvae"
    causal_encoder = False

    def __init__(self, config):
        super().__init__(config)
        c = config
        act = c.activation
        self.mlp_x_gx = MLP(c.x_dim, c.dense_g, act)
        self.rnn_gx = nn.LSTM(self.mlp_x_gx.out_dim, c.g_dim, batch_first=True)
        self.rnn_gz = nn.LSTM(c.z_dim, c.rnn_dim, batch_first=True)
        self.mlp_enc = MLP(c.g_dim + c.rnn_dim, c.dense_enc, act)
        self.inf_z_mean = nn.Linear(self.mlp_enc.out_dim, c.z_dim)
        self.inf_z_logvar = nn.Linear(self.mlp_enc.out_dim, c.z_dim)
        self.mlp_z_h = MLP(c.z_dim, c.dense_z, act)
        self.rnn_h = nn.LSTM(self.mlp_z_h.out_dim, c.rnn_dim, batch_first=True)
        self.mlp_dec = MLP(c.rnn_dim, c.dense_dec, act)
        self.head = self._make_head(self.mlp_dec.out_dim)

    def encode(self, x, sample=True, generator=None):
        B, T, _ = x.shape
        gx = torch.flip(self.rnn_gx(torch.flip(self.mlp_x_gx(self.net_input(x)), dims=[1]))[0], dims=[1])
        gz_prev = x.new_zeros(B, self.config.rnn_dim)
        state = None
        zs, means, logvars = [], [], []
        for t in range(T):
            f = self.mlp_enc(torch.cat([gx[:, t], gz_prev], dim=-1))
            mean, logvar = self.inf_z_mean(f), self.inf_z_logvar(f)
            z_t = self._reparam(mean, logvar, sample, generator)
            out, state = self.rnn_gz(z_t[:, None], state)
            gz_prev = out[:, 0]
            zs.append(z_t)
            means.append(mean)
            logvars.append(logvar)
        return torch.stack(zs, 1), Gauss(torch.stack(means, 1), torch.exp(torch.stack(logvars, 1)))

    def prior_z(self, x, z):
        return Gauss(torch.zeros_like(z), torch.ones_like(z))

    def decode(self, x, z):
        h = self.rnn_h(self.mlp_z_h(z))[0]
        return self.head(self.mlp_dec(h))

    @torch.no_grad()
    def generate(self, batch, length, generator=None, first=None):
        device = next(self.parameters()).device
        z = torch.randn((batch, length, self.z_dim), generator=generator, device=device)
        x = self.head.sample(self.decode(None, z), generator)
        if first is not None:
            x[:, 0] = first.to(device)
        return x
