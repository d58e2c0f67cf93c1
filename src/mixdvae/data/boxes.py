"""Box encodings and IoU.

Internal encoding: ``(x1, y1, x2, y2)`` = (left, top, right, bottom), y grows downwards, either in
pixels or normalised by the sequence's image size (x by width, y by height).

MOTChallenge files store ``(x, y, w, h)`` with (x, y) the top-left corner, 1-based pixels; the
conversion here keeps pixel values as they are (no 1-based shift), as TrackEval and motmetrics do.

The original research code used ``(x, y, x + w, y - h)`` divided by (1920, 1080, 1920, 1080) for every
sequence; :func:`to_reference_encoding` / :func:`from_reference_encoding` exist for the ``reference``
preset only (reference-implementation.md section 0).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "xywh_to_xyxy",
    "xyxy_to_xywh",
    "normalise_boxes",
    "denormalise_boxes",
    "to_reference_encoding",
    "from_reference_encoding",
    "box_iou",
    "box_size",
    "REFERENCE_IMAGE_SIZE",
]

REFERENCE_IMAGE_SIZE = (1920.0, 1080.0)
"""Fixed (width, height) divisor of the original code (reference section 4.2)."""

ArrayLike = np.ndarray | torch.Tensor


def _stack(parts: list, like: ArrayLike) -> ArrayLike:
    if isinstance(like, torch.Tensor):
        return torch.stack(parts, dim=-1)
    return np.stack(parts, axis=-1)


def xywh_to_xyxy(boxes: ArrayLike) -> ArrayLike:
    """(x, y, w, h) -> (x, y, x + w, y + h).  Shape: (..., 4) -> (..., 4)."""
    x, y, w, h = (boxes[..., i] for i in range(4))
    return _stack([x, y, x + w, y + h], boxes)


def xyxy_to_xywh(boxes: ArrayLike) -> ArrayLike:
    """(x1, y1, x2, y2) -> (x1, y1, x2 - x1, y2 - y1).  Shape: (..., 4) -> (..., 4)."""
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    return _stack([x1, y1, x2 - x1, y2 - y1], boxes)


def box_size(boxes: ArrayLike, min_size: float = 0.0) -> ArrayLike:
    """(|x2 - x1|, |y2 - y1|, |x2 - x1|, |y2 - y1|), each floored at ``min_size``: the scale of every
    coordinate of an xyxy box (a tensor or an array, returned as the same kind).
    Shape: (..., 4) -> (..., 4)."""
    if isinstance(boxes, torch.Tensor):
        w = (boxes[..., 2] - boxes[..., 0]).abs().clamp_min(min_size)
        h = (boxes[..., 3] - boxes[..., 1]).abs().clamp_min(min_size)
        return torch.stack([w, h, w, h], dim=-1)
    w = np.maximum(np.abs(boxes[..., 2] - boxes[..., 0]), min_size)
    h = np.maximum(np.abs(boxes[..., 3] - boxes[..., 1]), min_size)
    return np.stack([w, h, w, h], axis=-1)


def _scale(image_size: ArrayLike, like: ArrayLike) -> ArrayLike:
    """(W, H) or (..., 2) image sizes -> (..., 4) divisor (W, H, W, H)."""
    if isinstance(like, torch.Tensor):
        size = torch.as_tensor(image_size, dtype=like.dtype, device=like.device)
        return torch.cat([size, size], dim=-1)
    size = np.asarray(image_size, dtype=np.float64)
    return np.concatenate([size, size], axis=-1)


def normalise_boxes(boxes: ArrayLike, image_size: ArrayLike) -> ArrayLike:
    """Pixel xyxy boxes -> normalised: x / W, y / H.

    Shape:
        boxes: (..., 4); image_size: (2,) as (W, H), or broadcastable (..., 2) with singleton
        dimensions added by the caller (e.g. (W, 1, 1, 2) for windows (W, T, N, 4)).
    """
    return boxes / _scale(image_size, boxes)


def denormalise_boxes(boxes: ArrayLike, image_size: ArrayLike) -> ArrayLike:
    """Inverse of :func:`normalise_boxes`."""
    return boxes * _scale(image_size, boxes)


def to_reference_encoding(boxes_xyxy_px: ArrayLike) -> ArrayLike:
    """Pixel (x1, y1, x2, y2) -> the original code's (x, y, x + w, y - h) / (1920, 1080, 1920, 1080)."""
    x1, y1, x2, y2 = (boxes_xyxy_px[..., i] for i in range(4))
    h = y2 - y1
    enc = _stack([x1, y1, x2, y1 - h], boxes_xyxy_px)
    return normalise_boxes(enc, REFERENCE_IMAGE_SIZE)


def from_reference_encoding(boxes_ref: ArrayLike) -> ArrayLike:
    """Inverse of :func:`to_reference_encoding`: back to pixel (x1, y1, x2, y2)."""
    enc = denormalise_boxes(boxes_ref, REFERENCE_IMAGE_SIZE)
    x, y, x2, y_minus_h = (enc[..., i] for i in range(4))
    return _stack([x, y, x2, 2 * y - y_minus_h], enc)


def box_iou(a: ArrayLike, b: ArrayLike) -> ArrayLike:
    """Pairwise intersection over union of xyxy boxes.

    IoU(a_i, b_j) = |a_i ∩ b_j| / (|a_i| + |b_j| - |a_i ∩ b_j|); 0 where the union is empty, NaN
    where either box holds a NaN (a missing box).

    Shape:
        a: (..., M, 4), b: (..., N, 4) -> (..., M, N)
    """
    lib = torch if isinstance(a, torch.Tensor) else np
    a_ = a[..., :, None, :]
    b_ = b[..., None, :, :]
    iw = lib.clip(lib.minimum(a_[..., 2], b_[..., 2]) - lib.maximum(a_[..., 0], b_[..., 0]), 0, None)
    ih = lib.clip(lib.minimum(a_[..., 3], b_[..., 3]) - lib.maximum(a_[..., 1], b_[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a_[..., 2] - a_[..., 0]).clip(0) * (a_[..., 3] - a_[..., 1]).clip(0)
    area_b = (b_[..., 2] - b_[..., 0]).clip(0) * (b_[..., 3] - b_[..., 1]).clip(0)
    union = area_a + area_b - inter
    safe = lib.where(union > 0, union, lib.ones_like(union))
    iou = lib.where(union > 0, inter / safe, lib.zeros_like(union))
    nan = lib.isnan(a_).any(-1) | lib.isnan(b_).any(-1)
    return lib.where(nan, lib.full_like(iou, float("nan")), iou)
