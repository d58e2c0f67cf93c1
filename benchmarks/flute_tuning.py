"""How far real flute recordings sit from the equal-tempered grid at A = 440 Hz (docs/separation.md "Detuned flute").

For each file, the strongest spectral peak between 240 and 2300 Hz of every active 0.5 s window (hop 0.128 s,
Hann, zero-padded 4x) is read as the played pitch, and its distance to the nearest tempered semitone is
reported in cents: the median and the inter-quartile range over the windows. The renders and the sampled notes
the flute priors train on sit on the grid (0 cents, plus the sampled notes' own tuning); the benchmark's real
recordings do not, and at 2 kHz 20 cents is one STFT bin (15.6 Hz).

    python benchmarks/flute_tuning.py [FILE_OR_DIR ...]   (default: the benchmark's real flute recordings)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mixdvae.bench.separation import default_flute_files
from mixdvae.data.audio import SAMPLE_RATE, list_audio_files, read_audio


def cents_off_grid(x: np.ndarray, window: int = 8192, hop: int = 2048, lo_hz: float = 240.0,
                   hi_hz: float = 2300.0, active_fraction: float = 0.01) -> np.ndarray:
    """Cents between the strongest peak in [lo_hz, hi_hz] and the nearest tempered semitone (A4 = 440 Hz),
    one value per window whose mean power is at least ``active_fraction`` of the file's, in [-50, 50).

    Shape: (L,) -> (K,)"""
    freqs = np.fft.rfftfreq(4 * window, 1.0 / SAMPLE_RATE)
    lo, hi = np.searchsorted(freqs, lo_hz), np.searchsorted(freqs, hi_hz)
    mean_power = float(np.mean(x.astype(np.float64) ** 2))
    out = []
    for start in range(0, x.shape[0] - window, hop):
        w = x[start:start + window] * np.hanning(window)
        if np.mean(w ** 2) < active_fraction * mean_power:
            continue
        spectrum = np.abs(np.fft.rfft(w, 4 * window))
        f0 = freqs[lo + int(np.argmax(spectrum[lo:hi]))]
        cents = 1200.0 * np.log2(f0 / 440.0)
        out.append((cents + 50.0) % 100.0 - 50.0)
    return np.asarray(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--audio-dir", type=Path, default=Path("..") / "shared" / "data" / "audio")
    args = parser.parse_args()
    files = ([f for p in args.paths for f in list_audio_files(p)] if args.paths
             else list(default_flute_files(args.audio_dir)))
    if not files:
        print("error: no audio files", file=sys.stderr)
        return 2
    print("| file | windows | median cents off the grid | inter-quartile range |")
    print("|---|---|---|---|")
    for f in sorted(files):
        c = cents_off_grid(read_audio(f))
        if c.size == 0:
            print(f"| {f.name} | 0 | - | - |")
            continue
        q1, q3 = np.percentile(c, [25, 75])
        print(f"| {f.name} | {c.size} | {np.median(c):+.0f} | {q1:+.0f} to {q3:+.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
