"""Import the original research checkpoints (``model_mot.pt``, ``model_scass_{cbf,wsj}.pt``) as an SRNN.

The original files are plain state_dicts (reference-implementation.md sections 1.2, 1.3 and 7). The
architecture is read from the tensor shapes, then the keys are renamed to ours:

    X.linear_i.{weight,bias}   ->  X.layers.i.{weight,bias}     (every MLP block X)
    gen_x_mean.*               ->  head.mean.*                  (MOT, Gaussian head)
    gen_x_logvar.*, gen_x.*    ->  head.logvar.*                (MOT; audio log-variance)
    everything else            ->  the same name                (rnn_h, rnn_g, inf_z_*, prior_z_*)

Two layouts exist. ``mot``: causal encoder q(z_t | [h_t, x_t, z_{t-1}]) and a Gaussian head
(``gen_x_mean``, ``gen_x_logvar``). ``audio``: backward encoder q(z_t | [g_t, z_{t-1}]) with
g = LSTM over the time-reversed MLP([h_t, x_t]) (``mlp_hx_g``, ``rnn_g``) and a complex-variance head
(``gen_x``). Our LSTMs are batch-first but have the same parameters as the original seq-first ones.

Files are read with ``torch.load(weights_only=True)`` only: a file that pickles anything other than
tensors and plain containers is refused with :class:`CheckpointError`, never executed.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from mixdvae.dvae.config import DVAEConfig
from mixdvae.dvae.srnn import SRNN
from mixdvae.errors import CheckpointError, ConfigError
from mixdvae.utils.io import first_line

__all__ = ["load_reference_checkpoint", "REFERENCE_KINDS"]

log = logging.getLogger(__name__)

REFERENCE_KINDS = ("auto", "mot", "audio")
_WRAPPER_KEYS = ("model_state_dict", "state_dict")
_LSTM_PARAMS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
_MLP_KEY = re.compile(r"^(?P<block>[A-Za-z0-9_]+)\.linear_(?P<index>\d+)\.(?P<param>weight|bias)$")
# MLP blocks of each layout, with the DVAEConfig field giving their sizes.
_MLP_BLOCKS = {
    "mot": {
        "mlp_x_h": "dense_x",
        "mlp_gz_z": "dense_enc",
        "mlp_hz_z": "dense_prior",
        "mlp_hz_x": "dense_dec",
    },
    "audio": {
        "mlp_x_h": "dense_x",
        "mlp_hx_g": "dense_g",
        "mlp_gz_z": "dense_enc",
        "mlp_hz_z": "dense_prior",
        "mlp_hz_x": "dense_dec",
    },
}
_LSTMS = {"mot": ("rnn_h",), "audio": ("rnn_h", "rnn_g")}
_LINEARS = {
    "mot": ("inf_z_mean", "inf_z_logvar", "prior_z_mean", "prior_z_logvar", "gen_x_mean", "gen_x_logvar"),
    "audio": ("inf_z_mean", "inf_z_logvar", "prior_z_mean", "prior_z_logvar", "gen_x"),
}
_HEAD_RENAME = {"gen_x_mean": "head.mean", "gen_x_logvar": "head.logvar", "gen_x": "head.logvar"}
_AUDIO_MARKERS = ("mlp_hx_g.", "rnn_g.", "gen_x.")


def load_reference_checkpoint(
    source: str | os.PathLike | Mapping[str, Tensor],
    kind: Literal["auto", "mot", "audio"] = "auto",
    device: str | torch.device = "cpu",
) -> SRNN:
    """An :class:`SRNN` holding the weights of an original MixDVAE checkpoint.

    ``source`` is the path of an original ``.pt`` file or an in-memory state_dict (a dict whose
    ``model_state_dict`` or ``state_dict`` entry is the state_dict is accepted too). ``kind`` is the
    layout: ``mot`` (section 1.2: causal encoder, Gaussian head, beta 1), ``audio`` (section 1.3:
    backward encoder, complex-variance head, beta 0.01) or ``auto`` (``audio`` when any of
    ``mlp_hx_g``, ``rnn_g``, ``gen_x`` is present, else ``mot``). Sizes (x_dim, z_dim, LSTM sizes,
    MLP depths and widths) come from the tensor shapes; activations are tanh and the networks see x
    itself (``input_transform = "identity"``), as in the original code.

    Raises :class:`CheckpointError` (one line naming the file, or ``state_dict``) for an unreadable
    file, a file that pickles objects other than tensors, something that is not a state_dict,
    missing or unexpected keys, shapes that disagree with the inferred architecture, and NaN or
    infinite weights; :class:`ConfigError` for an unknown ``kind``.
    """
    if kind not in REFERENCE_KINDS:
        raise ConfigError(
            f"load_reference_checkpoint: kind = {kind!r}: expected one of {list(REFERENCE_KINDS)}"
        )
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        raw = _load_file(Path(source))
    else:
        name = "state_dict"
        raw = source
    state = _as_state_dict(raw, name)
    if kind == "auto":
        kind = "audio" if any(k.startswith(_AUDIO_MARKERS) for k in state) else "mot"
    _check_keys(state, kind, name)
    config = _reference_config(state, kind, name)
    # Building draws the initial weights: fork the RNG so the caller's global stream is untouched.
    with torch.random.fork_rng(devices=[]):
        model = SRNN(config)
    renamed = {_our_key(key): value for key, value in state.items()}
    _check_shapes(state, renamed, model, config, name)
    _check_finite(state, name)
    with torch.no_grad():
        model.load_state_dict(renamed, strict=True)
    log.info("%s: loaded the original %s SRNN (%d parameters)", name, kind, model.num_parameters())
    return model.to(device)


def _reference_config(
    state: Mapping[str, Tensor], kind: Literal["mot", "audio"], name: str = "state_dict"
) -> DVAEConfig:
    """The :class:`DVAEConfig` of an original state_dict of layout ``kind``, read from its shapes.

    x_dim = rows of ``gen_x_mean`` / ``gen_x``, z_dim = rows of ``inf_z_mean``, rnn_dim (g_dim) =
    columns of ``rnn_h.weight_hh_l0`` (``rnn_g.weight_hh_l0``), MLP sizes = rows of each
    ``linear_i.weight``. The keys must have been checked; whether the other shapes agree is checked
    afterwards against the built model.
    """
    sizes = {
        field: tuple(
            _rows(state, f"{block}.linear_{i}.weight", name) for i in range(_mlp_depth(state, block))
        )
        for block, field in _MLP_BLOCKS[kind].items()
    }
    head = "gen_x_mean" if kind == "mot" else "gen_x"
    fields = dict(
        family="srnn",
        x_dim=_rows(state, f"{head}.weight", name),
        z_dim=_rows(state, "inf_z_mean.weight", name),
        head="gaussian" if kind == "mot" else "complex_variance",
        encoder="causal" if kind == "mot" else "backward",
        activation="tanh",
        rnn_dim=_hidden_size(state, "rnn_h", name),
        input_transform="identity",
        beta=1.0 if kind == "mot" else 0.01,
        **sizes,
    )
    if kind == "audio":
        fields["g_dim"] = _hidden_size(state, "rnn_g", name)
    try:
        return DVAEConfig(**fields)
    except ConfigError as err:
        raise CheckpointError(f"{name}: the tensor shapes give an invalid architecture ({err})") from err


# --------------------------------------------------------------------------- reading
def _load_file(path: Path) -> object:
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = _unpickler_detail(str(err))
        if "Unsupported global" in detail:  # a class or function: arbitrary code if it were unpickled
            raise CheckpointError(
                f"{path}: refused: the file pickles objects other than tensors and plain containers "
                f"({detail}); only weights are loaded (torch.load weights_only=True)"
            ) from err
        raise CheckpointError(f"{path}: cannot read as a torch checkpoint ({detail})") from err
    except Exception as err:  # torch raises RuntimeError, KeyError, EOFError, ... for a damaged file
        raise CheckpointError(f"{path}: cannot read as a torch checkpoint ({first_line(err)})") from err


def _unpickler_detail(message: str) -> str:
    """What follows ``WeightsUnpickler error:`` in torch's long message, first sentence only (e.g.
    ``Unsupported global: GLOBAL getattr was not an allowed global by default.``), else its first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        head, sep, tail = line.partition("WeightsUnpickler error:")
        if sep:
            detail = tail.strip() or (lines[i + 1] if i + 1 < len(lines) else "")
            if detail:
                return detail.split(". ")[0].rstrip(".")
    return lines[0] if lines else "unpickling failed"


