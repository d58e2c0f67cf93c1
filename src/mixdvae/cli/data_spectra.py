"""``mixdvae data spectra``: power-spectrogram sequences of single-source audio, for pretraining.

Example::

    mixdvae data spectra --audio ../shared/data/audio/music/fluidsynth_flute/train \\
        --length 50 --gain-db -20 0 --seed 1 --out runs/data/flute_train.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mixdvae.data.audio import list_audio_files, power_sequences
from mixdvae.data.spectra import add_noise_floor, random_gains_db, save_spectra
from mixdvae.errors import ConfigError, DataFormatError

__all__ = ["add_parser", "run_data_spectra"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "spectra",
        help="Power-spectrogram sequences of single-source audio (pretraining data of the audio priors).",
        description="Cut each audio file (16 kHz mono; others are resampled with a warning) into segments of "
        "LENGTH STFT frames (1024-sample sine window, hop 256), drop near-silent ones, normalise each segment "
        "to a peak of 1, apply a random gain, and write an .npz with 'power' (S, LENGTH, 513) and 'meta'.",
    )
    p.add_argument("--audio", type=Path, action="append", required=True, metavar="DIR_OR_MANIFEST",
                   help="folder (recursive *.flac/*.wav) or manifest; repeat to combine")
    p.add_argument("--length", type=int, default=50, help="frames per sequence (default: 50)")
    p.add_argument("--hop", type=int, help="frames between sequence starts (default: LENGTH - 1)")
    p.add_argument("--max-sequences", type=int, help="keep at most this many, evenly spread")
    p.add_argument("--gain-db", type=float, nargs=2, default=(0.0, 0.0), metavar=("LOW", "HIGH"),
                   help="random per-sequence gain range in dB (default: 0 0)")
    p.add_argument("--noise-db", type=float, default=None, metavar="DB",
                   help="add a white noise floor DB dB below each sequence's mean power (e.g. -40: rendered "
                   "audio has digital silence that real recordings never have); default: none")
    p.add_argument("--speed-perturb", type=float, nargs="+", default=[1.0], metavar="R",
                   help="cut every file once per speed factor R (augmentation: 0.9 1 1.1 plays each clip 10 %% "
                   "slower, as is, and 10 %% faster, moving pitch and formants; default: 1)")
    p.add_argument("--reverb", type=int, default=0, metavar="COPIES",
                   help="also cut every clip COPIES times with synthetic room reverberation (augmentation for dry, "
                   "rendered audio; default: 0)")
    p.add_argument("--reverb-rt60", type=float, nargs=2, default=(0.3, 1.5), metavar=("LOW", "HIGH"),
                   help="range of the reverberation time in seconds (default: 0.3 1.5)")
    p.add_argument("--reverb-wet-db", type=float, nargs=2, default=(-9.0, 0.0), metavar=("LOW", "HIGH"),
                   help="range of the reverberation's level against the dry sound in dB (default: -9 0)")
    p.add_argument("--detune", type=float, default=0.0, metavar="CENTS",
                   help="play every cut off the tempered pitch grid by a random c0 in [-CENTS, CENTS] cents with a slow "
                   "drift of CENTS / 4 (augmentation for synthesised or sampled instruments, which sit exactly on the "
                   "grid; real players do not); default: 0")
    p.add_argument("--seed", type=int, default=0, help="seed of the gains, the noise and the rooms (default: 0)")
    p.add_argument("--out", type=Path, required=True, help="output .npz")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=run_data_spectra)


def run_data_spectra(args: argparse.Namespace) -> int:
    low, high = args.gain_db
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ConfigError(f"--gain-db {low} {high}: expected two finite numbers LOW <= HIGH")
    files = [f for src in args.audio for f in list_audio_files(src)]
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    power = power_sequences(files, args.length, hop_frames=args.hop, max_sequences=args.max_sequences,
                            speeds=args.speed_perturb, reverb_copies=args.reverb, reverb_rt60=tuple(args.reverb_rt60),
                            reverb_wet_db=tuple(args.reverb_wet_db), detune_cents=args.detune, seed=args.seed,
                            progress=progress)
    if power.shape[0] == 0:
        raise DataFormatError(f"{', '.join(map(str, args.audio))}: no active segment of {args.length} frames")
    if args.noise_db is not None:
        if not np.isfinite(args.noise_db):
            raise ConfigError(f"--noise-db {args.noise_db}: expected a finite number of dB")
        power = add_noise_floor(power, args.noise_db, args.seed)
    gains = random_gains_db(power.shape[0], low, high, args.seed)
    power = power * (10.0 ** (gains / 10.0))[:, None, None]
    meta = {"sources": [str(a) for a in args.audio], "files": len(files), "length": args.length,
            "hop": args.hop if args.hop is not None else args.length - 1, "normalise": "segment peak = 1",
            "gain_db": [low, high], "noise_db": args.noise_db,
            "speeds": [float(r) for r in args.speed_perturb], "reverb_copies": args.reverb,
            "reverb_rt60": list(args.reverb_rt60), "reverb_wet_db": list(args.reverb_wet_db), "detune_cents": args.detune,
            "seed": args.seed, "num": int(power.shape[0])}
    save_spectra(args.out, power, meta)
    print(f"wrote {power.shape[0]} sequences of {power.shape[1]} frames x {power.shape[2]} bins "
          f"from {len(files)} files to {args.out}")
    return 0
