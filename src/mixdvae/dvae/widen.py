"""Function-preserving widening of a trained DVAE's MLP layers (a zero extension, as in Net2Net).

A prior trained with MLP sizes ``dense_*`` can start a run whose MLPs are wider (``mixdvae train
--init W --widen``). Every tensor keeps its trained values in its leading block; the new hidden
units get the new model's fresh incoming weights and biases, and zero outgoing weights:

    W1' = [W1; W1_new],  b1' = [b1; b1_new],  W2' = [W2, 0]
    =>  W2' act(W1' x + b1') + b2 = W2 act(W1 x + b1) + b2

so the widened model computes exactly the trained model's function (checked on a random batch by
:func:`widen_into`), and training can then put the new units to use: the gradient on the zero block
of W2' is the output's gradient times act(W1_new x + b1_new), which is not zero.

Only the sizes of MLP layers may grow (the fields in :data:`WIDENABLE`, each layer at least as
wide, the same number of layers); every other field of the architecture must be the same.
"""

from __future__ import annotations

import torch

from mixdvae.dvae.base import DVAE
from mixdvae.dvae.config import DVAEConfig
from mixdvae.errors import ConfigError

__all__ = ["WIDENABLE", "widening_plan", "widen_into"]

WIDENABLE = ("dense_x", "dense_g", "dense_enc", "dense_prior", "dense_dec", "dense_z")


def widening_plan(source: DVAEConfig, target: DVAEConfig) -> dict[str, tuple[list[int], list[int]]]:
    """The MLP fields that grow from ``source`` to ``target``: ``{field: (old sizes, new sizes)}``.

    A one-line :class:`ConfigError` when any other field differs, a layer narrows, or an MLP gains
    or loses layers (none of these keeps the trained function)."""
    other = [f for f in DVAEConfig.__dataclass_fields__ if f not in WIDENABLE
             and getattr(source, f) != getattr(target, f)]
    if other:
        diffs = ", ".join(f"{f} {getattr(source, f)!r} -> {getattr(target, f)!r}" for f in other[:3])
        raise ConfigError(f"only the MLP sizes (dense_*) can widen; these differ too: {diffs}")
    plan: dict[str, tuple[list[int], list[int]]] = {}
    for f in WIDENABLE:
        old, new = list(getattr(source, f)), list(getattr(target, f))
        if old == new:
            continue
        if len(old) != len(new) or any(b < a for a, b in zip(old, new)):
            raise ConfigError(f"{f}: {old} -> {new}: widening keeps the number of layers and makes none narrower")
        plan[f] = (old, new)
    return plan


def widen_into(target: DVAE, source: DVAE, atol: float = 1e-4) -> dict[str, tuple[list[int], list[int]]]:
    """Copy the trained ``source`` into the wider ``target`` (fresh weights) in place, keeping its function
    (``source`` ends on ``target``'s device).

    Each tensor of ``target`` gets ``source``'s values in its leading block; where a weight matrix
    (out, in) gains inputs, the trained rows read them with zero weights. Then both models are run on
    the same random batch (teacher forcing with the same noise) and every output must agree to
    ``atol`` relative to its scale, or a :class:`ConfigError` (a widened layer whose output is
    concatenated with another before the next layer cannot be extended at its end).
    Returns the plan (:func:`widening_plan`)."""
    if type(source) is not type(target):
        raise ConfigError(f"a '{source.family}' prior cannot widen into a '{target.family}' one")
    plan = widening_plan(source.config, target.config)
    own, theirs = target.state_dict(), source.state_dict()
    if own.keys() != theirs.keys():
        raise ConfigError(f"the two '{target.family}' priors have different tensors: "
                          f"{', '.join(sorted(own.keys() ^ theirs.keys())[:4])}")
    widened = {}
    for key, fresh in own.items():
        old = theirs[key].to(fresh.device, fresh.dtype)
        if old.shape == fresh.shape:
            widened[key] = old.clone()
            continue
        if old.dim() != fresh.dim() or any(a > b for a, b in zip(old.shape, fresh.shape)):
            raise ConfigError(f"{key}: {tuple(old.shape)} cannot widen to {tuple(fresh.shape)}")
        value = fresh.clone()
        value[tuple(slice(0, n) for n in old.shape)] = old
        if value.dim() == 2 and fresh.shape[1] > old.shape[1]:
            value[: old.shape[0], old.shape[1]:] = 0.0  # trained units ignore the new inputs
        widened[key] = value
    target.load_state_dict(widened)
    _check_same_function(source, target, atol)
    return plan


def _check_same_function(source: DVAE, target: DVAE, atol: float) -> None:
    """Both models' q(z | x), p(z) and p(x | z) on one random batch (2, 8, x_dim), same noise
    (``source`` is moved to ``target``'s device, so both draw it from one generator type)."""
    device = next(target.parameters()).device
    source.to(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.rand(2, 8, target.x_dim, generator=gen) + 0.05).to(device)
    outputs = []
    was_training = source.training, target.training
    source.eval(), target.eval()
    with torch.no_grad():
        for model in (source, target):
            model_gen = torch.Generator(device=device.type).manual_seed(1)
            outputs.append([t for g in model.teacher_forced(x, generator=model_gen) if g is not None
                            for t in g if t.numel()])
    source.train(was_training[0]), target.train(was_training[1])
    for a, b in zip(*outputs):
        scale = float(a.abs().max()) + 1.0
        if not torch.allclose(a, b, atol=atol * scale, rtol=0.0):
            raise ConfigError("widening changed the prior's outputs (a widened layer feeds a concatenation); "
                              "widen another layer or train from scratch")
