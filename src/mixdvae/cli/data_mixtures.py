"""``mixdvae data mixtures``: seeded speech + music test mixtures at given speech-to-music ratios.

Example::

    mixdvae data mixtures --speech ../shared/data/audio/speech \\
        --music ../shared/data/audio/music/fluidsynth_flute/valid \\
        --ratio-db -5 --ratio-db 0 --length 50 --num 100 --seed 0 --out runs/data/mix_test.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixdvae.data.audio import frames_to_samples
from mixdvae.data.mixtures import make_mixtures, save_mixtures

__all__ = ["add_parser", "run_data_mixtures"]


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",")]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mixtures",
        help="Speech + music (flute) mixtures at given speech-to-music ratios, with references.",
        description="Draw NUM pairs of active speech and music segments of (LENGTH - 1) * 256 samples "
        "(seeded), scale the music to each speech-to-music ratio, normalise each mixture to a peak of 0.9 "
        "and write an .npz with 'mixture' (M, L), 'sources' (M, N, L) and provenance (see "
        "mixdvae.data.mixtures). The same pairs are used at every ratio; M = NUM x ratios.",
    )
    p.add_argument("--speech", type=Path, required=True, help="speech folder (recursive .flac/.wav) or manifest")
    p.add_argument("--music", type=Path, required=True, help="music folder (recursive .flac/.wav) or manifest")
    p.add_argument("--ratio-db", type=float, action="append", required=True, metavar="R",
                   help="speech-to-music ratio 20 log10(rms(speech) / rms(music)) in dB; repeat for several")
    p.add_argument("--length", type=int, default=50, help="STFT frames T per mixture, >= 5 (default: 50)")
    p.add_argument("--num", type=int, required=True, help="mixtures per ratio (>= 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", type=Path, required=True, help="output .npz file")
    p.add_argument("--names", type=_names, default=["speech", "flute"],
                   help="names of the two sources, speech first (default: speech,flute)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(func=run_data_mixtures)


def run_data_mixtures(args: argparse.Namespace) -> int:
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    mix = make_mixtures(
        args.speech, args.music, args.ratio_db, args.length, args.num, args.seed,
        names=args.names, progress=progress,
    )
    save_mixtures(args.out, mix)
    ratios = ", ".join(f"{r:g}" for r in args.ratio_db)
    print(
        f"wrote {len(mix)} mixtures ({args.num} per ratio at {ratios} dB) of {args.length} frames "
        f"({frames_to_samples(args.length)} samples) to {args.out}"
    )
    return 0
