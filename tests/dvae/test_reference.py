"""Import of the original MixDVAE checkpoints (reference-implementation.md sections 1.2, 1.3, 7).

The state_dicts below are built with exactly the original key names and shapes, and random weights.
The oracle is a direct re-implementation of the original forward pass from the raw tensors (plain
torch ops, a hand-written LSTM cell, seq-first), with sampling replaced by means.
"""

from __future__ import annotations

import math
import pathlib
import re

import pytest
import torch

from mixdvae.dvae.reference import load_reference_checkpoint
from mixdvae.dvae.srnn import SRNN
from mixdvae.errors import CheckpointError, ConfigError

TOL = dict(rtol=1e-5, atol=1e-5)

# (block name, input size, layer sizes) / (LSTM name, input, hidden) / (head name, input, output)
MOT_LAYOUT = dict(
    mlps=[("mlp_x_h", 4, [4]), ("mlp_gz_z", 16, [16, 8]), ("mlp_hz_z", 12, [8, 8]), ("mlp_hz_x", 12, [16])],
    lstms=[("rnn_h", 4, 8)],
    linears=[
        ("inf_z_mean", 8, 4), ("inf_z_logvar", 8, 4), ("prior_z_mean", 8, 4), ("prior_z_logvar", 8, 4),
        ("gen_x_mean", 16, 4), ("gen_x_logvar", 16, 4),
    ],
)
AUDIO_LAYOUT = dict(
    mlps=[
        ("mlp_x_h", 513, [256]), ("mlp_hx_g", 641, [256]), ("mlp_gz_z", 144, [64, 32]),
        ("mlp_hz_z", 144, [64, 32]), ("mlp_hz_x", 144, [256]),
    ],
    lstms=[("rnn_h", 256, 128), ("rnn_g", 256, 128)],
    linears=[
        ("inf_z_mean", 32, 16), ("inf_z_logvar", 32, 16), ("prior_z_mean", 32, 16),
        ("prior_z_logvar", 32, 16), ("gen_x", 256, 513),
    ],
)
# Not a shipped file: other sizes and depths, to show nothing is hard-coded (x 3, z 2, h 5).
MOT_VARIANT_LAYOUT = dict(
    mlps=[("mlp_x_h", 3, [6, 7]), ("mlp_gz_z", 10, [9, 8, 4]), ("mlp_hz_z", 7, [3]), ("mlp_hz_x", 7, [5, 6])],
    lstms=[("rnn_h", 7, 5)],
    linears=[
        ("inf_z_mean", 4, 2), ("inf_z_logvar", 4, 2), ("prior_z_mean", 3, 2), ("prior_z_logvar", 3, 2),
        ("gen_x_mean", 6, 3), ("gen_x_logvar", 6, 3),
    ],
)


def original_state_dict(layout: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Original key names (``X.linear_i.*``, seq-first ``nn.LSTM`` keys, head names), uniform
    weights in +-1/sqrt(fan-in) from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, fan_in):
        return (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(fan_in)

    sd: dict[str, torch.Tensor] = {}
    for block, in_dim, sizes in layout["mlps"]:
        for i, (a, b) in enumerate(zip([in_dim, *sizes[:-1]], sizes)):
            sd[f"{block}.linear_{i}.weight"] = uniform((b, a), a)
            sd[f"{block}.linear_{i}.bias"] = uniform((b,), a)
    for rnn, in_dim, hidden in layout["lstms"]:
        sd[f"{rnn}.weight_ih_l0"] = uniform((4 * hidden, in_dim), hidden)
        sd[f"{rnn}.weight_hh_l0"] = uniform((4 * hidden, hidden), hidden)
        sd[f"{rnn}.bias_ih_l0"] = uniform((4 * hidden,), hidden)
        sd[f"{rnn}.bias_hh_l0"] = uniform((4 * hidden,), hidden)
    for linear, in_dim, out_dim in layout["linears"]:
        sd[f"{linear}.weight"] = uniform((out_dim, in_dim), in_dim)
        sd[f"{linear}.bias"] = uniform((out_dim,), in_dim)
    return sd


# ----------------------------------------------------------------------- the oracle (seq-first)
def mlp(sd, block, u):
    """tanh(W u + b) per layer, layers in the order of their index."""
    i = 0
    while f"{block}.linear_{i}.weight" in sd:
        u = torch.tanh(u @ sd[f"{block}.linear_{i}.weight"].T + sd[f"{block}.linear_{i}.bias"])
        i += 1
    return u


def linear(sd, name, u):
    return u @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def lstm(sd, rnn, u):
    """Hand-written LSTM, gates (i, f, g, o) in PyTorch's order, zero initial state.

    Shape: (T, B, I) -> (T, B, H)
    """
    w_ih, w_hh = sd[f"{rnn}.weight_ih_l0"], sd[f"{rnn}.weight_hh_l0"]
    b = sd[f"{rnn}.bias_ih_l0"] + sd[f"{rnn}.bias_hh_l0"]
    H = w_hh.shape[1]
    h = u.new_zeros(u.shape[1], H)
    c = u.new_zeros(u.shape[1], H)
    out = []
    for t in range(u.shape[0]):
        gates = u[t] @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out)


