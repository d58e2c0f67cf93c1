"""DVAE checkpoints: ``NAME.safetensors`` (weights) beside ``NAME.json`` (the card).

The weights are a flat safetensors file of the model's ``state_dict`` (never a pickle). The card
says what the weights are:

.. code-block:: json

    {"format": "mixdvae-dvae", "format_version": 1,
     "architecture": {...DVAEConfig fields...},
     "train": {...TrainConfig fields...} or null,
     "data": {...free description of the training data...},
     "command": "mixdvae train ..." or null, "seed": 128,
     "metrics": {"val_loss": ..., ...},
     "versions": {"mixdvae": ..., "torch": ..., "numpy": ..., "python": ...},
     "created": "2026-01-01T12:00:00+00:00"}

:func:`load_dvae` rebuilds the architecture from the card and checks every tensor against it, so a
truncated file, weights of another architecture or non-finite weights fail with one line naming
the file and the tensor instead of a traceback deep inside ``load_state_dict``. The original
research ``.pt`` files are imported by :mod:`mixdvae.dvae.reference`, not here.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import mixdvae
from mixdvae.config import config_from_dict, config_to_dict
from mixdvae.dvae.base import DVAE
from mixdvae.dvae.config import DVAEConfig
from mixdvae.dvae.factory import build_dvae
from mixdvae.errors import CheckpointError, ConfigError, NumericalError
from mixdvae.utils.io import atomic_path, first_line, write_json

__all__ = [
    "CARD_FORMAT",
    "CARD_FORMAT_VERSION",
    "checkpoint_paths",
    "save_dvae",
    "load_dvae",
    "read_card",
    "read_weights",
    "card_architecture",
    "check_weights",
    "versions",
]

CARD_FORMAT = "mixdvae-dvae"
CARD_FORMAT_VERSION = 1
_RESERVED = ("format", "format_version", "architecture", "versions", "created")
_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".bin")


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(NAME.safetensors, NAME.json)`` for ``NAME``, ``NAME.safetensors`` or ``NAME.json``.

    Any other suffix is kept as part of the name (``motion.v2`` -> ``motion.v2.safetensors``).
    """
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def versions() -> dict[str, str]:
    """Versions recorded in every card: mixdvae, torch, numpy, python."""
    return {
        "mixdvae": mixdvae.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict as independent, contiguous CPU tensors (safetensors refuses shared storage)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def save_dvae(path: str | os.PathLike, model: DVAE, card_extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as ``NAME.safetensors`` + ``NAME.json``; returns the ``.safetensors`` path.

    ``card_extra`` fills the card's ``train``, ``data``, ``command``, ``seed`` and ``metrics`` (and
    any further key, kept as given); it may not set ``format``, ``format_version``,
    ``architecture``, ``versions`` or ``created``. Both files are written atomically, the JSON
    last: a card on disk always describes weights that were completely written.

    Raises:
        NumericalError: a weight is NaN or inf (nothing is written).
    """
    extra = dict(card_extra or {})
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"card_extra may not set {clash}: save_dvae writes them")
    weights, card_path = checkpoint_paths(path)
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "format_version": CARD_FORMAT_VERSION,
        "architecture": config_to_dict(model.config),
        "train": None,
        "data": {},
        "command": None,
        "seed": None,
        "metrics": {},
    }
    card.update(extra)
    card["versions"] = versions()
    card["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    tensors = _state_tensors(model)
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise NumericalError(f"{weights}: refusing to save tensor '{key}': it holds NaN or inf values")
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": CARD_FORMAT})
    write_json(card_path, card)
    return weights


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """The card ``NAME.json`` of a checkpoint, checked to be a mixdvae DVAE card.

    Raises:
        CheckpointError: missing file, invalid JSON, another format or a newer format version.
    """
    _refuse_pickle(path)
    _, card_path = checkpoint_paths(path)
    if not card_path.is_file():
        raise CheckpointError(
            f"{card_path}: card not found (a checkpoint is NAME.safetensors beside NAME.json)"
        )
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{card_path}: not a readable JSON card ({err})") from err
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        found = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise CheckpointError(f"{card_path}: not a mixdvae DVAE card (format is {found!r}, expected {CARD_FORMAT!r})")
    version = card.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{card_path}: format_version = {version!r}, expected an integer >= 1")
    if version > CARD_FORMAT_VERSION:
        raise CheckpointError(
            f"{card_path}: format_version {version} was written by a newer mixdvae "
            f"(this one reads up to {CARD_FORMAT_VERSION})"
        )
    if not isinstance(card.get("architecture"), dict):
        raise CheckpointError(f"{card_path}: 'architecture' is missing or not a table of DVAEConfig fields")
    return card


def card_architecture(card: Mapping[str, Any], card_path: str | os.PathLike) -> DVAEConfig:
    """The :class:`DVAEConfig` of a card; a bad or unknown key is a :class:`CheckpointError`."""
    try:
        return config_from_dict(DVAEConfig, card["architecture"], source=f"{card_path}: architecture")
    except ConfigError as err:
        raise CheckpointError(str(err)) from err


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of ``NAME.safetensors`` on the CPU.

    Raises:
        CheckpointError: missing, truncated or corrupt file.
    """
    _refuse_pickle(path)
    weights, _ = checkpoint_paths(path)
    if not weights.is_file():
        raise CheckpointError(f"{weights}: weights file not found")
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as fh:
            return {key: fh.get_tensor(key) for key in fh.keys()}
    except Exception as err:  # safetensors raises its own SafetensorError, or OSError
        reason = first_line(err)
        raise CheckpointError(f"{weights}: not a readable safetensors file, truncated or corrupt ({reason})") from err


def _shape(t: torch.Tensor | torch.Size) -> str:
    return str(tuple(t.shape if isinstance(t, torch.Tensor) else t))


def check_weights(
    tensors: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], weights_name: str, card_name: str
) -> None:
    """Raise :class:`CheckpointError` unless ``tensors`` has exactly the names and shapes of
    ``expected`` (another architecture otherwise) and only finite floating-point values."""
    for key, ref in expected.items():
        if key not in tensors:
            raise CheckpointError(
                f"{weights_name}: tensor '{key}' is missing but the architecture in {card_name} needs it "
                f"with shape {_shape(ref)} (weights of another architecture?)"
            )
        got = tensors[key]
        if tuple(got.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{weights_name}: tensor '{key}' has shape {_shape(got)} but the architecture in "
                f"{card_name} needs {_shape(ref)}"
            )
    for key, got in tensors.items():
        if key not in expected:
            raise CheckpointError(
                f"{weights_name}: unexpected tensor '{key}' {_shape(got)}, not part of the architecture "
                f"in {card_name} (weights of another architecture?)"
            )
        if not got.is_floating_point():
            raise CheckpointError(f"{weights_name}: tensor '{key}' has dtype {got.dtype}, expected floating point")
        if not bool(torch.isfinite(got).all()):
            raise CheckpointError(f"{weights_name}: tensor '{key}' holds NaN or inf values")


