"""``mixdvae track SEQ_DIR --out RESULT.txt``: track a whole MOTChallenge sequence.

``mixdvae track`` hands over here when its positional argument is a folder (a file is a windows
file: :mod:`mixdvae.cli.track`). Reads ``SEQ_DIR/seqinfo.ini`` and ``SEQ_DIR/det/det.txt`` and
writes the MOTChallenge result file, its JSON summary (``RESULT.txt.json`` unless ``--summary``)
and, with ``--plot DIR``, a figure of the tracks over time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixdvae.errors import ConfigError, DataFormatError

__all__ = ["SEQUENCE_METHODS", "add_sequence_arguments", "load_sequence_config", "set_threads", "run_track_sequence"]

SEQUENCE_METHODS = ("mixdvae", "vkf", "kalman", "sort", "ocsort", "bytetrack")


def add_sequence_arguments(p: argparse.ArgumentParser) -> None:
    """The options only whole-sequence tracking uses."""
    p.add_argument("--plot", type=Path, default=None, metavar="DIR",
                   help="sequence folder only: also write a figure of the tracks over time into DIR")
    p.add_argument("--summary", type=Path, default=None, metavar="JSON",
                   help="sequence folder only: where the JSON summary goes (default: OUT.json)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="sequence folder only: torch intra-op threads (default 1: the per-frame tensors are small, "
                   "more threads only add overhead)")


def load_sequence_config(path: Path | None):
    """The default :class:`SequenceConfig`, overridden by the ``[sequence]`` table of ``path``."""
    from mixdvae.config import load_config_file
    from mixdvae.tracking.sequence import SequenceConfig

    config = SequenceConfig()
    if path is not None:
        data = load_config_file(path)
        config = config.with_overrides(data.get("sequence", data), str(path))
    return config


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op thread count for this process (the CLI's choice; the library never does)."""
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads = {threads}: must be >= 1")
    import torch

    torch.set_num_threads(threads)


def run_track_sequence(args: argparse.Namespace) -> int:
    from mixdvae.data.mot import read_sequence
    from mixdvae.tracking.sequence import track_sequence
    from mixdvae.tracking.sequence_results import write_sequence_tracks
    from mixdvae.utils.device import resolve_device

    if args.method not in SEQUENCE_METHODS:
        raise ConfigError(f"--method: '{args.method}' cannot track a whole sequence (choose from {list(SEQUENCE_METHODS)})")
    seq = read_sequence(args.windows)
    if seq.det is None:
        raise DataFormatError(f"{args.windows / 'det' / 'det.txt'}: file not found (whole-sequence tracking reads detections)")
    config = load_sequence_config(args.config)
    set_threads(args.threads)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    tracks = track_sequence(seq.det, seq.info, args.method, config, args.weights, resolve_device(args.device),
                            args.seed, progress)
    out, summary = write_sequence_tracks(args.out, tracks, args.summary)
    print(f"tracked {seq.info.name} ({tracks.num_frames} frames) with {args.method}: {tracks.num_tracks} tracks, "
          f"{tracks.frames.shape[0]} boxes, {tracks.fps:.0f} frames/s")
    print(f"wrote {out} and {summary}")
    if args.plot is not None:
        from mixdvae.plotting.sequence import plot_sequence_tracks

        figure = plot_sequence_tracks(tracks, seq.info, Path(args.plot) / f"{seq.info.name}_{args.method}_tracks.png")
        print(f"wrote {figure}")
    return 0
