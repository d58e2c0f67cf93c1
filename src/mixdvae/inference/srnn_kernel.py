"""Fused recursions of a frozen SRNN prior for the VEM: the E-S forward filter and the E-Z encoder.

Both recursions are sequential over t and run on small tensors ((B N) x 32 per step), so their
cost is the number of tensor operations per step, not arithmetic. This module computes exactly the
same quantities as :class:`mixdvae.inference.dvae_prior.DVAESourcePrior`'s generic path (which
calls the SRNN's modules: ``h_step``, ``prior_from_h``, ``decode_from_h``, ``encode_from_features``)
with about a third of the operations, by three rewrites that hold in real arithmetic:

1. tanh(a) = 2 sigmoid(2 a) - 1. A tanh layer is computed as a sigmoid layer with doubled weights
   (sigmoid is 3x cheaper than tanh on CPU), and the affine map y -> 2 y - 1 back to tanh values is
   folded into the next linear map:  W (2 y - 1) + b = (2 W) y + (b - W 1).  The same holds for the
   LSTM's cell input gate g and for tanh(c_t).
2. Feature-major layout (features, B N): the LSTM gates, and the first layers of the prior and of the
   decoder that read h_t, are row blocks of one matrix product, so every slice is contiguous.
3. Whatever does not depend on the recursion is computed for all t at once: the E-Z latent's part
   of the prior's first layer (z_{t-1} comes from E-Z), the encoder features' part of the
   encoder's first layer, and the encoder's log-variance.

Supported: SRNN, Gaussian head, tanh activations, input transform ``identity`` or ``delta``, any
residual option, causal or backward encoder, non-empty ``dense_enc``/``dense_prior``/``dense_dec``;
:meth:`FusedSRNN.supports` says so and the prior falls back to the generic path otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mixdvae.dvae.base import DVAE
from mixdvae.dvae.heads import Gauss

__all__ = ["FusedSRNN"]


def _sigmoid_layer(weight: Tensor, bias: Tensor, input_is_sigmoid: bool) -> tuple[Tensor, Tensor]:
    """(A, c) with sigmoid(A y + c) = (tanh(W x + b) + 1) / 2, where x = 2 y - 1 when the input is
    itself a folded tanh output (``input_is_sigmoid``) and x = y otherwise.  W (O, I), b (O,)."""
    w, b = weight.detach().double(), bias.detach().double()
    if input_is_sigmoid:
        w, b = 2 * w, b - w.sum(1)
    return 2 * w, 2 * b


def _linear_on_sigmoid(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """(A, c) with A y + c = W (2 y - 1) + b: a linear map reading a folded tanh output."""
    w, b = weight.detach().double(), bias.detach().double()
    return 2 * w, b - w.sum(1)


class FusedSRNN:
    """Frozen, fused copies of an SRNN's weights for the two sequential loops of the VEM.

    Shapes in feature-major layout: a batch of B sequences (B = windows x sources) is (features, B).
    """

    def __init__(self, model: DVAE):
        c = model.config
        p = next(model.parameters())
        self.dtype, self.device = p.dtype, p.device
        self.x_dim, self.z_dim, self.hidden = c.x_dim, c.z_dim, c.rnn_dim
        self.delta = c.input_transform == "delta"
        self.residual, self.velocity = c.residual, c.residual_velocity
        cast = lambda t: t.to(dtype=self.dtype, device=self.device).contiguous()  # noqa: E731
        D, H = c.x_dim, c.rnn_dim

        # h_t = LSTM(MLP_xh([x, k dx])): input layers, then the LSTM with the MLP's output folded in.
        layers = list(model.mlp_x_h.layers)
        self.x_layers = []
        folded = False
        for i, layer in enumerate(layers):
            w = layer.weight.detach().double().clone()
            if i == 0 and self.delta:
                w[:, D:] *= c.delta_scale
            a, b = _sigmoid_layer(w, layer.bias, folded)
            self.x_layers.append((cast(a), cast(b[:, None])))
            folded = True
        rnn = model.rnn_h
        w_ih, b_lstm = rnn.weight_ih_l0.detach().double(), (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().double()
        if folded:
            w_ih, b_lstm = _linear_on_sigmoid(w_ih, b_lstm)
        elif self.delta:
            w_ih = w_ih.clone()
            w_ih[:, D:] *= c.delta_scale
        w_gates = torch.cat([w_ih, rnn.weight_hh_l0.detach().double()], dim=1)
        w_gates[2 * H:3 * H] *= 2  # the cell input g = tanh(.) = 2 sigmoid(2 .) - 1
        b_lstm = b_lstm.clone()
        b_lstm[2 * H:3 * H] *= 2
        self.w_gates, self.b_gates = cast(w_gates), cast(b_lstm[:, None])

        # First layers of the prior p(z_t | h_t, z_{t-1}) and of the decoder p(x_t | h_t, z_t): split
        # into their h_t part (one product for both) and their z part.
        prior0, dec0 = model.mlp_hz_z.layers[0], model.mlp_hz_x.layers[0]
        pa, pb = _sigmoid_layer(prior0.weight, prior0.bias, False)
        da, db = _sigmoid_layer(dec0.weight, dec0.bias, False)
        self.prior_size = pa.shape[0]
        self.w_h = cast(torch.cat([pa[:, :H], da[:, :H]]))
        self.b_h = cast(torch.cat([torch.zeros_like(pb), db])[:, None])
        self.w_prior_z, self.b_prior = cast(pa[:, H:]), cast(pb[:, None])
        self.w_dec_z = cast(da[:, H:])
        self.prior_layers = self._rest(model.mlp_hz_z.layers[1:], cast)
        self.dec_layers = self._rest(model.mlp_hz_x.layers[1:], cast)
        zm = _linear_on_sigmoid(model.prior_z_mean.weight, model.prior_z_mean.bias)
        zv = _linear_on_sigmoid(model.prior_z_logvar.weight, model.prior_z_logvar.bias)
        self.w_zmean, self.b_zmean = cast(zm[0]), cast(zm[1][:, None])
        self.w_zlogvar, self.b_zlogvar = cast(zv[0]), cast(zv[1][:, None])
        scale = c.residual_scale if c.residual else 1.0
        xm = _linear_on_sigmoid(model.head.mean.weight, model.head.mean.bias)
        xv = _linear_on_sigmoid(model.head.logvar.weight, model.head.logvar.bias)
        # the head's mean (times the residual scale) and log-variance as one product
        self.w_xhead = cast(torch.cat([scale * xm[0], xv[0]]))
        self.b_xhead = cast(torch.cat([scale * xm[1], xv[1]])[:, None])

        # Encoder q(z_t | feats_t, z_{t-1}): first layer split into its feats part and its z part.
        enc0 = model.mlp_gz_z.layers[0]
        ea, eb = _sigmoid_layer(enc0.weight, enc0.bias, False)
        G = ea.shape[1] - c.z_dim
        self.w_enc_f, self.b_enc = cast(ea[:, :G]), cast(eb[:, None])
        self.w_enc_z = cast(ea[:, G:])
        self.enc_layers = self._rest(model.mlp_gz_z.layers[1:], cast)
        em = _linear_on_sigmoid(model.inf_z_mean.weight, model.inf_z_mean.bias)
        ev = _linear_on_sigmoid(model.inf_z_logvar.weight, model.inf_z_logvar.bias)
        self.w_qmean, self.b_qmean = cast(em[0]), cast(em[1][:, None])
        self.w_qlogvar, self.b_qlogvar = cast(ev[0]), cast(ev[1][:, None])

    @staticmethod
    def _rest(layers, cast) -> list[tuple[Tensor, Tensor]]:
        out = []
        for layer in layers:
            a, b = _sigmoid_layer(layer.weight, layer.bias, True)
            out.append((cast(a), cast(b[:, None])))
        return out

    @staticmethod
    def supports(model: DVAE) -> bool:
        """Whether ``model`` is an SRNN this kernel reproduces exactly (see the module docstring)."""
        c = model.config
        return (
            model.family == "srnn"
            and c.head == "gaussian"
            and c.activation == "tanh"
            and c.input_transform in ("identity", "delta")
            and c.z_dim > 0
            and len(c.dense_enc) > 0
            and len(c.dense_prior) > 0
            and len(c.dense_dec) > 0
        )

    # ------------------------------------------------------------------ sequence passes
    def decode(self, h: Tensor, z: Tensor, base: Tensor | None) -> Gauss:
        """p(x_t | h_t, z_t) for all t at once (the SRNN's ``decode_from_h``): mean base_t +
        residual_scale f_mu, variance f_sigma2.

        Shape: h (B, T, H), z (B, T, Z), base (B, T, D) or None -> Gauss (B, T, D)
        """
        P, D = self.prior_size, self.x_dim
        y = torch.sigmoid(h @ self.w_h[P:].T + z @ self.w_dec_z.T + self.b_h[P:, 0])
        for a, b in self.dec_layers:
            y = torch.sigmoid(y @ a.T + b[:, 0])
        head = y @ self.w_xhead.T + self.b_xhead[:, 0]
        mean = head[..., :D]
        if self.residual and base is not None:
            mean = mean + base
        return Gauss(mean, torch.exp(head[..., D:]))

    # ------------------------------------------------------------------ p(z)
    def prior_z(self, h: Tensor, z_prev: Tensor) -> Gauss:
        """p(z_t | h_t, z_{t-1}) for all t at once (the SRNN's ``prior_from_h``).

        Shape: h (B, T, H), z_prev (B, T, Z) -> Gauss (B, T, Z)
        """
        P = self.prior_size
        y = torch.sigmoid(h @ self.w_h[:P].T + z_prev @ self.w_prior_z.T + self.b_prior[:, 0])
        for a, b in self.prior_layers:
            y = torch.sigmoid(torch.addmm(b[:, 0], y.reshape(-1, y.shape[-1]), a.T).reshape(*y.shape[:-1], -1))
        mean = y @ self.w_zmean.T + self.b_zmean[:, 0]
        return Gauss(mean, torch.exp(y @ self.w_zlogvar.T + self.b_zlogvar[:, 0]))

    # ------------------------------------------------------------------ E-Z
    def encode_means(self, feats: Tensor) -> Gauss:
        """q(z_t | feats_t, z_{t-1}) with z_{t-1} its mean (E-Z without sampling), z_0 = 0.

        Shape: feats (B, T, G) -> Gauss (B, T, Z); its mean is the z that E-Z returns.
        """
        B, T, _ = feats.shape
        f_part = torch.matmul(self.w_enc_f, feats.permute(1, 2, 0)) + self.b_enc  # (T, E, B)
        z = feats.new_zeros(self.z_dim, B)
        last, means = [], []
        for t in range(T):
            y = torch.sigmoid(torch.addmm(f_part[t], self.w_enc_z, z))
            for a, b in self.enc_layers:
                y = torch.sigmoid(torch.addmm(b, a, y))
            z = torch.addmm(self.b_qmean, self.w_qmean, y)
            last.append(y)
            means.append(z)
        logvar = torch.matmul(self.w_qlogvar, torch.stack(last)) + self.b_qlogvar  # (T, Z, B)
        to_btd = lambda x: x.permute(2, 0, 1).contiguous()  # noqa: E731  (T, Z, B) -> (B, T, Z)
        return Gauss(to_btd(torch.stack(means)), to_btd(torch.exp(logvar)))

    # ------------------------------------------------------------------ E-S
    def filter(
        self, z: Tensor, prec: Tensor, info: Tensor, extra_var: Tensor | float, min_var: float, predictive: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """The E-S forward recursion of ``DVAESourcePrior`` (first LSTM input 0):
            h_t = LSTM(MLP([m_{t-1}, k (m_{t-1} - m_{t-2})])),
            z_t = E p(z_t | h_t, z_{t-1}) (``predictive``) or the E-Z latent,
            p(s_t) = N(base_t + f_mu(h_t, z_t), max(f_sigma2(h_t, z_t), min_var) + extra_var),
            q(s_t) = p(s_t) x prod_k N(o_tk; s_t, Phi_tk)^{r_tkn} (precision prec_t, information info_t).

        Shape: z (B, T, Z), prec, info (B, T, D), extra_var (B, D) or 0
            -> m, v, mu, sigma2 (B, T, D), h (B, T, H)
        """
        B, T, D = prec.shape
        H = self.hidden
        to_tdb = lambda x: x.permute(1, 2, 0).contiguous()  # noqa: E731  (B, T, D) -> (T, D, B)
        prec_t, info_t = to_tdb(prec), to_tdb(info)
        z_t = to_tdb(z)
        z_prev = torch.cat([torch.zeros_like(z_t[:1]), z_t[:-1]])
        prior_z = torch.matmul(self.w_prior_z, z_prev) + self.b_prior  # (T, P, B)
        extra = extra_var.T.contiguous() if torch.is_tensor(extra_var) else extra_var
        P = self.prior_size
        x = prec.new_zeros(D, B)
        dx = prec.new_zeros(D, B)
        h = prec.new_zeros(H, B)
        cell = prec.new_zeros(H, B)
        ms, vs, mus, sig2s, hs = [], [], [], [], []
        for t in range(T):
            # h_t from m_{t-1} (zeros at t = 0, as the first network input is 0)
            y = torch.cat([x, dx]) if self.delta else x
            for a, b in self.x_layers:
                y = torch.sigmoid(torch.addmm(b, a, y))
            gates = torch.sigmoid(torch.addmm(self.b_gates, self.w_gates, torch.cat([y, h])))
            i, f, g, o = gates[:H], gates[H:2 * H], gates[2 * H:3 * H], gates[3 * H:]
            cell = torch.addcmul(f * cell - i, i, g, value=2.0)
            h = torch.addcmul(-o, o, torch.sigmoid(2 * cell), value=2.0)
            hw = torch.addmm(self.b_h, self.w_h, h)
            if predictive:
                y = torch.sigmoid(hw[:P] + prior_z[t])
                for a, b in self.prior_layers:
                    y = torch.sigmoid(torch.addmm(b, a, y))
                zt = torch.addmm(self.b_zmean, self.w_zmean, y)
            else:
                zt = z_t[t]
            y = torch.sigmoid(torch.addmm(hw[P:], self.w_dec_z, zt))
            for a, b in self.dec_layers:
                y = torch.sigmoid(torch.addmm(b, a, y))
            head = torch.addmm(self.b_xhead, self.w_xhead, y)
            mu = head[:D]
            if self.residual and t > 0:
                mu = mu + (x + dx if self.velocity else x)
            sig2 = torch.exp(head[D:]).clamp_min_(min_var) + extra
            inv = torch.reciprocal(sig2)
            var = torch.reciprocal(inv + prec_t[t])
            mean = torch.addcmul(info_t[t], mu, inv) * var
            dx = mean - x if t > 0 else torch.zeros_like(mean)
            x = mean
            ms.append(mean)
            vs.append(var)
            mus.append(mu)
            sig2s.append(sig2)
            hs.append(h)
        to_btd = lambda xs: torch.stack(xs).permute(2, 0, 1).contiguous()  # noqa: E731
        return to_btd(ms), to_btd(vs), to_btd(mus), to_btd(sig2s), to_btd(hs)
