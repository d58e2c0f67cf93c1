"""Adapters that score :class:`~mixdvae.metrics.clear.MotFrames` with motmetrics or TrackEval.

Both libraries are optional (``pip install mixdvae[metrics]``) and imported only when asked for.

- **motmetrics 1.4.0.** Its ``distances.iou_matrix`` calls ``np.asfarray``, which numpy 2
  removed, so we pass our own distance matrix: 1 - IoU, NaN where IoU < threshold
  (``iou_matrix(max_iou=0.5)`` semantics). One ``MOTAccumulator`` per sequence is fed frame by
  frame; the counts come from ``metrics.create().compute_many``. motmetrics' MOTP is a mean
  distance; we convert it back to Σ IoU.
- **TrackEval 1.3.0.** The metric classes ``HOTA``, ``CLEAR`` and ``Identity`` are called
  directly on in-memory data dicts (no files, no ``Evaluator``). These three classes run unchanged
  on numpy 2, so no compatibility shim is installed. TrackEval thresholds similarity itself
  (CLEAR: IoU >= 0.5 - eps; Identity: IoU >= 0.5); HOTA averages over thresholds 0.05 … 0.95 and
  so receives the raw IoU.

Repeated hypothesis ids within a frame (the paper protocol's missed detections) are legal in
motmetrics, which counts every box. TrackEval indexes its per-id counters with the ids of a
frame, so a repeated id is counted once per frame there; the original work used motmetrics.
"""

from __future__ import annotations

import numpy as np

from mixdvae.errors import MixDVAEError
from mixdvae.metrics.clear import MotCounts, MotFrames

__all__ = ["motmetrics_counts", "trackeval_counts"]

_MM_METRICS = [
    "num_objects", "num_predictions", "num_matches", "num_switches", "num_false_positives",
    "num_misses", "mostly_tracked", "partially_tracked", "mostly_lost", "motp", "idtp",
]


def _import(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise MixDVAEError(f"tool needs the package '{name}': pip install 'mixdvae[metrics]'") from err


def _frame(frames: MotFrames, s: int, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Present slots of one frame, in slot order: gt ids (G_t,), hyp ids (H_t,), IoU (G_t, H_t)."""
    g = frames.gt_ids[s, t]
    h = frames.hyp_ids[s, t]
    g_on, h_on = g >= 0, h >= 0
    return g[g_on], h[h_on], frames.iou[s, t][np.ix_(g_on, h_on)]


def motmetrics_counts(frames: MotFrames, iou_threshold: float = 0.5) -> list[MotCounts]:
    """Counts of each sequence from motmetrics' ``MOTAccumulator`` and metrics host."""
    mm = _import("motmetrics")
    S, T = frames.gt_ids.shape[:2]
    accs = []
    for s in range(S):
        acc = mm.MOTAccumulator(auto_id=True)
        for t in range(T):
            oids, hids, iou = _frame(frames, s, t)
            dist = 1.0 - iou
            dist[~(dist <= 1.0 - iou_threshold)] = np.nan  # iou_matrix(max_iou=...) semantics
            acc.update(oids, hids, dist)
        accs.append(acc)
    host = mm.metrics.create()
    table = host.compute_many(accs, metrics=_MM_METRICS, names=[str(s) for s in range(S)])
    out = []
    for s in range(S):
        r = table.loc[str(s)]
        tp = int(r["num_matches"] + r["num_switches"])
        num_gt, num_hyp, idtp = int(r["num_objects"]), int(r["num_predictions"]), int(r["idtp"])
        motp = float(r["motp"]) if tp > 0 else 0.0  # mean distance 1 - IoU
        out.append(
            MotCounts(
                num_gt=num_gt, num_hyp=num_hyp, tp=tp, fp=int(r["num_false_positives"]),
                fn=int(r["num_misses"]), ids=int(r["num_switches"]), mt=int(r["mostly_tracked"]),
                pt=int(r["partially_tracked"]), ml=int(r["mostly_lost"]),
                iou_sum=tp * (1.0 - motp), idtp=idtp, idfp=num_hyp - idtp, idfn=num_gt - idtp,
            )
        )
    return out


def _trackeval_data(frames: MotFrames, s: int) -> dict:
    """TrackEval's per-sequence data dict (``_BaseDataset.get_preprocessed_seq_data`` layout)."""
    T = frames.gt_ids.shape[1]
    gt_ids, hyp_ids, sims = [], [], []
    for t in range(T):
        g, h, iou = _frame(frames, s, t)
        gt_ids.append(g.astype(int))
        hyp_ids.append(h.astype(int))
        sims.append(np.nan_to_num(iou, nan=0.0))
    return {
        "num_timesteps": T,
        "num_gt_ids": int(frames.num_gt_ids[s]),
        "num_tracker_ids": int(frames.num_hyp_ids[s]),
        "num_gt_dets": int(sum(len(g) for g in gt_ids)),
        "num_tracker_dets": int(sum(len(h) for h in hyp_ids)),
        "gt_ids": gt_ids,
        "tracker_ids": hyp_ids,
        "similarity_scores": sims,
    }


def trackeval_counts(
    frames: MotFrames, iou_threshold: float = 0.5
) -> tuple[list[MotCounts], list[float], float]:
    """Counts of each sequence from TrackEval's CLEAR and Identity, and HOTA.

    Returns:
        (counts per sequence, HOTA per sequence, HOTA of all sequences combined by
        ``HOTA.combine_sequences``); HOTA is the mean over TrackEval's 19 thresholds, a fraction.
    """
    metrics = _import("trackeval.metrics")
    cfg = {"THRESHOLD": iou_threshold, "PRINT_CONFIG": False}
    hota, clear, ident = metrics.HOTA(), metrics.CLEAR(cfg), metrics.Identity(cfg)
    S = frames.gt_ids.shape[0]
    counts, hota_seq, hota_res = [], [], {}
    for s in range(S):
        data = _trackeval_data(frames, s)
        c = clear.eval_sequence(data)
        i = ident.eval_sequence(data)
        hota_res[str(s)] = hota.eval_sequence(data)
        hota_seq.append(float(np.mean(hota_res[str(s)]["HOTA"])))
        counts.append(
            MotCounts(
                num_gt=data["num_gt_dets"], num_hyp=data["num_tracker_dets"], tp=int(c["CLR_TP"]),
                fp=int(c["CLR_FP"]), fn=int(c["CLR_FN"]), ids=int(c["IDSW"]), mt=int(c["MT"]),
                pt=int(c["PT"]), ml=int(c["ML"]), iou_sum=float(c["MOTP_sum"]),
                idtp=int(i["IDTP"]), idfp=int(i["IDFP"]), idfn=int(i["IDFN"]),
            )
        )
    combined = hota.combine_sequences(hota_res) if S else {"HOTA": np.zeros(1)}
    return counts, hota_seq, float(np.mean(combined["HOTA"]))
