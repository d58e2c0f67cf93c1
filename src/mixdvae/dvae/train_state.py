"""The resumable state of a training run, in one atomically written safetensors file.

``last_state.safetensors`` holds everything :func:`mixdvae.dvae.train.train_dvae` needs to go on
exactly where it stopped, so that an interrupted-then-resumed run ends with the same weights as an
uninterrupted one:

- ``model/<param>``: the weights after the last complete epoch;
- ``best/<param>``: the best weights so far (kept here too, so the state never depends on which of
  several files a ``kill -9`` interrupted);
- ``optim/<param>/{step, exp_avg, exp_avg_sq}``: the Adam moments and step count of each parameter;
- ``rng/shuffle``, ``rng/noise``: the states of the data-shuffling and training-noise generators
  (``torch.Generator.get_state()``, uint8);
- the safetensors metadata ``state``: a JSON object with the epoch, the best validation loss and
  epoch, the patience counter, the architecture, the train config, a fingerprint of the data and
  the per-epoch history.

Because it is a single file renamed into place, it is always complete and self-consistent.
``last_state.json`` beside it is a human-readable copy of the JSON part, written after it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mixdvae.errors import CheckpointError, ConfigError, DataFormatError
from mixdvae.utils.io import atomic_path, first_line, write_json

__all__ = [
    "STATE_FORMAT",
    "TrainState",
    "save_train_state",
    "load_train_state",
    "optimizer_tensors",
    "restore_optimizer",
    "data_fingerprint",
    "check_resumable",
]

STATE_FORMAT = "mixdvae-train-state"
STATE_FORMAT_VERSION = 1


@dataclass
class TrainState:
    """Everything needed to resume after ``epoch`` (0-based, the last complete epoch)."""

    epoch: int
    best_val_loss: float | None
    best_epoch: int
    bad_epochs: int
    history: list[dict[str, Any]]
    architecture: dict[str, Any]
    train_config: dict[str, Any]
    data: dict[str, Any]
    model: dict[str, torch.Tensor] = field(repr=False)
    best_model: dict[str, torch.Tensor] | None = field(repr=False)
    optimizer: dict[str, torch.Tensor] = field(repr=False)
    rng: dict[str, torch.Tensor] = field(repr=False)

    def scalars(self) -> dict[str, Any]:
        """The JSON part (no tensors)."""
        return {
            "format": STATE_FORMAT,
            "format_version": STATE_FORMAT_VERSION,
            "epoch": self.epoch,
            "best_val_loss": self.best_val_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "architecture": self.architecture,
            "train_config": self.train_config,
            "data": self.data,
            "history": self.history,
        }


_DIGEST_BLOCK = 1 << 22


def data_fingerprint(train_x: torch.Tensor, val_x: torch.Tensor, leakage_x: torch.Tensor | None = None) -> dict[str, Any]:
    """Shapes and sha256 of the training and validation tensors, and of the leakage sequences when
    there are any (to refuse resuming on other data)."""
    def digest(x: torch.Tensor) -> str:
        # fed in blocks of 2^22 values (16 MB), the digest of the float32 bytes in order: a copy of the
        # whole tensor as bytes would double a 10 GB training set's memory
        h = hashlib.sha256()
        for block in x.detach().reshape(-1).split(_DIGEST_BLOCK):
            h.update(block.to("cpu", torch.float32).contiguous().numpy())
        return h.hexdigest()

    tensors = {"train": train_x, "val": val_x, **({} if leakage_x is None else {"leakage": leakage_x})}
    return {**{f"{k}_shape": list(x.shape) for k, x in tensors.items()},
            **{f"{k}_sha256": digest(x) for k, x in tensors.items()}}


def optimizer_tensors(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The per-parameter optimizer state as ``{"<param>/<key>": tensor}`` (CPU copies).

    Non-tensor entries (none for Adam in torch 2) are stored as 0-d float64 tensors.
    """
    out: dict[str, torch.Tensor] = {}
    for name, param in model.named_parameters():
        for key, value in optimizer.state.get(param, {}).items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=torch.float64)
            out[f"{name}/{key}"] = tensor.detach().to("cpu", copy=True).contiguous()
    return out


