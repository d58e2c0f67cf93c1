"""Device resolution. Only the CLI resolves ``"auto"``; library code takes an explicit device."""

from __future__ import annotations

import torch

from mixdvae.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` into a :class:`torch.device`.

    ``auto`` picks CUDA when available, else CPU. Asking for CUDA on a machine without it is a
    :class:`ConfigError` (one line), never a late crash.
    """
    if isinstance(name, torch.device):
        return name
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"--device: '{name}' is not a device (use auto, cpu, cuda or cuda:N)") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device: '{name}' requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device: '{name}' requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type not in ("cpu", "meta", "mps"):
        raise ConfigError(f"--device: '{name}' is not supported (use auto, cpu, cuda or cuda:N)")
    return device
