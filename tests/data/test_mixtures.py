"""Speech + music mixtures: recipe properties, reproducibility, file format and its validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixdvae.data.audio import SAMPLE_RATE, frames_to_samples, read_audio
from mixdvae.data.mixtures import (
    MIXTURE_PEAK,
    Mixtures,
    is_active,
    load_estimates,
    load_mixtures,
    make_mixtures,
    save_estimates,
    save_mixtures,
)
from mixdvae.errors import ConfigError, DataFormatError

T = 20
L = frames_to_samples(T)


def voiced(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Speech-like test signal: harmonics of f0 with a syllable-rate envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 8))
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * 3.0 * t)
    return (0.2 * x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def make_audio_dirs(root: Path) -> tuple[Path, Path]:
    """speech/: two voiced files (one with 0.6 s of leading silence) and a too-short file; music/: two tones."""
    speech, music = root / "speech", root / "music"
    (speech / "spk").mkdir(parents=True)
    music.mkdir()
    sf.write(speech / "a.flac", voiced(1.5, 140.0, 0), SAMPLE_RATE, subtype="PCM_16")
    b = voiced(1.6, 210.0, 1)
    b[: int(0.6 * SAMPLE_RATE)] = 0.0
    sf.write(speech / "spk" / "b.wav", b, SAMPLE_RATE, subtype="PCM_16")
    sf.write(speech / "short.wav", voiced(0.2, 100.0, 2), SAMPLE_RATE, subtype="PCM_16")
    t = np.arange(int(1.2 * SAMPLE_RATE)) / SAMPLE_RATE
    for i, f in enumerate((523.0, 660.0)):
        tone = 0.03 * np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * 5 * t))
        sf.write(music / f"flute{i}.flac", tone.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    return speech, music


@pytest.fixture
def dirs(tmp_path):
    return make_audio_dirs(tmp_path)


def test_recipe_properties(dirs):
    speech, music = dirs
    mix = make_mixtures(speech, music, [-5.0, 5.0], T, num=6, seed=3)
    assert len(mix) == 12 and mix.mixture.shape == (12, L) and mix.sources.shape == (12, 2, L)
    assert mix.source_names == ["speech", "flute"] and mix.length_frames == T and mix.seed == 3
    assert mix.mixture.dtype == np.float32 and mix.sources.dtype == np.float32
    np.testing.assert_array_equal(mix.mixture, mix.sources.sum(axis=1, dtype=np.float32))
    np.testing.assert_allclose(np.abs(mix.mixture).max(axis=1), MIXTURE_PEAK, rtol=1e-6)
    # Ratio-major: the same 6 pairs at -5 dB, then at +5 dB.
    np.testing.assert_array_equal(mix.ratio_db, [-5.0] * 6 + [5.0] * 6)
    np.testing.assert_array_equal(mix.files[:6], mix.files[6:])
    np.testing.assert_array_equal(mix.offsets[:6], mix.offsets[6:])
    rms = np.sqrt(np.mean(mix.sources.astype(np.float64) ** 2, axis=-1))  # (M, N)
    np.testing.assert_allclose(20 * np.log10(rms[:, 0] / rms[:, 1]), mix.ratio_db, atol=0.01)
    assert set(mix.files[:, 0]) <= {"a.flac", "spk/b.wav"}  # short.wav can hold no segment
    assert set(mix.files[:, 1]) <= {"flute0.flac", "flute1.flac"}
    for i in range(len(mix)):
        for n, root in enumerate((speech, music)):
            assert is_active(mix.sources[i, n])
            # The source is a scaled copy of its file's segment at the recorded offset.
            seg = read_audio(root / mix.files[i, n])[mix.offsets[i, n] : mix.offsets[i, n] + L].astype(np.float64)
            src = mix.sources[i, n].astype(np.float64)
            gain = src @ seg / (seg @ seg)
            assert gain > 0 and np.abs(gain * seg - src).max() < 1e-5
    b_offsets = mix.offsets[:, 0][mix.files[:, 0] == "spk/b.wav"]
    assert (b_offsets >= int(0.6 * SAMPLE_RATE) - 256).all()  # never starts in the silence


def test_reproducible_per_seed(dirs):
    a = make_mixtures(*dirs, [0.0], T, num=4, seed=11)
    b = make_mixtures(*dirs, [0.0], T, num=4, seed=11)
    c = make_mixtures(*dirs, [0.0], T, num=4, seed=12)
    np.testing.assert_array_equal(a.mixture, b.mixture)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert not np.array_equal(a.offsets, c.offsets)
    # One ratio or several: the same pairs.
    d = make_mixtures(*dirs, [0.0, -10.0], T, num=4, seed=11)
    np.testing.assert_array_equal(d.offsets[:4], a.offsets)
    np.testing.assert_array_equal(d.mixture[:4], a.mixture)


def test_is_active():
    x = np.ones(10 * 256)
    assert is_active(x)
    y = x.copy()
    y[:256] = 0.0
    assert not is_active(y)  # silent first frame
    z = x.copy()
    z[256 * 2 : 256 * 5] = 1e-3  # 3 of 10 frames at -60 dB
    assert not is_active(z)
    z[256 * 2 : 256 * 3] = 1.0  # 2 of 10
    assert is_active(z)
    assert not is_active(np.zeros(2560))


def test_no_active_segment_raises(tmp_path, dirs):
    clicks = tmp_path / "clicks"
    clicks.mkdir()
    x = np.zeros(SAMPLE_RATE, dtype=np.float32)
    x[::4000] = 0.5
    sf.write(clicks / "c.wav", x, SAMPLE_RATE)
    with pytest.raises(DataFormatError, match=r"clicks: no active segment of 4864 samples found in 20 draws"):
        make_mixtures(dirs[0], clicks, [0.0], T, num=1, seed=0, max_attempts=20)


def test_too_short_and_missing_dirs_raise(tmp_path, dirs):
    with pytest.raises(DataFormatError, match="no audio file holds a segment of 50944 samples"):
        make_mixtures(*dirs, [0.0], 200, num=1, seed=0)
    with pytest.raises(DataFormatError, match="nowhere: no such folder or manifest"):
        make_mixtures(tmp_path / "nowhere", dirs[1], [0.0], T, num=1, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num": 0}, "num = 0: must be an integer >= 1"),
        ({"length_frames": 3}, "length = 3: must be an integer >= 5 frames"),
        ({"ratios_db": []}, "give at least one"),
        ({"ratios_db": [float("nan")]}, "ratio_db = nan: must be finite"),
        ({"names": ("speech", "speech")}, "two distinct non-empty names"),
    ],
)
def test_bad_recipe_values(dirs, kwargs, message):
    args = {"ratios_db": [0.0], "length_frames": T, "num": 2, "seed": 0, **kwargs}
    with pytest.raises(ConfigError, match=message):
        make_mixtures(*dirs, **args)


def test_save_load_round_trip(tmp_path, dirs):
    mix = make_mixtures(*dirs, [-5.0], T, num=3, seed=0, names=("voice", "music"))
    path = save_mixtures(tmp_path / "m.npz", mix)
    back = load_mixtures(path)
    for field in ("mixture", "sources", "ratio_db", "files", "offsets"):
        np.testing.assert_array_equal(getattr(back, field), getattr(mix, field))
    assert back.source_names == ["voice", "music"]
    assert (back.sample_rate, back.length_frames, back.seed) == (SAMPLE_RATE, T, 0)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(
            ["mixture", "sources", "source_names", "sample_rate", "length_frames", "ratio_db", "files", "offsets", "seed"]
        )
        assert data["files"].dtype.kind == "U" and data["offsets"].dtype == np.int64


def _arrays(mix: Mixtures) -> dict[str, np.ndarray]:
    return {
        "mixture": mix.mixture, "sources": mix.sources, "source_names": np.array(mix.source_names),
        "sample_rate": np.int64(mix.sample_rate), "length_frames": np.int64(mix.length_frames),
        "ratio_db": mix.ratio_db, "files": mix.files, "offsets": mix.offsets, "seed": np.int64(mix.seed),
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("offsets"), "missing key 'offsets'"),
        (lambda a: a.update(sources=a["sources"][:, :, :-1]), "'sources' has shape (2, 2, 4863)"),
        (lambda a: a.update(length_frames=np.int64(21)), "'length_frames' is 21 but mixtures hold 4864 samples"),
        (lambda a: a.update(ratio_db=a["ratio_db"][:1]), "'ratio_db' has shape (1,)"),
        (lambda a: a.update(source_names=np.array(["speech"])), "'source_names' has shape (1,)"),
        (lambda a: a["mixture"].__setitem__((1, 7), np.nan), "'mixture' holds non-finite values (mixture 1)"),
        (lambda a: a["mixture"].__setitem__((0, 7), 5.0), "'mixture' 0 differs from the sum of its 'sources'"),
        (lambda a: a.update(files=a["files"][:, :1]), "'files' has shape (2, 1)"),
    ],
)
def test_load_rejects_bad_files_with_one_line(tmp_path, dirs, change, message):
    arrays = _arrays(make_mixtures(*dirs, [0.0], T, num=2, seed=0))
    arrays = {k: np.array(v) for k, v in arrays.items()}
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataFormatError) as info:
        load_mixtures(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and len(text.splitlines()) == 1


def test_load_missing_and_non_npz(tmp_path):
    with pytest.raises(DataFormatError, match="mixtures file not found"):
        load_mixtures(tmp_path / "none.npz")
    (tmp_path / "t.npz").write_text("hello")
    with pytest.raises(DataFormatError, match=r"t\.npz: not a valid \.npz file \("):
        load_mixtures(tmp_path / "t.npz")


def test_estimates_round_trip_and_validation(tmp_path):
    est = np.random.default_rng(0).standard_normal((3, 2, 100)).astype(np.float32)
    save_estimates(tmp_path / "e.npz", est, ["speech", "flute"], method="nmf")
    back = load_estimates(tmp_path / "e.npz")
    np.testing.assert_array_equal(back.estimates, est)
    assert back.source_names == ["speech", "flute"] and back.method == "nmf"
    save_estimates(tmp_path / "f.npz", est, ["speech", "flute"])
    assert load_estimates(tmp_path / "f.npz").method is None
    np.savez(tmp_path / "g.npz", estimates=est, source_names=np.array(["speech"]))
    with pytest.raises(DataFormatError, match=r"g.npz: 'source_names' has shape \(1,\)"):
        load_estimates(tmp_path / "g.npz")
    np.savez(tmp_path / "h.npz", estimates=est)
    with pytest.raises(DataFormatError, match=r"h\.npz: missing key 'source_names' \(found: estimates\)$"):
        load_estimates(tmp_path / "h.npz")


def test_real_speech_and_flute(shared_data):
    audio = shared_data / "audio"
    mix = make_mixtures(audio / "speech" / "cmu_arctic", audio / "music" / "medley_solos_db" / "flute", [-5.0], 50, num=2, seed=0)
    assert mix.mixture.shape == (2, 12544)
    assert all(is_active(mix.sources[i, n]) for i in range(2) for n in range(2))