def original_forward(sd, x, audio):
    """Original SRNN forward with z_t = mean of q at every step.  x (T, B, D) seq-first.

    Returns (q mean, q var, prior mean, prior var, decoder mean, decoder var), all seq-first.
    """
    T, B, _ = x.shape
    x_tm1 = torch.cat([torch.zeros_like(x[:1]), x[:-1]])  # x_0 = 0
    h = lstm(sd, "rnn_h", mlp(sd, "mlp_x_h", x_tm1))
    if audio:  # backward g over [h_t, x_t], time-reversed then flipped back
        g = lstm(sd, "rnn_g", mlp(sd, "mlp_hx_g", torch.cat([h, x], -1)).flip(0)).flip(0)
        feats = g
    else:  # causal MOT encoder on [h_t, x_t]
        feats = torch.cat([h, x], -1)
    z_dim = sd["inf_z_mean.weight"].shape[0]
    z_prev = x.new_zeros(B, z_dim)  # z_0 = 0
    q_mean, q_logvar = [], []
    for t in range(T):
        f = mlp(sd, "mlp_gz_z", torch.cat([feats[t], z_prev], -1))
        q_mean.append(linear(sd, "inf_z_mean", f))
        q_logvar.append(linear(sd, "inf_z_logvar", f))
        z_prev = q_mean[-1]
    z = torch.stack(q_mean)
    q_var = torch.stack(q_logvar).exp()
    z_tm1 = torch.cat([torch.zeros_like(z[:1]), z[:-1]])
    f = mlp(sd, "mlp_hz_z", torch.cat([h, z_tm1], -1))
    p_mean, p_var = linear(sd, "prior_z_mean", f), linear(sd, "prior_z_logvar", f).exp()
    f = mlp(sd, "mlp_hz_x", torch.cat([h, z], -1))
    if audio:
        x_var = linear(sd, "gen_x", f).exp()
        x_mean = torch.zeros_like(x_var)
    else:
        x_mean, x_var = linear(sd, "gen_x_mean", f), linear(sd, "gen_x_logvar", f).exp()
    return z, q_var, p_mean, p_var, x_mean, x_var


def assert_matches_original(model: SRNN, sd, x_bt, audio):
    """Our encode(sample=False) / prior_z / decode against the oracle.  x_bt (B, T, D)."""
    with torch.no_grad():
        z, q = model.encode(x_bt, sample=False)
        pz = model.prior_z(x_bt, z)
        px = model.decode(x_bt, z)
        ref = [r.transpose(0, 1) for r in original_forward(sd, x_bt.transpose(0, 1), audio)]
    for name, ours, theirs in zip(
        ["z mean", "z var", "prior mean", "prior var", "decoder mean", "decoder var"],
        [z, q.var, pz.mean, pz.var, px.mean, px.var],
        ref,
    ):
        torch.testing.assert_close(ours, theirs, **TOL, msg=lambda m, n=name: f"{n}: {m}")
    torch.testing.assert_close(q.mean, z, rtol=0, atol=0)


