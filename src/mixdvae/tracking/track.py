"""Track windows with a known number of sources: MixDVAE, VKF, Deep AR (same engine) and Kalman.

Every method sees the same inputs: the detections of each window, (W, T, K, 4) pixel boxes with
NaN rows for missed detections, in a per-frame random order. Nothing reads the ground truth or the
detection-to-object index (``det_gt_index``); the number of sources N comes from the window.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from mixdvae.config import config_to_dict
from mixdvae.data.boxes import box_size, from_reference_encoding, normalise_boxes, denormalise_boxes, to_reference_encoding
from mixdvae.data.windows import WindowSet
from mixdvae.dvae.base import DVAE
from mixdvae.dvae.heads import Gauss
from mixdvae.dvae.weights import load_weights, shipped_weights
from mixdvae.errors import ConfigError
from mixdvae.inference.cv_prior import ConstantVelocityPrior
from mixdvae.inference.dvae_prior import DVAESourcePrior
from mixdvae.inference.vem import run_vem
from mixdvae.tracking.init import anchor_init, first_detection_anchors, kalman_init
from mixdvae.tracking.observation import BoxObservationModel, box_scale
from mixdvae.tracking.presets import TrackingConfig
from mixdvae.tracking.results import TrackingResults

__all__ = ["METHODS", "default_weights", "track_windows", "track_boxes"]

log = logging.getLogger(__name__)

METHODS = ("mixdvae", "vkf", "deep-ar", "kalman")

_WEIGHTS = {
    ("mixdvae", "normalised"): "motion_srnn",
    ("mixdvae", "reference"): "motion_srnn_reference",
    ("deep-ar", "normalised"): "motion_deep_ar",
}


def default_weights(method: str, encoding: str) -> Path:
    """The shipped prior for ``method`` in the box ``encoding``."""
    name = _WEIGHTS.get((method, encoding))
    if name is None:
        raise ConfigError(f"no shipped '{method}' prior for the {encoding} box encoding; pass --weights")
    return shipped_weights(name)


def _encode(det: np.ndarray, image_size: np.ndarray, encoding: str) -> np.ndarray:
    """Pixel xyxy -> model coordinates.  (W, T, K, 4), (W, 2) -> (W, T, K, 4)."""
    if encoding == "reference":
        return to_reference_encoding(det)
    return normalise_boxes(det, image_size[:, None, None, :])


def _decode(boxes: np.ndarray, image_size: np.ndarray, encoding: str) -> np.ndarray:
    if encoding == "reference":
        return from_reference_encoding(boxes)
    return denormalise_boxes(boxes, image_size[:, None, None, :])


def _obs_scale(o: Tensor, mask: Tensor, mode: str) -> Tensor:
    """Box sizes Phi is proportional to: each detection's own, or observation k's at frame 1."""
    own = box_scale(o, mask)
    if mode == "detection":
        return own
    first = own[:, :1].expand_as(own)
    return torch.where(mask[:, :1, :, None].expand_as(own), first, own)


def _prior(method: str, model: DVAE | None, config: TrackingConfig, anchors: Tensor):
    if method == "vkf":
        return ConstantVelocityPrior(anchors, config.cv)
    return DVAESourcePrior(model, config.dvae, anchor=anchors)


def track_boxes(
    o: Tensor, mask: Tensor, num_sources: int, method: str, model: DVAE | None, config: TrackingConfig,
    generator: torch.Generator | None = None,
) -> tuple[Gauss, Tensor, Tensor]:
    """Run one batch through the VEM (or the Kalman tracker), in model coordinates.

    Shape: o (B, T, K, 4) with NaN rows where mask (B, T, K) is False
        -> q(s) (B, T, N, 4), responsibilities (B, T, K, N), ELBO history (B, I)
    """
    B, T, K, D = o.shape
    N = num_sources
    if method == "kalman":
        from mixdvae.baselines.kalman import kalman_track

        res = kalman_track(o.detach().cpu().numpy(), N)
        m = torch.as_tensor(np.asarray(res.boxes), dtype=o.dtype, device=o.device)
        r = torch.as_tensor(np.asarray(res.assign), dtype=o.dtype, device=o.device)
        return Gauss(m, torch.zeros_like(m)), r, o.new_zeros(B, 0)

    rho = torch.full((B, D), config.obs_rho, dtype=o.dtype, device=o.device)
    obs = BoxObservationModel(_obs_scale(o, mask, config.obs_scale), rho, learn=config.vem.m_step)
    var_of = lambda boxes: config.obs_rho * box_size(boxes, 1e-3) ** 2  # noqa: E731
    if config.init == "kalman":
        init = kalman_init(o, mask, N, var_of)
        anchors = init.mean[:, 0]  # the sources' labelling is the Kalman tracker's
        prior = _prior(method, model, config, anchors)
    else:
        anchors = first_detection_anchors(o, mask, N)
        prior = _prior(method, model, config, anchors)
        if config.init == "anchor":
            init = anchor_init(anchors, T, var_of(anchors))
        else:
            init = _chunked_init(o, mask, obs, prior, anchors, config, generator, var_of)
    res = run_vem(o, mask, prior, obs, init, config.vem, generator=generator)
    return res.sources, res.resp.r, res.elbo.T


def _chunked_init(o, mask, obs: BoxObservationModel, prior, anchors, config: TrackingConfig, generator, var_of) -> Gauss:
    """Reference section 4.4: per chunk of ``init_chunk`` frames, ``init_iterations`` VEM iterations
    from the current anchors; the chunk's final posterior mean at its last frame is the next anchor.
    Returns the piecewise-constant anchors."""
    B, T, K, D = o.shape
    chunk_cfg = dataclasses.replace(config.vem, iterations=config.init_iterations, tol=None)
    means = []
    a = anchors
    for start in range(0, T, config.init_chunk):
        sl = slice(start, min(T, start + config.init_chunk))
        L = sl.stop - sl.start
        chunk_obs = BoxObservationModel(obs.scale[:, sl], obs.rho, obs.learn, obs.rho_floor, obs.rho_ceil)
        means.append(a[:, None].expand(-1, L, -1, -1))
        res = run_vem(o[:, sl], mask[:, sl], prior.with_anchor(a), chunk_obs, anchor_init(a, L, var_of(a)), chunk_cfg, generator)
        a = res.sources.mean[:, -1]
    m = torch.cat(means, dim=1).contiguous()
    return Gauss(m, var_of(m))


def track_windows(
    windows: WindowSet,
    method: str = "mixdvae",
    config: TrackingConfig | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> TrackingResults:
    """Track every window of ``windows`` with ``method``; boxes come back in pixels.

    Shape: windows.det (W, T, K, 4) -> boxes (W, T, N, 4), eta (W, T, K, N), elbo (W, I)
    """
    from mixdvae.tracking.presets import DEFAULT

    if method not in METHODS:
        raise ConfigError(f"--method: '{method}' is not one of {list(METHODS)}")
    config = config or DEFAULT
    device = torch.device(device)
    W, T, N, _ = windows.gt.shape
    K = windows.det.shape[2]
    model = None
    if method in ("mixdvae", "deep-ar"):
        model = load_weights(weights or default_weights(method, config.encoding), device)
        expected = "deep_ar" if method == "deep-ar" else "srnn"
        if model.family != expected:
            raise ConfigError(f"--weights: method '{method}' needs a '{expected}' prior, got a '{model.family}' checkpoint")
    det = np.asarray(windows.det, dtype=np.float64)
    mask_np = np.isfinite(det).all(-1)
    enc = _encode(det, np.asarray(windows.image_size, dtype=np.float64), config.encoding)
    enc = np.where(mask_np[..., None], enc, np.nan)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    boxes = np.zeros((W, T, N, 4))
    eta = np.zeros((W, T, K, N))
    elbos: list[np.ndarray] = []
    starts = range(0, W, config.batch_size)
    for start in tqdm(starts, desc=f"track ({method})", disable=not progress, unit="batch"):
        sl = slice(start, min(W, start + config.batch_size))
        o = torch.as_tensor(enc[sl], dtype=torch.float32, device=device)
        mask = torch.as_tensor(mask_np[sl], device=device)
        q, r, elbo = track_boxes(o, mask, N, method, model, config, generator)
        boxes[sl] = q.mean.detach().cpu().numpy()
        eta[sl] = r.detach().cpu().numpy()
        elbos.append(elbo.detach().cpu().numpy())
    width = max(e.shape[1] for e in elbos)
    elbo = np.concatenate([np.pad(e, ((0, 0), (0, width - e.shape[1])), mode="edge") if e.shape[1] else np.zeros((e.shape[0], width)) for e in elbos])
    boxes = _decode(boxes, np.asarray(windows.image_size, dtype=np.float64), config.encoding)
    cfg = {"method": method, "seed": seed, "weights": str(weights) if weights else None, **config_to_dict(config)}
    return TrackingResults(boxes=boxes, eta=eta, elbo=elbo if width else None, method=method, config=cfg)
