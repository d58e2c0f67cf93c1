"""Where the shipped priors live and how any prior file is loaded.

Shipped weights (``src/mixdvae/weights/NAME.safetensors`` + ``NAME.json`` card, each card naming the
command that trained it and its validation figures):

- ``motion_srnn``: SRNN motion prior, normalised (x1, y1, x2, y2) boxes (the default prior);
- ``motion_srnn_reference``: the same architecture on the reference box encoding (x, y, x + w, y - h)
  / (1920, 1080), for the ``reference`` preset;
- ``motion_deep_ar``: the Deep AR baseline, same data as ``motion_srnn``;
- ``speech_srnn`` / ``flute_srnn``: the audio priors (complex-variance head on 513 STFT bins);
- ``speech_deep_ar`` / ``flute_deep_ar``: the audio Deep AR baseline, same data.
The NMF baselines' bases ship as ``nmf_bases.safetensors`` (see :mod:`mixdvae.baselines.nmf`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from mixdvae.dvae.base import DVAE
from mixdvae.errors import CheckpointError

__all__ = ["shipped_weights", "load_weights", "SHIPPED"]

SHIPPED = ("motion_srnn", "motion_srnn_reference", "motion_deep_ar", "speech_srnn", "flute_srnn",
           "speech_deep_ar", "flute_deep_ar")


def shipped_weights(name: str) -> Path:
    """Path of the shipped checkpoint ``name`` (its ``.safetensors`` file)."""
    return Path(str(resources.files("mixdvae") / "weights" / f"{name}.safetensors"))


def load_weights(path: str | Path, device: str | torch.device = "cpu", reference_kind: str = "mot",
                 ensemble_ok: bool = False) -> DVAE:
    """A DVAE from one of our safetensors checkpoints, or from an original research ``.pt``
    state_dict (imported by :func:`mixdvae.dvae.reference.load_reference_checkpoint`).

    An ensemble checkpoint (:mod:`mixdvae.dvae.ensemble`) loads only where the caller can run one
    (``ensemble_ok``: the audio separation priors); elsewhere it is a one-line error."""
    from mixdvae.dvae.checkpoint import load_dvae
    from mixdvae.dvae.reference import load_reference_checkpoint

    path = Path(path)
    if path.suffix in (".pt", ".pth"):
        return load_reference_checkpoint(path, kind=reference_kind, device=device)
    if not path.with_suffix(".safetensors").is_file():
        raise CheckpointError(f"{path}: weights not found")
    model = load_dvae(path, device=device)
    if not ensemble_ok and not isinstance(model, DVAE):
        raise CheckpointError(f"{path}: an ensemble of {model.num_members} priors; ensembles drive audio separation "
                              "only (pass one member's checkpoint here)")
    return model
