"""Audio front end: file reading and writing, STFT / iSTFT, power-spectrogram sequences."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from mixdvae.data.audio import (
    F,
    HOP,
    N_FFT,
    SAMPLE_RATE,
    frame_energy_db,
    frames_to_samples,
    istft,
    list_audio_files,
    power_sequences,
    read_audio,
    samples_to_frames,
    sine_window,
    detune,
    speed_perturb,
    synthetic_reverb,
    stft,
    write_audio,
)
from mixdvae.errors import ConfigError, DataFormatError, NumericalError


@pytest.fixture
def audio_log(caplog):
    """Capture this module's log records even if the CLI turned off propagation of 'mixdvae'."""
    logger = logging.getLogger("mixdvae.data.audio")
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield caplog
    logger.setLevel(old)
    logger.removeHandler(caplog.handler)


def tone(seconds: float, freq: float = 440.0, rate: int = SAMPLE_RATE, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# --- STFT ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_istft_inverts_stft(dtype, tol):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 12544, generator=gen, dtype=dtype)
    spec = stft(x)
    assert spec.shape == (3, 50, F) and spec.is_complex()
    assert spec.dtype == (torch.complex128 if dtype == torch.float64 else torch.complex64)
    y = istft(spec, length=x.shape[-1])
    assert y.shape == x.shape and y.dtype == dtype
    assert (y - x).abs().max().item() < tol
    # Default length (T - 1) * HOP, and 1-D input.
    assert torch.allclose(istft(stft(x[0])), x[0], atol=tol)


def test_odd_length_round_trip_and_frame_count():
    x = torch.randn(2, 5000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    spec = stft(x)
    assert spec.shape[1] == samples_to_frames(5000) == 1 + 5000 // HOP
    assert torch.allclose(istft(spec, 5000), x, atol=1e-9)


def test_frame_sample_conversions():
    assert frames_to_samples(50) == 12544
    assert samples_to_frames(frames_to_samples(50)) == 50
    assert (F, N_FFT, HOP, SAMPLE_RATE) == (513, 1024, 256, 16000)


def test_sine_window_formula_and_power_complementarity():
    w = sine_window(N_FFT, dtype=torch.float64)
    n = torch.arange(N_FFT, dtype=torch.float64)
    assert torch.allclose(w, torch.sin(math.pi * (n + 0.5) / N_FFT))
    # Princen-Bradley: w[n]^2 + w[n + N/2]^2 = 1 (perfect reconstruction at 50 % overlap and above).
    assert torch.allclose(w[:512] ** 2 + w[512:] ** 2, torch.ones(512, dtype=torch.float64))
    assert sine_window(16, dtype=torch.float32).dtype == torch.float32


def test_stft_of_a_sine_peaks_at_its_bin():
    k = 40  # 40 * 16000 / 1024 = 625 Hz
    x = torch.from_numpy(tone(0.5, freq=k * SAMPLE_RATE / N_FFT))
    power = stft(x).abs() ** 2  # (T, F)
    middle = power[4:-4]
    assert (middle.argmax(-1) == k).all()


# --- reading and writing ---------------------------------------------------------------------


def test_read_16k_mono_is_returned_as_float32(tmp_path):
    x = tone(0.2)
    sf.write(tmp_path / "a.flac", x, SAMPLE_RATE, subtype="PCM_16")
    y = read_audio(tmp_path / "a.flac")
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() < 1e-4


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (48000, 2)])
def test_other_rates_and_stereo_are_converted_with_a_warning(tmp_path, audio_log, rate, channels):
    seconds = 0.5
    x = tone(seconds, freq=300.0, rate=rate)
    data = np.stack([x, 0.5 * x], axis=1) if channels == 2 else x
    path = tmp_path / f"r{rate}.wav"
    sf.write(path, data, rate, subtype="FLOAT")
    y = read_audio(path)
    assert y.ndim == 1 and y.dtype == np.float32
    assert y.shape[0] == int(seconds * SAMPLE_RATE)
    expected = tone(seconds, freq=300.0) * (0.75 if channels == 2 else 1.0)
    # Same signal away from the edges (resampling filter transients).
    assert np.abs(y[200:-200] - expected[200:-200]).max() < 1e-2
    assert f"sample rate {rate} Hz, resampled to 16000 Hz" in audio_log.text
    assert ("2 channels, mixed down to mono" in audio_log.text) == (channels == 2)
    assert path.name in audio_log.text


