"""Initial source posteriors q(s) for the tracking VEM.

None of these reads identity from the detection index k: within a frame the index is an arbitrary
order. The first frame's detections give an arbitrary labelling of the sources, which is all any
tracker can do.

- ``anchor``: each source starts at one detection of the first frame (later frames fill sources the
  first frame lacks) and stays there: m_tn = a_n for all t.
- ``kalman``: a constant-velocity Kalman + Hungarian pass (:mod:`mixdvae.baselines.kalman`) gives
  m_tn; the VEM then re-explains the detections with the DVAE prior.
- ``chunked``: the reference (section 4.4): chunks of 30 frames, 20 VEM iterations on each chunk
  from the current anchors, the chunk's last posterior mean becomes the next anchor; the returned
  initialisation is the piecewise-constant sequence of anchors.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from mixdvae.data.boxes import box_iou
from mixdvae.dvae.heads import Gauss

__all__ = ["first_detection_anchors", "anchor_init", "kalman_init"]


def first_detection_anchors(o: Tensor, mask: Tensor, num_sources: int) -> Tensor:
    """One anchor box per source: the valid detections of the earliest frames (within a frame
    from left to right), skipping a detection that overlaps an anchor already taken (IoU > 0.5). A window with fewer distinct
    detections than sources repeats its last anchor.

    Shape: o (B, T, K, D), mask (B, T, K) -> (B, N, D)
    """
    B, T, K, D = o.shape
    o_np = o.detach().cpu().numpy()
    m_np = mask.detach().cpu().numpy()
    anchors = np.zeros((B, num_sources, D), dtype=o_np.dtype)
    for b in range(B):
        chosen: list[np.ndarray] = []
        for t in range(T):
            valid = np.flatnonzero(m_np[b, t])
            # a canonical order (left to right, then top to bottom): the slot order carries nothing
            valid = valid[np.lexsort(o_np[b, t, valid].T[::-1])]
            for k in valid:
                box = o_np[b, t, k]
                if chosen and np.nanmax(box_iou(box[None], np.stack(chosen))) > 0.5 and t > 0:
                    continue
                chosen.append(box)
                if len(chosen) == num_sources:
                    break
            if len(chosen) == num_sources:
                break
        if not chosen:
            chosen = [np.array([0.45, 0.4, 0.55, 0.6], dtype=o_np.dtype)]  # an empty window: the image centre
        while len(chosen) < num_sources:
            chosen.append(chosen[-1])
        anchors[b] = np.stack(chosen[:num_sources])
    return torch.as_tensor(anchors, device=o.device)


def anchor_init(anchors: Tensor, length: int, var: Tensor) -> Gauss:
    """m_tn = a_n for every t, Sigma_tn = ``var``.  Shape: anchors (B, N, D), var (B, N, D) -> (B, T, N, D)."""
    m = anchors[:, None].expand(-1, length, -1, -1).contiguous()
    return Gauss(m, var[:, None].expand_as(m).contiguous())


def kalman_init(o: Tensor, mask: Tensor, num_sources: int, var_fn: Callable[[Tensor], Tensor]) -> Gauss:
    """m from the Kalman + Hungarian tracker on the same detections; Sigma = ``var_fn(m)``.

    Shape: o (B, T, K, D) -> (B, T, N, D)
    """
    from mixdvae.baselines.kalman import kalman_track

    det = torch.where(mask[..., None], o, torch.full_like(o, float("nan")))
    res = kalman_track(det.detach().cpu().numpy(), num_sources)
    m = torch.as_tensor(np.asarray(res.boxes), dtype=o.dtype, device=o.device)
    return Gauss(m, var_fn(m))
