"""Tracking metrics: parity with TrackEval and motmetrics, hand-computed values, protocols."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixdvae.metrics.mot import (
    SCORE_KEYS,
    SequenceBoxes,
    evaluate_sequences,
    evaluate_windows,
    hypothesis_labels,
)

mm = pytest.importorskip("motmetrics")
te_metrics = pytest.importorskip("trackeval.metrics")

TOLERANCE = 1e-9
"""Largest accepted difference, in percent points (ratios) or counts, between two tools."""

TUD = ("TUD-Campus", "TUD-Stadtmitte")
EXACT_FIELDS = ("MOTA", "IDF1", "IDS", "FP", "FN", "MT", "ML")


def _diverging(ours: dict, ref: dict, keys) -> list[str]:
    return [f"{k}: ours {ours[k]!r} != reference {ref[k]!r}" for k in keys
            if abs(ours[k] - ref[k]) > TOLERANCE]


def _iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Independent IoU of (x, y, w, h) boxes for the references.  (G, 4), (H, 4) -> (G, H)."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2) - np.maximum(a[:, None, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2) - np.maximum(a[:, None, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + b[:, 2] * b[:, 3] - inter
    return inter / union


# ---------------------------------------------------------------------------------------------
# (a) parity with TrackEval on TUD-Campus and TUD-Stadtmitte


def _read_gt(path: Path) -> np.ndarray:
    """gt.txt -> (R, 6) frame, id, x, y, w, h."""
    return np.loadtxt(path, delimiter=",", usecols=range(6))


def _perturbed_tracker(gt: np.ndarray, seed: int) -> np.ndarray:
    """Jitter boxes (10 % of their size), drop 10 % of rows, swap two ids from mid-sequence on,
    add false positives: a tracker output whose metrics are far from trivial."""
    rng = np.random.default_rng(seed)
    trk = gt.copy()
    trk[:, 2:4] += rng.normal(0.0, 0.1, (len(trk), 2)) * trk[:, 4:6]
    trk[:, 4:6] *= np.exp(rng.normal(0.0, 0.1, (len(trk), 2)))
    ids = np.unique(trk[:, 1])
    a, b = ids[0], ids[1]
    late = trk[:, 0] >= np.median(trk[:, 0])
    trk[late & (gt[:, 1] == a), 1] = b
    trk[late & (gt[:, 1] == b), 1] = a
    trk[:, 1] += 1000  # tracker ids are distinct labels
    trk = trk[rng.random(len(trk)) > 0.1]
    frames = np.unique(gt[:, 0])
    fp_frames = rng.choice(frames, size=len(frames) // 4, replace=False)
    fps = np.column_stack([fp_frames, 5000 + np.arange(len(fp_frames)),
                           rng.uniform(0, 500, (len(fp_frames), 2)), np.full((len(fp_frames), 2), 60.0)])
    return np.concatenate([trk, fps])


def _per_frame(rows: np.ndarray, frames: np.ndarray) -> tuple[list, list]:
    ids = [rows[rows[:, 0] == f, 1].astype(np.int64) for f in frames]
    boxes = [rows[rows[:, 0] == f, 2:6] for f in frames]
    return ids, boxes


def _trackeval_reference(gt: np.ndarray, trk: np.ndarray) -> tuple[dict, dict, dict]:
    """TrackEval CLEAR + Identity (+ raw HOTA result) on a data dict built here, from scratch."""
    frames = np.unique(np.concatenate([gt[:, 0], trk[:, 0]]))
    g_ids, g_boxes = _per_frame(gt, frames)
    h_ids, h_boxes = _per_frame(trk, frames)
    g_map = {v: i for i, v in enumerate(np.unique(gt[:, 1]))}
    h_map = {v: i for i, v in enumerate(np.unique(trk[:, 1]))}
    data = {
        "num_timesteps": len(frames),
        "num_gt_ids": len(g_map),
        "num_tracker_ids": len(h_map),
        "num_gt_dets": len(gt),
        "num_tracker_dets": len(trk),
        "gt_ids": [np.array([g_map[i] for i in ids], dtype=int) for ids in g_ids],
        "tracker_ids": [np.array([h_map[i] for i in ids], dtype=int) for ids in h_ids],
        "similarity_scores": [_iou_xywh(a, b) for a, b in zip(g_boxes, h_boxes)],
    }
    cfg = {"PRINT_CONFIG": False}
    return (te_metrics.CLEAR(cfg).eval_sequence(data), te_metrics.Identity(cfg).eval_sequence(data),
            te_metrics.HOTA().eval_sequence(data))


def _sequence_boxes(gt: np.ndarray, trk: np.ndarray, name: str) -> SequenceBoxes:
    frames = np.unique(np.concatenate([gt[:, 0], trk[:, 0]]))
    g_ids, g_boxes = _per_frame(gt, frames)
    h_ids, h_boxes = _per_frame(trk, frames)

    def xyxy(bs):
        return [np.column_stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]]) for b in bs]

    return SequenceBoxes(g_ids, xyxy(g_boxes), h_ids, xyxy(h_boxes), name)


def _as_scores(clear: dict, ident: dict, hota: float | None = None) -> dict:
    return {"MOTA": 100 * clear["MOTA"], "MOTP": 100 * clear["MOTP"], "IDF1": 100 * ident["IDF1"],
            "HOTA": hota, "IDS": clear["IDSW"], "MT": clear["MT"], "ML": clear["ML"],
            "FP": clear["CLR_FP"], "FN": clear["CLR_FN"]}


def _tud(shared_data: Path) -> tuple[list[SequenceBoxes], list[np.ndarray], list[np.ndarray]]:
    seqs, gts, trks = [], [], []
    for s, name in enumerate(TUD):
        gt = _read_gt(shared_data / "MOT15" / "train" / name / "gt" / "gt.txt")
        trk = _perturbed_tracker(gt, seed=s)
        seqs.append(_sequence_boxes(gt, trk, name))
        gts.append(gt)
        trks.append(trk)
    return seqs, gts, trks


def _check_rows(scores, refs: list[dict], overall_ref: dict, keys) -> None:
    problems = [f"{row['sequence']}: {p}" for row, ref in zip(scores.per_window, refs)
                for p in _diverging(row, ref, keys)]
    problems += [f"overall: {p}" for p in _diverging(scores.overall, overall_ref, keys)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("tool", ["native", "native-trackeval", "motmetrics", "trackeval"])
def test_parity_with_trackeval_on_tud(shared_data, tool):
    """Every tool against TrackEval, per sequence and combined.

    The TrackEval-rule tools must agree on every field. The motmetrics-rule tools (``native``,
    ``motmetrics``) continue pairs across unmatched frames, which on this data changes IDS (and so
    MOTA) in TUD-Stadtmitte's crowd; they must agree on everything the matching rule does not
    touch: IDF1 (a global matching) and the ground-truth count behind every ratio.
    """
    seqs, gts, trks = _tud(shared_data)
    raw = {name: _trackeval_reference(gt, trk) for name, gt, trk in zip(TUD, gts, trks)}
    refs = [_as_scores(c, i, 100 * float(np.mean(h["HOTA"]))) for c, i, h in raw.values()]
    cfg = {"PRINT_CONFIG": False}
    combined = _as_scores(
        te_metrics.CLEAR(cfg).combine_sequences({k: v[0] for k, v in raw.items()}),
        te_metrics.Identity(cfg).combine_sequences({k: v[1] for k, v in raw.items()}),
        100 * float(np.mean(te_metrics.HOTA().combine_sequences({k: v[2] for k, v in raw.items()})["HOTA"])),
    )
    assert 0 < combined["IDS"] and 0 < combined["FP"] and 0 < combined["FN"]  # a non-trivial case
    assert 20 < combined["MOTA"] < 90 and 20 < combined["IDF1"] < 95
    scores = evaluate_sequences(seqs, tool=tool)
    if tool in ("native-trackeval", "trackeval"):
        keys = ["MOTA", "MOTP", "IDF1", "IDS", "FP", "FN", "MT", "ML"]
        keys += ["HOTA"] if tool == "trackeval" else []
    else:
        keys = ["IDF1"]
    _check_rows(scores, refs, combined, keys)


def _motmetrics_reference(gt: np.ndarray, trk: np.ndarray):
    """A motmetrics accumulator fed here, from the independent IoU."""
    frames = np.unique(np.concatenate([gt[:, 0], trk[:, 0]]))
    acc = mm.MOTAccumulator(auto_id=True)
    gt_frames, trk_frames = zip(*_per_frame(gt, frames)), zip(*_per_frame(trk, frames))
    for (g_ids, g_boxes), (h_ids, h_boxes) in zip(gt_frames, trk_frames):
        d = 1 - _iou_xywh(g_boxes, h_boxes)
        d[~(d <= 0.5)] = np.nan
        acc.update(g_ids, h_ids, d)
    return acc


def _motmetrics_scores(accs) -> list[dict]:
    """Rows of compute_many(generate_overall=True) in our keys and units; last row OVERALL."""
    summary = mm.metrics.create().compute_many(
        accs, metrics=["mota", "motp", "idf1", "num_switches", "num_false_positives", "num_misses",
                       "mostly_tracked", "mostly_lost"], generate_overall=True)
    return [{"MOTA": 100 * r["mota"], "MOTP": 100 * (1 - r["motp"]), "IDF1": 100 * r["idf1"],
             "IDS": r["num_switches"], "FP": r["num_false_positives"], "FN": r["num_misses"],
             "MT": r["mostly_tracked"], "ML": r["mostly_lost"]} for _, r in summary.iterrows()]


@pytest.mark.parametrize("tool", ["native", "motmetrics"])
def test_parity_with_motmetrics_on_tud(shared_data, tool):
    """The motmetrics-rule tools against motmetrics' own accumulators and OVERALL row."""
    seqs, gts, trks = _tud(shared_data)
    refs = _motmetrics_scores([_motmetrics_reference(gt, trk) for gt, trk in zip(gts, trks)])
    scores = evaluate_sequences(seqs, tool=tool)
    _check_rows(scores, refs[:-1], refs[-1], ["MOTA", "MOTP", "IDF1", "IDS", "FP", "FN", "MT", "ML"])


