"""Widening a trained prior's MLP layers keeps its function, and the new units can learn."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mixdvae.dvae import DVAEConfig, build_dvae
from mixdvae.dvae.widen import WIDENABLE, widen_into, widening_plan
from mixdvae.errors import ConfigError

AUDIO_SRNN = DVAEConfig(family="srnn", encoder="backward", head="complex_variance", x_dim=6, input_transform="log",
                        dense_dec=(8,))
AUDIO_DEEP_AR = DVAEConfig(family="deep_ar", head="complex_variance", x_dim=6, input_transform="log", dense_dec=(8,))
FAMILIES = [DVAEConfig(family="srnn", encoder="causal"), DVAEConfig(family="srnn", encoder="backward"),
            DVAEConfig(family="dkf"), DVAEConfig(family="rvae"), DVAEConfig(family="deep_ar", residual=True),
            AUDIO_SRNN, AUDIO_DEEP_AR]


def _x(cfg, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 11, cfg.x_dim, generator=g)
    return x.exp() if cfg.head == "complex_variance" else x


def _outputs(model, x):
    """Every tensor of q(z | x), p(z) and p(x | z) along one posterior sample (fixed noise), and the
    one-step forecast."""
    model.eval()
    with torch.no_grad():
        q, pz, px = model.teacher_forced(x, generator=torch.Generator(device=x.device.type).manual_seed(7))
        forecast = model.predict_next(x)
    return [t for g in (q, pz, px, forecast) if g is not None for t in g if t.numel()]


def _wider(cfg, *fields):
    return dataclasses.replace(cfg, **{f: tuple(3 * s for s in getattr(cfg, f)) for f in fields})


@pytest.mark.parametrize("cfg", FAMILIES, ids=lambda c: f"{c.family}-{c.encoder}-{c.head}")
def test_widened_prior_computes_the_trained_function(cfg):
    """Every MLP three times as wide: the widened model's posteriors, priors, likelihoods and forecasts
    equal the source's on a batch other than the one widen_into checks (longer, other values)."""
    source = build_dvae(cfg, "cpu", seed=1)
    target = build_dvae(_wider(cfg, *WIDENABLE), "cpu", seed=2)
    assert target.num_parameters() > source.num_parameters()
    before = _outputs(target, _x(cfg))
    plan = widen_into(target, source)
    assert set(plan) == {f for f in WIDENABLE if getattr(cfg, f)}
    after, expected = _outputs(target, _x(cfg)), _outputs(source, _x(cfg))
    assert len(after) == len(expected) >= 4
    for a, e in zip(after, expected):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)
    assert any(not torch.allclose(b, e) for b, e in zip(before, expected))  # the fresh model differs


def test_new_units_start_silent_and_then_learn():
    """Decoder MLP 8 -> 32: the trained block is copied, the new units' outgoing weights are zero, and
    the loss's gradient on those zeros is not zero (training can use them)."""
    source = build_dvae(AUDIO_SRNN, "cpu", seed=1)
    target = build_dvae(dataclasses.replace(AUDIO_SRNN, dense_dec=(32,)), "cpu", seed=2)
    assert widen_into(target, source) == {"dense_dec": ([8], [32])}
    src, dst = source.state_dict(), target.state_dict()
    hidden = [k for k in dst if k.startswith("mlp_hz_x.") and dst[k].shape != src[k].shape]
    out = [k for k in dst if k.endswith("weight") and dst[k].dim() == 2 and dst[k].shape[1] == 32
           and not k.startswith("mlp_hz_x.")]
    assert hidden and out
    for k in hidden:
        torch.testing.assert_close(dst[k][: src[k].shape[0]], src[k], rtol=0, atol=0)
    for k in out:
        torch.testing.assert_close(dst[k][:, :8], src[k], rtol=0, atol=0)
        assert torch.count_nonzero(dst[k][:, 8:]) == 0
    target.train()
    loss = target.loss(_x(AUDIO_SRNN), generator=torch.Generator().manual_seed(0)).loss
    loss.backward()
    grads = dict(target.named_parameters())
    assert all(grads[k].grad[:, 8:].abs().sum() > 0 for k in out)


def test_a_widened_layer_that_feeds_a_concatenation_is_refused():
    """VRNN reads LSTM([phi_x, phi_z]): extending phi_x at its end would move phi_z's inputs, which
    the function check finds."""
    cfg = DVAEConfig(family="vrnn")
    with pytest.raises(ConfigError, match="widening changed the prior's outputs"):
        widen_into(build_dvae(_wider(cfg, "dense_x"), "cpu", seed=2), build_dvae(cfg, "cpu", seed=1))
    widen_into(build_dvae(_wider(cfg, "dense_dec"), "cpu", seed=2), build_dvae(cfg, "cpu", seed=1))


@pytest.mark.parametrize("change, message", [
    ({"dense_dec": (4,)}, "dense_dec: [16] -> [4]: widening keeps the number of layers and makes none narrower"),
    ({"dense_dec": (16, 16)}, "dense_dec: [16] -> [16, 16]: widening keeps the number of layers"),
    ({"z_dim": 8}, "only the MLP sizes (dense_*) can widen; these differ too: z_dim 4 -> 8"),
    ({"rnn_dim": 16, "dense_dec": (32,)}, "these differ too: rnn_dim 8 -> 16"),
])
def test_widening_plan_refuses_what_would_not_keep_the_function(change, message):
    with pytest.raises(ConfigError) as err:
        widening_plan(DVAEConfig(), dataclasses.replace(DVAEConfig(), **change))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_another_family_is_refused():
    with pytest.raises(ConfigError, match="a 'srnn' prior cannot widen into a 'dkf' one"):
        widen_into(build_dvae(DVAEConfig(family="dkf"), "cpu"), build_dvae(DVAEConfig(), "cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_cpu_checkpoint_widens_into_a_cuda_prior():
    """mixdvae train --device cuda --init W --widen: W loads on the CPU, the new prior lives on the GPU;
    both then give the same outputs there."""
    source = build_dvae(AUDIO_SRNN, "cpu", seed=1)
    target = build_dvae(dataclasses.replace(AUDIO_SRNN, dense_dec=(32,)), "cuda", seed=2)
    widen_into(target, source)
    x = _x(AUDIO_SRNN).cuda()
    for a, e in zip(_outputs(target, x), _outputs(source.cuda(), x)):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)