def _write_bad(tmp_path, kind):
    path = tmp_path / f"bad_{kind}.wav"
    if kind == "missing":
        pass
    elif kind == "folder":  # e.g. `mixdvae separate DIR`
        path.mkdir()
    elif kind == "text":
        path.write_text("this is not audio\n")
    elif kind == "empty":
        sf.write(path, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    elif kind == "zero":
        sf.write(path, np.zeros(4000, dtype=np.float32), SAMPLE_RATE)
    elif kind == "nan":
        x = tone(0.25)
        x[100] = np.nan
        sf.write(path, x, SAMPLE_RATE, subtype="FLOAT")
    elif kind == "short":
        sf.write(path, tone(0.25)[:N_FFT - 1], SAMPLE_RATE)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "audio file not found"),
        ("folder", "a folder, not an audio file (separate one file at a time)"),
        ("text", "not a readable audio file"),
        ("empty", "empty audio file"),
        ("zero", "silent audio"),
        ("nan", "non-finite sample (NaN or inf) at sample 100"),
        ("short", "1023 samples at 16000 Hz, shorter than one STFT frame (1024)"),
    ],
)
def test_bad_files_raise_one_line_naming_the_file(tmp_path, kind, message):
    path = _write_bad(tmp_path, kind)
    with pytest.raises(DataFormatError) as info:
        read_audio(path)
    text = str(info.value)
    assert text.startswith(str(path) + ": ")
    assert message in text
    assert len(text.splitlines()) == 1


def test_clipped_audio_is_valid(tmp_path, audio_log):
    x = np.clip(4 * tone(0.2), -1.0, 1.0)
    sf.write(tmp_path / "clip.wav", x, SAMPLE_RATE, subtype="FLOAT")
    y = read_audio(tmp_path / "clip.wav")
    np.testing.assert_array_equal(y, x)
    assert "clipped" in audio_log.text


def test_write_audio_round_trip_pcm16(tmp_path):
    x = tone(0.1, amp=0.8)
    out = write_audio(tmp_path / "sub" / "o.wav", x, SAMPLE_RATE)
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.subtype, info.format) == (SAMPLE_RATE, 1, "PCM_16", "WAV")
    y, _ = sf.read(out, dtype="float32")
    assert np.abs(y - x).max() <= 1.0 / 32768 + 1e-7
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["o.wav"]  # no temporary left


def test_write_audio_scales_down_a_loud_signal_and_accepts_tensors(tmp_path):
    x = torch.from_numpy(tone(0.1, amp=2.0))
    write_audio(tmp_path / "loud.wav", x)
    y, _ = sf.read(tmp_path / "loud.wav")
    assert np.abs(y).max() == pytest.approx(1.0, abs=2e-4)
    np.testing.assert_allclose(y, x.numpy() / 2.0, atol=1e-4)


def test_write_audio_refuses_non_finite_samples(tmp_path):
    x = tone(0.1)
    x[3] = np.inf
    with pytest.raises(NumericalError, match="non-finite"):
        write_audio(tmp_path / "bad.wav", x)
    assert list(tmp_path.iterdir()) == []


# --- file lists and pretraining sequences ----------------------------------------------------


