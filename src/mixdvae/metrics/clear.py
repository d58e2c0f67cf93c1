"""Native CLEAR-MOT and identity (IDF1) counts, vectorised over sequences.

CLEAR MOT (Bernardin and Stiefelhagen 2008) matches ground-truth objects to hypotheses frame by
frame, pairs with IoU >= 0.5 only, preferring to continue earlier pairs. Two libraries implement
the continuation differently, and both rules are available here (we cite them, never copy):

- ``rule="motmetrics"``, py-motmetrics 1.4.0 (``motmetrics/mot.py::MOTAccumulator.update``),
  the tool of the original MixDVAE evaluation:

  1. *Keep established pairs.* For each object o, in slot order, last matched to hypothesis h
     **on any earlier frame**, the first unused slot of this frame labelled h is matched to o
     again if their distance d = 1 - IoU is valid (d <= 1 - threshold).
  2. *Hungarian* on what is left: a maximum number of valid pairs of least total distance
     (scipy's ``linear_sum_assignment`` on the frame matrix, invalid pairs replaced by
     motmetrics' large constant 2 r c + 1, so that ties break as in motmetrics).
  3. MT: matched on >= 80 % of its frames; ML: < 20 %.

- ``rule="trackeval"``, TrackEval 1.3.0 (``trackeval/metrics/clear.py::CLEAR.eval_sequence``):
  one Hungarian per frame maximising 1000 [h continues o's pair **from the previous frame**] + IoU
  over pairs with IoU >= threshold - eps (the previous frame is the last one that had both
  objects and hypotheses). MT: matched on > 80 % of its frames; ML: < 20 %.

The rules differ only when an object loses its hypothesis for a frame and another valid
hypothesis competes for it when it comes back (crowds), and at exactly 80 % tracked.

Either way, an object matched to another hypothesis than its last one (any number of frames
before) is an **identity switch** (IDS); unmatched objects are misses (FN), unmatched hypotheses
false positives (FP). With TP the matched pairs and G the ground-truth boxes:
MOTA = 1 - (FN + FP + IDS) / G, MOTP = Σ IoU over matched pairs / TP (mean IoU; motmetrics' own
MOTP is the mean distance 1 - IoU).

Identity measures (Ristani et al. 2016): IDTP = max over one-to-one pairings of object ids with
hypothesis ids of Σ c(o, h), where c(o, h) counts the frames (motmetrics: the box pairs) where o
and h overlap validly; IDFN = G - IDTP, IDFP = P - IDTP, IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN).
P counts hypothesis boxes (motmetrics) or, per id, the frames it appears on (TrackEval). This is
the optimum of both libraries' min-cost formulations, whose cost is G + P - 2 Σ c. The two counts
differ only when one id labels two boxes of a frame (the paper protocol's missed detections).

Frames without a conflict (no object or hypothesis with two valid partners left to choose from)
have a unique maximum matching and need no solver; only conflicted frames call scipy. The loop
runs over frames; everything inside is vectorised over the S sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["RULES", "MotCounts", "MotFrames", "compact_ids", "clear_mot_counts", "combine_counts"]

RULES = ("motmetrics", "trackeval")
_EPS = float(np.finfo(float).eps)  # TrackEval's slack on thresholds


@dataclass(frozen=True)
class MotCounts:
    """Summable counts of one sequence (or of several, by :func:`combine_counts`).

    ``iou_sum`` is Σ IoU over the TP matched pairs.
    """

    num_gt: int
    num_hyp: int
    tp: int
    fp: int
    fn: int
    ids: int
    mt: int
    pt: int
    ml: int
    iou_sum: float
    idtp: int
    idfp: int
    idfn: int

    @property
    def mota(self) -> float:
        """MOTA = 1 - (FN + FP + IDS) / G (TrackEval: (TP - FP - IDS) / max(1, TP + FN))."""
        return 1.0 - (self.fn + self.fp + self.ids) / max(1, self.num_gt)

    @property
    def motp(self) -> float:
        """Mean IoU of matched pairs, Σ IoU / max(1, TP) (0 without matches, as in TrackEval)."""
        return self.iou_sum / max(1, self.tp)

    @property
    def idf1(self) -> float:
        """IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN)."""
        return 2 * self.idtp / max(1, 2 * self.idtp + self.idfp + self.idfn)


def combine_counts(counts: list[MotCounts]) -> MotCounts:
    """Sum the counts of several sequences; the ratios are recomputed from the sums, as both
    motmetrics (``compute_many(generate_overall=True)``) and TrackEval (``combine_sequences``) do."""
    return MotCounts(**{f.name: sum(getattr(c, f.name) for c in counts) for f in fields(MotCounts)})


@dataclass(frozen=True)
class MotFrames:
    """Ground truth and hypotheses of S sequences, padded to T frames and G / H slots per frame.

    Ids are compact per sequence (0 .. num_gt_ids[s] - 1, see :func:`compact_ids`); -1 marks an
    empty slot. Ground-truth ids are unique within a frame; hypothesis ids may repeat.

    Shape:
        gt_ids: (S, T, G) int64; hyp_ids: (S, T, H) int64; iou: (S, T, G, H) float64 (any value
        where a slot is empty); num_gt_ids, num_hyp_ids: (S,) int64.
    """

    gt_ids: np.ndarray
    hyp_ids: np.ndarray
    iou: np.ndarray
    num_gt_ids: np.ndarray
    num_hyp_ids: np.ndarray

    @classmethod
    def build(cls, gt_ids: np.ndarray, hyp_ids: np.ndarray, iou: np.ndarray) -> "MotFrames":
        """Compact arbitrary non-negative ids (-1 = empty) and check shapes and uniqueness."""
        gt_ids = np.asarray(gt_ids, dtype=np.int64)
        hyp_ids = np.asarray(hyp_ids, dtype=np.int64)
        iou = np.asarray(iou, dtype=np.float64)
        if gt_ids.ndim != 3 or hyp_ids.ndim != 3 or iou.shape != gt_ids.shape + hyp_ids.shape[2:]:
            raise ValueError(
                f"expected gt_ids (S, T, G), hyp_ids (S, T, H), iou (S, T, G, H); got "
                f"{gt_ids.shape}, {hyp_ids.shape}, {iou.shape}"
            )
        g_compact, num_g = compact_ids(gt_ids)
        h_compact, num_h = compact_ids(hyp_ids)
        srt = np.sort(g_compact, axis=-1)  # (S, T, G): a repeated id shows as equal neighbours
        dup = (srt[..., 1:] == srt[..., :-1]) & (srt[..., 1:] >= 0)
        if dup.any():
            s, t, _ = np.argwhere(dup)[0]
            raise ValueError(f"sequence {s}, frame {t}: a ground-truth id appears twice")
        return cls(g_compact, h_compact, iou, num_g, num_h)


def compact_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map the non-negative ids of each sequence onto 0 .. U_s - 1 in sorted order; -1 stays -1.

    Shape:
        ids: (S, ...) -> compact ids (S, ...), counts U: (S,)
    """
    ids = np.asarray(ids, dtype=np.int64)
    S = ids.shape[0]
    flat = ids.reshape(S, -1)  # (S, T * G)
    present = flat >= 0
    span = max(int(flat.max(initial=-1)) + 1, 1)
    key = np.arange(S)[:, None] * span + flat  # unique across sequences
    uniq, inverse = np.unique(key[present], return_inverse=True)
    seq_of = uniq // span
    counts = np.bincount(seq_of, minlength=S).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])  # index of each sequence's first id
    out = np.full_like(flat, -1)
    out[present] = inverse - first[seq_of[inverse]]
    return out.reshape(ids.shape), counts