def load_dvae(path: str | os.PathLike, device: str | torch.device = "cpu") -> DVAE:
    """Rebuild the DVAE described by ``NAME.json`` and load ``NAME.safetensors`` into it.

    A card with an ``ensemble`` entry (``{"members": K, "combine": ...}``, written by
    :func:`mixdvae.dvae.ensemble.save_ensemble`) gives a :class:`~mixdvae.dvae.ensemble.DVAEEnsemble`
    of K DVAEs of the card's architecture. ``path`` is ``NAME``, ``NAME.safetensors`` or ``NAME.json``. The model is returned in eval
    mode on ``device``. Loading does not touch the global random state.

    Raises:
        CheckpointError: one line naming the file for a missing file, a ``.pt``/``.pth`` pickle, a
            truncated or corrupt safetensors file, a JSON that is not a mixdvae card or holds an
            unknown architecture key, a tensor missing, unexpected or of another shape than the
            card's architecture needs, or non-finite weights.
    """
    weights, card_path = checkpoint_paths(path)
    card = read_card(path)
    config = card_architecture(card, card_path)
    tensors = read_weights(path)
    model = build_dvae(config, "cpu", seed=0)  # seeded: leaves the caller's RNG alone
    if card.get("ensemble") is not None:
        from mixdvae.dvae.ensemble import DVAEEnsemble

        size, combine = _ensemble_fields(card["ensemble"], card_path)
        try:
            model = DVAEEnsemble([model] + [build_dvae(config, "cpu", seed=0) for _ in range(size - 1)], combine)
        except ConfigError as err:
            raise CheckpointError(f"{card_path}: {err}") from err
    check_weights(tensors, model.state_dict(), str(weights), card_path.name)
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval()


def _ensemble_fields(entry: Any, card_path: Path) -> tuple[int, str]:
    """(members, combine) of a card's ``ensemble`` entry (:mod:`mixdvae.dvae.ensemble`)."""
    size = entry.get("members") if isinstance(entry, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise CheckpointError(f"{card_path}: 'ensemble' needs 'members', an integer >= 1, got {entry!r}")
    return size, entry.get("combine", "geometric")


def _refuse_pickle(path: str | os.PathLike) -> None:
    p = Path(path)
    if p.suffix.lower() in _PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{p}: only safetensors checkpoints (NAME.safetensors + NAME.json) load here; PyTorch "
            "pickles are never unpickled (import original research .pt files with mixdvae.dvae.reference)"
        )
