"""Data-parallel DVAE pretraining with ``torch.nn.parallel.DistributedDataParallel``.

Sampling: every rank draws the same seeded permutation of the training set each epoch (the
shuffle generator is seeded identically everywhere), cuts it into the same global batches of
``batch_size`` sequences, and rank r of P takes the r-th of P contiguous, near-equal slices of
each batch (``torch.tensor_split``). Unlike ``torch.utils.data.DistributedSampler`` (which gives
every rank its own batches of ``batch_size``), the global batch, the number of steps per epoch and
so the learning-rate schedule stay those of a single process.

Gradients: the DVAE loss is a mean over the n_r sequences (and frames) of a rank's slice; DDP
averages gradients over ranks, so rank r back-propagates ``(P n_r / n) L_r`` and the all-reduced
gradient is

    (1/P) Σ_r (P n_r / n) ∇L_r = Σ_r (n_r / n) ∇L_r = ∇L   (the gradient of the full-batch mean),

exactly the single-process gradient when the loss terms are deterministic. The DVAE samples
z ~ q(z | x) per sequence, so with P > 1 the noise differs from a single process (each rank has
its own noise generator, re-seeded per epoch from (seed, epoch, rank) so a resumed run draws the
same noise); with P = 1 nothing changes at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from mixdvae.utils.distributed import rank_and_world

__all__ = ["DataParallelLoss", "local_slice", "rank_noise_seed"]


def local_slice(xb: Tensor, rank: int, world: int) -> tuple[Tensor, float]:
    """Rank ``rank``'s contiguous slice of the global batch and its gradient weight P n_r / n.

    A rank whose slice is empty (a last batch smaller than P) gets one sequence with weight 0, so
    every rank still joins the gradient all-reduce.  Shape: xb (n, T, D) -> (n_r, T, D)
    """
    part = torch.tensor_split(xb, world)[rank]
    if part.shape[0] == 0:
        return xb[:1], 0.0
    return part, world * part.shape[0] / xb.shape[0]


def rank_noise_seed(seed: int, epoch: int, rank: int) -> int:
    """The training-noise seed of ``rank`` at ``epoch`` in a data-parallel run (63 bits)."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(rank), 0x646470]).generate_state(1, np.uint64)
    return int(state[0]) >> 1


class _LossModule(nn.Module):
    """``forward`` = ``dvae.loss`` so that DDP sees the call and all-reduces the gradients."""

    def __init__(self, dvae: nn.Module, forecast_weight: float = 0.0):
        super().__init__()
        self.dvae = dvae
        self.forecast_weight = forecast_weight

    def forward(self, x: Tensor, kl_weight: float, ss_prob: float, generator: torch.Generator | None,
                x_in: Tensor | None = None) -> Any:
        extra = {} if x_in is None else {"x_in": x_in}
        return self.dvae.loss(x, kl_weight=kl_weight, ss_prob=ss_prob, generator=generator,
                              forecast_weight=self.forecast_weight, **extra)


class DataParallelLoss:
    """The loss of a global batch computed by all ranks of ``group``, gradients all-reduced by DDP.

    ``__call__(xb, kl_weight, ss_prob, generator)`` returns the tensor to back-propagate (the
    rank's weighted local loss) and the global batch means (loss, recon, kl) as floats, the same
    on every rank (one all-reduce of three numbers per step).
    """

    def __init__(self, dvae: nn.Module, device: torch.device, group: Any = None, forecast_weight: float = 0.0):
        self.group = group
        self.rank, self.world = rank_and_world(group)
        self.device = torch.device(device)
        ids = [self.device] if self.device.type == "cuda" else None
        self.ddp = nn.parallel.DistributedDataParallel(
            _LossModule(dvae, forecast_weight), device_ids=ids, process_group=group,
            find_unused_parameters=False)

    def __call__(self, xb: Tensor, kl_weight: float, ss_prob: float,
                 generator: torch.Generator | None, x_in: Tensor | None = None) -> tuple[Tensor, tuple[float, float, float]]:
        x_local, weight = local_slice(xb, self.rank, self.world)
        in_local = None if x_in is None else local_slice(x_in, self.rank, self.world)[0]
        terms = self.ddp(x_local, kl_weight, ss_prob, generator, in_local)
        n_local = 0.0 if weight == 0.0 else float(x_local.shape[0])
        sums = torch.stack([terms.loss.detach(), terms.recon.detach(), terms.kl.detach()]).double() * n_local
        dist.all_reduce(sums, group=self.group)
        loss, recon, kl = (sums / xb.shape[0]).tolist()
        return terms.loss * weight, (loss, recon, kl)