def _expensive_edges(dist: np.ndarray) -> np.ndarray:
    """Invalid (NaN) entries -> 2 r c + 1 with c = max |valid| + 1, r = min(shape): motmetrics'
    ``lap.add_expensive_edges`` rule, so scipy breaks ties exactly as motmetrics does."""
    valid = np.isfinite(dist)
    if valid.all():
        return dist.copy()
    if not valid.any():
        return np.zeros_like(dist)
    c = np.abs(dist[valid]).max() + 1
    return np.where(valid, dist, 2 * min(dist.shape) * c + 1)


def _solve_motmetrics(dist: np.ndarray) -> list[tuple[int, int]]:
    """Valid pairs of motmetrics' min-cost assignment of one frame; NaN = not matchable."""
    if dist.size == 0:
        return []
    rows, cols = linear_sum_assignment(_expensive_edges(dist))
    return [(int(i), int(j)) for i, j in zip(rows, cols) if np.isfinite(dist[i, j])]


def _solve_trackeval(score: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of TrackEval's max-score assignment of one frame with a positive score."""
    rows, cols = linear_sum_assignment(-score)
    return [(int(i), int(j)) for i, j in zip(rows, cols) if score[i, j] > _EPS]


def clear_mot_counts(
    frames: MotFrames, iou_threshold: float = 0.5, rule: str = "motmetrics"
) -> list[MotCounts]:
    """CLEAR-MOT and identity counts of each sequence under ``rule`` (module docstring).

    A pair is valid when neither slot is empty and 1 - IoU <= 1 - ``iou_threshold``
    (motmetrics' ``iou_matrix(max_iou=0.5)`` test) or IoU >= ``iou_threshold`` - eps (TrackEval).

    Shape:
        frames: S sequences of T frames (:class:`MotFrames`) -> S counts.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    gt, hyp, iou = frames.gt_ids, frames.hyp_ids, frames.iou
    S, T, G = gt.shape
    H = hyp.shape[2]
    gt_on, hyp_on = gt >= 0, hyp >= 0
    both_on = gt_on[..., None] & hyp_on[..., None, :]  # (S, T, G, H)
    if rule == "motmetrics":
        valid = both_on & (1.0 - iou <= 1.0 - iou_threshold)
    else:
        valid = both_on & (iou >= iou_threshold - _EPS)
    U_o = max(int(frames.num_gt_ids.max(initial=0)), 1)
    rows = np.arange(S)

    last = np.full((S, U_o), -1, dtype=np.int64)  # last matched hypothesis id, for IDS
    cont = np.full((S, U_o), -1, dtype=np.int64)  # pair to continue: motmetrics = last
    tracked = np.zeros((S, U_o), dtype=np.int64)  # frames on which each object was matched
    ids_sw = np.zeros(S, dtype=np.int64)
    tp = np.zeros(S, dtype=np.int64)
    iou_sum = np.zeros(S)
    for t in range(T):
        o, h, v = gt[:, t], hyp[:, t], valid[:, t]  # (S, G), (S, H), (S, G, H)
        col = np.full((S, G), -1, dtype=np.int64)  # matched hypothesis slot of each object slot
        rest = v
        if rule == "motmetrics":  # 1. keep established pairs, object slots in order
            h_used = np.zeros((S, H), dtype=bool)
            for i in range(G):
                prev = np.where(o[:, i] >= 0, last[rows, o[:, i].clip(0)], -1)  # (S,)
                cand = ~h_used & (h == prev[:, None]) & (prev >= 0)[:, None]  # (S, H)
                j = cand.argmax(axis=1)  # first unused slot with that label
                keep = cand[rows, j] & v[rows, i, j]
                h_used[keep, j[keep]] = True
                col[keep, i] = j[keep]
            rest = v & (col < 0)[:, :, None] & ~h_used[:, None, :]
        # 2. unique when every object and hypothesis has at most one valid partner left
        conflict = (rest.sum(axis=2) > 1).any(axis=1) | (rest.sum(axis=1) > 1).any(axis=1)
        simple = rest & ~conflict[:, None, None]
        has = simple.any(axis=2)  # (S, G)
        col[has] = simple.argmax(axis=2)[has]
        for s in np.flatnonzero(conflict):
            g_on, h_on = np.flatnonzero(gt_on[s, t]), np.flatnonzero(hyp_on[s, t])
            sub = np.ix_(g_on, h_on)
            if rule == "motmetrics":
                pairs = _solve_motmetrics(np.where(rest[s][sub], 1.0 - iou[s, t][sub], np.nan))
            else:
                bonus = h[s, h_on][None, :] == cont[s, o[s, g_on]][:, None]  # (G_t, H_t)
                pairs = _solve_trackeval(np.where(v[s][sub], 1000.0 * bonus + iou[s, t][sub], 0.0))
            for a, b in pairs:
                col[s, g_on[a]] = h_on[b]
        # switches: an object matched to another hypothesis than its last one
        matched = col >= 0
        s_idx, i_idx = np.nonzero(matched)
        j_idx = col[s_idx, i_idx]
        o_m, h_m = o[s_idx, i_idx], h[s_idx, j_idx]
        prev_m = last[s_idx, o_m]
        ids_sw += np.bincount(s_idx[(prev_m >= 0) & (prev_m != h_m)], minlength=S)
        last[s_idx, o_m] = h_m
        if rule == "trackeval":  # continue from this frame only if it had objects and hypotheses
            busy = gt_on[:, t].any(axis=1) & hyp_on[:, t].any(axis=1)
            cont[busy] = -1
            cont[s_idx, o_m] = h_m
        tracked[s_idx, o_m] += 1
        tp += matched.sum(axis=1)
        np.add.at(iou_sum, s_idx, iou[s_idx, t, i_idx, j_idx])

    num_gt = gt_on.sum(axis=(1, 2))
    num_hyp = hyp_on.sum(axis=(1, 2))
    present = np.zeros((S, U_o), dtype=np.int64)  # frames on which each object appears
    s_g = np.broadcast_to(rows[:, None, None], gt.shape)
    np.add.at(present, (s_g[gt_on], gt[gt_on]), 1)
    ratio = np.divide(tracked, present, out=np.zeros((S, U_o)), where=present > 0)
    exists = present > 0
    mt = (exists & ((ratio >= 0.8) if rule == "motmetrics" else (ratio > 0.8))).sum(axis=1)
    ml = (exists & (ratio < 0.2)).sum(axis=1)
    pt = exists.sum(axis=1) - mt - ml
    if rule == "trackeval":  # identity: TrackEval's own threshold, per-frame id counts
        id_valid = both_on & (iou >= iou_threshold)
        idtp, num_pred = _identity_tp(frames, id_valid, per_frame=True)
    else:
        idtp, num_pred = _identity_tp(frames, valid, per_frame=False)
    return [
        MotCounts(
            num_gt=int(num_gt[s]), num_hyp=int(num_hyp[s]), tp=int(tp[s]),
            fp=int(num_hyp[s] - tp[s]), fn=int(num_gt[s] - tp[s]), ids=int(ids_sw[s]),
            mt=int(mt[s]), pt=int(pt[s]), ml=int(ml[s]), iou_sum=float(iou_sum[s]),
            idtp=int(idtp[s]), idfp=int(num_pred[s] - idtp[s]), idfn=int(num_gt[s] - idtp[s]),
        )
        for s in range(S)
    ]


def _identity_tp(frames: MotFrames, valid: np.ndarray, per_frame: bool) -> tuple[np.ndarray, np.ndarray]:
    """IDTP = max over one-to-one id pairings of Σ c(o, h), and the prediction count P.

    ``per_frame``: c counts frames and P counts (frame, id) pairs (TrackEval); otherwise c counts
    box pairs and P boxes (motmetrics).

    Shape: valid (S, T, G, H) -> IDTP (S,), P (S,)
    """
    S, T = valid.shape[:2]
    U_o = max(int(frames.num_gt_ids.max(initial=0)), 1)
    U_h = max(int(frames.num_hyp_ids.max(initial=0)), 1)
    s_i, t_i, g_i, h_i = np.nonzero(valid)
    key = (s_i * U_o + frames.gt_ids[s_i, t_i, g_i]) * U_h + frames.hyp_ids[s_i, t_i, h_i]
    hyp = frames.hyp_ids
    if per_frame:
        key = np.unique(key * T + t_i) // T  # one count per frame and (o, h)
        s_h, t_h, _ = np.nonzero(hyp >= 0)
        seen = np.unique((s_h * T + t_h) * U_h + hyp[hyp >= 0])  # (sequence, frame, id) once
        num_pred = np.bincount(seen // (T * U_h), minlength=S)
    else:
        num_pred = (hyp >= 0).sum(axis=(1, 2))
    overlap = np.bincount(key, minlength=S * U_o * U_h).reshape(S, U_o, U_h)  # c(o, h)
    idtp = np.zeros(S, dtype=np.int64)
    for s in np.flatnonzero(overlap.any(axis=(1, 2))):
        r, c = linear_sum_assignment(overlap[s], maximize=True)
        idtp[s] = overlap[s, r, c].sum()
    return idtp, num_pred
