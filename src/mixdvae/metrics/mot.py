"""Tracking evaluation: CLEAR MOT, IDF1 and HOTA at IoU 0.5, for windows and whole sequences.

Ground-truth object n of a window has id n; the hypotheses are the N estimated source boxes, and
:func:`hypothesis_labels` gives them their ids under one of two protocols:

- ``"standard"``: the id of estimate n is n, the source index. A source that jumps from one
  person to another is an identity switch.
- ``"paper"``: the original work's labelling (reference-implementation.md section 5.1). The
  estimate in column j is labelled with the source that best explains the detection of
  ground-truth object j, argmax_n η_{t,k*,n} with o_{t,k*} that detection. It **cannot see
  identity switches**: when two sources swap people, the detections' posteriors swap with them,
  and the labels follow the people instead of the sources (0 switches, IDF1 100 where the
  standard protocol reports 2 switches). A missed detection gives label 0, as ``np.argmax`` of the
  original's all-NaN η row does, so two columns may share an id; a person whose label is not 0
  then switches to 0 and back, up to 2 switches per run of missed detections even when the
  estimate is right. Use it only to compare with the published tables.

Four tools give the counts:

- ``"native"`` (default): :mod:`mixdvae.metrics.clear` with motmetrics' matching rule; vectorised,
  about 100 times faster than motmetrics and equal to it on every count;
- ``"native-trackeval"``: the same code with TrackEval's CLEAR and identity rules, equal to
  TrackEval on every count (no HOTA);
- ``"motmetrics"`` (1.4.0, the original work's tool) and ``"trackeval"`` (1.3.0, the only one with
  HOTA), through :mod:`mixdvae.metrics.mot_tools`.

motmetrics and TrackEval disagree in two places (details in :mod:`mixdvae.metrics.clear`): which
earlier pair a match may continue (any earlier frame, or the previous frame only), which changes
IDS, FP and FN in crowds when an object comes back after an unmatched frame, and MT at exactly
80 % tracked (>= 0.8 or > 0.8). With a repeated id in a frame (paper protocol), motmetrics counts
every hypothesis box in IDF1 and TrackEval each id once per frame, so their IDF1 differ there.
Windows and sequences combine as both libraries combine sequences: counts are summed and the
ratios recomputed.

Scores are reported in percent: MOTA, MOTP (the **mean IoU** of matched pairs, not motmetrics'
mean distance 1 - IoU), IDF1 and HOTA (``None`` unless ``tool="trackeval"``); IDS, MT, ML, FP and
FN are counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mixdvae.data.boxes import box_iou
from mixdvae.metrics.clear import MotCounts, MotFrames, clear_mot_counts, combine_counts
from mixdvae.metrics.mot_tools import motmetrics_counts, trackeval_counts

__all__ = [
    "PROTOCOLS",
    "TOOLS",
    "SCORE_KEYS",
    "SequenceBoxes",
    "TrackingScores",
    "hypothesis_labels",
    "window_frames",
    "sequence_frames",
    "evaluate_frames",
    "evaluate_windows",
    "evaluate_sequences",
]

PROTOCOLS = ("standard", "paper")
TOOLS = ("native", "native-trackeval", "motmetrics", "trackeval")
SCORE_KEYS = ("MOTA", "MOTP", "IDF1", "HOTA", "IDS", "MT", "ML", "FP", "FN")
_HEADERS = ("MOTA↑", "MOTP↑", "IDF1↑", "HOTA↑", "#IDS↓", "MT↑", "ML↓", "#FP↓", "#FN↓")


def hypothesis_labels(eta: np.ndarray, det_gt_index: np.ndarray, protocol: str) -> np.ndarray:
    """Hypothesis id of each estimate column.

    standard: L_tn = n.  paper: L_tj = argmax_n η_{t,k*,n} where det_gt_index_{t,k*} = j (the
    first such k), and L_tj = 0 where ground-truth object j has no detection at frame t. NaN rows
    of η also give 0 (``np.argmax`` semantics, as in the original code).

    Shape:
        eta: (..., T, K, N), det_gt_index: (..., T, K) -> labels (..., T, N) int64
    """
    eta = np.asarray(eta)
    *lead, T, K, N = eta.shape
    if protocol == "standard":
        return np.broadcast_to(np.arange(N, dtype=np.int64), (*lead, T, N)).copy()
    if protocol != "paper":
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    det_gt_index = np.asarray(det_gt_index)
    if det_gt_index.shape != eta.shape[:-1]:
        raise ValueError(f"det_gt_index {det_gt_index.shape} does not match eta {eta.shape}[:-1]")
    is_det_of = det_gt_index[..., :, None] == np.arange(N)  # (..., T, K, N): k detects gt j
    k_star = is_det_of.argmax(axis=-2)  # (..., T, N) first detection of gt j
    has_det = is_det_of.any(axis=-2)  # (..., T, N)
    best = np.argmax(eta, axis=-1)  # (..., T, K) source that best explains detection k
    labels = np.take_along_axis(best, k_star, axis=-1)  # (..., T, N)
    return np.where(has_det, labels, 0).astype(np.int64)


def window_frames(gt: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> MotFrames:
    """Windows as :class:`MotFrames`: gt object n has id n, estimate column n has id labels[.., n].

    NaN boxes are absent (no object, no hypothesis on that frame).

    Shape:
        gt: (W, T, N, 4), boxes: (W, T, M, 4) xyxy in the same units, labels: (W, T, M)
    """
    gt, boxes = np.asarray(gt, dtype=np.float64), np.asarray(boxes, dtype=np.float64)
    W, T, N, _ = gt.shape
    if boxes.ndim != 4 or boxes.shape[:2] != (W, T) or boxes.shape[3] != 4:
        raise ValueError(f"boxes {boxes.shape} do not match gt {gt.shape} as (W, T, M, 4)")
    if np.shape(labels) != boxes.shape[:3]:
        raise ValueError(f"labels {np.shape(labels)} do not match boxes {boxes.shape}[:3]")
    gt_ids = np.where(np.isnan(gt).any(-1), -1, np.arange(N))  # (W, T, N)
    hyp_ids = np.where(np.isnan(boxes).any(-1), -1, labels)  # (W, T, M)
    return MotFrames.build(gt_ids, hyp_ids, box_iou(gt, boxes))  # iou (W, T, N, M)


@dataclass(frozen=True)
class SequenceBoxes:
    """One sequence as per-frame lists, any number of objects per frame.

    Shape:
        gt_ids[t]: (G_t,) ints, gt_boxes[t]: (G_t, 4) xyxy; hyp_ids[t]: (H_t,), hyp_boxes[t]: (H_t, 4)
    """

    gt_ids: Sequence[np.ndarray]
    gt_boxes: Sequence[np.ndarray]
    hyp_ids: Sequence[np.ndarray]
    hyp_boxes: Sequence[np.ndarray]
    name: str = ""


def sequence_frames(sequences: Sequence[SequenceBoxes]) -> MotFrames:
    """Pad per-frame lists to (S, T, G) / (S, T, H) arrays, -1 in empty slots and NaN boxes."""
    S = len(sequences)
    for seq in sequences:
        if not len(seq.gt_ids) == len(seq.gt_boxes) == len(seq.hyp_ids) == len(seq.hyp_boxes):
            raise ValueError(f"sequence {seq.name!r}: the four per-frame lists differ in length")
    T = max((len(seq.gt_ids) for seq in sequences), default=0)
    G = max((len(g) for seq in sequences for g in seq.gt_ids), default=0)
    H = max((len(h) for seq in sequences for h in seq.hyp_ids), default=0)
    gt_ids = np.full((S, T, G), -1, dtype=np.int64)
    hyp_ids = np.full((S, T, H), -1, dtype=np.int64)
    gt_boxes = np.full((S, T, G, 4), np.nan)
    hyp_boxes = np.full((S, T, H, 4), np.nan)
    for s, seq in enumerate(sequences):
        for t in range(len(seq.gt_ids)):
            g, h = len(seq.gt_ids[t]), len(seq.hyp_ids[t])
            gt_ids[s, t, :g] = seq.gt_ids[t]
            hyp_ids[s, t, :h] = seq.hyp_ids[t]
            gt_boxes[s, t, :g] = np.asarray(seq.gt_boxes[t], dtype=np.float64).reshape(g, 4)
            hyp_boxes[s, t, :h] = np.asarray(seq.hyp_boxes[t], dtype=np.float64).reshape(h, 4)
    if (gt_ids < -1).any() or (hyp_ids < -1).any():
        raise ValueError("ids must be non-negative")
    gt_ids[np.isnan(gt_boxes).any(-1)] = -1  # NaN boxes are absent, as in window_frames
    hyp_ids[np.isnan(hyp_boxes).any(-1)] = -1
    return MotFrames.build(gt_ids, hyp_ids, box_iou(gt_boxes, hyp_boxes))


def _scores(counts: MotCounts, hota: float | None) -> dict:
    return {
        "MOTA": 100.0 * counts.mota,
        "MOTP": 100.0 * counts.motp,
        "IDF1": 100.0 * counts.idf1,
        "HOTA": None if hota is None else 100.0 * hota,
        "IDS": counts.ids,
        "MT": counts.mt,
        "ML": counts.ml,
        "FP": counts.fp,
        "FN": counts.fn,
    }


def evaluate_frames(
    frames: MotFrames, tool: str = "native", iou_threshold: float = 0.5
) -> tuple[dict, list[dict]]:
    """Overall scores and one score dict per sequence of ``frames`` (keys :data:`SCORE_KEYS`)."""
    if tool == "native":
        counts, hota_seq, hota_all = clear_mot_counts(frames, iou_threshold, "motmetrics"), None, None
    elif tool == "native-trackeval":
        counts, hota_seq, hota_all = clear_mot_counts(frames, iou_threshold, "trackeval"), None, None
    elif tool == "motmetrics":
        counts, hota_seq, hota_all = motmetrics_counts(frames, iou_threshold), None, None
    elif tool == "trackeval":
        counts, hota_seq, hota_all = trackeval_counts(frames, iou_threshold)
    else:
        raise ValueError(f"tool must be one of {TOOLS}, got {tool!r}")
    rows = [_scores(c, None if hota_seq is None else hota_seq[s]) for s, c in enumerate(counts)]
    return _scores(combine_counts(counts), hota_all), rows


def evaluate_windows(
    boxes: np.ndarray,
    gt: np.ndarray,
    *,
    eta: np.ndarray | None = None,
    det_gt_index: np.ndarray | None = None,
    protocol: str = "standard",
    tool: str = "native",
    sequence: Sequence[str] | None = None,
    frames: np.ndarray | None = None,
    iou_threshold: float = 0.5,
) -> "TrackingScores":
    """Score estimated source boxes against the ground truth of W windows.

    ``eta`` and ``det_gt_index`` are needed by the paper protocol only. ``sequence`` and
    ``frames`` label the per-window rows.

    Shape:
        boxes, gt: (W, T, N, 4) xyxy (same units); eta: (W, T, K, N); det_gt_index: (W, T, K);
        sequence: (W,); frames: (W, 2)
    """
    boxes, gt = np.asarray(boxes), np.asarray(gt)
    if boxes.shape != gt.shape or gt.ndim != 4 or gt.shape[-1] != 4:
        raise ValueError(f"boxes {boxes.shape} and gt {gt.shape} must both be (W, T, N, 4)")
    W, T, N, _ = gt.shape
    if protocol == "paper":
        if eta is None or det_gt_index is None:
            raise ValueError("the paper protocol needs eta and det_gt_index")
        if np.shape(eta)[:2] != (W, T) or np.shape(eta)[3:] != (N,):
            raise ValueError(f"eta {np.shape(eta)} does not match boxes {boxes.shape} as (W, T, K, N)")
        labels = hypothesis_labels(eta, det_gt_index, protocol)
    elif protocol == "standard":
        labels = np.broadcast_to(np.arange(N), (W, T, N))
    else:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    overall, rows = evaluate_frames(window_frames(gt, boxes, labels), tool, iou_threshold)
    per_window = []
    for w, row in enumerate(rows):
        head = {
            "window": w,
            "sequence": None if sequence is None else str(sequence[w]),
            "frames": None if frames is None else [int(f) for f in np.asarray(frames[w])],
        }
        per_window.append({**head, **row})
    return TrackingScores(overall, per_window, protocol, tool)


def evaluate_sequences(
    sequences: Sequence[SequenceBoxes], *, tool: str = "native", iou_threshold: float = 0.5
) -> "TrackingScores":
    """Score whole sequences whose hypotheses already carry ids (``protocol="given"``)."""
    overall, rows = evaluate_frames(sequence_frames(sequences), tool, iou_threshold)
    per_seq = [
        {"window": s, "sequence": seq.name, "frames": [0, len(seq.gt_ids)], **row}
        for s, (seq, row) in enumerate(zip(sequences, rows))
    ]
    return TrackingScores(overall, per_seq, "given", tool)


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class TrackingScores:
    """Overall and per-window scores (keys :data:`SCORE_KEYS`), with protocol and tool."""

    overall: dict
    per_window: list[dict]
    protocol: str
    tool: str

    def table(self, per_window: bool = False) -> str:
        """Markdown table in the paper-results.md layout; one row per window if asked."""
        lines = [
            "| Protocol | Tool | " + " | ".join(_HEADERS) + " |",
            "|---|---|" + "---|" * len(_HEADERS),
            f"| {self.protocol} | {self.tool} | "
            + " | ".join(_cell(self.overall[k]) for k in SCORE_KEYS) + " |",
        ]
        if per_window:
            lines += ["", "| Window | Sequence | Frames | " + " | ".join(_HEADERS) + " |",
                      "|---|---|---|" + "---|" * len(_HEADERS)]
            for row in self.per_window:
                frames = "-" if row["frames"] is None else "{}-{}".format(*row["frames"])
                lines.append(
                    f"| {row['window']} | {row['sequence'] or '-'} | {frames} | "
                    + " | ".join(_cell(row[k]) for k in SCORE_KEYS) + " |"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """``{"overall", "per_window", "protocol", "tool"}``, JSON-serialisable."""
        return {
            "overall": dict(self.overall),
            "per_window": [dict(r) for r in self.per_window],
            "protocol": self.protocol,
            "tool": self.tool,
        }

    def json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)