def restore_optimizer(
    optimizer: torch.optim.Optimizer, model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str
) -> None:
    """Load the state written by :func:`optimizer_tensors` into ``optimizer`` (built on ``model``).

    Raises:
        CheckpointError: a state for a parameter the model lacks, or of the wrong shape.
    """
    params = dict(model.named_parameters())
    index = {id(p): i for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])}
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        name, _, slot = key.rpartition("/")
        if name not in params:
            raise CheckpointError(f"{source}: optimizer state for unknown parameter '{name}'")
        if slot != "step" and tuple(value.shape) != tuple(params[name].shape):
            raise CheckpointError(
                f"{source}: optimizer state '{key}' has shape {tuple(value.shape)} but parameter "
                f"'{name}' has {tuple(params[name].shape)}"
            )
        per_param.setdefault(index[id(params[name])], {})[slot] = value
    state_dict = optimizer.state_dict()
    state_dict["state"] = per_param
    optimizer.load_state_dict(state_dict)


def save_train_state(path: str | os.PathLike, state: TrainState) -> Path:
    """Write ``state`` to ``path`` (``.safetensors``) atomically, then its JSON copy beside it."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    tensors.update({f"model/{k}": v for k, v in state.model.items()})
    if state.best_model is not None:
        tensors.update({f"best/{k}": v for k, v in state.best_model.items()})
    tensors.update({f"optim/{k}": v for k, v in state.optimizer.items()})
    tensors.update({f"rng/{k}": v for k, v in state.rng.items()})
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    scalars = state.scalars()
    metadata = {"format": STATE_FORMAT, "state": json.dumps(scalars, allow_nan=False)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    write_json(path.with_suffix(".json"), scalars)
    return path


def load_train_state(path: str | os.PathLike) -> TrainState:
    """Read a state written by :func:`save_train_state` (only the ``.safetensors`` file is used).

    Raises:
        CheckpointError: missing, truncated or corrupt file, or not a mixdvae training state.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no training state to resume from")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except Exception as err:  # SafetensorError or OSError
        reason = first_line(err)
        raise CheckpointError(f"{path}: not a readable safetensors file, truncated or corrupt ({reason})") from err
    if metadata.get("format") != STATE_FORMAT or "state" not in metadata:
        raise CheckpointError(f"{path}: not a mixdvae training state (format {metadata.get('format')!r})")
    try:
        scalars = json.loads(metadata["state"])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: corrupt state metadata ({err})") from err
    if scalars.get("format_version", 0) > STATE_FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer mixdvae (state format {scalars.get('format_version')})")
    groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "best": {}, "optim": {}, "rng": {}}
    for key, value in tensors.items():
        group, _, rest = key.partition("/")
        if group not in groups:
            raise CheckpointError(f"{path}: unexpected tensor '{key}' in a training state")
        groups[group][rest] = value
    try:
        return TrainState(
            epoch=int(scalars["epoch"]),
            best_val_loss=scalars["best_val_loss"],
            best_epoch=int(scalars["best_epoch"]),
            bad_epochs=int(scalars["bad_epochs"]),
            history=list(scalars["history"]),
            architecture=dict(scalars["architecture"]),
            train_config=dict(scalars["train_config"]),
            data=dict(scalars["data"]),
            model=groups["model"],
            best_model=groups["best"] or None,
            optimizer=groups["optim"],
            rng=groups["rng"],
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: incomplete training state (missing or bad {err})") from err


def check_resumable(
    state: TrainState,
    architecture: dict[str, Any],
    train_config: dict[str, Any],
    data: dict[str, Any],
    source: str | os.PathLike,
    may_change: Sequence[str] = (),
) -> None:
    """Refuse to resume ``state`` with another architecture, train config (except the fields in
    ``may_change``) or data (:func:`data_fingerprint`).

    Raises:
        ConfigError: ``cannot resume out/last_state.safetensors: TrainConfig.lr = 0.002 but the run
            was started with 0.001 (...)``, or the same for a DVAEConfig field.
        DataFormatError: other training or validation data than the run's.
    """
    for key in sorted(set(architecture) | set(state.architecture)):
        if architecture.get(key) != state.architecture.get(key):
            raise ConfigError(
                f"cannot resume {source}: DVAEConfig.{key} = {architecture.get(key)!r} but the run was started "
                f"with {state.architecture.get(key)!r}"
            )
    for key, value in train_config.items():
        if key not in may_change and value != state.train_config.get(key):
            raise ConfigError(
                f"cannot resume {source}: TrainConfig.{key} = {value!r} but the run was started "
                f"with {state.train_config.get(key)!r} (only {', '.join(may_change) or 'nothing'} may change)"
            )
    for key in ("train_shape", "val_shape", "train_sha256", "val_sha256"):
        if data[key] != state.data.get(key):
            which = "training" if key.startswith("train") else "validation"
            raise DataFormatError(
                f"cannot resume {source}: the {which} data differ from the run's ({key} {data[key]} "
                f"vs {state.data.get(key)})"
            )
