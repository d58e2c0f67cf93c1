"""Audio front end: reading and writing 16 kHz mono audio, the STFT, and the pretraining dataset.

Conventions (reference-implementation.md section 5.3, SPEC.md section 5):

- 16 kHz mono float32 waveforms in [-1, 1].
- STFT: n_fft = 1024 samples (64 ms), hop 256, sine window w[n] = sin(π (n + 0.5) / 1024),
  ``center=True`` with **constant** (zero) padding, so F = 513 bins and a signal of L samples has
  T = 1 + L // 256 frames; T frames hold (T - 1) · 256 samples (T = 50 frames: 12,544 samples).
- Spectrograms are time first, ``(B, T, F)``, like every sequence in the package ``(B, T, D)``
  with D = F bins.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import torch

from mixdvae.errors import ConfigError, DataFormatError, NumericalError
from mixdvae.utils.io import atomic_path, first_line

__all__ = [
    "SAMPLE_RATE",
    "N_FFT",
    "HOP",
    "F",
    "AUDIO_SUFFIXES",
    "read_audio",
    "synthetic_reverb",
    "write_audio",
    "sine_window",
    "stft",
    "istft",
    "frames_to_samples",
    "samples_to_frames",
    "frame_energy_db",
    "list_audio_files",
    "speed_perturb",
    "detune",
    "power_sequences",
]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Sample rate of every waveform in the package (Hz)."""
N_FFT = 1024
"""STFT frame length and FFT size (64 ms at 16 kHz)."""
HOP = 256
"""STFT hop (a quarter of the frame)."""
F = N_FFT // 2 + 1
"""Frequency bins of the one-sided STFT: 513."""
AUDIO_SUFFIXES = (".flac", ".wav")
"""Extensions :func:`list_audio_files` picks up (case-insensitive)."""

_CLIP_WARN_FRACTION = 0.01


def read_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as a mono float32 waveform at ``sample_rate``.

    Several channels are averaged to mono; another sample rate is converted with
    ``scipy.signal.resample_poly``. Both are logged as warnings. Clipped audio (many samples at
    |x| >= 1) is valid and returned as is, with a warning.

    Shape:
        returns (L,) float32, L >= N_FFT.

    Raises:
        DataFormatError: one line naming the file: missing, a folder, not an audio file soundfile can
            read, empty, non-finite samples, silent (all zero), or shorter than one STFT frame
            (N_FFT samples after resampling).
    """
    import soundfile as sf

    path = Path(path)
    if path.is_dir():
        raise DataFormatError(f"{path}: a folder, not an audio file (separate one file at a time)")
    if not path.is_file():
        raise DataFormatError(f"{path}: audio file not found")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as err:
        raise DataFormatError(f"{path}: not a readable audio file ({first_line(err)})") from err
    num_samples, channels = data.shape
    if num_samples == 0:
        raise DataFormatError(f"{path}: empty audio file (0 samples)")
    finite = np.isfinite(data)
    if not finite.all():
        first = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise DataFormatError(f"{path}: non-finite sample (NaN or inf) at sample {first}")
    if not np.any(data):
        raise DataFormatError(f"{path}: silent audio (all {num_samples} samples are zero)")
    g = math.gcd(int(file_rate), int(sample_rate))
    up, down = int(sample_rate) // g, int(file_rate) // g
    length = -(-num_samples * up // down)  # ceil(L up / down): what resample_poly returns
    if length < N_FFT:  # checked before any warning, so that the error is the only line
        raise DataFormatError(
            f"{path}: {length} samples at {sample_rate} Hz, shorter than one STFT frame ({N_FFT})"
            + ("" if up == down else f" ({num_samples} samples at {file_rate} Hz)")
        )
    if channels > 1:
        logger.warning("%s: %d channels, mixed down to mono (channel mean)", path, channels)
        x = data.mean(axis=1)
    else:
        x = data[:, 0]
    if file_rate != sample_rate:
        from scipy.signal import resample_poly

        logger.warning("%s: sample rate %d Hz, resampled to %d Hz", path, file_rate, sample_rate)
        x = resample_poly(x.astype(np.float64), up, down)
    x = np.ascontiguousarray(x, dtype=np.float32)
    clipped = int(np.count_nonzero(np.abs(x) >= 1.0))
    if clipped > _CLIP_WARN_FRACTION * x.shape[0]:
        logger.warning("%s: %d of %d samples are clipped (|x| >= 1)", path, clipped, x.shape[0])
    return x


def write_audio(path: str | os.PathLike, x: np.ndarray | torch.Tensor, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a mono waveform as a 16-bit PCM WAV file, atomically.

    A waveform whose peak exceeds 1 is scaled down to peak 1 (logged) rather than clipped.

    Shape:
        x: (L,) float.

    Raises:
        NumericalError: ``x`` holds NaN or inf. DataFormatError: ``x`` is not one-dimensional.
    """
    import soundfile as sf

    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise DataFormatError(f"{path}: waveform has shape {x.shape}, expected (L,)")
    if not np.all(np.isfinite(x)):
        raise NumericalError(f"{path}: waveform holds non-finite samples; not written")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1.0:
        logger.info("%s: peak %.3f > 1, scaled down to 1 before writing", path, peak)
        x = x / peak
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), np.clip(x, -1.0, 1.0), int(sample_rate), subtype="PCM_16", format="WAV")
    return Path(path)


