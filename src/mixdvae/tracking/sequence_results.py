"""Tracks of a whole sequence: the rows of a MOTChallenge result file, plus a summary.

Every sequence tracker (MixDVAE, VKF, Kalman, SORT, OC-SORT, ByteTrack) returns a
:class:`SequenceTracks`; :func:`write_sequence_tracks` writes the result file
(``frame,id,x,y,w,h,conf,-1,-1,-1``, 1-based frames) and the JSON summary, both atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixdvae.data.mot import write_mot_results
from mixdvae.utils.io import write_json

__all__ = ["SequenceTracks", "write_sequence_tracks"]


@dataclass(frozen=True)
class SequenceTracks:
    """One row per reported box.

    Shape: frames (M,) int 1-based, ids (M,) int >= 1, boxes (M, 4) pixel xyxy, conf (M,).
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    conf: np.ndarray
    method: str
    sequence: str
    num_frames: int
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def num_tracks(self) -> int:
        return int(np.unique(self.ids).size)

    @property
    def fps(self) -> float:
        return self.num_frames / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> dict:
        """JSON-ready summary: method, sequence, frames, tracks, boxes, seconds, fps, config."""
        return {
            "method": self.method,
            "sequence": self.sequence,
            "num_frames": int(self.num_frames),
            "num_tracks": self.num_tracks,
            "num_boxes": int(self.frames.shape[0]),
            "seconds": float(self.seconds),
            "fps": float(self.fps) if np.isfinite(self.fps) else None,
            "config": self.config,
        }


def write_sequence_tracks(path: str | Path, tracks: SequenceTracks, summary_path: str | Path | None = None) -> tuple[Path, Path]:
    """Write the MOTChallenge result file and its JSON summary (default: ``path`` + ``.json``)."""
    path = Path(path)
    summary_path = Path(summary_path) if summary_path is not None else path.with_name(path.name + ".json")
    write_mot_results(path, tracks.frames, tracks.ids, tracks.boxes, tracks.conf)
    write_json(summary_path, tracks.summary())
    return path, summary_path