def test_continuation_rules_differ_after_an_unmatched_frame():
    """Person 0 tracked by A; frame 1: A missing; frame 2: A and B both overlap person 0, B more.

    motmetrics continues the pair (0, A) from frame 0: no switch. TrackEval only continues pairs
    from the previous frame, so its Hungarian takes B (higher IoU): one switch (A -> B).
    """
    box = np.array([[0.0, 0.0, 10.0, 10.0]])
    a_box, b_box = np.array([[0.0, 0.0, 10.0, 13.0]]), np.array([[0.0, 0.0, 10.0, 11.0]])
    other = np.array([[100.0, 100.0, 110.0, 110.0]])  # person 1 keeps hypothesis C: frame 1 is busy
    seq = SequenceBoxes(
        gt_ids=[np.array([0, 1])] * 3,
        gt_boxes=[np.concatenate([box, other])] * 3,
        hyp_ids=[np.array([0, 2]), np.array([2]), np.array([0, 1, 2])],
        hyp_boxes=[np.concatenate([a_box, other]), other, np.concatenate([a_box, b_box, other])],
    )
    for tool, ids in [("native", 0), ("motmetrics", 0), ("native-trackeval", 1), ("trackeval", 1)]:
        s = evaluate_sequences([seq], tool=tool)
        assert (s.overall["IDS"], s.overall["FP"], s.overall["FN"]) == (ids, 1, 1), tool


