"""Render a flute-family training corpus with FluidSynth: random monophonic melodies over the whole
range of each instrument, with held notes, from one or more General MIDI SoundFonts.

Why: the shared renders (../shared/data/audio/music/fluidsynth_flute) place a 14-19 semitone window
uniformly inside each instrument's range and pull the melody to its centre, so the lowest notes are
almost never played (1 of 131 training clips reaches C4), and notes last at most 1.2 s. Real flute
test material holds C4 for seconds (docs/separation.md "The low register"). This recipe puts the
window's edges at the ends of the range as often as in the middle and adds phrases of held notes.

Tools (Debian 12 packages): fluidsynth 2.3.1, fluid-soundfont-gm 3.1 (FluidR3_GM.sf2, MIT) and
musescore-general-soundfont-lossless 0.2.1 (MuseScore_General_Full.sf2, MIT; parts PD / CC0).
Each clip i uses numpy default_rng(seed + i); the split (every 5th clip to valid/) is fixed by i.
Output: FLAC 16 kHz mono 16-bit in OUT/train and OUT/valid, plus OUT/manifest.csv.

    python recipes/render_flute.py --out runs/data/flute_renders --num 400   (the shipped corpus)
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from mixdvae.data.audio import SAMPLE_RATE

TICKS_PER_SECOND = 960  # division 480 per quarter at the default 120 BPM
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/MuseScore_General_Full.sf2")
# zero-based GM program: (name, lowest, highest MIDI note, weight)
PROGRAMS = {73: ("flute", 60, 96, 0.55), 74: ("recorder", 65, 93, 0.15), 75: ("pan_flute", 60, 88, 0.15),
            77: ("shakuhachi", 62, 88, 0.15)}
SCALES = {"major_pentatonic": (0, 2, 4, 7, 9), "minor_pentatonic": (0, 3, 5, 7, 10), "major": (0, 2, 4, 5, 7, 9, 11),
          "natural_minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10), "chromatic_run": tuple(range(12))}
SCALE_WEIGHTS = np.array([3, 3, 3, 2, 1.5, 0.5])


def variable_length_quantity(value: int) -> bytes:
    """MIDI delta time: 7 bits per byte, most significant first, continuation bit on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_file(program: int, notes: list[tuple[float, float, int, int]]) -> bytes:
    """A format-0 MIDI file, channel 0: one program change, then notes (onset s, offset s, pitch, velocity)."""
    events = []  # (tick, order, bytes): note-offs sort before note-ons at the same tick
    for onset, offset, pitch, velocity in notes:
        events.append((round(onset * TICKS_PER_SECOND), 1, bytes((0x90, pitch, velocity))))
        events.append((round(offset * TICKS_PER_SECOND), 0, bytes((0x80, pitch, 0))))
    events.sort(key=lambda e: (e[0], e[1]))
    track, last = bytearray(b"\x00" + bytes((0xC0, program))), 0
    for tick, _, data in events:
        track += variable_length_quantity(tick - last) + data
        last = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + (480).to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track)


def melody(rng: np.random.Generator, low: int, high: int) -> tuple[list[tuple[float, float, int, int]], dict]:
    """Random phrases over a register window whose low edge is uniform on [low - 6, high - width + 6],
    clipped to the range, so each end of the range is as likely to be in the window as the middle.
    A phrase is either 3-8 notes on a scale random walk (slots 0.1-1.5 s) or, with probability 0.25,
    one or two held notes of 1.5-4 s."""
    scale_name = str(rng.choice(list(SCALES), p=SCALE_WEIGHTS / SCALE_WEIGHTS.sum()))
    tonic = int(rng.integers(12))
    width = int(rng.integers(12, 20))
    lo = int(np.clip(rng.integers(low - 6, high - width + 7), low, high - width))
    pitches = [p for p in range(lo, lo + width + 1) if (p - tonic) % 12 in SCALES[scale_name]]
    beat = 60.0 / rng.uniform(60, 140)
    target, t = rng.uniform(5.0, 10.0), rng.uniform(0.05, 0.2)
    degree = int(rng.integers(len(pitches)))
    notes = []
    while t < target:
        velocity = rng.uniform(45, 110)
        if rng.random() < 0.25:  # held notes
            for _ in range(int(rng.integers(1, 3))):
                degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(pitches) - 1))
                length = rng.uniform(1.5, 4.0)
                v = int(np.clip(velocity + rng.normal(0, 5), 30, 120))
                notes.append((t, t + length * rng.uniform(0.9, 1.0), pitches[degree], v))
                t += length
        else:
            legato = rng.random() < 0.3
            for k in range(int(rng.integers(3, 9))):
                slot = float(np.clip(beat * rng.choice([0.25, 0.5, 0.75, 1, 1.5, 2], p=[.12, .33, .10, .25, .10, .10]), 0.1, 1.5))
                step = rng.choice([0, 1, -1, 2, -2, 3, -3, 4, -4], p=[.08, .24, .24, .12, .12, .05, .05, .05, .05])
                degree += int(step)
                if degree < 0 or degree >= len(pitches):  # reflect at the window's edges
                    degree = int(np.clip(-degree if degree < 0 else 2 * (len(pitches) - 1) - degree, 0, len(pitches) - 1))
                v = int(np.clip(velocity + rng.normal(0, 5), 30, 120))
                notes.append((t, t + slot * (1.0 if legato else rng.uniform(0.7, 0.92)), pitches[degree], v))
                t += slot
        t += rng.uniform(0.15, 0.6)  # breath
    info = {"scale": scale_name, "tonic_pc": tonic, "pitch_min": min(n[2] for n in notes),
            "pitch_max": max(n[2] for n in notes), "n_notes": len(notes)}
    return notes, info


