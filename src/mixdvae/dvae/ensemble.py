"""An ensemble of K pretrained DVAEs of one source, used as one prior by the inference engines.

Each member k reads the same input u and has its own deterministic path, latent and decoder; the
ensemble stacks their states along the last axis (h = [h_1, ..., h_K], z = [z_1, ..., z_K]) and
combines their output distributions:

- ``geometric`` (a product of experts in the variance): log v_t = (1 / K) sum_k log v_t,k, and for
  a Gaussian head mean_t = (1 / K) sum_k mean_t,k;
- ``arithmetic``: v_t = (1 / K) sum_k v_t,k (for a Gaussian head the moment-matched mixture).

Because q(z) and p(z) factorise over members, KL(q(z) || p(z)) of the stacked latent is the sum of
the members' KLs, so every ELBO computed with the ensemble stays exact for its stacked latent.
Members that were trained with different seeds disagree most where they generalise least (an unseen
speaker, a real recording after rendered training data); the combination averages those errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from torch import Tensor, nn

from mixdvae.dvae.base import DVAE
from mixdvae.dvae.heads import ComplexVarianceHead, Gauss
from mixdvae.errors import ConfigError

__all__ = ["DVAEEnsemble", "combine_variances", "save_ensemble"]


def combine_variances(variances: Sequence[Tensor], rule: str) -> Tensor:
    """v = exp((1/K) sum_k log v_k) (``geometric``) or (1/K) sum_k v_k (``arithmetic``).

    Shape: K tensors (..., D) -> (..., D)
    """
    stacked = torch.stack(list(variances), 0)  # (K, ..., D)
    if rule == "geometric":
        return torch.exp(torch.log(stacked).mean(0))
    return stacked.mean(0)


class DVAEEnsemble(nn.Module):
    """K DVAEs of one family with the same input and head, read as one DVAE (see the module docstring).

    Provides the interface the inference engines use: ``deterministic_h``, ``h_step``,
    ``encoder_features``, ``encode_from_features``, ``prior_from_h``, ``decode_from_h``.
    """

    def __init__(self, members: Sequence[DVAE], combine: Literal["geometric", "arithmetic"] = "geometric"):
        super().__init__()
        members = list(members)
        if len(members) < 1:
            raise ConfigError("DVAEEnsemble needs at least one member")
        if combine not in ("geometric", "arithmetic"):
            raise ConfigError(f"DVAEEnsemble.combine = {combine!r}: expected 'geometric' or 'arithmetic'")
        first = members[0]
        for m in members[1:]:
            if (m.family, m.config.head, m.x_dim, m.config.input_transform) != (
                    first.family, first.config.head, first.x_dim, first.config.input_transform):
                raise ConfigError("ensemble members must share family, head, x_dim and input transform, got "
                                  f"{[(x.family, x.config.head, x.x_dim, x.config.input_transform) for x in members]}")
        self.members = nn.ModuleList(members)
        self.combine = combine
        self.family = first.family
        self.config = first.config
        self.x_dim = first.x_dim
        self.z_dims = [m.z_dim for m in members]
        self.z_dim = sum(self.z_dims)
        self.h_dims = [m.config.rnn_dim for m in members]
        self.batched_encoder = self._same_encoders()

    @property
    def num_members(self) -> int:
        return len(self.members)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _split(self, x: Tensor, sizes: list[int]) -> tuple[Tensor, ...]:
        return torch.split(x, sizes, dim=-1)

    def _combine(self, outs: list[Gauss]) -> Gauss:
        var = combine_variances([o.var for o in outs], self.combine)
        return Gauss(torch.stack([o.mean for o in outs], 0).mean(0), var)

    # ------------------------------------------------------------------ deterministic path
    def net_input(self, x: Tensor) -> Tensor:
        """What the members' networks see of x (they share one input transform)."""
        return self.members[0].net_input(x)

    def deterministic_h(self, x: Tensor, net_in: Tensor | None = None) -> Tensor:
        """[h_1, ..., h_K]; the input transform (a log of every bin) is computed once for all members.
        Shape: (B, T, D) -> (B, T, sum_k H_k)."""
        xin = self.net_input(x) if net_in is None else net_in
        return torch.cat([m.deterministic_h(x, net_in=xin) for m in self.members], dim=-1)

    def h_step(self, x_prev: Tensor | None, state: tuple | None, batch: int = 0) -> tuple[Tensor, tuple]:
        """One step of every member; ``state`` is the tuple of the members' states.  (B, D) -> (B, sum_k H_k)."""
        hs, states = [], []
        for k, m in enumerate(self.members):
            h, s = m.h_step(x_prev, None if state is None else state[k], batch)
            hs.append(h)
            states.append(s)
        return torch.cat(hs, dim=-1), tuple(states)

    # ------------------------------------------------------------------ latents
    def encoder_features(self, x: Tensor, h: Tensor, net_in: Tensor | None = None) -> list[Tensor]:
        """Each member's encoder features from its own part of h.  (B, T, D), (B, T, sum H) -> K x (B, T, G_k)."""
        xin = self.net_input(x) if net_in is None else net_in
        return [m.encoder_features(x, h_k, net_in=xin) for m, h_k in zip(self.members, self._split(h, self.h_dims))]

    def encode_from_features(self, feats: list[Tensor], sample: bool = True,
                             generator: torch.Generator | None = None) -> tuple[Tensor, Gauss]:
        """q(z) of the stacked latent: each member's q(z_k | features_k).  -> z (B, T, sum Z), Gauss (B, T, sum Z)."""
        if self.batched_encoder:
            return self._encode_batched(feats, sample, generator)
        zs, qs = [], []
        for m, f in zip(self.members, feats):
            z, q = m.encode_from_features(f, sample, generator)
            zs.append(z)
            qs.append(q)
        return torch.cat(zs, -1), Gauss(torch.cat([q.mean for q in qs], -1), torch.cat([q.var for q in qs], -1))

    def _same_encoders(self) -> bool:
        """Whether every member has the SRNN encoder head ``mlp_gz_z`` of the same shapes (one recipe,
        several seeds), so the sequential loop over t can run all members at once."""
        first = self.members[0]
        if not hasattr(first, "mlp_gz_z") or self.num_members == 1 or not first.mlp_gz_z.layers or first.z_dim == 0:
            return False
        shapes = lambda m: [tuple(p.shape) for p in m.mlp_gz_z.parameters()] + [tuple(m.inf_z_mean.weight.shape)]  # noqa: E731
        return all(shapes(m) == shapes(first) for m in self.members[1:])

    def _encode_batched(self, feats: list[Tensor], sample: bool, generator) -> tuple[Tensor, Gauss]:
        """The members' q(z_t | g_t, z_{t-1}) loops run together: every layer is one batched matmul over
        members, z_t = mean_t + exp(logvar_t / 2) e (e ~ N(0, I)) or mean_t.  K x (B, T, G) -> (B, T, K Z)."""
        ms = list(self.members)
        layers = [(torch.stack([m.mlp_gz_z.layers[i].weight for m in ms]).transpose(1, 2),
                   torch.stack([m.mlp_gz_z.layers[i].bias for m in ms])[:, None])
                  for i in range(len(ms[0].mlp_gz_z.layers))]  # (K, in, out), (K, 1, out)
        w_out = torch.stack([torch.cat([m.inf_z_mean.weight, m.inf_z_logvar.weight]) for m in ms]).transpose(1, 2)
        b_out = torch.stack([torch.cat([m.inf_z_mean.bias, m.inf_z_logvar.bias]) for m in ms])[:, None]
        act = ms[0].mlp_gz_z.act
        f = torch.stack(feats)  # (K, B, T, G)
        K, B, T, G = f.shape
        Z = ms[0].z_dim
        # the first layer's g part for all t at once (as in SRNN.encode_from_features)
        (w0, b0), rest = layers[0], layers[1:]
        pre = torch.baddbmm(b0, f.transpose(1, 2).reshape(K, T * B, G), w0[:, :G])  # (K, T B, H1)
        pre = pre.reshape(K, T, B, -1).transpose(0, 1).contiguous()  # (T, K, B, H1)
        w_z = w0[:, G:]  # (K, Z, H1)
        z_prev = f.new_zeros(K, B, Z)
        zs, means, logvars = [], [], []
        for t in range(T):
            x = act(torch.baddbmm(pre[t], z_prev, w_z))  # (K, B, H1)
            for w, b in rest:
                x = act(torch.baddbmm(b, x, w))
            out = torch.baddbmm(b_out, x, w_out)  # (K, B, 2Z)
            mean, logvar = out[..., :Z], out[..., Z:]
            z_prev = mean if not sample else mean + torch.exp(0.5 * logvar) * torch.randn(
                mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            zs.append(z_prev)
            means.append(mean)
            logvars.append(logvar)
        # (T, K, B, Z) -> (B, T, K, Z) -> (B, T, K Z): member k's latent in columns k Z .. (k + 1) Z
        flat = lambda xs: torch.stack(xs).permute(2, 0, 1, 3).reshape(B, T, K * Z)  # noqa: E731
        return flat(zs), Gauss(flat(means), torch.exp(flat(logvars)))

    def prior_from_h(self, h: Tensor, z_prev: Tensor) -> Gauss:
        """p(z_t | h_t, z_{t-1}) of the stacked latent.  (..., sum H), (..., sum Z) -> (..., sum Z)."""
        ps = [m.prior_from_h(h_k, z_k) for m, h_k, z_k in
              zip(self.members, self._split(h, self.h_dims), self._split(z_prev, self.z_dims))]
        return Gauss(torch.cat([p.mean for p in ps], -1), torch.cat([p.var for p in ps], -1))

    # ------------------------------------------------------------------ decoder
    def decode_from_h(self, h: Tensor, z: Tensor | None = None, base: Tensor | None = None) -> Gauss:
        """The members' p(x_t | h_t, z_t) combined (module docstring).  (..., sum H), (..., sum Z) -> (..., D)."""
        hs = self._split(h, self.h_dims)
        zs = self._split(z, self.z_dims) if z is not None and self.z_dim > 0 else [None] * len(self.members)
        if self.combine == "geometric" and isinstance(self.members[0].head, ComplexVarianceHead):
            # log v = (1/K) sum_k log v_k straight from the members' log-variance layers: one exp in all
            log_v = None
            for m, h_k, z_k in zip(self.members, hs, zs):
                lv = m.head.logvar(m.decoder_features(h_k, z_k))
                log_v = lv if log_v is None else log_v.add_(lv)
            log_v = log_v / self.num_members
            return Gauss(log_v.new_zeros(()).expand_as(log_v), torch.exp(log_v))
        outs = [m.decode_from_h(h_k, z_k, base) if z_k is not None else m.decode_from_h(h_k, None, base)
                for m, h_k, z_k in zip(self.members, hs, zs)]
        return self._combine(outs)


def save_ensemble(path: str | Path, members: Sequence[str | Path], combine: str = "geometric",
                  card_extra: dict[str, Any] | None = None) -> Path:
    """Write the checkpoints ``members`` (same architecture, e.g. one recipe trained with several
    seeds) as one ensemble checkpoint ``NAME.safetensors`` + ``NAME.json``.

    The card keeps each member's ``command``, ``seed``, ``metrics``, ``train``, ``data`` (and ``init``,
    ``init_widened`` where the member was fine-tuned) under
    ``ensemble.member_cards``; :func:`mixdvae.dvae.checkpoint.load_dvae` reads it back as a
    :class:`DVAEEnsemble`. Returns the ``.safetensors`` path.
    """
    from mixdvae.config import config_to_dict
    from mixdvae.dvae.checkpoint import load_dvae, read_card, save_dvae

    if len(members) < 1:
        raise ConfigError("save_ensemble: no member checkpoints")
    models = [load_dvae(p) for p in members]
    for p, m in zip(members, models):
        if not isinstance(m, DVAE):
            raise ConfigError(f"{p}: already an ensemble; list its members instead")
        if config_to_dict(m.config) != config_to_dict(models[0].config):
            raise ConfigError(f"{p}: its architecture differs from {members[0]}'s; ensemble members must share one")
    cards = [read_card(p) for p in members]
    keep = ("command", "seed", "metrics", "train", "data")
    optional = ("init", "init_widened")  # what a fine-tuned member started from (mixdvae train --init [--widen])
    extra = {"seed": [c.get("seed") for c in cards], "train": cards[0].get("train"), "data": cards[0].get("data"),
             "metrics": {}, **(card_extra or {})}
    extra["ensemble"] = {"members": len(models), "combine": combine,
                         "member_cards": [{**{k: c.get(k) for k in keep}, **{k: c[k] for k in optional if k in c}}
                                          for c in cards]}
    return save_dvae(path, DVAEEnsemble(models, combine), extra)  # type: ignore[arg-type]
