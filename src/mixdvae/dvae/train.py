"""Pretraining a DVAE on clean single-source sequences.

Per epoch e = 0, 1, ... the loss minimised by Adam is the negative ELBO per frame with a KL
warm-up factor and, optionally, scheduled sampling:

    L_e = (1/BT) sum_{b,t} [-log p(x_t | ...) + kappa(e) beta KL(q(z_t | ...) || p(z_t | ...))]
    kappa(e) = min(1, e / kl_warmup_epochs)                       (1 when kl_warmup_epochs = 0)
    p_ss(e)  = ss_max * clip((e - ss_start) / (ss_end - ss_start), 0, 1)   (0 without ss_start)

After each epoch the validation loss is the same quantity at kappa = 1 and p_ss = 0,
``recon + beta * KL`` per frame (the true negative ELBO per frame when beta = 1), computed with a
generator re-seeded identically every time from ``seed``: it is deterministic and successive epochs
are compared on the same noise. Early stopping keeps a copy of the best weights, not a live
reference to the model (the bug of the original code, reference-implementation.md section 1.4), and
anomaly detection stays off.

Files in ``out_dir`` (all written atomically; the state file last, so a Ctrl-C or ``kill -9`` loses
at most the epoch in progress):

- ``best.safetensors`` + ``best.json``: the best weights, metrics ``val_loss``, ``val_recon``,
  ``val_kl``, ``best_epoch``, ``epochs_run``;
- ``last.safetensors`` + ``last.json``: the weights after the last complete epoch;
- ``last_state.safetensors`` + ``last_state.json``: what resuming needs (:mod:`mixdvae.dvae.train_state`);
- ``log.jsonl``: one JSON line per epoch; ``loss.png``: the loss curves.

Epochs are counted from 0 everywhere (logs, ``best_epoch``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from mixdvae.config import check_positive, config_to_dict
from mixdvae.dvae.base import DVAE
from mixdvae.dvae.checkpoint import save_dvae
from mixdvae.dvae.train_state import (
    TrainState,
    check_resumable,
    data_fingerprint,
    load_train_state,
    optimizer_tensors,
    restore_optimizer,
    save_train_state,
)
from mixdvae.dvae.distributed import DataParallelLoss, rank_noise_seed
from mixdvae.dvae.leakage import leaky_input
from mixdvae.errors import CheckpointError, ConfigError, DataFormatError, NumericalError
from mixdvae.utils.distributed import barrier, broadcast_from_rank0, rank_and_world
from mixdvae.utils.io import write_text
from mixdvae.utils.seed import torch_generator

__all__ = ["TrainConfig", "TrainResult", "train_dvae", "evaluate_loss", "kl_weight", "ss_probability", "run_paths"]

logger = logging.getLogger(__name__)

_RESUMABLE_CHANGES = ("epochs", "patience")
"""TrainConfig fields that may differ when resuming (to train longer or be more patient)."""
_PLOT_EVERY_S = 30.0


@dataclass(frozen=True)
class TrainConfig:
    """Pretraining settings. Defaults: the original MOT pretraining (reference section 1.4).

    Attributes:
        lr: Adam learning rate (reference: 1e-3 MOT, 2e-3 audio).
        batch_size: sequences per step (256).
        epochs: maximum number of epochs (500; 1000 for the original CBF model).
        patience: stop when the validation loss has not improved for this many epochs (50).
        kl_warmup_epochs: kappa(e) = min(1, e / kl_warmup_epochs); 0 disables the warm-up (20).
        ss_start, ss_end: scheduled sampling ramps linearly from 0 at epoch ``ss_start`` to
            ``ss_max`` at ``ss_end``; None (the default) disables it. The reference used 20 and 100.
        ss_max: the final scheduled-sampling probability (1 in the reference).
        grad_clip: max global gradient norm, or None for no clipping.
        val_every: validate every this many epochs (and always at the last one).
        seed: seeds the shuffling, the training noise and the validation noise (128).
        lr_schedule: ``constant`` (the reference) or ``cosine``: lr_e = lr_min + (lr - lr_min)
            (1 + cos(pi e / epochs)) / 2 at epoch e (a function of the epoch alone, so resuming
            needs no scheduler state).
        lr_min: the final learning rate of the cosine schedule.
        forecast_weight: weight of the point-forecast term of :meth:`DVAE.loss` (half the log of the
            one-step forecast's mean squared error; 0, the reference, trains on the ELBO alone).
            Under data parallelism each rank's slice contributes its own log-MSE.
        precision: ``float32`` (default) or ``bfloat16``: the training forward pass runs under
            ``torch.autocast`` in bfloat16 (matrix products and LSTMs), the loss, the backward pass,
            the optimiser and the weights stay float32; validation is always float32. Opt-in: it
            halves activation memory and speeds up GPUs with bfloat16 units; on CPU it is slower.
        leakage_db: (low, high): train on leaky inputs (:mod:`mixdvae.dvae.leakage`): the networks
            read x plus a random sequence of another source at a gain drawn in [low, high] dB
            relative to x, the likelihood scores x; validation uses one fixed draw. Needs the other
            source's sequences (``train_dvae(leakage_x=...)``, ``mixdvae train --leakage-data``).
            None (default): clean inputs.
    """

    lr: float = 1e-3
    batch_size: int = 256
    epochs: int = 500
    patience: int = 50
    kl_warmup_epochs: int = 20
    ss_start: int | None = None
    ss_end: int | None = None
    ss_max: float = 1.0
    grad_clip: float | None = None
    val_every: int = 1
    seed: int = 128
    lr_schedule: str = "constant"
    lr_min: float = 1e-5
    forecast_weight: float = 0.0
    precision: str = "float32"
    leakage_db: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.leakage_db is not None:
            ok = isinstance(self.leakage_db, (list, tuple)) and len(self.leakage_db) == 2 and all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in self.leakage_db)
            if not ok or self.leakage_db[0] > self.leakage_db[1]:
                raise ConfigError(f"TrainConfig.leakage_db = {self.leakage_db!r}: expected two finite numbers [low, high] with low <= high")
            object.__setattr__(self, "leakage_db", (float(self.leakage_db[0]), float(self.leakage_db[1])))
        if self.precision not in ("float32", "bfloat16"):
            raise ConfigError(f"TrainConfig.precision = {self.precision!r}: expected 'float32' or 'bfloat16'")
        if not (isinstance(self.forecast_weight, (int, float)) and 0.0 <= self.forecast_weight < float("inf")):
            raise ConfigError(f"TrainConfig.forecast_weight = {self.forecast_weight!r}: must be a number >= 0")
        check_positive("TrainConfig", "lr", self.lr)
        check_positive("TrainConfig", "lr_min", self.lr_min)
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"TrainConfig.lr_schedule = {self.lr_schedule!r}: expected 'constant' or 'cosine'")
        for name, low in (("batch_size", 1), ("epochs", 1), ("patience", 1), ("kl_warmup_epochs", 0),
                          ("val_every", 1), ("seed", 0)):
            _check_int(name, getattr(self, name), low)
        if (self.ss_start is None) != (self.ss_end is None):
            raise ConfigError(
                f"TrainConfig.ss_start = {self.ss_start!r}, ss_end = {self.ss_end!r}: set both or neither"
            )
        if self.ss_start is not None:
            _check_int("ss_start", self.ss_start, 0)
            _check_int("ss_end", self.ss_end, self.ss_start)
        if not (isinstance(self.ss_max, (int, float)) and 0.0 <= self.ss_max <= 1.0):
            raise ConfigError(f"TrainConfig.ss_max = {self.ss_max!r}: must be a probability in [0, 1]")
        if self.grad_clip is not None:
            check_positive("TrainConfig", "grad_clip", self.grad_clip)
        if self.seed >= 2**63:
            raise ConfigError(f"TrainConfig.seed = {self.seed!r}: must be < 2**63")


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"TrainConfig.{name} = {value!r}: must be an integer >= {low}")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_dvae` returns. ``history`` is the list of ``log.jsonl`` records."""

    best_epoch: int
    best_val_loss: float
    best_val_recon: float
    best_val_kl: float
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, Any]]
    best_path: Path
    last_path: Path
    state_path: Path
    log_path: Path
    plot_path: Path


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """lr of epoch e: constant, or lr_min + (lr - lr_min) (1 + cos(pi e / epochs)) / 2 (cosine)."""
    if config.lr_schedule == "constant":
        return config.lr
    return config.lr_min + (config.lr - config.lr_min) * (1 + math.cos(math.pi * epoch / config.epochs)) / 2