def _as_state_dict(raw: object, name: str) -> dict[str, Tensor]:
    """Unwrap ``{"model_state_dict": sd}`` / ``{"state_dict": sd}`` and check names -> tensors."""
    if isinstance(raw, Mapping):
        for wrapper in _WRAPPER_KEYS:
            if wrapper in raw and isinstance(raw[wrapper], Mapping):
                raw = raw[wrapper]
                break
    if not isinstance(raw, Mapping):
        raise CheckpointError(
            f"{name}: holds a {type(raw).__name__}, expected a state_dict (names -> tensors)"
        )
    if not raw:
        raise CheckpointError(f"{name}: the state_dict is empty")
    state: dict[str, Tensor] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise CheckpointError(
                f"{name}: key {key!r} is a {type(key).__name__}, expected a state_dict (names -> tensors)"
            )
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"{name}: entry '{key}' is a {type(value).__name__}, expected a state_dict (names -> tensors)"
            )
        if not value.is_floating_point():
            raise CheckpointError(f"{name}: {key} has dtype {value.dtype}, expected floating-point weights")
        state[key] = value
    return state


# --------------------------------------------------------------------------- checks
def _mlp_depth(state: Mapping[str, Tensor], block: str) -> int:
    """1 + the largest ``i`` of the ``block.linear_i.*`` keys (1 when there are none, so that an
    absent block is reported as missing ``block.linear_0.*``)."""
    indices = [int(m["index"]) for k in state if (m := _MLP_KEY.match(k)) and m["block"] == block]
    return max(indices, default=0) + 1