def test_list_audio_files_folder_and_manifest(tmp_path):
    for name in ("b/z.flac", "a.wav", "b/c/y.WAV", "notes.txt"):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    assert list_audio_files(tmp_path) == [tmp_path / "a.wav", tmp_path / "b/c/y.WAV", tmp_path / "b/z.flac"]
    (tmp_path / "m.csv").write_text("path,label\nb/z.flac,x\na.wav,y\n")
    assert list_audio_files(tmp_path / "m.csv") == [tmp_path / "b/z.flac", tmp_path / "a.wav"]
    (tmp_path / "bad.csv").write_text("path\nnope.flac\n")
    with pytest.raises(DataFormatError, match=r"bad.csv:2: listed file nope.flac not found"):
        list_audio_files(tmp_path / "bad.csv")
    with pytest.raises(DataFormatError, match="no such folder or manifest"):
        list_audio_files(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no audio files"):
        list_audio_files(tmp_path / "empty")


def test_frame_energy_db_is_relative_to_the_loudest_frame():
    x = np.concatenate([np.ones(256), 0.1 * np.ones(256), np.zeros(256), np.ones(10)])
    db = frame_energy_db(x)
    assert db.shape == (3,)
    np.testing.assert_allclose(db[:2], [0.0, -20.0])
    assert db[2] == -np.inf


def test_power_sequences_shapes_silence_and_normalisation(tmp_path):
    T = 20
    seg = frames_to_samples(T)  # 4864 samples
    loud = tone(3 * seg / SAMPLE_RATE, freq=500.0)  # 3 segments
    sf.write(tmp_path / "a.wav", loud, SAMPLE_RATE, subtype="FLOAT")
    # Same tone, 10x quieter, then 2 segments of silence (dropped).
    quiet = np.concatenate([0.1 * loud[:seg], np.zeros(2 * seg, dtype=np.float32)])
    sf.write(tmp_path / "b.wav", quiet, SAMPLE_RATE, subtype="FLOAT")
    files = list_audio_files(tmp_path)
    power = power_sequences(files, T)
    assert power.shape == (4, T, F) and power.dtype == np.float32
    # Segment normalisation: the 10x quieter copy gives the same power.
    np.testing.assert_allclose(power[3], power[0], rtol=1e-3, atol=1e-4)
    expected = (stft(torch.from_numpy(loud[:seg] / np.abs(loud[:seg]).max())).abs() ** 2).numpy()
    np.testing.assert_allclose(power[0], expected, rtol=1e-4, atol=1e-4)
    # Without normalisation, levels are kept.
    raw = power_sequences(files, T, normalise="none")
    assert raw[3].sum() == pytest.approx(raw[0].sum() / 100.0, rel=1e-3)
    # Overlapping hop, and an evenly spread subset.
    assert power_sequences(files[:1], T, hop_frames=(T - 1) // 2).shape[0] == 5
    capped = power_sequences(files, T, max_sequences=2)
    np.testing.assert_array_equal(capped, power[[0, 3]])
    assert power_sequences(files, 200).shape == (0, 200, F)
    with pytest.raises(ConfigError, match="length_frames = 1"):
        power_sequences(files, 1)
    with pytest.raises(ConfigError, match="normalise = 'peak'"):
        power_sequences(files, T, normalise="peak")


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.25])
def test_speed_perturbation_scales_every_frequency_and_the_duration(factor):
    """y(t) = x(factor t): a 1 kHz + 3 kHz tone comes out at factor x 1 and 3 kHz, 1 / factor as long."""
    x = (tone(1.0, freq=1000.0) + 0.5 * tone(1.0, freq=3000.0)).astype(np.float32)
    y = speed_perturb(x, factor)
    assert y.dtype == np.float32 and abs(y.shape[0] - x.shape[0] / factor) <= 1
    spectrum = np.abs(np.fft.rfft(y[1000:-1000] * np.hanning(y.shape[0] - 2000)))
    hz = np.fft.rfftfreq(y.shape[0] - 2000, 1.0 / SAMPLE_RATE)
    low = hz < 2000.0 * factor
    peaks = [hz[low][spectrum[low].argmax()], hz[~low][spectrum[~low].argmax()]]
    np.testing.assert_allclose(peaks, [1000.0 * factor, 3000.0 * factor], atol=2.0)
    assert np.abs(y).max() == pytest.approx(np.abs(x).max(), rel=0.05)  # the level is kept


