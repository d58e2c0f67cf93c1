"""Oracle time-frequency masks computed from the true source STFTs (upper bounds for masking).

Both masks sum to one over the sources in every bin, so applied to the mixture x = sum_n s_n with
:func:`mixdvae.baselines.nmf.apply_masks` they split it without loss. Complex STFTs are
(B, N, T, F): batch of mixtures, sources, time frames, frequency bins.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mixdvae.errors import DataFormatError

__all__ = ["ideal_binary_mask", "oracle_wiener_mask"]


def _source_power(source_stfts: Any) -> Tensor:
    """|s_n,tf|^2 of a finite (B, N, T, F) tensor, real or complex, else DataFormatError.

    Shape: (B, N, T, F) -> (B, N, T, F) real
    """
    if not isinstance(source_stfts, Tensor):
        raise DataFormatError(f"source_stfts: expected a torch.Tensor (B, N, T, F), got {type(source_stfts).__name__}")
    if source_stfts.ndim != 4 or source_stfts.shape[1] < 1:
        raise DataFormatError(f"source_stfts: expected shape (B, N, T, F) with N >= 1, got {tuple(source_stfts.shape)}")
    if not (source_stfts.is_complex() or source_stfts.is_floating_point()):
        raise DataFormatError(f"source_stfts: dtype {source_stfts.dtype}, expected a complex (or real) STFT")
    if not bool(torch.isfinite(source_stfts).all()):
        raise DataFormatError("source_stfts: holds NaN or inf values")
    return source_stfts.abs().square()


def ideal_binary_mask(source_stfts: Tensor) -> Tensor:
    """IBM_n,tf = 1 if n = argmax_m |s_m,tf|^2 else 0, ties going to the lowest index m, so that
    sum_n IBM_n,tf = 1.

    Shape: source_stfts (B, N, T, F) complex -> (B, N, T, F) real (dtype of |s|)
    """
    power = _source_power(source_stfts)  # (B, N, T, F)
    is_max = power == power.amax(dim=1, keepdim=True)  # every maximiser, (B, N, T, F)
    first = is_max & (torch.cumsum(is_max.to(torch.int32), dim=1) == 1)  # only the lowest-index one
    return first.to(power.dtype)


def oracle_wiener_mask(source_stfts: Tensor) -> Tensor:
    """G_n,tf = |s_n,tf|^2 / sum_m |s_m,tf|^2, and 1/N in bins where every source is 0.

    Shape: source_stfts (B, N, T, F) complex -> (B, N, T, F) real (dtype of |s|)
    """
    power = _source_power(source_stfts)  # (B, N, T, F)
    num_sources = power.shape[1]
    total = power.sum(dim=1, keepdim=True)  # (B, 1, T, F)
    mask = power / total.clamp_min(torch.finfo(power.dtype).tiny)
    return torch.where(total > 0, mask, torch.full_like(mask, 1.0 / num_sources))