def kl_weight(config: TrainConfig, epoch: int) -> float:
    """kappa(e) = min(1, e / kl_warmup_epochs), e counted from 0; 1 without warm-up."""
    if config.kl_warmup_epochs == 0:
        return 1.0
    return min(1.0, epoch / config.kl_warmup_epochs)


def ss_probability(config: TrainConfig, epoch: int) -> float:
    """p_ss(e) = ss_max * clip((e - ss_start) / (ss_end - ss_start), 0, 1); 0 when disabled."""
    if config.ss_start is None or config.ss_end is None:
        return 0.0
    if epoch < config.ss_start:
        return 0.0
    if config.ss_end == config.ss_start:
        return float(config.ss_max)
    return float(config.ss_max) * min(1.0, (epoch - config.ss_start) / (config.ss_end - config.ss_start))


def run_paths(out_dir: str | Path) -> dict[str, Path]:
    """The files of a training run in ``out_dir``."""
    out = Path(out_dir)
    return {
        "best": out / "best.safetensors",
        "last": out / "last.safetensors",
        "state": out / "last_state.safetensors",
        "log": out / "log.jsonl",
        "plot": out / "loss.png",
    }


def _seeds(seed: int) -> tuple[int, int, int]:
    """Independent seeds for shuffling, training noise and validation noise, from one seed."""
    a, b, c = np.random.SeedSequence([seed, 0x6D697864]).generate_state(3, dtype=np.uint64)
    return int(a) >> 1, int(b) >> 1, int(c) >> 1


