"""``mixdvae track SEQ_DIR --out RESULT.txt``: track a whole MOTChallenge sequence.

``mixdvae track`` hands over here when its positional argument is a folder (a file is a windows
file: :mod:`mixdvae.cli.track`). Reads ``SEQ_DIR/seqinfo.ini`` and ``SEQ_DIR/det/det.txt`` and
writes the MOTChallenge result file, its JSON summary (``RESULT.txt.json`` unless ``--summary``)
and, with ``--plot DIR``, a figure of the tracks over time.

A folder of sequence folders (e.g. ``MOT15/train``) is tracked sequence by sequence into
``--out DIR/<name>.txt`` (+ ``.txt.json``). Under ``torchrun`` the sequences are dealt to the ranks
round robin (:func:`mixdvae.utils.distributed.shard`) and each rank writes its own results; a
sequence whose result and summary are already in ``DIR`` is skipped, so a rerun after a kill
tracks only what is missing (each file is written atomically: present means complete).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixdvae.errors import ConfigError, DataFormatError

__all__ = ["SEQUENCE_METHODS", "add_sequence_arguments", "load_sequence_config", "set_threads", "sequence_folders",
           "run_track_sequence"]

SEQUENCE_METHODS = ("mixdvae", "vkf", "kalman", "sort", "ocsort", "bytetrack")


def add_sequence_arguments(p: argparse.ArgumentParser) -> None:
    """The options only whole-sequence tracking uses."""
    p.add_argument("--plot", type=Path, default=None, metavar="DIR",
                   help="sequence folder only: also write a figure of the tracks over time into DIR")
    p.add_argument("--summary", type=Path, default=None, metavar="JSON",
                   help="sequence folder only: where the JSON summary goes (default: OUT.json)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch intra-op threads per process (default 1: the per-frame tensors are small; more threads "
                   "gain little on a quiet machine and slow everything down on a busy one; use processes, torchrun)")


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


def sequence_folders(path: Path) -> list[Path] | None:
    """The sequence folders (holding seqinfo.ini) inside ``path``, sorted; None when ``path`` is
    itself a sequence folder or holds none (then it is read as one sequence, with its errors)."""
    if (path / "seqinfo.ini").is_file() or not path.is_dir():
        return None
    found = sorted(p for p in path.iterdir() if p.is_dir() and (p / "seqinfo.ini").is_file())
    return found or None


def _track_one(seq_dir: Path, out: Path, summary: Path | None, args: argparse.Namespace, config, device, progress: bool):
    from mixdvae.data.mot import read_sequence
    from mixdvae.tracking.sequence import track_sequence
    from mixdvae.tracking.sequence_results import write_sequence_tracks

    seq = read_sequence(seq_dir)
    if seq.det is None:
        raise DataFormatError(f"{seq_dir / 'det' / 'det.txt'}: file not found (whole-sequence tracking reads detections)")
    tracks = track_sequence(seq.det, seq.info, args.method, config, args.weights, device, args.seed, progress)
    out, summary = write_sequence_tracks(out, tracks, summary)
    print(f"tracked {seq.info.name} ({tracks.num_frames} frames) with {args.method}: {tracks.num_tracks} tracks, "
          f"{tracks.frames.shape[0]} boxes, {tracks.fps:.0f} frames/s")
    print(f"wrote {out} and {summary}")
    if args.plot is not None:
        from mixdvae.plotting.sequence import plot_sequence_tracks

        figure = plot_sequence_tracks(tracks, seq.info, Path(args.plot) / f"{seq.info.name}_{args.method}_tracks.png")
        print(f"wrote {figure}")


def run_track_sequence(args: argparse.Namespace) -> int:
    from mixdvae.utils.device import resolve_device
    from mixdvae.utils.distributed import barrier, process_group, rank_and_world, shard

    if args.method not in SEQUENCE_METHODS:
        raise ConfigError(f"--method: '{args.method}' cannot track a whole sequence (choose from {list(SEQUENCE_METHODS)})")
    config = load_sequence_config(args.config)
    set_threads(args.threads)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    folders = sequence_folders(Path(args.windows))
    if folders is None:
        _track_one(Path(args.windows), Path(args.out), args.summary, args, config, resolve_device(args.device), progress)
        return 0
    if args.summary is not None:
        raise ConfigError("--summary: a folder of sequences writes one summary per sequence (OUT/<name>.txt.json)")
    out_dir = Path(args.out)
    with process_group(resolve_device(args.device)) as device:
        rank, world = rank_and_world()
        mine = shard(folders, rank, world)
        skipped = 0
        for seq_dir in mine:
            out = out_dir / f"{seq_dir.name}.txt"
            if out.is_file() and out.with_name(out.name + ".json").is_file():
                skipped += 1  # finished by an earlier run
                continue
            _track_one(seq_dir, out, None, args, config, device, progress)
        barrier()
    if rank == 0:
        print(f"{len(folders)} sequences in {out_dir} ({world} process(es); rank 0 skipped {skipped} already done)")
    return 0