def render(fluidsynth: str, soundfont: str, midi: Path, wav: Path) -> np.ndarray:
    """FluidSynth, reverb and chorus off, at 16 kHz; returns the mono signal with silence trimmed."""
    subprocess.run([fluidsynth, "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", str(SAMPLE_RATE), "-F", str(wav),
                    soundfont, str(midi)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    signal, rate = sf.read(wav, dtype="float64", always_2d=True)
    assert rate == SAMPLE_RATE, rate
    mono = signal.mean(axis=1)
    loud = np.flatnonzero(np.abs(mono) > 1e-4)
    return mono[loud[0]:loud[-1] + 1] if len(loud) else mono[:0]


def write_clip(out: Path, path: Path, signal: np.ndarray) -> None:
    """OUT/PATH as 16 kHz mono 16-bit FLAC (its folder made when missing)."""
    (out / path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(out / path, signal.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")


def write_manifest(out: Path, rows: list[dict]) -> None:
    """OUT/manifest.csv, one row per clip, and a one-line summary of the minutes of each split."""
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    minutes = {s: sum(r["duration_s"] for r in rows if r["split"] == s) / 60 for s in ("train", "valid")}
    print(f"wrote {len(rows)} clips to {out}: train {minutes['train']:.1f} min, valid {minutes['valid']:.1f} min")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--seed", type=int, default=910_000)
    parser.add_argument("--soundfont", action="append", help=f"SoundFont(s), used in turn (default {SOUNDFONTS})")
    args = parser.parse_args(argv)
    fluidsynth = shutil.which("fluidsynth")
    soundfonts = args.soundfont or list(SOUNDFONTS)
    missing = [s for s in soundfonts if not Path(s).is_file()]
    if fluidsynth is None or missing:
        print("error: needs fluidsynth and the SoundFonts " + ", ".join(missing or soundfonts)
              + " (Debian: apt-get install fluidsynth fluid-soundfont-gm musescore-general-soundfont-lossless)", file=sys.stderr)
        return 2
    programs = list(PROGRAMS)
    weights = np.array([PROGRAMS[p][3] for p in programs])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.num):
            rng = np.random.default_rng(args.seed + i)
            program = int(rng.choice(programs, p=weights / weights.sum()))
            name, low, high, _ = PROGRAMS[program]
            soundfont = soundfonts[i % len(soundfonts)]
            notes, info = melody(rng, low, high)
            midi, wav = Path(tmp) / "m.mid", Path(tmp) / "m.wav"
            midi.write_bytes(midi_file(program, notes))
            signal = render(fluidsynth, soundfont, midi, wav)
            split = "valid" if i % 5 == 4 else "train"
            path = Path(split) / f"{name}_p{program:03d}_{Path(soundfont).stem}_s{args.seed + i}.flac"
            write_clip(args.out, path, signal)
            rows.append({"path": str(path), "split": split, "program": program, "instrument": name,
                         "soundfont": Path(soundfont).name, "seed": args.seed + i,
                         "duration_s": round(len(signal) / SAMPLE_RATE, 2), **info})
            print(f"\r{i + 1}/{args.num} {path}", end="", file=sys.stderr)
    print(file=sys.stderr)
    write_manifest(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