# ---------------------------------------------------------------------------------------------
# (b) hand-computed values


def _separated_gt(T: int, N: int) -> np.ndarray:
    """N well separated 40x80 boxes moving right by 2 px per frame.  (1, T, N, 4)."""
    t = np.arange(T)[:, None]
    x1 = 100.0 * np.arange(N)[None, :] + 2.0 * t  # (T, N)
    y1 = np.full((T, N), 50.0)
    return np.stack([x1, y1, x1 + 40, y1 + 80], axis=-1)[None]


def _swap_case(T: int = 10, N: int = 3, swap_at: int = 5):
    """Sources 0 and 1 exchange people from frame ``swap_at``; the posteriors follow them.

    Detections are shuffled: det_gt_index[t, k] = perm[t, k], and η of the detection of person j
    points to the source that follows person j.
    """
    gt = _separated_gt(T, N)
    follows = np.tile(np.arange(N), (T, 1))  # follows[t, n]: person tracked by source n
    follows[swap_at:, [0, 1]] = [1, 0]
    boxes = np.take_along_axis(gt[0], follows[..., None], axis=1)[None]  # (1, T, N, 4)
    perm = np.stack([np.random.default_rng(t).permutation(N) for t in range(T)])  # (T, K=N)
    source_of_person = np.argsort(follows, axis=1)  # (T, N): source that follows person j
    eta = np.zeros((1, T, N, N))
    for t in range(T):
        for k in range(N):
            eta[0, t, k, source_of_person[t, perm[t, k]]] = 0.9
            eta[0, t, k] += 0.1 / N
    return gt, boxes, eta, perm[None]


