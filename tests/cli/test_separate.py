"""``mixdvae separate`` end to end: a wav in, one wav per source + a figure + a summary out; a mixtures
file in, an estimates file out that ``mixdvae evaluate separation`` scores; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from separation._tiny import SR, flute_like, speech_like, tiny_bases, tiny_priors, write_wav

from mixdvae.cli.main import main
from mixdvae.data.mixtures import load_estimates, make_mixtures, save_mixtures

FAST = ["--device", "cpu", "--no-progress", "--seed", "1"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Tiny priors and bases, a 2 s 16 kHz mixture wav, and a mixtures file made from synthetic audio."""
    root = tmp_path_factory.mktemp("separate")
    speech_w, flute_w = tiny_priors(root)
    bases = tiny_bases(root / "bases.safetensors")
    mix_wav = write_wav(root / "mix.wav", speech_like(2.0) + flute_like(2.0))
    for i in range(2):
        write_wav(root / "speech" / f"s{i}.wav", speech_like(2.0, seed=i))
        write_wav(root / "music" / f"f{i}.wav", flute_like(2.0, seed=i))
    mixtures = make_mixtures(root / "speech", root / "music", ratios_db=[0.0], length_frames=60, num=2, seed=0)
    save_mixtures(root / "mixtures.npz", mixtures)
    return {"root": root, "speech": speech_w, "flute": flute_w, "bases": bases, "wav": mix_wav,
            "npz": root / "mixtures.npz"}


def _weights(assets):
    return ["--weights", f"speech={assets['speech']}", "--weights", f"flute={assets['flute']}"]