def _expected_keys(state: Mapping[str, Tensor], kind: str) -> list[str]:
    keys = []
    for block in _MLP_BLOCKS[kind]:
        for i in range(_mlp_depth(state, block)):
            keys += [f"{block}.linear_{i}.weight", f"{block}.linear_{i}.bias"]
    for rnn in _LSTMS[kind]:
        keys += [f"{rnn}.{p}" for p in _LSTM_PARAMS]
    for linear in _LINEARS[kind]:
        keys += [f"{linear}.weight", f"{linear}.bias"]
    return keys


def _listing(keys: list[str], limit: int = 6) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _check_keys(state: Mapping[str, Tensor], kind: str, name: str) -> None:
    expected = _expected_keys(state, kind)
    missing = [k for k in expected if k not in state]
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listing(unexpected)}")
    if problems:
        raise CheckpointError(
            f"{name}: not an original {kind} SRNN state_dict (kind={kind!r}): " + "; ".join(problems)
        )


def _rows(state: Mapping[str, Tensor], key: str, name: str) -> int:
    """Output size of the Linear weight ``key`` (its number of rows)."""
    value = state[key]
    if value.ndim != 2:
        raise CheckpointError(f"{name}: {key} has shape {tuple(value.shape)}, expected a 2-D weight matrix")
    return int(value.shape[0])


def _hidden_size(state: Mapping[str, Tensor], rnn: str, name: str) -> int:
    key = f"{rnn}.weight_hh_l0"
    value = state[key]
    if value.ndim != 2 or value.shape[0] != 4 * value.shape[1]:
        raise CheckpointError(
            f"{name}: {key} has shape {tuple(value.shape)}, expected (4 H, H) for an LSTM"
        )
    return int(value.shape[1])


def _our_key(key: str) -> str:
    m = _MLP_KEY.match(key)
    if m:
        return f"{m['block']}.layers.{m['index']}.{m['param']}"
    module, _, param = key.partition(".")
    return f"{_HEAD_RENAME.get(module, module)}.{param}"


def _check_shapes(
    state: Mapping[str, Tensor], renamed: Mapping[str, Tensor], model: SRNN, config: DVAEConfig, name: str
) -> None:
    ours = model.state_dict()
    if set(ours) != set(renamed):  # a bug of ours, not of the file: the layouts above disagree with srnn.py
        diff = _listing(sorted(set(ours) ^ set(renamed)))
        raise RuntimeError(f"reference key mapping disagrees with SRNN: {diff}")
    arch = (
        f"x_dim={config.x_dim}, z_dim={config.z_dim}, rnn_dim={config.rnn_dim}"
        + (f", g_dim={config.g_dim}" if config.encoder == "backward" else "")
    )
    for key, value in state.items():
        want = tuple(ours[_our_key(key)].shape)
        if tuple(value.shape) != want:
            raise CheckpointError(
                f"{name}: {key} has shape {tuple(value.shape)}, expected {want} for the architecture "
                f"inferred from the other tensors ({arch})"
            )


def _check_finite(state: Mapping[str, Tensor], name: str) -> None:
    for key, value in state.items():
        bad = int((~torch.isfinite(value)).sum())
        if bad:
            raise CheckpointError(f"{name}: {key} holds {bad} non-finite value(s) (NaN or inf)")
