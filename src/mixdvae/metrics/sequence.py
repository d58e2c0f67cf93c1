"""Score MOTChallenge result files of whole sequences against their ground truth (TrackEval by default).

The ground truth keeps the boxes the MOTChallenge evaluation scores (flag 1 and, for MOT16/17,
class 1: :attr:`mixdvae.data.mot.MotBoxes.considered`); no preprocessing removes hypotheses that
match distractors (MOT17 classes 2, 7, 8, 12), so FP counts on MOT17 are slightly pessimistic
compared to the official devkit. Hypothesis ids must be unique within a frame.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mixdvae.data.mot import MotBoxes, SeqInfo
from mixdvae.errors import DataFormatError
from mixdvae.metrics.mot import SequenceBoxes, TrackingScores, evaluate_sequences

__all__ = ["mot_sequence_boxes", "evaluate_mot_sequences"]


def _per_frame(frames: np.ndarray, values: np.ndarray, length: int) -> list[np.ndarray]:
    order = np.argsort(frames, kind="stable")
    cuts = np.searchsorted(frames[order], np.arange(1, length + 2))
    v = values[order]
    return [v[cuts[t]:cuts[t + 1]] for t in range(length)]


def mot_sequence_boxes(gt: MotBoxes, result: MotBoxes, info: SeqInfo) -> SequenceBoxes:
    """Per-frame ground truth (considered boxes only) and hypotheses of one sequence.

    Raises:
        DataFormatError: a hypothesis id appears twice in one frame of the result file.
    """
    truth = gt.select(gt.considered)
    key = result.frame.astype(np.int64) * (int(result.id.max(initial=0)) + 1) + result.id
    uniq, counts = np.unique(key, return_counts=True)
    if (counts > 1).any():
        row = int(np.flatnonzero(key == uniq[counts > 1][0])[1])
        raise DataFormatError(f"{result.source}: id {int(result.id[row])} appears twice in frame {int(result.frame[row])}")
    L = info.seq_length
    return SequenceBoxes(
        gt_ids=_per_frame(truth.frame, truth.id, L), gt_boxes=_per_frame(truth.frame, truth.boxes, L),
        hyp_ids=_per_frame(result.frame, result.id, L), hyp_boxes=_per_frame(result.frame, result.boxes, L),
        name=info.name,
    )


def evaluate_mot_sequences(sequences: Sequence[SequenceBoxes], tool: str = "trackeval") -> TrackingScores:
    """Overall (counts summed, ratios recomputed; HOTA combined by TrackEval) and per-sequence scores."""
    return evaluate_sequences(list(sequences), tool=tool)