def sine_window(n: int = N_FFT, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sine analysis/synthesis window w[k] = sin(π (k + 0.5) / n), k = 0..n-1.

    Shape:
        returns (n,).
    """
    k = torch.arange(n, device=device, dtype=torch.float64)
    return torch.sin(math.pi * (k + 0.5) / n).to(dtype)


def stft(x: torch.Tensor) -> torch.Tensor:
    """One-sided STFT X[t, f] = Σ_k x[t·HOP + k - N_FFT/2] w[k] e^{-2iπ fk / N_FFT} (zero padding).

    Sine window of N_FFT samples, hop HOP, ``center=True``, ``pad_mode="constant"``; the result is
    transposed so that time comes first. Works on any device, float32 (complex64 out) or float64
    (complex128 out).

    Shape:
        x: (B, L) or (L,). Returns (B, T, F) or (T, F), T = 1 + L // HOP, F = 513.
    """
    squeeze = x.dim() == 1
    if squeeze:
        x = x.unsqueeze(0)  # (L,) -> (1, L)
    if x.dim() != 2:
        raise ValueError(f"stft: expected (B, L) or (L,), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    spec = torch.stft(
        x,
        n_fft=N_FFT,
        hop_length=HOP,
        win_length=N_FFT,
        window=sine_window(N_FFT, x.device, x.dtype),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )  # (B, F, T)
    spec = spec.transpose(1, 2)  # (B, F, T) -> (B, T, F)
    return spec[0] if squeeze else spec


def istft(spec: torch.Tensor, length: int | None = None) -> torch.Tensor:
    """Inverse of :func:`stft` (weighted overlap-add with the sine window).

    ``length`` defaults to (T - 1) · HOP samples, the length of a signal of T frames.

    Shape:
        spec: (B, T, F) or (T, F) complex. Returns (B, L) or (L,) real, L = ``length``.
    """
    squeeze = spec.dim() == 2
    if squeeze:
        spec = spec.unsqueeze(0)  # (T, F) -> (1, T, F)
    if spec.dim() != 3 or spec.shape[-1] != F:
        raise ValueError(f"istft: expected (B, T, {F}) or (T, {F}), got shape {tuple(spec.shape)}")
    if not spec.is_complex():
        raise ValueError("istft: expected a complex spectrogram")
    real_dtype = torch.float64 if spec.dtype == torch.complex128 else torch.float32
    if length is None:
        length = frames_to_samples(spec.shape[1])
    x = torch.istft(
        spec.transpose(1, 2),  # (B, T, F) -> (B, F, T)
        n_fft=N_FFT,
        hop_length=HOP,
        win_length=N_FFT,
        window=sine_window(N_FFT, spec.device, real_dtype),
        center=True,
        length=int(length),
        return_complex=False,
    )  # (B, L)
    return x[0] if squeeze else x


def frames_to_samples(num_frames: int) -> int:
    """Samples held by ``num_frames`` STFT frames: (T - 1) · HOP (T = 50 -> 12,544)."""
    return (int(num_frames) - 1) * HOP


def samples_to_frames(num_samples: int) -> int:
    """STFT frames of a signal of L samples with ``center=True``: 1 + L // HOP."""
    return 1 + int(num_samples) // HOP


def frame_energy_db(x: np.ndarray, frame: int = HOP) -> np.ndarray:
    """Energy of consecutive non-overlapping frames in dB relative to the loudest frame.

    E_j = Σ_k x[j·frame + k]², returned as 10 log10(E_j / max_j E_j) (-inf for a silent frame;
    all -inf for an all-zero signal). A trailing partial frame is dropped.

    Shape:
        x: (..., L). Returns (..., L // frame).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1] // frame
    energy = np.square(x[..., : n * frame]).reshape(*x.shape[:-1], n, frame).sum(-1)  # (..., L) -> (..., n)
    top = energy.max(axis=-1, keepdims=True) if n else energy
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(energy / np.where(top > 0, top, 1.0))


def list_audio_files(source: str | os.PathLike) -> list[Path]:
    """Audio files of a folder (recursive ``*.flac`` / ``*.wav``, sorted) or of a manifest.

    A manifest is a ``.csv`` file with a ``path`` column, or a ``.txt`` file with one path per
    line; relative paths are taken relative to the manifest's folder.

    Raises:
        DataFormatError: the folder or manifest does not exist, a manifest lacks a ``path``
            column or names a missing file, or no audio file is found.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(
            p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
        )
    elif source.is_file():
        root = source.parent
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise DataFormatError(f"{source}: not a readable UTF-8 manifest ({first_line(err)})") from err
        if source.suffix.lower() == ".csv":
            reader = csv.DictReader(io.StringIO(text, newline=""))
            if reader.fieldnames is None or "path" not in reader.fieldnames:
                raise DataFormatError(f"{source}: manifest has no 'path' column")
            names = [(i + 2, row["path"] or "") for i, row in enumerate(reader)]  # None: a row too short
        else:
            lines = text.splitlines()
            names = [(i + 1, ln.strip()) for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")]
        files = []
        for line, name in names:
            if not name.strip():
                raise DataFormatError(f"{source}:{line}: no path on this line")
            p = Path(name) if Path(name).is_absolute() else root / name
            if not p.is_file():
                raise DataFormatError(f"{source}:{line}: listed file {name} not found")
            files.append(p)
    else:
        raise DataFormatError(f"{source}: no such folder or manifest")
    if not files:
        raise DataFormatError(f"{source}: no audio files (*.flac, *.wav)")
    return files


def _clip_power_sequences(
    x: np.ndarray, seg_len: int, seg_hop: int, normalise: str, silence_db: float, max_silent_fraction: float,
    device: torch.device | str,
) -> np.ndarray | None:
    """The kept, normalised segments of one clip for :func:`power_sequences` (None: too short).

    Shape: (L,) -> (num, T, F) float32"""
    if x.shape[0] < seg_len:
        return None
    if normalise == "file":
        x = x / np.max(np.abs(x))
    num = 1 + (x.shape[0] - seg_len) // seg_hop
    xt = torch.as_tensor(x, device=device)
    segments = xt.unfold(0, seg_len, seg_hop)[:num]  # (L,) -> (num, seg_len) views
    power = stft(segments).abs().square()  # (num, T, F)
    # Frame energy relative to the loudest frame of the whole file (its full STFT).
    file_top = stft(xt).abs().square().sum(-1).max()
    energy = power.sum(-1)  # (num, T)
    silent = energy < file_top * 10.0 ** (silence_db / 10.0)
    keep = silent.float().mean(-1) <= max_silent_fraction  # (num,)
    if normalise == "segment":
        peak = segments.abs().amax(-1)  # (num,)
        power = power / peak.square()[:, None, None].clamp_min(1e-30)
    return power[keep].to(torch.float32).cpu().numpy()


def _check_speed(factor: float) -> None:
    """Raises ConfigError unless ``factor`` is a finite speed factor in [0.5, 2]."""
    if not (math.isfinite(factor) and 0.5 <= factor <= 2.0):
        raise ConfigError(f"speed factor {factor}: must be a finite number in [0.5, 2]")


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation (Ko et al., Interspeech 2015): play ``x`` ``factor`` times faster.

    y[m] = x(m · factor / fs), computed by polyphase resampling (``scipy.signal.resample_poly``)
    of ``x`` to fs / factor and read back at fs: duration ÷ factor, every frequency × factor
    (pitch and formants move together, as between speakers of different vocal-tract length).
    ``factor`` = 1 returns ``x`` itself. The ratio is approximated by a fraction with a
    denominator of at most 100 (factor 0.9 = 9/10 exactly).

    Shape: (L,) -> (ceil(L / factor),) float32

    Raises:
        ConfigError: ``factor`` not a finite number in [0.5, 2].
    """
    _check_speed(factor)
    if factor == 1.0:
        return x
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(1.0 / factor).limit_denominator(100)  # output samples per input sample
    y = resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator)
    return y.astype(np.float32)


def _check_detune(cents: float, drift_cents: float) -> None:
    """Raises ConfigError unless both are finite numbers of cents in [0, 600]."""
    for name, c in (("detune", cents), ("detune drift", drift_cents)):
        if not (math.isfinite(c) and 0.0 <= c <= 600.0):
            raise ConfigError(f"{name} {c} cents: must be a finite number in [0, 600]")


def detune(x: np.ndarray, cents: float, rng: np.random.Generator, drift_cents: float | None = None,
           drift_seconds: float = 0.5) -> np.ndarray:
    """Play ``x`` off the tempered pitch grid: a random, slowly varying pitch shift c(t) in cents.

        c(t) = c_0 + d(t),   c_0 ~ U[-cents, cents],
        d = a Gaussian process of standard deviation ``drift_cents`` (default cents / 4) and
            correlation time ``drift_seconds`` (white noise smoothed by a Hann window that long),
        y[m] = x(phi_m),     phi_m = sum_{k < m} 2^(c(k / fs) / 1200),

    read by linear interpolation of ``x`` upsampled 4x (``scipy.signal.resample_poly``), so every
    frequency is multiplied by 2^(c(t) / 1200) and durations by about its inverse. Synthesised and
    sampled flutes sit exactly on the equal-tempered grid at A = 440 Hz; real players tune and bend
    notes by tens of cents, which at 2 kHz is one or two STFT bins (docs/separation.md "Detuned
    flute"). ``cents`` = 0 with no drift returns ``x`` unchanged (as float32).

    Shape: (L,) -> (L',) float32, L' about L · 2^(-c_0 / 1200)

    Raises:
        ConfigError: ``cents`` or ``drift_cents`` not a finite number in [0, 600]; ``drift_seconds`` <= 0.
    """
    drift = cents / 4.0 if drift_cents is None else float(drift_cents)
    _check_detune(cents, drift)
    if not (math.isfinite(drift_seconds) and drift_seconds > 0):
        raise ConfigError(f"detune drift time {drift_seconds} s: must be a positive number")
    x = np.asarray(x, dtype=np.float64)
    if (cents == 0.0 and drift == 0.0) or x.shape[0] < 2:
        return x.astype(np.float32)
    from scipy.signal import resample_poly

    up = 4
    step = SAMPLE_RATE // 100  # the pitch curve is drawn every 10 ms and interpolated
    knots = x.shape[0] // step + 2
    c = np.full(knots, rng.uniform(-cents, cents))
    if drift > 0:
        width = max(int(round(drift_seconds * 100)), 1)
        window = np.hanning(width + 2)[1:-1]
        noise = np.convolve(rng.standard_normal(knots + width), window / np.sqrt(np.sum(window ** 2)), mode="valid")
        c = c + drift * noise[:knots]
    ratio = 2.0 ** (np.interp(np.arange(x.shape[0] * 2), np.arange(knots) * step, c) / 1200.0)
    phi = np.concatenate([[0.0], np.cumsum(ratio)])  # input position (samples) of each output sample
    n_out = int(np.searchsorted(phi, x.shape[0] - 1, side="right"))
    xu = resample_poly(x, up, 1)
    y = np.interp(phi[:n_out] * up, np.arange(xu.shape[0]), xu)
    return y.astype(np.float32)


def _check_reverb(rt60: float, wet_db: float) -> None:
    """Raises ConfigError unless rt60 is in [0.05, 5] s and wet_db a finite level in [-40, 20] dB."""
    if not (math.isfinite(rt60) and 0.05 <= rt60 <= 5.0):
        raise ConfigError(f"reverberation time {rt60} s: must be a finite number in [0.05, 5]")
    if not (math.isfinite(wet_db) and -40.0 <= wet_db <= 20.0):
        raise ConfigError(f"reverberation level {wet_db} dB: must be a finite number in [-40, 20]")


def synthetic_reverb(x: np.ndarray, rt60: float, wet_db: float, rng: np.random.Generator,
                     sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Add synthetic room reverberation to ``x`` (data augmentation for dry, rendered audio).

    The room is a statistical late-reverberation model (Moorer 1979): an impulse response of
    Gaussian noise under an exponential decay that falls by 60 dB in ``rt60`` seconds,

        h[m] = g[m] exp(-3 ln(10) m / (rt60 fs)),   g ~ N(0, 1) i.i.d.,   m = 0 .. rt60 fs - 1,

    with 2 ms of pre-delay, scaled to unit energy, and added to the dry path at ``wet_db`` dB:

        y = x + 10^(wet_db / 20) (h * x),

    keeping the first rt60 / 2 seconds of the tail after the end of ``x``.

    Shape: (L,) -> (L + round(rt60 fs / 2),) float32

    Raises:
        ConfigError: rt60 outside [0.05, 5] s or wet_db outside [-40, 20] dB.
    """
    _check_reverb(rt60, wet_db)
    from scipy.signal import fftconvolve

    n = int(round(rt60 * sample_rate))
    ir = rng.standard_normal(n) * np.exp(-3.0 * math.log(10.0) * np.arange(n) / n)
    ir[: int(0.002 * sample_rate)] = 0.0
    ir /= math.sqrt(float((ir ** 2).sum()))
    out_len = len(x) + n // 2
    wet = fftconvolve(np.asarray(x, dtype=np.float64), ir)[:out_len]
    y = 10.0 ** (wet_db / 20.0) * wet
    y[: len(x)] += x
    return y.astype(np.float32)


def power_sequences(
    files: Iterable[str | os.PathLike],
    length_frames: int,
    hop_frames: int | None = None,
    max_sequences: int | None = None,
    normalise: Literal["segment", "file", "none"] = "segment",
    silence_db: float = -40.0,
    max_silent_fraction: float = 0.5,
    speeds: Iterable[float] = (1.0,),
    reverb_copies: int = 0,
    reverb_rt60: tuple[float, float] = (0.3, 1.5),
    reverb_wet_db: tuple[float, float] = (-9.0, 0.0),
    detune_cents: float = 0.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Pretraining dataset: power spectrograms |S_{ft}|² cut into sequences of T frames.

    Each file is cut into segments of (T - 1) · HOP samples starting every ``hop_frames`` · HOP
    samples (default ``hop_frames`` = T - 1: consecutive, non-overlapping segments, as in the
    original training data, reference-implementation.md section 4); each segment is transformed
    separately with :func:`stft` (zero-padded edges), giving exactly T frames, which is also how
    a test mixture chunk is transformed.

    Normalisation (``normalise``): at test time every mixture chunk is divided by its peak
    |sample|, so a source in it has a peak of at most about 1. The default ``"segment"``
    divides each training segment by its own peak |sample| (peak 1), as the original training
    data did (reference-implementation.md section 4: "each chunk is scaled to a peak |amplitude|
    of 1"); ``"file"`` divides the whole clip by its peak, keeping loudness differences within a
    clip; ``"none"`` keeps file levels.

    Near-silent segments are dropped: a segment is kept unless more than ``max_silent_fraction``
    of its T frames have an energy Σ_f |S_{ft}|² below ``silence_db`` dB relative to the file's
    loudest frame (computed at file level, before the normalisation).

    ``speeds``: each file is cut once per factor r, after :func:`speed_perturb` by r (data
    augmentation: r = 0.9, 1, 1.1 triples the data and spreads pitch and formants by ±10 %, as
    more speakers or more intonation would). Sequences are ordered file by file, speed by speed.

    ``reverb_copies``: each (file, speed) is also cut ``reverb_copies`` more times after
    :func:`synthetic_reverb` with an RT60 drawn uniformly in ``reverb_rt60`` seconds and a level
    drawn uniformly in ``reverb_wet_db`` dB (augmentation for dry, rendered training audio, which
    real recordings never are). The draws come from ``seed`` and the file's position in
    ``files`` (one generator per file: adding files at the end changes no earlier room); the dry
    cut comes first.

    ``detune_cents``: every version (the dry cut and each reverberant copy, before its room) is
    played off the tempered pitch grid by :func:`detune`, c_0 ~ U[-detune_cents, detune_cents]
    with a drift of a quarter of that, drawn from a generator of its own (``seed``, the file's
    position, 1), so the rooms are those drawn without it.

    ``max_sequences`` keeps that many sequences, evenly spaced over all of them (all files
    contribute, deterministically).

    Shape:
        returns (num, T, F) float32, num >= 0.

    Raises:
        ConfigError: ``length_frames`` < 2, ``hop_frames`` < 1, ``max_sequences`` < 1, an unknown
            ``normalise``, a speed factor outside [0.5, 2], ``reverb_copies`` < 0, a reverberation
            range outside :func:`synthetic_reverb`'s or with LOW > HIGH, ``detune_cents`` outside
            [0, 600]. DataFormatError: a file
            :func:`read_audio` refuses.
    """
    speeds = [float(r) for r in speeds]
    if not speeds:
        raise ConfigError("speeds: expected at least one speed factor")
    for r in speeds:
        _check_speed(r)
    if int(reverb_copies) != reverb_copies or reverb_copies < 0:
        raise ConfigError(f"reverb_copies = {reverb_copies}: must be an integer >= 0")
    if reverb_copies:
        for lo, hi in (reverb_rt60, reverb_wet_db):
            if not lo <= hi:
                raise ConfigError(f"reverberation range {lo} {hi}: expected LOW <= HIGH")
        _check_reverb(reverb_rt60[0], reverb_wet_db[0])
        _check_reverb(reverb_rt60[1], reverb_wet_db[1])
    _check_detune(detune_cents, detune_cents / 4.0)
    if int(length_frames) != length_frames or length_frames < 2:
        raise ConfigError(f"length_frames = {length_frames}: must be an integer >= 2")
    hop_frames = int(length_frames) - 1 if hop_frames is None else hop_frames
    if int(hop_frames) != hop_frames or hop_frames < 1:
        raise ConfigError(f"hop_frames = {hop_frames}: must be an integer >= 1")
    if max_sequences is not None and (int(max_sequences) != max_sequences or max_sequences < 1):
        raise ConfigError(f"max_sequences = {max_sequences}: must be None or an integer >= 1")
    if normalise not in ("segment", "file", "none"):
        raise ConfigError(f"normalise = {normalise!r}: must be 'segment', 'file' or 'none'")
    if not 0.0 <= max_silent_fraction <= 1.0:
        raise ConfigError(f"max_silent_fraction = {max_silent_fraction}: must be in [0, 1]")
    seg_len = frames_to_samples(length_frames)
    seg_hop = int(hop_frames) * HOP
    files = list(files)
    chunks: list[np.ndarray] = []
    from tqdm import tqdm

    for i, path in enumerate(tqdm(files, desc="power sequences", unit="file", disable=not progress)):
        clip = read_audio(path)
        rng = np.random.default_rng([int(seed), i])
        pitch_rng = np.random.default_rng([int(seed), i, 1])
        tune = (lambda y: detune(y, detune_cents, pitch_rng)) if detune_cents > 0 else (lambda y: y)  # noqa: E731
        for r in speeds:
            fast = speed_perturb(clip, r)
            versions = [tune(fast)] + [
                synthetic_reverb(tune(fast), rng.uniform(*reverb_rt60), rng.uniform(*reverb_wet_db), rng)
                for _ in range(int(reverb_copies))
            ]
            for x in versions:
                power = _clip_power_sequences(x, seg_len, seg_hop, normalise, silence_db, max_silent_fraction, device)
                if power is None:
                    logger.debug("%s (speed %g): shorter than one sequence (%d samples)", path, r, seg_len)
                    continue
                chunks.append(power)
    if not chunks:
        return np.zeros((0, int(length_frames), F), dtype=np.float32)
    out = np.concatenate(chunks, axis=0)
    if max_sequences is not None and out.shape[0] > max_sequences:
        idx = np.linspace(0, out.shape[0] - 1, int(max_sequences)).round().astype(np.int64)
        out = out[idx]
    return np.ascontiguousarray(out, dtype=np.float32)
