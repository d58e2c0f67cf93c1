"""The fused SRNN recursions compute what the SRNN's own modules compute, for every option they
support, and the prior falls back to the modules for what they do not."""

import pytest
import torch

from mixdvae.dvae import DVAEConfig, build_dvae
from mixdvae.dvae.heads import Gauss
from mixdvae.dvae.weights import load_weights, shipped_weights
from mixdvae.errors import ConfigError
from mixdvae.inference.dvae_prior import DVAEPriorOptions, DVAESourcePrior
from mixdvae.inference.lgssm import gap_jump_weights
from mixdvae.inference.srnn_kernel import FusedSRNN
from mixdvae.inference.steps import e_step_s


def _model(**overrides):
    base = dict(family="srnn", x_dim=4, z_dim=3, dense_x=[16], rnn_dim=12, dense_enc=[10, 6],
                dense_prior=[10, 6], dense_dec=[8], encoder="causal")
    base.update(overrides)
    model = build_dvae(DVAEConfig(**base), seed=3).double()
    with torch.no_grad():  # larger weights than the default init, so that tanh saturates somewhere
        for p in model.parameters():
            p.mul_(2.0)
    return model.eval()


def _inputs(B=6, T=15, D=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    mean = 0.5 + 0.1 * torch.cumsum(torch.randn(B, T, D, generator=g, dtype=torch.float64), 1)
    prec = torch.rand(B, T, D, generator=g, dtype=torch.float64) * 50
    prec[:, 3] = 0  # a frame without observations
    info = prec * (mean + 0.05 * torch.randn(B, T, D, generator=g, dtype=torch.float64))
    return mean, prec, info


def _generic_filter(model, z, prec, info, extra_var, min_var, predictive):
    """The recursion written with the model's modules, independently of both implementations."""
    B, T, D = prec.shape
    state, u = None, None
    outs = []
    for t in range(T):
        base = model.residual_base(u, None if state is None else state[2])
        h, state = model.h_step(u, state, B)
        zt = z[:, t]
        if predictive:
            zt = model.prior_from_h(h, z[:, t - 1] if t > 0 else torch.zeros_like(zt)).mean
        p = model.decode_from_h(h, zt, base)
        prior = Gauss(p.mean, p.var.clamp_min(min_var) + extra_var)
        post = e_step_s(prior, prec[:, t], info[:, t])
        u = post.mean
        outs.append((post.mean, post.var, prior.mean, prior.var, h))
    return [torch.stack(x, 1) for x in zip(*outs)]


CONFIGS = [
    dict(),
    dict(input_transform="delta", delta_scale=100.0, residual=True, residual_velocity=True, residual_scale=0.01),
    dict(input_transform="delta", residual=True, residual_velocity=False),
    dict(encoder="backward", dense_g=[8], g_dim=5),
    dict(dense_x=[], input_transform="delta"),
]


@pytest.mark.parametrize("overrides", CONFIGS, ids=["plain", "delta-velocity", "delta-residual", "backward", "no-dense-x"])
@pytest.mark.parametrize("predictive", [True, False])
def test_fused_filter_equals_the_module_recursion(overrides, predictive):
    model = _model(**overrides)
    assert FusedSRNN.supports(model)
    fused = FusedSRNN(model)
    mean, prec, info = _inputs()
    z = torch.randn(mean.shape[0], mean.shape[1], model.z_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    extra = 0.01 * torch.rand(mean.shape[0], 4, dtype=torch.float64)
    got = fused.filter(z, prec, info, extra, 1e-8, predictive)
    want = _generic_filter(model, z, prec, info, extra, 1e-8, predictive)
    for name, a, b in zip(("m", "v", "mu", "sigma2", "h"), got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=f"{name} differs")


@pytest.mark.parametrize("overrides", CONFIGS[:4], ids=["plain", "delta-velocity", "delta-residual", "backward"])
def test_fused_encoder_and_prior_equal_the_modules(overrides):
    model = _model(**overrides)
    fused = FusedSRNN(model)
    mean, _, _ = _inputs()
    h = model.deterministic_h(mean)
    feats = model.encoder_features(mean, h)
    z, q = model.encode_from_features(feats, sample=False)
    got = fused.encode_means(feats)
    torch.testing.assert_close(got.mean, q.mean, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(got.mean, z, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(got.var, q.var, rtol=1e-9, atol=1e-12)
    z_prev = torch.roll(z, 1, dims=1)
    want, have = model.prior_from_h(h, z_prev), fused.prior_z(h, z_prev)
    torch.testing.assert_close(have.mean, want.mean, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(have.var, want.var, rtol=1e-9, atol=1e-12)


def test_filter_h_is_the_deterministic_h_of_its_means():
    """What lets E-Z reuse the last filter's h instead of a second LSTM pass."""
    model = _model(input_transform="delta", residual=True, residual_velocity=True)
    mean, prec, info = _inputs()
    z = torch.zeros(mean.shape[0], mean.shape[1], model.z_dim, dtype=torch.float64)
    m, _, _, _, h = FusedSRNN(model).filter(z, prec, info, 0.0, 1e-8, True)
    torch.testing.assert_close(h, model.deterministic_h(m), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("options", [
    DVAEPriorOptions(extra_std=0.3, predictive=True),
    DVAEPriorOptions(),
    DVAEPriorOptions(smoother=True, extra_std=0.1),
    DVAEPriorOptions(anchor_first_frame=True, sample_z=True),
], ids=["default", "plain", "smoother", "reference"])
def test_shipped_prior_e_step_is_the_same_fused_or_not_over_iterations(options):
    model = load_weights(shipped_weights("motion_srnn"))
    B, T, N, D = 4, 20, 3, 4
    g = torch.Generator().manual_seed(0)
    start = torch.rand(B, 1, N, 2, generator=g) * 0.7
    s = torch.cat([start, start + 0.1], -1) + torch.cumsum(0.002 * torch.randn(B, T, N, D, generator=g), 1)
    prec = torch.full((B, T, N, D), 1e5)
    info = prec * (s + 0.002 * torch.randn(B, T, N, D, generator=g))
    fused = DVAESourcePrior(model, options, s[:, 0])
    plain = DVAESourcePrior(model, options, s[:, 0], fused=False)
    assert fused.fused is not None and plain.fused is None
    qa = qb = Gauss(s, torch.full_like(s, 1e-5))
    for _ in range(3):  # later iterations reuse the filter's h in E-Z
        ga, gb = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        qa, ea = fused.e_step(prec, info, qa, ga)
        qb, eb = plain.e_step(prec, info, qb, gb)
        torch.testing.assert_close(qa.mean, qb.mean, rtol=0, atol=1e-4)  # float32: 0.2 px at 1920
        torch.testing.assert_close(qa.var, qb.var, rtol=1e-2, atol=0)
        torch.testing.assert_close(ea, eb, rtol=1e-4, atol=1e-2)


def test_unsupported_models_use_the_module_path():
    relu = _model(activation="relu")
    assert not FusedSRNN.supports(relu)
    assert DVAESourcePrior(relu).fused is None
    deep_ar = build_dvae(DVAEConfig(family="deep_ar", x_dim=4, dense_x=[8], rnn_dim=8, dense_dec=[8]), seed=0)
    assert not FusedSRNN.supports(deep_ar)


@pytest.mark.parametrize("overrides", CONFIGS, ids=["plain", "delta-velocity", "delta-residual", "backward", "no-dense-x"])
def test_fused_batched_decoder_equals_the_module(overrides):
    model = _model(**overrides)
    fused = FusedSRNN(model)
    mean, _, _ = _inputs()
    h = model.deterministic_h(mean)
    z = torch.randn(*mean.shape[:2], model.z_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    base = model.residual_base_seq(mean)
    want, have = model.decode_from_h(h, z, base), fused.decode(h, z, base)
    torch.testing.assert_close(have.mean, want.mean, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(have.var, want.var, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("lag", [1, 5])
def test_kalman_noise_m_step_recovers_the_acceleration_variance(monkeypatch, lag):
    """Boxes moving with white accelerations of std 0.05 x size, observed almost exactly, and a prior
    that predicts exact constant velocity with (almost) no variance of its own: the M-step of
    kalman_learn_noise converges to the step variance the acceleration floor (0.02 x size) leaves
    unexplained, about (0.05^2 - 0.02^2) x size^2. (The shipped DVAE is not used for the
    prediction: on such jerky motion its own variance would explain the accelerations.) Over
    increments of 5 frames (kalman_noise_lag) white accelerations give the same estimate."""
    model = load_weights(shipped_weights("motion_srnn"))
    g = torch.Generator().manual_seed(3)
    size = torch.tensor([0.05, 0.15, 0.05, 0.15])
    acc = 0.05 * size[:2] * torch.randn(16, 60, 1, 2, generator=g)
    acc = torch.cat([acc, acc], dim=-1)  # both corners move together
    start = torch.rand(16, 1, 1, 2, generator=g) * 0.5 + 0.2
    s = torch.cat([start, start + size[:2]], dim=-1) + torch.cumsum(torch.cumsum(acc, dim=1), dim=1)  # (B, T, 1, D)
    s = s.double()
    prec = torch.full_like(s, 1e9)
    info = prec * s
    opts = DVAEPriorOptions(posterior="kalman", predictive=True, extra_std=0.02, kalman_acc_std=0.02,
                            kalman_learn_noise=True, kalman_noise_lag=lag)
    prior = DVAESourcePrior(model.double(), opts, s[:, 0])
    monkeypatch.setattr(prior.fused, "decode", lambda h, z, base: Gauss(base, torch.full_like(base, 1e-14)))
    q = Gauss(s, torch.full_like(s, 1e-12))
    for _ in range(30):
        q, _ = prior.e_step(prec, info, q)
    ratio = prior._step_extra[1].mean(0) / ((0.05 ** 2 - 0.02 ** 2) * size.double() ** 2)
    assert ((ratio > 0.8) & (ratio < 1.3)).all(), ratio


def _constant_velocity_boxes_with_ar1_errors(seed: int, rho: float, std_rel: float):
    """16 boxes of size (0.05, 0.15) moving at constant velocity for T = 120 frames, and their AR(1)
    detection errors (lag-one correlation rho, std std_rel x size).

    Shape: -> s, e (16, 120, 1, 4) float64, size (4,), generator (for further draws)
    """
    g = torch.Generator().manual_seed(seed)
    size = torch.tensor([0.05, 0.15, 0.05, 0.15], dtype=torch.float64)
    B, T = 16, 120
    start = torch.rand(B, 1, 1, 2, generator=g, dtype=torch.float64) * 0.5 + 0.2
    vel = 0.01 * size[:2] * torch.randn(B, 1, 1, 2, generator=g, dtype=torch.float64)
    corner = start + vel * torch.arange(T, dtype=torch.float64)[None, :, None, None]
    s = torch.cat([corner, corner + size[:2]], dim=-1)  # (B, T, 1, D)
    std = std_rel * size
    e = torch.zeros_like(s)
    e[:, 0] = std * torch.randn(B, 1, 4, generator=g, dtype=torch.float64)
    for t in range(1, T):
        e[:, t] = rho * e[:, t - 1] + (1 - rho ** 2) ** 0.5 * std * torch.randn(B, 1, 4, generator=g, dtype=torch.float64)
    return s, e, size, g


def _kalman_prior_after_e_steps(monkeypatch, model, o, prec, info, var, iterations, **options):
    """A kalman-posterior prior with a learned step noise (and ``options``) whose DVAE predicts
    exact constant velocity, after ``iterations`` E-S steps from q(s) = N(o, var)."""
    opts = DVAEPriorOptions(posterior="kalman", predictive=True, extra_std=0.02, kalman_acc_std=0.02,
                            kalman_learn_noise=True, **options)
    prior = DVAESourcePrior(model.double(), opts, o[:, 0])
    monkeypatch.setattr(prior.fused, "decode", lambda h, z, base: Gauss(base, torch.full_like(base, 1e-14)))
    q = Gauss(o, var.expand_as(o).clone())
    for _ in range(iterations):
        q, _ = prior.e_step(prec, info, q)
    return prior


def test_lagged_noise_m_step_reads_less_motion_into_persistent_detection_errors(monkeypatch):
    """Boxes at constant velocity, detected with AR(1) errors (lag-one correlation 0.8, std 0.1 x
    size, like MOT15's detected edges) and an observation variance that the Phi M-step, fitting
    tracks that follow the slow errors, puts at a third of the true std: the one-frame M-step
    reads the errors as acceleration; over 5-frame increments the estimate is less than half."""
    model = load_weights(shipped_weights("motion_srnn"))
    s, e, size, _ = _constant_velocity_boxes_with_ar1_errors(4, 0.8, 0.1)
    std = 0.1 * size
    o = s + e
    prec = (1.0 / (std / 3) ** 2).expand_as(o).clone()
    info = prec * o
    learned = {}
    for lag in (1, 5):
        prior = _kalman_prior_after_e_steps(monkeypatch, model, o, prec, info, std ** 2, 20, kalman_noise_lag=lag)
        learned[lag] = prior._step_extra[1].mean(0) / size ** 2
    assert (learned[1] > 1e-5).all(), learned  # the one-frame M-step does read motion into the errors
    assert (learned[5] < 0.5 * learned[1]).all(), learned


@pytest.mark.parametrize("bad", [0, -2, 1.5])
def test_kalman_noise_lag_must_be_a_positive_integer(bad):
    with pytest.raises(ConfigError, match="kalman_noise_lag"):
        DVAEPriorOptions(posterior="kalman", kalman_learn_noise=True, kalman_noise_lag=bad)


def test_detection_bias_m_step_recovers_the_persistent_error_and_frees_the_motion(monkeypatch):
    """Boxes at constant velocity detected with AR(1) errors (lag-one correlation 0.8, std 0.1 x
    size) plus a little white noise (std 0.01 x size, the precision the messages carry): with
    kalman_bias_rho = 0.8 the bias M-step recovers the persistent error's std, and the step noise
    learned beside it is under a tenth of what the model without a bias reads into the errors."""
    model = load_weights(shipped_weights("motion_srnn"))
    rho = 0.8
    s, e, size, g = _constant_velocity_boxes_with_ar1_errors(7, rho, 0.1)
    std, white = 0.1 * size, 0.01 * size
    o = s + e + white * torch.randn(s.shape, generator=g, dtype=torch.float64)
    prec = (1.0 / white ** 2).expand_as(o).clone()
    info = prec * o
    learned, bias_std = {}, None
    for bias_rho in (0.0, rho):
        prior = _kalman_prior_after_e_steps(monkeypatch, model, o, prec, info, std ** 2, 40,
                                            kalman_bias_rho=bias_rho, kalman_bias_std=0.05)
        learned[bias_rho] = prior._step_extra[1].mean(0) / size ** 2
        if bias_rho > 0:
            bias_std = (prior._bias[2].mean(0).sqrt() / size)
    assert ((bias_std > 0.075) & (bias_std < 0.125)).all(), bias_std
    assert (learned[rho] < 0.1 * learned[0.0]).all(), learned


@pytest.mark.parametrize("bad", [{"kalman_bias_rho": 1.0}, {"kalman_bias_rho": -0.1}, {"kalman_bias_std": 0.0},
                                 {"kalman_bias_rho": 0.5, "posterior": "filter"}])
def test_detection_bias_options_are_checked(bad):
    kwargs = {"posterior": "kalman", **bad}
    with pytest.raises(ConfigError, match="kalman_bias"):
        DVAEPriorOptions(**kwargs)


def _seen(pattern: str) -> torch.Tensor:
    """Observation precisions from a pattern of frames: '#' a detection (precision 1e4 x (1 +- 10 %),
    as assignments and box sizes vary), '.' none, '~' a detection only a fifth assigned."""
    values = {"#": 1e4, ".": 0.0, "~": 2e3}
    lam = torch.tensor([values[c] for c in pattern], dtype=torch.float64)
    return lam * (1 + 0.1 * torch.sin(torch.arange(len(pattern), dtype=torch.float64)))


@pytest.mark.parametrize("pattern, jumps, min_gap", [
    ("##########.....###############", [9, 15], 1),  # a gap between long runs: its last frame before, first after
    ("##########~~~~~###############", [9, 15], 1),  # detections a fifth assigned count as missing
    (".....#########################", [], 1),  # a leading gap: extrapolated from the frames after it
    ("####################..........", [], 1),  # a trailing gap
    ("##########..##...#############", [], 1),  # gaps next to a run of two frames
    ("#####.#####...#####", [4, 6, 10, 14], 1),  # two gaps between runs of 5 frames
    ("#####.#####...#####", [10, 14], 2),  # ... of which one of 2 frames or more
])
def test_gap_jump_weights_free_the_steps_around_each_gap_between_long_runs(pattern, jumps, min_gap):
    lam = _seen(pattern)[None, None].expand(2, 4, -1)  # (M, D, T)
    j = gap_jump_weights(lam, min_run=5, min_gap=min_gap)
    want = torch.zeros(len(pattern), dtype=torch.float64)
    want[jumps] = 1.0
    torch.testing.assert_close(j, want.expand_as(j))


def test_a_gap_is_crossed_in_a_straight_line(monkeypatch):
    """A box walks right for 20 frames, is occluded for 10 during which it turns back, and walks left
    for 20 (observed almost exactly, with a prior that predicts constant velocity): with
    kalman_gap_std the track crosses the gap on the straight line between its last and first
    boxes (within 0.05 box widths); without, it keeps going right into the gap and misses the line
    by half a box width."""
    model = load_weights(shipped_weights("motion_srnn"))
    size = torch.tensor([0.05, 0.15, 0.05, 0.15], dtype=torch.float64)
    T, gap = 50, slice(20, 30)
    t = torch.arange(T, dtype=torch.float64)
    x = torch.where(t < 25, 0.3 + 0.01 * t, 0.3 + 0.01 * (50 - t))  # turns back at t = 25
    corner = torch.stack([x, torch.full_like(x, 0.4)], dim=-1)
    o = torch.cat([corner, corner + size[:2]], dim=-1)[None, :, None, :]  # (1, T, 1, D)
    prec = torch.full_like(o, 1e8)
    prec[:, gap] = 0.0
    info = prec * o
    line = o[0, 19, 0, 0] + (o[0, 30, 0, 0] - o[0, 19, 0, 0]) * (t[gap] - 19) / 11
    errors = {}
    for std in (0.0, 0.5):
        prior = _kalman_prior_after_e_steps(monkeypatch, model, o, prec, info, (0.01 * size) ** 2, 10, kalman_gap_std=std)
        q, _ = prior.e_step(prec, info, Gauss(o, torch.full_like(o, 1e-6)))
        errors[std] = float((q.mean[0, gap, 0, 0] - line).abs().max() / size[0])
    assert errors[0.5] < 0.05, errors
    assert errors[0.0] > 0.3, errors


@pytest.mark.parametrize("bad", [{"kalman_gap_std": -0.1}, {"kalman_gap_std": 0.5, "posterior": "filter"}, {"kalman_gap_min_run": 0},
                                 {"kalman_gap_min_gap": 0},
                                 {"kalman_gap_std": 0.5, "kalman_bias_rho": 0.5}])
def test_gap_options_are_checked(bad):
    kwargs = {"posterior": "kalman", **bad}
    with pytest.raises(ConfigError, match="kalman_gap"):
        DVAEPriorOptions(**kwargs)


def test_the_vkf_prior_with_gap_std_crosses_a_gap_in_a_straight_line():
    """The same walk as above under the constant-velocity (VKF) prior: gap_std draws the line."""
    from mixdvae.inference.cv_prior import ConstantVelocityPrior, CVPriorOptions

    size = torch.tensor([0.05, 0.15, 0.05, 0.15], dtype=torch.float64)
    T, gap = 50, slice(20, 30)
    t = torch.arange(T, dtype=torch.float64)
    x = torch.where(t < 25, 0.3 + 0.01 * t, 0.3 + 0.01 * (50 - t))
    corner = torch.stack([x, torch.full_like(x, 0.4)], dim=-1)
    o = torch.cat([corner, corner + size[:2]], dim=-1)[None, :, None, :]  # (1, T, 1, D)
    prec = torch.full_like(o, 1e8)
    prec[:, gap] = 0.0
    line = o[0, 19, 0, 0] + (o[0, 30, 0, 0] - o[0, 19, 0, 0]) * (t[gap] - 19) / 11
    errors = {}
    for std in (0.0, 0.5):
        prior = ConstantVelocityPrior(o[:, 0], CVPriorOptions(gap_std=std))
        q, elbo = prior.e_step(prec, prec * o, Gauss(o, torch.full_like(o, 1e-6)))
        assert torch.isfinite(elbo).all()
        errors[std] = float((q.mean[0, gap, 0, 0] - line).abs().max() / size[0])
    assert errors[0.5] < 0.05 < 0.3 < errors[0.0], errors


@pytest.mark.parametrize("bad", [{"gap_std": -1.0}, {"gap_min_run": 0}, {"gap_min_gap": 0}])
def test_vkf_gap_options_are_checked(bad):
    from mixdvae.inference.cv_prior import CVPriorOptions

    with pytest.raises(ConfigError, match="gap_"):
        CVPriorOptions(**bad)