@torch.no_grad()
def evaluate_loss(
    model: DVAE, x: Tensor, seed: int = 0, batch_size: int = 256, device: str | torch.device = "cpu",
    forecast_weight: float = 0.0, x_in: Tensor | None = None,
) -> dict[str, float]:
    """Validation loss per frame: recon + beta KL at kappa = 1 without scheduled sampling (plus the
    point-forecast term with ``forecast_weight``).

    ``recon`` = mean over (b, t) of -log p(x_t | ...) and ``kl`` = mean of KL(q(z_t) || p(z_t)),
    each with one posterior sample drawn from a generator seeded with ``seed`` (the same
    ``seed`` gives the same figure). ``x_in``: what the networks read instead of x (leakage
    training). Shape: x (M, T, D), x_in (M, T, D).
    """
    was_training = model.training
    model.eval()
    gen = torch_generator(seed, device)
    totals = np.zeros(3)
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size].to(device)
        xb_in = None if x_in is None else x_in[start:start + batch_size].to(device)
        terms = model.loss(xb, kl_weight=1.0, ss_prob=0.0, generator=gen, forecast_weight=forecast_weight, x_in=xb_in)
        totals += xb.shape[0] * np.array([float(terms.loss), float(terms.recon), float(terms.kl)])
    model.train(was_training)
    loss, recon, kl = totals / x.shape[0]
    return {"loss": float(loss), "recon": float(recon), "kl": float(kl)}


def _check_data(x: Tensor, name: str, model: DVAE) -> None:
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[0] < 1 or x.shape[1] < 1:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise DataFormatError(f"{name}: expected a tensor of shape (N, T, D) with N, T >= 1, got {shape}")
    if x.shape[-1] != model.x_dim:
        raise DataFormatError(
            f"{name}: sequences have D = {x.shape[-1]} values per frame but the model's x_dim is {model.x_dim}"
        )
    # checked in blocks of sequences: one mask of the whole set would add a quarter of its size in memory
    if not x.is_floating_point() or not all(bool(torch.isfinite(block).all()) for block in x.split(4096)):
        raise DataFormatError(f"{name}: holds NaN, inf or non-float values")


