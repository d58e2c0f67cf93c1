"""DKF: deep Kalman filter (Krishnan et al. 2017), in the DVAE-review form (section 11).

    p(z_t | z_{t-1}): gated transition, mean = (1 - g) * A z_{t-1} + g * prop(z_{t-1}),
                      g = sigmoid(MLP_gate(z_{t-1})), var = softplus(Lin(relu(prop)))
    p(x_t | z_t) from MLP_dec(z_t)
    q(z_t | z_{t-1}, x_{t:T}): g_t = LSTM_bwd(MLP_xg(x)), combined as (tanh(Lin(z_{t-1})) + g_t) / 2
No deterministic state in the generator: x_{t-1} never feeds p(x_t), so scheduled sampling does
not apply. Config fields used: dense_g, g_dim, dense_enc, dense_prior (first size = transition
hidden size), dense_dec.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mixdvae.dvae.base import DVAE
from mixdvae.dvae.heads import Gauss
from mixdvae.dvae.layers import MLP, shift_right

__all__ = ["DKF"]


class DKF(DVAE):
    family = "dkf"
    causal_encoder = False

    def __init__(self, config):
        super().__init__(config)
        c = config
        act = c.activation
        hid = c.dense_prior[0] if c.dense_prior else c.z_dim
        self.mlp_x_g = MLP(c.x_dim, c.dense_g, act)
        self.rnn_g = nn.LSTM(self.mlp_x_g.out_dim, c.g_dim, batch_first=True)
        self.z_to_g = nn.Linear(c.z_dim, c.g_dim)
        self.mlp_g_z = MLP(c.g_dim, c.dense_enc, act)
        self.inf_z_mean = nn.Linear(self.mlp_g_z.out_dim, c.z_dim)
        self.inf_z_logvar = nn.Linear(self.mlp_g_z.out_dim, c.z_dim)
        self.gate = nn.Sequential(nn.Linear(c.z_dim, hid), nn.ReLU(), nn.Linear(hid, c.z_dim), nn.Sigmoid())
        self.proposal = nn.Sequential(nn.Linear(c.z_dim, hid), nn.ReLU(), nn.Linear(hid, c.z_dim))
        self.linear_mean = nn.Linear(c.z_dim, c.z_dim)
        self.prior_var = nn.Linear(c.z_dim, c.z_dim)
        self.mlp_dec = MLP(c.z_dim, c.dense_dec, act)
        self.head = self._make_head(self.mlp_dec.out_dim)

    def transition(self, z_prev: Tensor) -> Gauss:
        """p(z_t | z_{t-1}).  Shape: (..., Z) -> (..., Z)."""
        g = self.gate(z_prev)
        prop = self.proposal(z_prev)
        mean = (1 - g) * self.linear_mean(z_prev) + g * prop
        var = F.softplus(self.prior_var(F.relu(prop))) + 1e-6
        return Gauss(mean, var)

    def encode(self, x, sample=True, generator=None):
        B, T, _ = x.shape
        u = self.mlp_x_g(self.net_input(x))
        g = torch.flip(self.rnn_g(torch.flip(u, dims=[1]))[0], dims=[1])
        z_prev = x.new_zeros(B, self.z_dim)
        zs, means, logvars = [], [], []
        for t in range(T):
            f = self.mlp_g_z(0.5 * (torch.tanh(self.z_to_g(z_prev)) + g[:, t]))
            mean, logvar = self.inf_z_mean(f), self.inf_z_logvar(f)
            z_prev = self._reparam(mean, logvar, sample, generator)
            zs.append(z_prev)
            means.append(mean)
            logvars.append(logvar)
        return torch.stack(zs, 1), Gauss(torch.stack(means, 1), torch.exp(torch.stack(logvars, 1)))

    def prior_z(self, x, z):
        return self.transition(shift_right(z))

    def decode(self, x, z):
        return self.head(self.mlp_dec(z))

    @torch.no_grad()
    def generate(self, batch, length, generator=None, first=None):
        device = next(self.parameters()).device
        z_prev = torch.zeros(batch, self.z_dim, device=device)
        xs = []
        for t in range(length):
            pz = self.transition(z_prev)
            z_prev = pz.mean + torch.sqrt(pz.var) * self._randn(pz.mean.shape, pz.mean, generator)
            xs.append(self.head.sample(self.head(self.mlp_dec(z_prev)), generator))
        if first is not None:
            xs[0] = first.to(device)
        return torch.stack(xs, 1)
