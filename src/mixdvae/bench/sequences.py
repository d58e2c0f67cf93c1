"""``mixdvae bench sequences``: every whole-sequence tracker on every MOT15 and MOT17 train sequence.

- **MOT15 train**: the public ACF detections (``det/det.txt``), seven sequences; for reporting only.
- **MOT17 train** (``*-SDP``): our copy has no det.txt, so detections come from the documented
  simulated detector (:mod:`mixdvae.data.detector`) with ``false_positives_per_frame = 2`` (clutter,
  inside the 0.6 to 5.7 per frame measured on MOT15's ACF) and ``numpy.random.default_rng(seed)``
  per sequence; the defaults of :class:`~mixdvae.tracking.sequence.SequenceConfig` were tuned here.

Scores are TrackEval's (HOTA, and CLEAR / Identity counts) at IoU 0.5, combined over the
sequences of a data set as TrackEval combines them. Speed is frames per second of the tracking
alone (detections given, reading and scoring excluded): all frames of the set over the summed
tracking time, and the median over sequences.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from pathlib import Path
from typing import Callable

import numpy as np

from mixdvae.data.detector import SimulatedDetector, simulate_detections
from mixdvae.data.mot import read_sequence
from mixdvae.errors import DataFormatError
from mixdvae.metrics.mot import SequenceBoxes
from mixdvae.metrics.sequence import evaluate_mot_sequences
from mixdvae.tracking.sequence import SEQUENCE_METHODS, SequenceConfig, track_sequence

__all__ = ["BENCH_DETECTOR", "SequenceBenchSpec", "bench_detections", "run_sequence_bench", "format_sequence_tables"]

log = logging.getLogger(__name__)

BENCH_DETECTOR = SimulatedDetector(false_positives_per_frame=2.0)
"""The simulated MOT17 detector of the benchmark: the defaults plus two false positives per frame."""

_LABELS = {"mixdvae": "MixDVAE", "vkf": "VKF", "kalman": "Kalman", "sort": "SORT", "ocsort": "OC-SORT", "bytetrack": "ByteTrack"}


@dataclasses.dataclass(frozen=True)
class SequenceBenchSpec:
    """What to run: data folders (``{name: (train folder, detections)}``), methods, config, seed."""

    datasets: dict
    methods: tuple[str, ...] = SEQUENCE_METHODS
    config: SequenceConfig = dataclasses.field(default_factory=SequenceConfig)
    seed: int = 0
    device: str = "cpu"


def bench_detections(seq, seed: int):
    """The sequence's det.txt, or simulated detections (``BENCH_DETECTOR``, seeded) where it has none."""
    if seq.det is not None:
        return seq.det, "public det.txt"
    if seq.gt is None:
        raise DataFormatError(f"{seq.path}: neither det/det.txt nor gt/gt.txt")
    return simulate_detections(seq.gt, seq.info, BENCH_DETECTOR, rng=np.random.default_rng(seed)), "simulated (seeded)"


def _sequence_boxes(seq, tracks) -> SequenceBoxes:
    gt = seq.gt.select(seq.gt.considered)
    L = seq.info.seq_length

    def split(frames, values):
        order = np.argsort(frames, kind="stable")
        cuts = np.searchsorted(frames[order], np.arange(1, L + 2))
        return [values[order][cuts[t]:cuts[t + 1]] for t in range(L)]

    return SequenceBoxes(split(gt.frame, gt.id), split(gt.frame, gt.boxes), split(tracks.frames, tracks.ids),
                         split(tracks.frames, tracks.boxes), seq.info.name)


def run_sequence_bench(spec: SequenceBenchSpec, progress: bool = False,
                       on_cell: Callable[[dict], None] | None = None) -> dict:
    """Track and score; returns ``{dataset: {"detections", "sequences", "methods": {m: {...}}}}``.
    ``on_cell`` is called with the result so far after every dataset (the CLI saves the JSON there)."""
    from tqdm.auto import tqdm

    model = None
    if "mixdvae" in spec.methods:
        from mixdvae.tracking.sequence import load_sequence_prior

        model = load_sequence_prior("mixdvae", None, spec.device)
    out: dict = {}
    for name, folder in spec.datasets.items():
        folder = Path(folder)
        dirs = sorted(p for p in folder.iterdir() if (p / "seqinfo.ini").is_file()) if folder.is_dir() else []
        if not dirs:
            raise DataFormatError(f"{folder}: no sequence folders (with seqinfo.ini) found")
        seqs = [read_sequence(d) for d in dirs]
        dets = [bench_detections(s, spec.seed) for s in seqs]
        entry = {"detections": sorted({kind for _, kind in dets}), "sequences": [s.info.name for s in seqs], "methods": {}}
        for method in spec.methods:
            boxes, seconds, frames = [], [], []
            for seq, (det, _) in tqdm(list(zip(seqs, dets)), desc=f"{name} {method}", disable=not progress, unit="seq"):
                tracks = track_sequence(det, seq.info, method, spec.config, device=spec.device, seed=spec.seed, model=model)
                boxes.append(_sequence_boxes(seq, tracks))
                seconds.append(tracks.seconds)
                frames.append(tracks.num_frames)
            scores = evaluate_mot_sequences(boxes, tool="trackeval")
            per_seq = []
            for row, s, f in zip(scores.per_window, seconds, frames):
                per_seq.append({**{k: v for k, v in row.items() if k not in ("window", "frames")}, "frames": f,
                                "seconds": s, "fps": f / s if s > 0 else None})
            entry["methods"][method] = {
                "overall": scores.overall,
                "per_sequence": per_seq,
                "frames": int(sum(frames)),
                "seconds": float(sum(seconds)),
                "fps": float(sum(frames) / sum(seconds)) if sum(seconds) > 0 else None,
                "fps_median": float(statistics.median(f / s for f, s in zip(frames, seconds) if s > 0)) if any(seconds) else None,
            }
        out[name] = entry
        if on_cell is not None:
            on_cell(out)
    return out


def _cell(v) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def format_sequence_tables(result: dict) -> str:
    """Markdown: per data set, one row per method (all sequences combined), then per sequence."""
    keys = ("HOTA", "MOTA", "IDF1", "MOTP", "IDS", "FP", "FN")
    head = "| Method | HOTA↑ | MOTA↑ | IDF1↑ | MOTP↑ | #IDS↓ | #FP↓ | #FN↓ | fps (all) | fps (median) |"
    lines = []
    for name, entry in result.items():
        if not isinstance(entry, dict) or "methods" not in entry:
            continue
        lines += ["", f"### {name} ({', '.join(entry['detections'])} detections), all sequences combined, TrackEval", "",
                  head, "|---|" + "---|" * 9]
        for m, r in entry["methods"].items():
            o = r["overall"]
            lines.append(f"| {_LABELS.get(m, m)} | " + " | ".join(_cell(o[k]) for k in keys)
                         + f" | {_cell(r['fps'] and round(r['fps']))} | {_cell(r['fps_median'] and round(r['fps_median']))} |")
        methods = list(entry["methods"])
        lines += ["", f"Per sequence ({name}), IDF1 / HOTA / MOTA:", "",
                  "| Sequence | " + " | ".join(_LABELS.get(m, m) for m in methods) + " |", "|---|" + "---|" * len(methods)]
        for i, seq in enumerate(entry["sequences"]):
            cells = []
            for m in methods:
                row = entry["methods"][m]["per_sequence"][i]
                cells.append(f"{row['IDF1']:.1f} / {row['HOTA']:.1f} / {row['MOTA']:.1f}")
            lines.append(f"| {seq} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