def test_separates_a_wav_into_one_file_per_source(assets, tmp_path, capsys):
    out = tmp_path / "sep"
    code = main(["separate", str(assets["wav"]), "--out", str(out), *_weights(assets), "--iterations", "2", *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    length = sf.info(str(assets["wav"])).frames
    for name in ("speech", "flute"):
        info = sf.info(str(out / f"{name}.wav"))
        assert info.samplerate == SR and info.frames == length and info.channels == 1
        assert np.isfinite(sf.read(str(out / f"{name}.wav"))[0]).all()
    assert (out / "spectrograms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "mixdvae" and summary["preset"] == "default"
    assert summary["sources"] == ["speech", "flute"] and summary["samples"] == length and summary["sample_rate"] == SR
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"separated {assets['wav']} (2.00 s) into speech, flute with mixdvae [default] in ")
    assert lines[1:] == [f"wrote {out / name}" for name in ("speech.wav", "flute.wav", "spectrograms.png")]


def test_a_48k_stereo_wav_is_separated_and_written_back_at_48k(assets, tmp_path, capsys):
    t = np.arange(2 * 48000) / 48000
    left = 0.3 * np.sin(2 * np.pi * 220 * t)
    right = 0.3 * np.sin(2 * np.pi * 1500 * t)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1).astype(np.float32), 48000, subtype="PCM_16")
    out = tmp_path / "sep"
    code = main(["separate", str(path), "--out", str(out), *_weights(assets), "--iterations", "2", "--preset",
                 "reference", *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for name in ("speech", "flute"):
        info = sf.info(str(out / f"{name}.wav"))
        assert info.samplerate == 48000 and info.channels == 1 and info.frames == 2 * 48000
    assert json.loads((out / "summary.json").read_text())["preset"] == "reference"
    # the 220 Hz left channel and the 1.5 kHz right one are both in the mono estimates' sum
    total = sum(sf.read(str(out / f"{n}.wav"))[0] for n in ("speech", "flute"))
    spectrum = np.abs(np.fft.rfft(total))
    freqs = np.fft.rfftfreq(len(total), 1 / 48000)
    for f in (220, 1500):
        assert spectrum[np.argmin(np.abs(freqs - f))] > 10 * np.median(spectrum)


def _separate_and_score(assets, tmp_path, method, *extra):
    est, scores = tmp_path / f"{method}.npz", tmp_path / f"{method}.json"
    assert main(["separate", str(assets["npz"]), "--method", method, "--out", str(est), *extra, *FAST]) == 0
    assert main(["evaluate", "separation", str(est), "--mixtures", str(assets["npz"]), "--json", str(scores),
                 "--metrics", "rmse,si_sdr", "--no-progress"]) == 0
    return load_estimates(est), json.loads(scores.read_text())


def test_mixtures_file_in_estimates_out_and_the_oracle_beats_the_mixture(assets, tmp_path, capsys):
    oracle, oracle_scores = _separate_and_score(assets, tmp_path, "oracle-ibm")
    mixture, mixture_scores = _separate_and_score(assets, tmp_path, "mixture")
    captured = capsys.readouterr()
    assert "separated 2 mixtures into speech, flute with oracle-ibm [default]" in captured.out
    assert oracle.estimates.shape == (2, 2, 59 * 256) and oracle.source_names == ["speech", "flute"]
    assert oracle.method == "oracle-ibm" and mixture.method == "mixture"
    for name in ("speech", "flute"):
        assert oracle_scores["overall"][name]["si_sdr"] > mixture_scores["overall"][name]["si_sdr"] + 5.0


def test_nmf_with_a_bases_file(assets, tmp_path, capsys):
    est = tmp_path / "nmf.npz"
    code = main(["separate", str(assets["npz"]), "--method", "nmf", "--nmf-bases", str(assets["bases"]),
                 "--out", str(est), *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = load_estimates(est)
    assert result.method == "nmf" and result.estimates.shape == (2, 2, 59 * 256)
    assert np.isfinite(result.estimates).all()
    with np.load(est) as archive:
        assert "elbo" not in archive.files and str(archive["preset"]) == "default"


def test_a_vem_method_on_a_mixtures_file_stores_the_elbo(assets, tmp_path, capsys):
    est = tmp_path / "vem.npz"
    code = main(["separate", str(assets["npz"]), "--out", str(est), *_weights(assets), "--iterations", "2",
                 "--length", "30", *FAST])
    assert code == 0, capsys.readouterr().err
    with np.load(est) as archive:
        assert archive["elbo"].shape[0] == 2 and np.isfinite(archive["elbo"]).all()
        assert archive["estimates"].shape == (2, 2, 59 * 256)


@pytest.mark.parametrize(("method", "family"), [("mixdvae", "srnn"), ("dvae-init", "srnn"), ("deep-ar", "deep_ar")])
def test_a_source_without_weights_takes_its_shipped_prior(method, family):
    import argparse

    from mixdvae.cli.separate import _weights
    from mixdvae.dvae.weights import shipped_weights
    from mixdvae.errors import ConfigError

    args = argparse.Namespace(weights=["flute=my_flute.safetensors"], method=method)
    assert _weights(args, ["speech", "flute"]) == [shipped_weights(f"speech_{family}"), Path("my_flute.safetensors")]
    assert _weights(argparse.Namespace(weights=None, method=method), ["speech", "flute"]) is None
    with pytest.raises(ConfigError, match=rf"^no shipped '{family}' prior for source 'piano' \(piano_{family}.safetensors\); "
                                          r"pass --weights piano=PATH$"):
        _weights(argparse.Namespace(weights=["speech=s.safetensors"], method=method), ["speech", "piano"])


def test_save_masks_keeps_the_stitched_masks(assets, tmp_path, capsys):
    """--save-masks keeps (M, N, T, F) masks over whole mixtures (chunks of 30 frames stitched back): with the
    oracle IBM they are the ideal binary mask of the references' STFTs; without the flag nothing is kept."""
    import torch

    from mixdvae.baselines.oracle import ideal_binary_mask
    from mixdvae.data.audio import stft
    from mixdvae.data.mixtures import load_mixtures

    est = tmp_path / "ibm.npz"
    code = main(["separate", str(assets["npz"]), "--method", "oracle-ibm", "--out", str(est), "--length", "30",
                 "--save-masks", *FAST])
    assert code == 0, capsys.readouterr().err
    refs = torch.from_numpy(load_mixtures(assets["npz"]).sources)  # (M, N, L)
    expected = ideal_binary_mask(stft(refs.flatten(0, 1)).unflatten(0, refs.shape[:2])).numpy()  # (M, N, T, F)
    with np.load(est) as archive:
        masks = archive["masks"]
    assert masks.dtype == np.float16 and masks.shape == expected.shape == (2, 2, 60, 513)
    np.testing.assert_array_equal(masks.astype(np.float32), expected)
    plain = tmp_path / "plain.npz"
    assert main(["separate", str(assets["npz"]), "--method", "oracle-ibm", "--out", str(plain), *FAST]) == 0
    with np.load(plain) as archive:
        assert "masks" not in archive.files


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "missing.wav: audio file not found"),
        ("text", "notes.txt: not a readable audio file"),
        ("weights", "missing.safetensors: weights not found"),
        ("oracle", "--method oracle-ibm needs the true sources"),
        ("no-equals", "--weights speech: expected NAME=PATH"),
        ("unknown-source", "'piano' is not one of the sources"),
        ("priors", "--priors a,b: the mixtures file holds sources ['speech', 'flute']"),
    ],
)
def test_bad_input_exits_2_with_one_line(assets, tmp_path, capsys, case, message):
    wav, weights = str(assets["wav"]), _weights(assets)
    args = [wav, "--out", str(tmp_path / "out"), *weights]
    if case == "missing":
        args[0] = str(tmp_path / "missing.wav")
    elif case == "text":
        (tmp_path / "notes.txt").write_text("not audio\n")
        args[0] = str(tmp_path / "notes.txt")
    elif case == "weights":
        args = [wav, "--out", str(tmp_path / "out"), weights[0], weights[1], "--weights",
                f"flute={tmp_path / 'missing.safetensors'}"]
    elif case == "oracle":
        args = [wav, "--out", str(tmp_path / "out"), "--method", "oracle-ibm"]
    elif case == "no-equals":
        args = [wav, "--out", str(tmp_path / "out"), "--weights", "speech"]
    elif case == "unknown-source":
        args = [*args, "--weights", f"piano={assets['speech']}"]
    elif case == "priors":
        args = [str(assets["npz"]), "--out", str(tmp_path / "e.npz"), "--method", "mixture", "--priors", "a,b"]
    code = main(["separate", *args, "--iterations", "1", *FAST])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and captured.err.startswith("mixdvae: error: ")
    assert message in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "out").exists()