def _clone_state(model: torch.nn.Module) -> dict[str, Tensor]:
    """A detached copy of the weights (never a live reference)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) back until the block is done, then raise it: the files of one epoch
    are written together. Only in the main thread (where Python delivers signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def _write_log(path: Path, history: list[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in history))


def _plot(path: Path, history: list[dict[str, Any]]) -> None:
    from mixdvae.plotting.training import plot_loss_curves

    try:
        plot_loss_curves(path, history)
    except Exception as err:  # a figure must never cost the training run
        logger.warning("could not write %s: %s", path, err)


def _train_epoch(
    model: DVAE,
    optimizer: torch.optim.Optimizer,
    train_x: Tensor,
    config: TrainConfig,
    epoch: int,
    shuffle_gen: torch.Generator,
    noise_gen: torch.Generator,
    device: torch.device,
    state_path: Path,
    parallel: "DataParallelLoss | None" = None,
    leakage_x: Tensor | None = None,
) -> tuple[float, float, float]:
    """One pass over ``train_x`` in a seeded random order; returns the mean (loss, recon, kl) per frame.

    With ``parallel`` (torchrun), each global batch is split over the ranks and DDP all-reduces the
    gradients (:mod:`mixdvae.dvae.distributed`)."""
    kappa, ss = kl_weight(config, epoch), ss_probability(config, epoch)
    model.train()
    n = train_x.shape[0]
    perm = torch.randperm(n, generator=shuffle_gen).to(train_x.device)
    totals = np.zeros(3)
    for batch_start in range(0, n, config.batch_size):
        xb = train_x[perm[batch_start:batch_start + config.batch_size]].to(device)
        xb_in = None if leakage_x is None else leaky_input(xb, leakage_x, *config.leakage_db, generator=noise_gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bfloat16"):
            if parallel is None:
                terms = model.loss(xb, kl_weight=kappa, ss_prob=ss, generator=noise_gen,
                                   forecast_weight=config.forecast_weight, x_in=xb_in)
                backward = terms.loss.float()
                value, recon, kl = float(terms.loss.detach()), float(terms.recon.detach()), float(terms.kl.detach())
            else:
                backward, (value, recon, kl) = parallel(xb, kappa, ss, noise_gen, xb_in)  # global means, same on all ranks
        if not math.isfinite(value):
            raise NumericalError(
                f"epoch {epoch}: training loss is {value} at batch {batch_start // config.batch_size}; "
                "nothing of this epoch was saved "
                f"({f'{state_path} holds epoch {epoch - 1}' if epoch > 0 else 'no epoch was saved yet'}); "
                "try a lower lr or grad_clip"
            )
        optimizer.zero_grad(set_to_none=True)
        backward.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        totals += xb.shape[0] * np.array([value, recon, kl])
    loss, recon, kl = (totals / n).tolist()
    return loss, recon, kl


def train_dvae(
    model: DVAE,
    train_x: Tensor,
    val_x: Tensor,
    config: TrainConfig,
    out_dir: str | Path,
    device: str | torch.device = "cpu",
    resume: bool = False,
    progress: bool = True,
    card_extra: Mapping[str, Any] | None = None,
    callback: Callable[[int, dict[str, Any], DVAE], None] | None = None,
    leakage_x: Tensor | None = None,
) -> TrainResult:
    """Pretrain ``model`` in place; return with the best weights loaded into it (in eval mode).

    ``card_extra`` (``data``, ``command``, ...) goes into the cards of ``best`` and ``last``.
    ``callback(epoch, record, model)`` runs after each epoch is on disk (a KeyboardInterrupt
    raised there, like Ctrl-C, propagates with that epoch kept).

    With ``resume=True`` the run continues after the last complete epoch in
    ``out_dir/last_state.safetensors`` with the same weights, Adam state and random generators, so it
    ends with exactly the weights an uninterrupted run would have; ``epochs`` and ``patience`` may be
    changed, nothing else. Without it, ``out_dir`` must not already hold a run.

    Under torchrun (a process group is initialised) training is data-parallel
    (:mod:`mixdvae.dvae.distributed`): every rank holds the whole data, each global batch is split
    over the ranks, only rank 0 writes files and shows progress, and every rank returns the same
    model. Resuming reads ``out_dir`` on every rank (it must be storage they all see).

    ``leakage_x``: sequences of the other source(s) for ``config.leakage_db`` (required with it,
    refused without it).

    Shape: train_x (N, T, D), val_x (M, T', D), leakage_x (L, T'', D) with T'' >= T, T'.

    Raises:
        DataFormatError: bad data shapes or values, or other data than the resumed run's.
        ConfigError: resuming with another architecture or config, or a run already in ``out_dir``.
        CheckpointError: an unreadable state file.
        NumericalError: a non-finite training or validation loss (that epoch is not saved).
    """
    _check_data(train_x, "train_x", model)
    _check_data(val_x, "val_x", model)
    if (leakage_x is None) != (config.leakage_db is None):
        raise ConfigError("TrainConfig.leakage_db and the leakage sequences go together: "
                          + ("set leakage_db" if config.leakage_db is None else "pass the other source's sequences (--leakage-data)"))
    if leakage_x is not None:
        _check_data(leakage_x, "leakage_x", model)
        if leakage_x.shape[1] < max(train_x.shape[1], val_x.shape[1]):
            raise DataFormatError(f"leakage_x: sequences of {leakage_x.shape[1]} frames, shorter than the training "
                                  f"({train_x.shape[1]}) or validation ({val_x.shape[1]}) ones")
    out = Path(out_dir)
    paths = run_paths(out)
    device = torch.device(device)
    rank, world = rank_and_world()
    writer = rank == 0  # only rank 0 writes files
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    shuffle_seed, noise_seed, val_seed = _seeds(config.seed)
    shuffle_gen = torch_generator(shuffle_seed, "cpu")
    noise_gen = torch_generator(noise_seed, device)
    data = data_fingerprint(train_x, val_x, leakage_x)
    val_in = None
    if leakage_x is not None:
        leakage_x = leakage_x.to(device)
        # one fixed leaky draw for validation, so that every epoch is scored on the same inputs
        val_in = leaky_input(val_x, leakage_x, *config.leakage_db, generator=torch_generator(val_seed, "cpu"))
    extra = {"train": config_to_dict(config), "seed": config.seed, **dict(card_extra or {})}

    history: list[dict[str, Any]] = []
    best_val: float | None = None
    best_metrics: dict[str, float] = {}
    best_epoch, bad_epochs, start = -1, 0, 0
    best_state: dict[str, Tensor] | None = None
    if resume:
        state = load_train_state(paths["state"])
        # a run saved before a field existed was trained with that field's default
        state.architecture = {**config_to_dict(type(model.config)()), **state.architecture}
        state.train_config = {**config_to_dict(TrainConfig()), **state.train_config}
        check_resumable(state, config_to_dict(model.config), config_to_dict(config), data, paths["state"],
                        may_change=_RESUMABLE_CHANGES)
        model.load_state_dict(state.model)
        restore_optimizer(optimizer, model, state.optimizer, str(paths["state"]))
        shuffle_gen.set_state(state.rng["shuffle"])
        noise_gen.set_state(state.rng["noise"])
        history = state.history
        best_val, best_epoch, bad_epochs = state.best_val_loss, state.best_epoch, state.bad_epochs
        best_state = {k: v.to(device) for k, v in state.best_model.items()} if state.best_model else None
        if best_epoch >= 0:
            rec = next(r for r in history if r["epoch"] == best_epoch)
            best_metrics = {"val_loss": rec["val_loss"], "val_recon": rec["val_recon"], "val_kl": rec["val_kl"]}
        start = state.epoch + 1
        if writer:
            _write_log(paths["log"], history)  # drops the lines of epochs after the restored one
        logger.info("resuming %s after epoch %d (best %s at epoch %d)", out, state.epoch, best_val, best_epoch)
    else:
        if paths["state"].exists():
            raise ConfigError(
                f"{out}: already holds a training run ({paths['state'].name}); "
                "resume it or choose another output folder"
            )
        if writer:
            out.mkdir(parents=True, exist_ok=True)
            _write_log(paths["log"], [])
    # DDP broadcasts rank 0's weights at construction: a collective, so no rank starts before all checked out_dir
    parallel = DataParallelLoss(model, device, forecast_weight=config.forecast_weight) if world > 1 else None

    stopped_early = best_epoch >= 0 and start > 0 and bad_epochs >= config.patience
    bar = tqdm(total=config.epochs, initial=min(start, config.epochs), desc="train", unit="epoch",
               file=sys.stderr, disable=not progress or not writer, leave=True)
    last_plot = time.monotonic()
    try:
        epoch = start
        while epoch < config.epochs and not stopped_early:
            t0 = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, epoch)
            if parallel is not None:  # per-rank noise, a function of (seed, epoch, rank): resumable
                noise_gen.manual_seed(rank_noise_seed(noise_seed, epoch, rank))
            train_loss, train_recon, train_kl = _train_epoch(
                model, optimizer, train_x, config, epoch, shuffle_gen, noise_gen, device, paths["state"], parallel,
                leakage_x)
            record: dict[str, Any] = {
                "epoch": epoch, "train_loss": train_loss, "train_recon": train_recon, "train_kl": train_kl,
                "val_loss": None, "val_recon": None, "val_kl": None,
                "kl_weight": kl_weight(config, epoch), "ss_prob": ss_probability(config, epoch),
                "lr": optimizer.param_groups[0]["lr"],
            }
            improved = False
            if (epoch + 1) % config.val_every == 0 or epoch == config.epochs - 1:
                val = evaluate_loss(model, val_x, val_seed, config.batch_size, device, config.forecast_weight, val_in)
                val = broadcast_from_rank0(val)  # every rank takes rank 0's early-stopping decisions
                if not math.isfinite(val["loss"]):
                    raise NumericalError(
                        f"epoch {epoch}: validation loss is {val['loss']}; nothing of this epoch was saved"
                    )
                record.update(val_loss=val["loss"], val_recon=val["recon"], val_kl=val["kl"])
                if best_val is None or val["loss"] < best_val:
                    improved = True
                    best_val, best_epoch = val["loss"], epoch
                    best_metrics = {"val_loss": val["loss"], "val_recon": val["recon"], "val_kl": val["kl"]}
                    best_state = _clone_state(model)
                bad_epochs = epoch - best_epoch
                stopped_early = bad_epochs >= config.patience
            record["seconds"] = time.perf_counter() - t0
            history.append(record)
            if writer:
                with _deferred_sigint():
                    if improved:
                        save_dvae(paths["best"], model, {**extra, "metrics": {
                            **best_metrics, "best_epoch": best_epoch, "epochs_run": epoch + 1}})
                    save_dvae(paths["last"], model, {**extra, "metrics": {
                        k: record[k] for k in ("val_loss", "val_recon", "val_kl", "train_loss")} | {"epoch": epoch}})
                    _write_log(paths["log"], history)  # the whole log, atomically: never a half-written line
                    save_train_state(paths["state"], TrainState(
                        epoch=epoch, best_val_loss=best_val, best_epoch=best_epoch, bad_epochs=bad_epochs,
                        history=history, architecture=config_to_dict(model.config),
                        train_config=config_to_dict(config), data=data, model=_clone_state(model),
                        best_model=best_state, optimizer=optimizer_tensors(optimizer, model),
                        rng={"shuffle": shuffle_gen.get_state(), "noise": noise_gen.get_state()},
                    ))
            bar.set_postfix({
                "train": f"{train_loss:.4g}",
                "val": "-" if record["val_loss"] is None else f"{record['val_loss']:.4g}",
                "best": "-" if best_val is None else f"{best_val:.4g}@{best_epoch}",
            }, refresh=False)
            bar.update(1)
            if callback is not None:
                callback(epoch, record, model)
            if writer and time.monotonic() - last_plot > _PLOT_EVERY_S:
                _plot(paths["plot"], history)
                last_plot = time.monotonic()
            epoch += 1
    finally:
        bar.close()
        if history and writer:
            _plot(paths["plot"], history)

    if best_state is None:
        raise CheckpointError(f"{paths['state']}: the run has no validated epoch to take the best weights from")
    model.load_state_dict(best_state)
    model.eval()
    epochs_run = len(history)
    if writer:
        save_dvae(paths["best"], model, {**extra, "metrics": {
            **best_metrics, "best_epoch": best_epoch, "epochs_run": epochs_run}})
    barrier()  # no rank returns (and perhaps resumes) before rank 0's files are complete
    logger.debug("best epoch %d of %d: validation loss %.6g", best_epoch, epochs_run, best_val)
    return TrainResult(
        best_epoch=best_epoch, best_val_loss=best_metrics["val_loss"], best_val_recon=best_metrics["val_recon"],
        best_val_kl=best_metrics["val_kl"], epochs_run=epochs_run, stopped_early=stopped_early,
        history=history, best_path=paths["best"], last_path=paths["last"], state_path=paths["state"],
        log_path=paths["log"], plot_path=paths["plot"],
    )
