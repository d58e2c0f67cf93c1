"""The separator: chunking covers every frame and cross-fades sum to 1, the pipeline is the identity
for the ``mixture`` method, oracles recover disjoint sources, chunking does not change a frame-local
method, the DVAE methods run, are reproducible and independent of the batching, and bad input is refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mixdvae.errors import ConfigError, DataFormatError
from mixdvae.metrics.audio import si_sdr
from mixdvae.separation.presets import DEFAULT, REFERENCE, SeparationConfig
from mixdvae.separation.separate import Separator, agreement_db, chunk_starts, crossfade_weights

from ._tiny import flute_like, low_high, speech_like, tiny_bases, tiny_checkpoint, tiny_priors

NAMES = ("speech", "flute")
SHORT = replace(DEFAULT, chunk_frames=30, overlap_frames=6)
"""30-frame chunks overlapping by 6: a 1.5 s input (94 frames) is 4 chunks."""


def _vem(base: SeparationConfig, iterations: int = 3, **kw) -> SeparationConfig:
    return replace(base, chunk_frames=30, overlap_frames=6, vem=replace(base.vem, iterations=iterations), **kw)


@pytest.fixture(scope="module")
def priors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("priors")
    return {"srnn": tiny_priors(folder, "srnn"), "deep_ar": tiny_priors(folder, "deep_ar")}


@pytest.fixture(scope="module")
def two_mixtures():
    """(2, L) mixtures of a speech-like and a flute-like signal, 1.5 s each."""
    return np.stack([speech_like(1.5, seed=i) + flute_like(1.5, seed=i) for i in range(2)])


# ------------------------------------------------------------------------------------ chunking

CASES = [(100, 50, 10), (91, 50, 10), (51, 50, 10), (50, 50, 10), (10, 50, 10), (200, 20, 0), (137, 30, 29),
         (188, 30, 6), (7, 2, 1), (3, 2, 0)]


@pytest.mark.parametrize(("num_frames", "chunk", "overlap"), CASES)
def test_chunks_cover_every_frame_with_the_requested_overlap(num_frames, chunk, overlap):
    starts = chunk_starts(num_frames, chunk, overlap)
    length = min(chunk, num_frames)
    assert starts[0] == 0 and starts == sorted(set(starts))
    assert starts[-1] + length == num_frames  # the last chunk ends at the last frame
    covered = np.zeros(num_frames, dtype=int)
    for s in starts:
        covered[s:s + length] += 1
    assert (covered >= 1).all()
    shared = [starts[c - 1] + length - starts[c] for c in range(1, len(starts))]
    assert all(ov == overlap for ov in shared[:-1])  # every chunk but the end-aligned last one
    assert all(ov >= overlap for ov in shared[-1:])
    if num_frames <= chunk:
        assert starts == [0]


@pytest.mark.parametrize(("num_frames", "chunk", "overlap"), CASES)
def test_crossfade_weights_sum_to_one_at_every_frame(num_frames, chunk, overlap):
    starts = chunk_starts(num_frames, chunk, overlap)
    length = min(chunk, num_frames)
    w = crossfade_weights(starts, chunk, num_frames)
    assert w.shape == (len(starts), length)
    assert (w >= 0).all() and (w <= 1 + 1e-12).all()
    total = torch.zeros(num_frames, dtype=torch.float64)
    for c, s in enumerate(starts):
        total[s:s + length] += w[c]
    assert torch.allclose(total, torch.ones(num_frames, dtype=torch.float64), atol=1e-12)
    assert w[0, 0] == 1 and w[-1, -1] == 1  # the ends are no one else's


# ------------------------------------------------------------------------------------ identity and oracles


@pytest.mark.parametrize("extra", [0, 77])
def test_mixture_method_is_the_identity_on_a_long_signal(extra):
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(3 * 16000 + extra)).astype(np.float32)  # 188 frames: 8 chunks of 30
    x[:5000] *= 0.05  # chunks of very different peaks: the peak normalisation must be undone
    res = Separator(NAMES, "mixture", SHORT).separate(x)
    assert res.names == NAMES and res.method == "mixture" and res.elbo is None
    assert res.waveforms.shape == (1, 2, x.shape[0]) and res.waveforms.dtype == np.float32
    for n in range(2):
        np.testing.assert_allclose(res.waveforms[0, n], x, atol=1e-4)
    assert torch.all(res.masks == 1)


def test_mixture_method_keeps_the_batch():
    x = np.stack([speech_like(1.2, seed=i) for i in range(3)])
    res = Separator(NAMES, "mixture", SHORT).separate(torch.as_tensor(x))
    assert res.waveforms.shape == (3, 2, x.shape[1])
    np.testing.assert_allclose(res.waveforms, np.repeat(x[:, None], 2, axis=1), atol=1e-4)


@pytest.mark.parametrize("method", ["oracle-wiener", "oracle-ibm"])
def test_oracles_recover_sources_with_disjoint_spectra(method):
    sources, mix = low_high(seconds=2.0)
    res = Separator(("low", "high"), method, SHORT).separate(mix, sources[None])
    assert res.waveforms.shape == (1, 2, mix.shape[0])
    for n in range(2):
        assert si_sdr(res.waveforms[0, n], sources[n]) > 20.0
    masks = res.masks[0]
    assert torch.allclose(masks.sum(0), torch.ones_like(masks[0]), atol=1e-5)
    if method == "oracle-ibm":
        assert set(torch.unique(masks).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("method", ["oracle-wiener", "oracle-ibm"])
def test_oracles_without_references_raise_config_error(method):
    _, mix = low_high(seconds=1.0)
    with pytest.raises(ConfigError, match=f"--method {method} needs the true sources"):
        Separator(NAMES, method, SHORT).separate(mix)


def test_references_of_the_wrong_shape_are_refused():
    sources, mix = low_high(seconds=1.0)
    with pytest.raises(DataFormatError, match=r"references: shape \(1, 2, 15999\)"):
        Separator(NAMES, "oracle-wiener", SHORT).separate(mix, sources[None, :, :-1])


# ------------------------------------------------------------------------------------ NMF


@pytest.mark.parametrize("method", ["nmf", "temporal-nmf"])
def test_nmf_masks_sum_to_one_and_estimates_add_up_to_the_mixture(tmp_path, two_mixtures, method):
    bases = tiny_bases(tmp_path / "bases.safetensors")
    res = Separator(NAMES, method, replace(SHORT, nmf_iterations=20), nmf_bases=bases).separate(two_mixtures)
    assert res.waveforms.shape == (2, 2, two_mixtures.shape[1]) and res.elbo is None
    assert torch.allclose(res.masks.sum(1), torch.ones_like(res.masks[:, 0]), atol=1e-5)
    # Wiener masks sum to 1, so the estimates add up to the mixture (the iSTFT is linear)
    np.testing.assert_allclose(res.waveforms.sum(1), two_mixtures, atol=1e-4)


def test_chunking_does_not_change_plain_nmf(tmp_path):
    """With fixed bases each frame's activations are fitted on their own and IS-NMF is scale
    invariant, so chunks (and their peak normalisation) change nothing up to convergence."""
    x = speech_like(3.0, seed=3) + flute_like(3.0, seed=3)
    bases = tiny_bases(tmp_path / "bases.safetensors")
    config = replace(DEFAULT, nmf_iterations=50)
    chunked = Separator(NAMES, "nmf", replace(config, chunk_frames=30, overlap_frames=6), nmf_bases=bases).separate(x)
    whole = Separator(NAMES, "nmf", replace(config, chunk_frames=400, overlap_frames=6), nmf_bases=bases).separate(x)
    for n in range(2):
        assert si_sdr(chunked.waveforms[0, n], whole.waveforms[0, n]) > 30.0


def test_nmf_bases_without_a_source_are_refused(tmp_path):
    bases = tiny_bases(tmp_path / "bases.safetensors", names=("speech", "piano"))
    with pytest.raises(ConfigError, match=r"no NMF bases for source\(s\) \['flute'\]"):
        Separator(NAMES, "nmf", SHORT, nmf_bases=bases)


# ------------------------------------------------------------------------------------ DVAE methods


@pytest.mark.parametrize(("method", "family"), [("mixdvae", "srnn"), ("deep-ar", "deep_ar"), ("dvae-init", "srnn")])
def test_dvae_methods_run_and_are_reproducible(priors, two_mixtures, method, family):
    config = _vem(DEFAULT, iterations=3)
    run = lambda: Separator(NAMES, method, config, weights=priors[family], seed=5).separate(two_mixtures)  # noqa: E731
    res, again = run(), run()
    B, L = two_mixtures.shape
    chunks = len(chunk_starts(res.masks.shape[2], 30, 6))
    assert res.waveforms.shape == (B, 2, L) and np.isfinite(res.waveforms).all()
    assert res.masks.shape == (B, 2, res.stft.shape[2], 513)
    assert (res.masks >= 0).all() and (res.masks <= 1 + 1e-6).all()
    assert torch.allclose(res.masks.sum(1), torch.ones_like(res.masks[:, 0]), atol=1e-5)
    if method == "dvae-init":
        assert res.elbo is None
    else:
        assert res.elbo.shape == (3, B * chunks) and np.isfinite(res.elbo).all()
        np.testing.assert_array_equal(res.elbo, again.elbo)
    np.testing.assert_array_equal(res.waveforms, again.waveforms)


def test_reference_preset_runs_and_its_sampling_follows_the_seed(priors, two_mixtures):
    config = _vem(REFERENCE, iterations=2)
    sep = lambda seed: Separator(NAMES, "mixdvae", config, weights=priors["srnn"], seed=seed)  # noqa: E731
    a, b, c = sep(1).separate(two_mixtures), sep(1).separate(two_mixtures), sep(2).separate(two_mixtures)
    assert np.isfinite(a.waveforms).all() and a.elbo.shape[0] == 2 and np.isfinite(a.elbo).all()
    np.testing.assert_array_equal(a.waveforms, b.waveforms)
    assert not np.array_equal(a.waveforms, c.waveforms)  # sampled z and sampled feedback


def test_batching_chunks_changes_nothing(priors, two_mixtures):
    """Chunks are independent: one chunk per VEM batch gives the batched result, ELBO included
    (each chunk's ELBO holds its own KL term only)."""
    config = _vem(DEFAULT, iterations=3)
    batched = Separator(NAMES, "mixdvae", config, weights=priors["srnn"]).separate(two_mixtures)
    single = Separator(NAMES, "mixdvae", replace(config, batch_size=1), weights=priors["srnn"]).separate(two_mixtures)
    np.testing.assert_allclose(single.waveforms, batched.waveforms, atol=1e-5)
    np.testing.assert_allclose(single.elbo, batched.elbo, rtol=1e-5)


def test_agreement_is_the_mean_si_sdr_of_one_estimate_against_the_other():
    """agreement_db against the SI-SDR of metrics.audio on the flattened real and imaginary parts;
    a scaled copy agrees perfectly, independent estimates do not agree at all."""
    g = torch.Generator().manual_seed(0)
    b = torch.randn(3, 2, 5, 7, generator=g, dtype=torch.complex64)
    a = b + 0.3 * torch.randn(3, 2, 5, 7, generator=g, dtype=torch.complex64)
    flat = lambda x: torch.view_as_real(x).flatten(2).numpy()  # noqa: E731  (B, N, 70)
    want = np.mean([[si_sdr(flat(a)[i, n], flat(b)[i, n]) for n in range(2)] for i in range(3)], axis=1)
    np.testing.assert_allclose(agreement_db(a, b).numpy(), want, atol=1e-3)
    assert (agreement_db(2.0 * b, b) > 60).all()
    noise = torch.randn(3, 2, 400, 7, generator=g, dtype=torch.complex64)
    other = torch.randn(3, 2, 400, 7, generator=g, dtype=torch.complex64)
    assert (agreement_db(noise, other) < -10.0).all()


@pytest.mark.parametrize("family", ["srnn", "deep_ar"])
def test_mixture_gate_picks_per_chunk_between_the_two_feedbacks(priors, two_mixtures, family):
    """mixture_gate_db: a gate no agreement reaches gives the plain loop's result, a gate every
    agreement passes gives the mixture-feedback loop's, and an intermediate gate mixes them per
    chunk (each chunk equals one of the two)."""
    method = "mixdvae" if family == "srnn" else "deep-ar"
    plain_cfg = _vem(DEFAULT, iterations=3, mixture_gate_db=None)
    plain_cfg = replace(plain_cfg, prior=replace(plain_cfg.prior, feedback="expected", estimate_level_db=-10.0))
    sep = lambda cfg: Separator(NAMES, method, cfg, weights=priors[family]).separate(two_mixtures)  # noqa: E731
    plain = sep(plain_cfg)
    mixfb = sep(replace(plain_cfg, prior=replace(plain_cfg.prior, feedback="mixture")))
    assert not np.allclose(plain.waveforms, mixfb.waveforms, atol=1e-4)
    np.testing.assert_allclose(sep(replace(plain_cfg, mixture_gate_db=1e6)).waveforms, plain.waveforms, atol=1e-6)
    never = sep(replace(plain_cfg, mixture_gate_db=-1e6))
    np.testing.assert_allclose(never.waveforms, mixfb.waveforms, atol=1e-6)
    np.testing.assert_allclose(never.elbo, mixfb.elbo, rtol=1e-6)


@pytest.mark.parametrize("family", ["srnn", "deep_ar"])
def test_init_blend_mixes_the_vem_estimate_with_the_first_reading(priors, two_mixtures, family):
    """init_blend b: (1 - b) x the VEM's estimate + b x the dvae-init estimate (Wiener gains of the
    priors' first reading), in the waveforms and the masks; b = 1 is dvae-init itself."""
    method = "mixdvae" if family == "srnn" else "deep-ar"
    cfg = _vem(DEFAULT, iterations=3)
    sep = lambda m, c: Separator(NAMES, m, c, weights=priors[family]).separate(two_mixtures)  # noqa: E731
    vem, init = sep(method, replace(cfg, init_blend=0.0)), sep(method, replace(cfg, init_blend=1.0))
    assert not np.allclose(vem.waveforms, init.waveforms, atol=1e-3)
    if family == "srnn":  # the dvae-init method is the SRNN priors' first reading (Deep AR has none of its own)
        np.testing.assert_allclose(init.waveforms, sep("dvae-init", cfg).waveforms, atol=1e-6)
    for b in (0.3, 0.5):
        mixed = sep(method, replace(cfg, init_blend=b))
        np.testing.assert_allclose(mixed.waveforms, (1 - b) * vem.waveforms + b * init.waveforms, atol=1e-5)
        torch.testing.assert_close(mixed.masks, (1 - b) * vem.masks + b * init.masks, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(mixed.masks.sum(1), torch.ones_like(mixed.masks[:, 0]), atol=1e-5, rtol=0)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="init_blend"):
            replace(DEFAULT, init_blend=bad)


def test_mixture_gate_must_be_finite():
    with pytest.raises(ConfigError, match="mixture_gate_db"):
        replace(DEFAULT, mixture_gate_db=float("nan"))


# ------------------------------------------------------------------------------------ bad input


def test_unknown_method_is_refused():
    with pytest.raises(ConfigError, match="--method: 'magic' is not a separation method"):
        Separator(NAMES, "magic")


@pytest.mark.parametrize("names", [("speech", "speech"), ()])
def test_duplicate_or_no_names_are_refused(names):
    with pytest.raises(ConfigError, match="expected distinct source names"):
        Separator(names, "mixture")


def test_wrong_number_of_weights_is_refused(priors):
    with pytest.raises(ConfigError, match=r"--weights: 1 checkpoint\(s\) for 2 sources"):
        Separator(NAMES, "mixdvae", SHORT, weights=priors["srnn"][:1])


def test_a_source_without_a_shipped_prior_is_refused():
    with pytest.raises(ConfigError, match="no shipped 'srnn' prior for source 'nobody'"):
        Separator(("nobody", "flute"), "mixdvae")


def test_a_box_checkpoint_cannot_be_a_spectral_prior(tmp_path):
    box = tiny_checkpoint(tmp_path / "box", "srnn", head="gaussian", x_dim=4)
    spec = tiny_checkpoint(tmp_path / "spec", "srnn")
    with pytest.raises(ConfigError, match=r"box\.safetensors: a 'gaussian'-head prior.*'complex_variance'"):
        Separator(NAMES, "mixdvae", SHORT, weights=[box, spec])


def test_nan_in_the_mixture_is_refused():
    x = speech_like(1.0)
    x[100] = np.nan
    with pytest.raises(DataFormatError, match="NaN or inf"):
        Separator(NAMES, "mixture", SHORT).separate(x)


@pytest.mark.parametrize("shape", [(1023,), (2, 500), (1, 2, 4000)])
def test_too_short_or_misshapen_mixtures_are_refused(shape):
    x = np.ones(shape, dtype=np.float32)
    with pytest.raises(DataFormatError, match=r"mixture: expected \(B, L >= 1024\) samples"):
        Separator(NAMES, "mixture", SHORT).separate(x)


@pytest.mark.parametrize("method", ["mixdvae", "deep-ar", "dvae-init", "nmf", "temporal-nmf", "oracle-ibm", "oracle-wiener"])
def test_every_method_separates_on_the_accelerator_as_on_the_cpu(accelerator, method):
    """The shipped priors and bases on ``accelerator``, on the bundled demo mixtures: finite
    waveforms of the input's length, SI-SDR within 0.3 dB of the CPU's (VEM methods draw z from
    the device's generator: close, not equal), within 0.01 dB for deterministic methods."""
    from mixdvae.data.mixtures import load_mixtures
    from mixdvae.demo import asset

    demo = load_mixtures(asset("speech_flute_demo.npz"))
    mix, refs = demo.mixture, demo.sources
    scores = {}
    for device in ("cpu", accelerator):
        res = Separator(NAMES, method, device=device).separate(mix, refs if method.startswith("oracle") else None)
        assert res.waveforms.shape == refs.shape and np.isfinite(res.waveforms).all()
        scores[device] = np.asarray(si_sdr(res.waveforms, refs))
    tol = 0.3 if method in ("mixdvae", "deep-ar", "dvae-init") else 0.01
    assert np.abs(scores[accelerator] - scores["cpu"]).max() < tol, scores


def test_mixture_gate_with_an_elbo_stop_pads_the_shorter_history(priors):
    """With vem.tol the two loops of the gate can stop at different iterations (21 and 20 here):
    each chunk's ELBO history is that of its loop, the shorter one repeating its last row."""
    from mixdvae.data.audio import stft
    from mixdvae.inference.spectral_prior import DVAESpectralPrior

    mix = np.stack([speech_like(1.5, seed=i) + flute_like(1.5, seed=i) for i in range(4)])
    X = stft(torch.as_tensor(mix, dtype=torch.float32))[:, :30]
    X = X / X.abs().amax(dim=(1, 2), keepdim=True)
    cfg = replace(DEFAULT, chunk_frames=30, overlap_frames=6, mixture_gate_db=0.0,
                  vem=replace(DEFAULT.vem, iterations=40, tol=0.003, min_iterations=2),
                  prior=replace(DEFAULT.prior, feedback="expected", mixture_levels_db=(0.0,), estimate_level_db=0.0), init_blend=0.0)
    sep = Separator(NAMES, "mixdvae", cfg, weights=priors["srnn"])
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    plain = sep._vem_estimates(X, sep.prior, gen())
    mixfb = sep._vem_estimates(X, DVAESpectralPrior(sep.prior.models, replace(sep.prior.options, feedback="mixture")), gen())
    assert len(plain[2]) != len(mixfb[2])  # the case this test is about
    est, _, elbo = sep.separate_chunks(X, None, gen())
    assert len(elbo) == max(len(plain[2]), len(mixfb[2]))
    for b in range(len(X)):
        src = mixfb if torch.allclose(est[b], mixfb[0][b]) else plain
        assert torch.allclose(est[b], src[0][b])
        h = src[2][:, b]
        torch.testing.assert_close(elbo[:len(h), b], h)
        assert (elbo[len(h):, b] == h[-1]).all()