def test_speed_perturbation_of_one_is_the_identity_and_bad_factors_are_refused():
    x = tone(0.2, freq=440.0)
    assert speed_perturb(x, 1.0) is x
    for bad in (0.4, 2.5, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="speed factor"):
            speed_perturb(x, bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detune_shifts_every_frequency_by_the_drawn_cents(seed):
    """Without drift, c(t) = c_0 ~ U[-50, 50] (the generator's first draw): a 1 kHz + 3 kHz tone comes
    out at 2^(c_0 / 1200) x 1 and 3 kHz, 2^(-c_0 / 1200) as long, at the same level."""
    x = (tone(2.0, freq=1000.0) + 0.5 * tone(2.0, freq=3000.0)).astype(np.float32)
    c0 = np.random.default_rng(seed).uniform(-50.0, 50.0)
    y = detune(x, 50.0, np.random.default_rng(seed), drift_cents=0.0)
    ratio = 2.0 ** (c0 / 1200.0)
    assert y.dtype == np.float32 and abs(y.shape[0] - x.shape[0] / ratio) <= 2
    n = y.shape[0] - 2000
    spectrum = np.abs(np.fft.rfft(y[1000:1000 + n] * np.hanning(n), 8 * n))
    hz = np.fft.rfftfreq(8 * n, 1.0 / SAMPLE_RATE)
    low = hz < 2000.0
    peaks = [hz[low][spectrum[low].argmax()], hz[~low][spectrum[~low].argmax()]]
    np.testing.assert_allclose(peaks, [1000.0 * ratio, 3000.0 * ratio], atol=0.5)
    rms = lambda a: float(np.sqrt(np.mean(a[1000:-1000].astype(np.float64) ** 2)))  # noqa: E731
    assert rms(y) == pytest.approx(rms(x), rel=0.01)  # the level is kept


def test_detune_drift_moves_the_pitch_slowly_and_zero_is_the_identity():
    """With a drift the instantaneous frequency of a 2 kHz tone wanders (different in the first and the
    last half second) within the bound; cents = 0 and no drift returns the signal; bad values are refused."""
    x = tone(3.0, freq=2000.0)
    np.testing.assert_array_equal(detune(x, 0.0, np.random.default_rng(0), drift_cents=0.0), x)
    y = detune(x, 20.0, np.random.default_rng(4), drift_cents=20.0)

    def pitch(seg):
        spec = np.abs(np.fft.rfft(seg * np.hanning(seg.shape[0]), 16 * seg.shape[0]))
        return np.fft.rfftfreq(16 * seg.shape[0], 1.0 / SAMPLE_RATE)[spec.argmax()]

    first, last = pitch(y[:4000]), pitch(y[-4000:])
    cents = 1200 * np.log2(np.array([first, last]) / 2000.0)
    assert np.all(np.abs(cents) < 20 + 4 * 20) and abs(cents[0] - cents[1]) > 1.0
    for bad in (-1.0, 700.0, float("nan")):
        with pytest.raises(ConfigError, match="cents"):
            detune(x, bad, np.random.default_rng(0))


def test_power_sequences_detune_keeps_the_rooms_and_moves_the_pitch(tmp_path):
    """detune_cents > 0: the same number of sequences, the 800 Hz peak moved off bin 51.2 by the drawn
    amount; detune_cents = 0 gives exactly the plain sequences."""
    T = 20
    seg = frames_to_samples(T)
    sf.write(tmp_path / "a.wav", tone(10 * seg / SAMPLE_RATE, freq=800.0), SAMPLE_RATE, subtype="FLOAT")
    files = list_audio_files(tmp_path)
    plain = power_sequences(files, T, reverb_copies=1, seed=3)
    np.testing.assert_array_equal(power_sequences(files, T, reverb_copies=1, seed=3, detune_cents=0.0), plain)
    moved = power_sequences(files, T, reverb_copies=1, seed=3, detune_cents=50.0)
    assert abs(moved.shape[0] - plain.shape[0]) <= 2 and not np.allclose(moved[0], plain[0])
    bins = np.arange(plain.shape[-1])
    centroid = lambda p: float((p.mean(0) * bins).sum() / p.mean(0).sum())  # noqa: E731
    assert abs(centroid(moved[0]) - centroid(plain[0])) < 51.2 * (2 ** (60 / 1200) - 1) + 0.5
    with pytest.raises(ConfigError, match="cents"):
        power_sequences(files, T, detune_cents=-5.0)


def test_power_sequences_cut_every_speed_of_every_file(tmp_path):
    """speeds (0.9, 1, 1.1): the factor-1 sequences are the plain ones, in file-then-speed order,
    and the others are those of the resampled clip."""
    T = 20
    seg = frames_to_samples(T)
    for name, freq in (("a", 500.0), ("b", 800.0)):
        sf.write(tmp_path / f"{name}.wav", tone(10 * seg / SAMPLE_RATE, freq=freq), SAMPLE_RATE, subtype="FLOAT")
    files = list_audio_files(tmp_path)
    plain = power_sequences(files, T)
    both = power_sequences(files, T, speeds=(0.9, 1.0, 1.1))
    # slower speeds give longer clips, hence more segments
    counts = [power_sequences(files[:1], T, speeds=(r,)).shape[0] for r in (0.9, 1.0, 1.1)]
    assert counts == [11, 10, 9] and both.shape[0] == 2 * sum(counts)
    np.testing.assert_array_equal(both[counts[0]:counts[0] + counts[1]], plain[:counts[1]])
    fast = power_sequences(files[:1], T, speeds=(1.1,))
    np.testing.assert_array_equal(both[counts[0] + counts[1]:sum(counts)], fast)
    # the 500 Hz tone played 10 % faster peaks at 550 Hz: bin 550 / (16000 / 1024) = 35.2
    assert fast[0].mean(0).argmax() == 35 and plain[0].mean(0).argmax() == 32
    with pytest.raises(ConfigError, match="speed factor 3"):
        power_sequences(files, T, speeds=(1.0, 3.0))
    with pytest.raises(ConfigError, match="at least one speed factor"):
        power_sequences(files, T, speeds=())


@pytest.mark.parametrize("rt60", [0.3, 1.0])
def test_synthetic_reverb_decays_by_60_db_in_rt60(rt60):
    """The reverberation of an impulse (y - x) has a Schroeder energy decay curve that falls from
    -5 to -35 dB at 60 dB per rt60 seconds (T30, ISO 3382), at the requested level."""
    x = np.zeros(4000, dtype=np.float32)
    x[0] = 1.0
    y = synthetic_reverb(x, rt60, -6.0, np.random.default_rng(0))
    assert y.shape == (4000 + round(rt60 * SAMPLE_RATE) // 2,) and y.dtype == np.float32
    assert y[0] == 1.0  # the dry path, untouched (the wet path starts after a 2 ms pre-delay)
    # the whole room response, long enough to integrate the decay
    long = np.zeros(round(2 * rt60 * SAMPLE_RATE), dtype=np.float32)
    long[0] = 1.0
    wet = synthetic_reverb(long, rt60, -6.0, np.random.default_rng(0)).astype(np.float64)
    wet[0] -= 1.0
    assert 10 * np.log10((wet ** 2).sum()) == pytest.approx(-6.0, abs=0.01)
    edc = 10 * np.log10(np.cumsum((wet ** 2)[::-1])[::-1] / (wet ** 2).sum())
    t5, t35 = np.argmax(edc < -5.0), np.argmax(edc < -35.0)
    measured = 2.0 * (t35 - t5) / SAMPLE_RATE  # 30 dB of decay, extrapolated to 60
    assert measured == pytest.approx(rt60, rel=0.1)


def test_synthetic_reverb_is_seeded_and_checks_its_arguments():
    x = tone(0.2, freq=440.0).astype(np.float32)
    a = synthetic_reverb(x, 0.5, -3.0, np.random.default_rng(4))
    np.testing.assert_array_equal(a, synthetic_reverb(x, 0.5, -3.0, np.random.default_rng(4)))
    assert not np.array_equal(a, synthetic_reverb(x, 0.5, -3.0, np.random.default_rng(5)))
    for rt60, wet in ((0.0, 0.0), (9.0, 0.0), (float("nan"), 0.0), (0.5, 30.0), (0.5, float("inf"))):
        with pytest.raises(ConfigError, match="reverberation"):
            synthetic_reverb(x, rt60, wet, np.random.default_rng(0))


def test_power_sequences_add_reverberant_copies_after_the_dry_cut(tmp_path):
    """reverb_copies = 2: each file's dry sequences come first and equal the plain ones; the copies
    differ from them, a file's rooms do not depend on the files after it, and bad settings are
    refused."""
    T = 20
    seg = frames_to_samples(T)
    for name, freq in (("a", 500.0), ("b", 800.0)):
        sf.write(tmp_path / f"{name}.wav", tone(10 * seg / SAMPLE_RATE, freq=freq), SAMPLE_RATE, subtype="FLOAT")
    files = list_audio_files(tmp_path)
    plain = power_sequences(files[:1], T)
    rev = power_sequences(files, T, reverb_copies=2, seed=3)
    one = power_sequences(files[:1], T, reverb_copies=2, seed=3)
    np.testing.assert_array_equal(one[:plain.shape[0]], plain)
    assert one.shape[0] >= 3 * plain.shape[0]  # each copy has the clip plus a tail
    assert not np.allclose(one[plain.shape[0]:2 * plain.shape[0]], plain)
    np.testing.assert_array_equal(rev[:one.shape[0]], one)
    with pytest.raises(ConfigError, match="reverb_copies"):
        power_sequences(files, T, reverb_copies=-1)
    with pytest.raises(ConfigError, match="LOW <= HIGH"):
        power_sequences(files, T, reverb_copies=1, reverb_rt60=(1.0, 0.5))
    with pytest.raises(ConfigError, match="reverberation time"):
        power_sequences(files, T, reverb_copies=1, reverb_rt60=(0.01, 0.5))


def test_real_flac_reads_as_16k_mono(shared_data):
    files = list_audio_files(shared_data / "audio" / "speech" / "cmu_arctic")
    x = read_audio(files[0])
    assert x.ndim == 1 and x.shape[0] > SAMPLE_RATE // 2 and np.abs(x).max() <= 1.0