# ----------------------------------------------------------------------- parity
def test_mot_layout_matches_original_forward(tmp_path):
    sd = original_state_dict(MOT_LAYOUT, seed=1)
    assert sum(v.numel() for v in sd.values()) == 1540  # section 1.2
    path = tmp_path / "model_mot.pt"
    torch.save(sd, path)
    model = load_reference_checkpoint(path)
    c = model.config
    assert (c.family, c.encoder, c.head, c.input_transform, c.activation) == (
        "srnn", "causal", "gaussian", "identity", "tanh"
    )
    assert (c.x_dim, c.z_dim, c.rnn_dim, c.dense_x, c.dense_enc, c.dense_prior, c.dense_dec, c.beta) == (
        4, 4, 8, (4,), (16, 8), (8, 8), (16,), 1.0
    )
    assert model.num_parameters() == 1540
    x = torch.rand(3, 7, 4, generator=torch.Generator().manual_seed(2))
    assert_matches_original(model, sd, x, audio=False)


def test_audio_layout_matches_original_forward():
    sd = original_state_dict(AUDIO_LAYOUT, seed=3)
    assert sum(v.numel() for v in sd.values()) == 884_993  # section 1.3
    model = load_reference_checkpoint(sd)  # kind auto -> audio
    c = model.config
    assert (c.encoder, c.head, c.input_transform, c.beta) == (
        "backward", "complex_variance", "identity", 0.01
    )
    assert (c.x_dim, c.z_dim, c.rnn_dim, c.g_dim) == (513, 16, 128, 128)
    assert (c.dense_x, c.dense_g, c.dense_enc, c.dense_prior, c.dense_dec) == (
        (256,), (256,), (64, 32), (64, 32), (256,)
    )
    assert model.num_parameters() == 884_993
    x = torch.rand(2, 6, 513, generator=torch.Generator().manual_seed(4)) ** 2 * 3  # power spectrogram
    assert_matches_original(model, sd, x, audio=True)


def test_other_sizes_and_depths_are_inferred():
    sd = original_state_dict(MOT_VARIANT_LAYOUT, seed=5)
    model = load_reference_checkpoint(sd, kind="mot")
    c = model.config
    assert (c.x_dim, c.z_dim, c.rnn_dim, c.dense_x, c.dense_enc, c.dense_prior, c.dense_dec) == (
        3, 2, 5, (6, 7), (9, 8, 4), (3,), (5, 6)
    )
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(6))
    assert_matches_original(model, sd, x, audio=False)


@pytest.mark.parametrize("wrapper", ["model_state_dict", "state_dict"])
def test_wrapped_state_dict_file(tmp_path, wrapper):
    sd = original_state_dict(MOT_LAYOUT)
    path = tmp_path / "ckpt.pt"
    torch.save({wrapper: sd, "epoch": 12, "optimizer_state_dict": {"state": {}}}, path)
    model = load_reference_checkpoint(path, kind="mot")
    torch.testing.assert_close(model.head.mean.weight, sd["gen_x_mean.weight"], rtol=0, atol=0)
    torch.testing.assert_close(model.mlp_gz_z.layers[1].bias, sd["mlp_gz_z.linear_1.bias"], rtol=0, atol=0)


def test_loading_leaves_global_rng_untouched_and_does_not_alias_input():
    sd = original_state_dict(MOT_LAYOUT)
    before = torch.get_rng_state()
    model = load_reference_checkpoint(sd)
    assert torch.equal(torch.get_rng_state(), before)
    with torch.no_grad():
        model.rnn_h.weight_hh_l0.zero_()
    assert sd["rnn_h.weight_hh_l0"].abs().sum() > 0


# ----------------------------------------------------------------------- errors
def test_missing_key():
    sd = original_state_dict(MOT_LAYOUT)
    del sd["gen_x_logvar.bias"]
    with pytest.raises(CheckpointError, match=r"^state_dict: .*missing keys gen_x_logvar\.bias$"):
        load_reference_checkpoint(sd)


def test_missing_middle_mlp_layer():
    sd = original_state_dict(MOT_LAYOUT)
    del sd["mlp_gz_z.linear_0.weight"], sd["mlp_gz_z.linear_0.bias"]
    message = r"missing keys mlp_gz_z\.linear_0\.weight, mlp_gz_z\.linear_0\.bias$"
    with pytest.raises(CheckpointError, match=message):
        load_reference_checkpoint(sd)


def test_unexpected_key_names_file(tmp_path):
    sd = original_state_dict(MOT_LAYOUT)
    sd["rnn_h.weight_ih_l1"] = torch.zeros(32, 8)  # a second LSTM layer
    path = tmp_path / "model_mot.pt"
    torch.save(sd, path)
    message = rf"^{re.escape(str(path))}: .*unexpected keys rnn_h\.weight_ih_l1$"
    with pytest.raises(CheckpointError, match=message):
        load_reference_checkpoint(path)