ALL_TOOLS = ["native", "native-trackeval", "motmetrics", "trackeval"]


@pytest.mark.parametrize("tool", ALL_TOOLS)
def test_one_swap_standard_protocol_counts_two_switches(tool):
    gt, boxes, eta, det_gt_index = _swap_case()
    s = evaluate_windows(boxes, gt, eta=eta, det_gt_index=det_gt_index, protocol="standard", tool=tool)
    T, N = 10, 3
    assert s.overall["IDS"] == 2  # persons 0 and 1 each change hypothesis once
    assert s.overall["FP"] == 0 and s.overall["FN"] == 0
    assert s.overall["MOTA"] == pytest.approx(100 * (1 - 2 / (T * N)))
    # best id pairing keeps 5 + 5 frames of the swapped pair and all 10 of person 2
    assert s.overall["IDF1"] == pytest.approx(100 * (1 - 10 / (T * N)))


@pytest.mark.parametrize("tool", ALL_TOOLS)
def test_one_swap_paper_protocol_hides_it(tool):
    gt, boxes, eta, det_gt_index = _swap_case()
    s = evaluate_windows(boxes, gt, eta=eta, det_gt_index=det_gt_index, protocol="paper", tool=tool)
    assert s.overall["IDS"] == 0
    assert s.overall["IDF1"] == pytest.approx(100.0)
    assert s.overall["MOTA"] == pytest.approx(100.0)


@pytest.mark.parametrize("tool", ALL_TOOLS)
def test_paper_protocol_missed_detection_duplicates_label_zero(tool):
    """Person 2 has no detection at frame 3: column 2 gets label 0, like column 0.

    Frame 3: person 2 is matched to a hypothesis labelled 0 (switch 2 -> 0); frame 4: back to 2
    (switch 0 -> 2). IDTP = 10 + 10 + 9. motmetrics counts P = 30 hypothesis boxes; TrackEval
    counts label 0 once on frame 3, P = 29, so IDFP = 0 there.
    """
    T, N = 10, 3
    gt = _separated_gt(T, N)
    det_gt_index = np.tile(np.arange(N), (1, T, 1))
    det_gt_index[0, 3, 2] = -1
    eta = np.tile(np.eye(N), (1, T, 1, 1))
    eta[0, 3, 2] = np.nan
    labels = hypothesis_labels(eta, det_gt_index, "paper")
    assert labels[0, 3].tolist() == [0, 1, 0]
    s = evaluate_windows(gt, gt, eta=eta, det_gt_index=det_gt_index, protocol="paper", tool=tool)
    assert s.overall["IDS"] == 2
    assert s.overall["MOTA"] == pytest.approx(100 * (1 - 2 / (T * N)))
    P = T * N if tool in ("native", "motmetrics") else T * N - 1
    assert s.overall["IDF1"] == pytest.approx(100 * 2 * 29 / (T * N + P))


