"""``mixdvae data spectra`` end to end, and ``mixdvae train`` on the spectra file it writes."""

from __future__ import annotations

import numpy as np
import pytest
from separation._tiny import TINY_LAYERS, flute_like, speech_like, write_wav

from mixdvae.cli.main import main
from mixdvae.data.spectra import load_spectra, save_spectra
from mixdvae.dvae.checkpoint import read_card
from mixdvae.dvae.weights import load_weights

LENGTH = 20


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Three 2 s clips (one at 48 kHz, resampled) in nested folders."""
    root = tmp_path_factory.mktemp("audio")
    write_wav(root / "a" / "s0.wav", speech_like(2.0, seed=0))
    write_wav(root / "a" / "b" / "f0.wav", flute_like(2.0, seed=0))
    x48 = np.repeat(flute_like(2.0, seed=1), 3)  # a 48 kHz rendering of the same length in seconds
    write_wav(root / "f1.wav", x48, sample_rate=48000)
    return root


def _spectra(audio, out, *extra):
    return main(["data", "spectra", "--audio", str(audio), "--length", str(LENGTH), "--out", str(out),
                 "--no-progress", *extra])


@pytest.fixture(scope="module")
def spectra(audio, tmp_path_factory):
    """The same sequences without gains, with gains U[-10, 0] dB (seed 1), again with seed 1, and with seed 2."""
    folder = tmp_path_factory.mktemp("spectra")
    runs = {"flat": ("0", "0", "1"), "gain": ("-10", "0", "1"), "again": ("-10", "0", "1"), "other": ("-10", "0", "2")}
    for name, (low, high, seed) in runs.items():
        assert _spectra(audio, folder / f"{name}.npz", "--gain-db", low, high, "--seed", seed) == 0
    return {name: load_spectra(folder / f"{name}.npz") for name in runs} | {"folder": folder}


def test_writes_sequences_of_the_requested_length(spectra, audio, capsys):
    power, meta = spectra["gain"]
    S = power.shape[0]
    # 2 s = 32000 samples; segments of 19 * 256 samples every 19 frames: 6 per file, 3 files
    assert power.shape == (S, LENGTH, 513) and S == 18
    assert power.dtype == np.float32 and np.isfinite(power).all() and (power >= 0).all()
    assert meta["length"] == LENGTH and meta["gain_db"] == [-10.0, 0.0] and meta["seed"] == 1 and meta["num"] == S
    assert meta["files"] == 3 and meta["sources"] == [str(audio)]


def test_same_seed_same_file_other_seed_other_gains(spectra):
    np.testing.assert_array_equal(spectra["gain"][0], spectra["again"][0])
    assert not np.array_equal(spectra["gain"][0], spectra["other"][0])


def test_gains_scale_each_sequence_within_the_range(spectra):
    flat, gained = spectra["flat"][0], spectra["gain"][0]
    assert flat.shape == gained.shape
    active = flat > 1e-6 * flat.max()
    ratio = np.where(active, gained / np.where(active, flat, 1.0), np.nan)  # (S, T, F)
    per_sequence = np.nanmedian(ratio, axis=(1, 2))  # one gain per sequence
    assert (per_sequence >= 0.1 * (1 - 1e-4)).all() and (per_sequence <= 1 + 1e-4).all()
    assert per_sequence.std() > 0.05  # not one gain for all
    # one gain for every bin of a sequence
    spread = np.nanmax(np.abs(ratio / per_sequence[:, None, None] - 1), axis=(1, 2))
    assert (spread < 1e-3).all()


def test_prints_one_summary_line(audio, tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert _spectra(audio, out, "--max-sequences", "5") == 0
    captured = capsys.readouterr()
    assert captured.out == f"wrote 5 sequences of {LENGTH} frames x 513 bins from 3 files to {out}\n"
    assert load_spectra(out)[0].shape == (5, LENGTH, 513)


def test_reverb_adds_reverberant_copies_recorded_in_meta(audio, spectra, tmp_path):
    """--reverb 1: the dry sequences of the first file, then its reverberant ones (more, for the
    tail), ...; the rooms are in the card's meta; bad ranges are one-line errors."""
    out = tmp_path / "rev.npz"
    assert _spectra(audio, out, "--gain-db", "0", "0", "--seed", "1", "--reverb", "1", "--reverb-rt60", "0.4", "0.6") == 0
    power, meta = load_spectra(out)
    flat = spectra["flat"][0]
    assert meta["reverb_copies"] == 1 and meta["reverb_rt60"] == [0.4, 0.6] and meta["reverb_wet_db"] == [-9.0, 0.0]
    assert power.shape[0] > 2 * flat.shape[0]
    np.testing.assert_array_equal(power[:6], flat[:6])  # the first file, dry
    assert not np.allclose(power[6:12], flat[:6])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("reverb-range", "reverberation range 2.0 1.0: expected LOW <= HIGH"),
        ("gain-order", "--gain-db 0.0 -10.0: expected two finite numbers LOW <= HIGH"),
        ("missing", "nowhere: no such folder or manifest"),
        ("too-short", "no active segment of 400 frames"),
    ],
)
def test_bad_input_exits_2_with_one_line(audio, tmp_path, capsys, case, message):
    out = tmp_path / "s.npz"
    if case == "gain-order":
        code = _spectra(audio, out, "--gain-db", "0", "-10")
    elif case == "reverb-range":
        code = _spectra(audio, out, "--reverb", "1", "--reverb-rt60", "2", "1")
    elif case == "missing":
        code = main(["data", "spectra", "--audio", str(tmp_path / "nowhere"), "--out", str(out), "--no-progress"])
    else:
        # the 16 kHz clips only: the 48 kHz one would add a (correct) resampling warning on stderr
        code = main(["data", "spectra", "--audio", str(audio / "a"), "--length", "400", "--out", str(out),
                     "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and message in captured.err
    assert "Traceback" not in captured.err and not out.exists()


# ------------------------------------------------------------------------------------ training on spectra


def _tiny_toml(path, x_dim=513):
    layers = "\n".join(f"{k} = {list(v) if isinstance(v, tuple) else v}" for k, v in TINY_LAYERS.items())
    path.write_text(
        f'[model]\nfamily = "srnn"\nencoder = "backward"\nx_dim = {x_dim}\nz_dim = 2\nhead = "complex_variance"\n'
        f'input_transform = "log"\nbeta = 0.01\n{layers}\n\n[train]\nbatch_size = 8\nlr = 0.002\nseed = 3\n'
    )
    return path


def test_trains_a_spectral_srnn_from_a_spectra_file(spectra, tmp_path, capsys):
    config = _tiny_toml(tmp_path / "tiny.toml")
    data = spectra["folder"] / "gain.npz"
    out = tmp_path / "run"
    code = main(["train", "--config", str(config), "--data", str(data), "--val-fraction", "0.2", "--out", str(out),
                 "--epochs", "2", "--device", "cpu", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (out / "best.safetensors").is_file() and captured.out.startswith("best epoch ")
    card = read_card(out / "best")
    arch = card["architecture"]
    assert (arch["x_dim"], arch["head"], arch["input_transform"], arch["encoder"]) == (513, "complex_variance", "log",
                                                                                      "backward")
    assert card["data"]["train"]["num"] + card["data"]["val"]["num"] == 18 and card["data"]["val"]["num"] == 4
    assert card["data"]["train"]["meta"]["gain_db"] == [-10.0, 0.0]
    model = load_weights(out / "best.safetensors")
    assert model.x_dim == 513 and model.config.head == "complex_variance"


def test_spectra_with_the_wrong_number_of_bins_exit_2(tmp_path, capsys):
    data = tmp_path / "small.npz"
    save_spectra(data, np.ones((10, LENGTH, 100), np.float32), {"num": 10})
    out = tmp_path / "run"
    code = main(["train", "--config", str(_tiny_toml(tmp_path / "tiny.toml")), "--data", str(data),
                 "--val-fraction", "0.2", "--out", str(out), "--epochs", "1", "--device", "cpu", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert f"{data}: spectra have 100 bins per frame but the model's x_dim is 513" in captured.err
    assert not (out / "best.safetensors").exists()