def test_kind_mismatch():
    sd = original_state_dict(MOT_LAYOUT)
    with pytest.raises(CheckpointError, match=r"kind='audio'.*missing keys mlp_hx_g\.linear_0\.weight.*"
                       r"unexpected keys gen_x_logvar\.bias"):
        load_reference_checkpoint(sd, kind="audio")


def test_inconsistent_shape():
    sd = original_state_dict(MOT_LAYOUT)
    sd["mlp_gz_z.linear_0.weight"] = torch.zeros(16, 15)  # encoder input must be 8 + 4 + 4
    with pytest.raises(
        CheckpointError,
        match=r"^state_dict: mlp_gz_z\.linear_0\.weight has shape \(16, 15\), expected \(16, 16\) for the "
        r"architecture inferred",
    ):
        load_reference_checkpoint(sd)


def test_lstm_weight_not_4h():
    sd = original_state_dict(MOT_LAYOUT)
    sd["rnn_h.weight_hh_l0"] = torch.zeros(30, 8)
    message = r"rnn_h\.weight_hh_l0 has shape \(30, 8\), expected \(4 H, H\)"
    with pytest.raises(CheckpointError, match=message):
        load_reference_checkpoint(sd)


def test_weight_not_a_matrix():
    sd = original_state_dict(MOT_LAYOUT)
    sd["inf_z_mean.weight"] = torch.zeros(32)
    with pytest.raises(CheckpointError, match=r"inf_z_mean\.weight has shape \(32,\), expected a 2-D weight"):
        load_reference_checkpoint(sd)


def test_nan_weight():
    sd = original_state_dict(MOT_LAYOUT)
    sd["prior_z_mean.weight"][1, 2] = float("nan")
    sd["prior_z_mean.weight"][0, 0] = float("inf")
    message = r"^state_dict: prior_z_mean\.weight holds 2 non-finite value\(s\) \(NaN or inf\)$"
    with pytest.raises(CheckpointError, match=message):
        load_reference_checkpoint(sd)


@pytest.mark.parametrize(
    "payload, message",
    [
        ([torch.zeros(2)], r"holds a list, expected a state_dict"),
        (torch.zeros(2), r"holds a Tensor, expected a state_dict"),
        (
            {"rnn_h.weight_hh_l0": torch.zeros(32, 8), "epoch": 3},
            r"entry 'epoch' is a int, expected a state_dict",
        ),
        ({}, r"the state_dict is empty"),
        (
            {"rnn_h.weight_hh_l0": torch.zeros(32, 8, dtype=torch.int64)},
            r"rnn_h\.weight_hh_l0 has dtype torch\.int64, expected floating",
        ),
    ],
)
def test_not_a_state_dict(tmp_path, payload, message):
    path = tmp_path / "weird.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: {message}"):
        load_reference_checkpoint(path)


class _Payload:
    """Unpickling this would create ``marker`` (stands for arbitrary code run by pickle)."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_pickled_objects_are_refused_and_not_run(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    sd = original_state_dict(MOT_LAYOUT)
    torch.save({**sd, "extra": _Payload(marker)}, path)
    message = rf"^{re.escape(str(path))}: refused: .*Unsupported global.*weights_only=True\)$"
    with pytest.raises(CheckpointError, match=message):
        load_reference_checkpoint(path)
    assert not marker.exists()


def test_unreadable_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pt: file not found$"):
        load_reference_checkpoint(tmp_path / "nope.pt")
    good = tmp_path / "good.pt"
    torch.save(original_state_dict(MOT_LAYOUT), good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"truncated\.pt: cannot read as a torch checkpoint"):
        load_reference_checkpoint(truncated)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"junk\.pt: cannot read as a torch checkpoint \(.+\)$"):
        load_reference_checkpoint(junk)


def test_messages_are_one_line(tmp_path):
    sd = original_state_dict(AUDIO_LAYOUT)
    with pytest.raises(CheckpointError) as info:
        load_reference_checkpoint(sd, kind="mot")
    assert "\n" not in str(info.value)
    assert "and " in str(info.value)  # long key lists are shortened


def test_unknown_kind():
    with pytest.raises(ConfigError, match=r"kind = 'video'"):
        load_reference_checkpoint(original_state_dict(MOT_LAYOUT), kind="video")