def test_hypothesis_labels_follow_the_detection_of_each_person():
    eta = np.array([[[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]])  # (T=1, K=3, N=2)
    det_gt_index = np.array([[1, 0, -1]])  # detection 0 is person 1, detection 1 is person 0
    assert hypothesis_labels(eta, det_gt_index, "paper").tolist() == [[0, 1]]
    assert hypothesis_labels(eta, det_gt_index, "standard").tolist() == [[0, 1]]
    eta_swapped = eta[:, :, ::-1]
    assert hypothesis_labels(eta_swapped, det_gt_index, "paper").tolist() == [[1, 0]]


# ---------------------------------------------------------------------------------------------
# (c) perfect and all-wrong tracking


@pytest.mark.parametrize("tool", ALL_TOOLS)
@pytest.mark.parametrize("protocol", ["standard", "paper"])
def test_perfect_tracking(tool, protocol):
    T, N = 12, 3
    gt = np.concatenate([_separated_gt(T, N)] * 2)  # W = 2
    eta = np.tile(np.eye(N), (2, T, 1, 1))
    det_gt_index = np.tile(np.arange(N), (2, T, 1))
    s = evaluate_windows(gt, gt, eta=eta, det_gt_index=det_gt_index, protocol=protocol, tool=tool)
    assert s.overall["MOTA"] == 100.0 and s.overall["IDF1"] == 100.0
    assert s.overall["MOTP"] == pytest.approx(100.0)
    assert (s.overall["IDS"], s.overall["FP"], s.overall["FN"]) == (0, 0, 0)
    assert (s.overall["MT"], s.overall["ML"]) == (2 * N, 0)
    if tool == "trackeval":
        assert s.overall["HOTA"] == pytest.approx(100.0)


@pytest.mark.parametrize("tool", ALL_TOOLS)
def test_all_wrong_boxes(tool):
    T, N = 12, 3
    gt = _separated_gt(T, N)
    boxes = gt + np.array([0.0, 500.0, 0.0, 500.0])  # far below every person
    s = evaluate_windows(boxes, gt, tool=tool)
    assert s.overall["FP"] == s.overall["FN"] == T * N
    assert s.overall["MOTA"] == pytest.approx(100 * (1 - 2 * T * N / (T * N)))
    assert s.overall["IDF1"] == 0.0 and s.overall["IDS"] == 0
    assert (s.overall["MT"], s.overall["ML"]) == (0, N)


# ---------------------------------------------------------------------------------------------
# native == motmetrics on random and real windows, both protocols


def _random_windows(seed: int, W: int = 24, T: int = 15, N: int = 4):
    """Crowded windows (every person near the same spot, so frames have matching conflicts),
    shuffled estimates, random posteriors and missed detections (duplicate paper labels)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(100, 140, (W, 1, 1, 2)) + rng.normal(0, 6, (W, T, N, 2))
    gt = np.concatenate([xy, xy + 50.0], axis=-1)
    boxes = gt[:, :, rng.permutation(N)] + rng.normal(0, 5, gt.shape)
    K = N + 1
    eta = rng.dirichlet(np.ones(N), (W, T, K))
    det_gt_index = np.stack([np.stack([np.append(rng.permutation(N), -1) for _ in range(T)])
                             for _ in range(W)])
    det_gt_index[rng.random((W, T, K)) < 0.2] = -1
    return gt, boxes, eta, det_gt_index


def _real_windows(shared_data: Path, T: int = 20, N: int = 3, seed: int = 0):
    """Windows cut from TUD-Stadtmitte's ground truth: N people present on T consecutive frames;
    estimates jittered with a swap, posteriors noisy."""
    rng = np.random.default_rng(seed)
    gt_rows = _read_gt(shared_data / "MOT15" / "train" / "TUD-Stadtmitte" / "gt" / "gt.txt")
    windows = []
    for f0 in range(1, int(gt_rows[:, 0].max()) - T, T):
        rows = gt_rows[(gt_rows[:, 0] >= f0) & (gt_rows[:, 0] < f0 + T)]
        ids, counts = np.unique(rows[:, 1], return_counts=True)
        full = ids[counts == T]
        if len(full) >= N:
            chosen = full[:N]
            sel = np.stack([rows[rows[:, 1] == i][np.argsort(rows[rows[:, 1] == i, 0])] for i in chosen], 1)
            x, y, w, h = (sel[..., c] for c in range(2, 6))
            windows.append(np.stack([x, y, x + w, y + h], axis=-1))  # (T, N, 4)
    gt = np.stack(windows)
    W = len(gt)
    boxes = gt + rng.normal(0, 1, gt.shape) * 0.15 * (gt[..., 2:3] - gt[..., 0:1])
    boxes[:, T // 2:, [0, 1]] = boxes[:, T // 2:, [1, 0]]
    eta = rng.dirichlet(np.ones(N) * 0.5, (W, T, N))
    det_gt_index = np.tile(np.arange(N), (W, T, 1))
    det_gt_index[rng.random((W, T, N)) < 0.15] = -1
    return gt, boxes, eta, det_gt_index


NATIVE_AND_LIBRARY = [("native", "motmetrics"), ("native-trackeval", "trackeval")]


def _assert_same_counts(gt, boxes, eta, det_gt_index, protocol, tool, library):
    kw = dict(eta=eta, det_gt_index=det_gt_index, protocol=protocol)
    native = evaluate_windows(boxes, gt, tool=tool, **kw)
    ref = evaluate_windows(boxes, gt, tool=library, **kw)
    problems = [f"window {a['window']}: {p}" for a, b in zip(native.per_window, ref.per_window)
                for p in _diverging(a, b, EXACT_FIELDS + ("MOTP",))]
    problems += [f"overall: {p}" for p in _diverging(native.overall, ref.overall, EXACT_FIELDS + ("MOTP",))]
    assert not problems, "\n".join(problems)
    for a, b in zip(native.per_window, ref.per_window):  # counts and ratios exactly equal
        assert [a[k] for k in EXACT_FIELDS] == [b[k] for k in EXACT_FIELDS]
    return native


@pytest.mark.parametrize("tool, library", NATIVE_AND_LIBRARY)
@pytest.mark.parametrize("protocol", ["standard", "paper"])
@pytest.mark.parametrize("seed", [0, 1])
def test_native_equals_library_on_random_windows(protocol, seed, tool, library):
    native = _assert_same_counts(*_random_windows(seed), protocol, tool, library)
    assert native.overall["IDS"] > 0 and native.overall["FP"] > 0


@pytest.mark.parametrize("tool, library", NATIVE_AND_LIBRARY)
@pytest.mark.parametrize("protocol", ["standard", "paper"])
def test_native_equals_library_on_real_windows(shared_data, protocol, tool, library):
    native = _assert_same_counts(*_real_windows(shared_data), protocol, tool, library)
    assert native.overall["FP"] > 0 and native.overall["IDS"] > 0


def test_native_equals_motmetrics_own_overall_on_sequences():
    """Our sum-then-recompute combination equals motmetrics' compute_many(generate_overall=True),
    with accumulators fed here from an independent IoU, on sequences with varying object counts."""
    rng = np.random.default_rng(3)
    seqs, accs = [], []
    for s in range(3):
        g_ids, g_boxes, h_ids, h_boxes = [], [], [], []
        acc = mm.MOTAccumulator(auto_id=True)
        for t in range(25):
            gi = np.flatnonzero(rng.random(6) < 0.7)  # objects present this frame
            gb = np.column_stack([60.0 * gi + rng.normal(0, 3, len(gi)), np.full(len(gi), 40.0),
                                  np.full(len(gi), 50.0), np.full(len(gi), 90.0)])  # xywh
            keep = rng.random(len(gi)) < 0.85
            hi = (gi[keep] + (t > 12)) % 6  # ids shift at frame 13
            hb = gb[keep] + rng.normal(0, 8, (keep.sum(), 4)) * [1, 1, 0.3, 0.3]
            d = 1 - _iou_xywh(gb, hb)
            d[~(d <= 0.5)] = np.nan
            acc.update(gi, hi, d)
            g_ids.append(gi), h_ids.append(hi)
            g_boxes.append(np.column_stack([gb[:, :2], gb[:, :2] + gb[:, 2:]]))
            h_boxes.append(np.column_stack([hb[:, :2], hb[:, :2] + hb[:, 2:]]))
        seqs.append(SequenceBoxes(g_ids, g_boxes, h_ids, h_boxes, f"s{s}"))
        accs.append(acc)
    summary = mm.metrics.create().compute_many(
        accs, metrics=["mota", "motp", "idf1", "num_switches", "num_false_positives", "num_misses",
                       "mostly_tracked", "mostly_lost"], generate_overall=True)
    ours = evaluate_sequences(seqs, tool="native")
    rows = ours.per_window + [ours.overall]
    for row, (_, ref) in zip(rows, summary.iterrows()):
        expect = {"MOTA": 100 * ref["mota"], "MOTP": 100 * (1 - ref["motp"]), "IDF1": 100 * ref["idf1"],
                  "IDS": ref["num_switches"], "FP": ref["num_false_positives"], "FN": ref["num_misses"],
                  "MT": ref["mostly_tracked"], "ML": ref["mostly_lost"]}
        problems = _diverging(row, expect, list(expect))
        assert not problems, "\n".join(problems)
    assert ours.overall["IDS"] > 0


# ---------------------------------------------------------------------------------------------
# result container


def test_scores_table_and_json():
    gt, boxes, eta, det_gt_index = _swap_case()
    s = evaluate_windows(boxes, gt, eta=eta, det_gt_index=det_gt_index, protocol="paper",
                         sequence=["TUD-Campus"], frames=np.array([[1, 11]]))
    assert tuple(s.overall) == SCORE_KEYS and s.overall["HOTA"] is None
    assert all(isinstance(s.overall[k], int) for k in ("IDS", "MT", "ML", "FP", "FN"))
    data = json.loads(s.json())
    assert set(data) == {"overall", "per_window", "protocol", "tool"}
    assert data["per_window"][0]["sequence"] == "TUD-Campus" and data["per_window"][0]["frames"] == [1, 11]
    lines = s.table(per_window=True).splitlines()
    assert lines[0].startswith("| Protocol | Tool | MOTA")
    assert lines[2] == "| paper | native | 100.0 | 100.0 | 100.0 | - | 0 | 3 | 0 | 0 | 0 |"
    assert lines[-1].startswith("| 0 | TUD-Campus | 1-11 | 100.0")


def test_bad_arguments_raise():
    gt = _separated_gt(4, 2)
    with pytest.raises(ValueError, match="protocol"):
        evaluate_windows(gt, gt, protocol="oracle")
    with pytest.raises(ValueError, match="tool"):
        evaluate_windows(gt, gt, tool="excel")
    with pytest.raises(ValueError, match="needs eta"):
        evaluate_windows(gt, gt, protocol="paper")
    with pytest.raises(ValueError, match=r"\(W, T, N, 4\)"):
        evaluate_windows(gt[:, :3], gt)
