"""The ELBO stop of the VEM loops, applied to each item of a batch on its own (a tracking window,
an audio chunk), so that an item's result does not depend on the items sharing its batch.

Item b stops after iteration i when |ELBO_b(i) - ELBO_b(i-1)| / scale_b < tol (scale: the item's
observations or bins); it keeps the loop state it had then, while the others go on. The loop ends
when every item has stopped or the iterations run out.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["PerItemStop"]


class PerItemStop:
    """Per-item stopping for a batch of B items over at most ``iterations`` iterations.

    ``scale``: the per-item divisor of the ELBO change (a number or (B,)); ``tol`` None never stops.
    """

    def __init__(self, batch: int, iterations: int, tol: float | None, min_iterations: int,
                 scale: Tensor | float, device: torch.device | str):
        self.tol, self.min_iterations, self.scale = tol, min_iterations, scale
        self.stopped = torch.zeros(batch, dtype=torch.bool, device=device)
        self.stop_iter = torch.full((batch,), iterations - 1, dtype=torch.long, device=device)
        self.kept: list[Tensor] | None = None

    def update(self, it: int, history: list[Tensor], state: tuple[Tensor, ...]) -> bool:
        """After iteration ``it`` (0-based) with ELBO ``history`` (each (B,)): freeze the copies of
        ``state`` (tensors with the batch first) of the items that converged now. True when every
        item has stopped."""
        if self.tol is None or it + 1 < self.min_iterations or len(history) < 2:
            return False
        converged = ~self.stopped & ((history[-1] - history[-2]).abs() / self.scale < self.tol)  # (B,)
        if converged.any():
            if self.kept is None:
                self.kept = [torch.empty_like(x) for x in state]
            for kept, x in zip(self.kept, state):
                kept[converged] = x[converged]
            self.stop_iter[converged] = it
            self.stopped |= converged
        return bool(self.stopped.all())

    def select(self, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """``state`` with each stopped item's frozen copy in place of its last value."""
        if self.kept is None:
            return state
        return tuple(torch.where(self.stopped.view(-1, *([1] * (x.ndim - 1))), kept, x)
                     for kept, x in zip(self.kept, state))

    def elbo_history(self, history: list[Tensor]) -> Tensor:
        """The ELBO history (I, B), where an item repeats its last value after its stop."""
        stacked = torch.stack(history)
        steps = torch.arange(len(history), device=stacked.device)[:, None]
        return torch.gather(stacked, 0, torch.minimum(steps, self.stop_iter[None]).expand_as(stacked))
