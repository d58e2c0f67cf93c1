"""``mixdvae train``: pretrain a DVAE prior on single-source trajectories.

Example::

    mixdvae train --data runs/data/train.npz --val runs/data/val.npz --out runs/motion \\
        --family srnn --encoder causal --epochs 500 --seed 128

The config file (TOML or JSON) has a ``[model]`` table of :class:`~mixdvae.dvae.config.DVAEConfig`
fields and a ``[train]`` table of :class:`~mixdvae.dvae.train.TrainConfig` fields; flags override
it. With ``--resume`` the saved run's settings are the defaults, so ``--data``, ``--out`` and
``--resume`` are enough to continue an interrupted run. ``--init W.safetensors`` starts a new run
(fresh optimiser, new data allowed) from the weights of a trained prior of the same architecture:
fine-tuning. With ``--widen`` the config's MLP layers may be wider than the prior's: the trained
function is kept and the new units start silent (:mod:`mixdvae.dvae.widen`).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixdvae.config import config_from_dict, load_config_file
from mixdvae.dvae.checkpoint import read_card
from mixdvae.dvae.config import FAMILIES, DVAEConfig
from mixdvae.dvae.factory import build_dvae
from mixdvae.dvae.train import TrainConfig, TrainResult, run_paths, train_dvae
from mixdvae.dvae.train_state import load_train_state
from mixdvae.errors import ConfigError, DataFormatError
from mixdvae.utils.device import resolve_device
from mixdvae.utils.distributed import process_group, rank_and_world
from mixdvae.utils.seed import numpy_generator

__all__ = ["add_parser", "run_train"]

_TABLES = ("model", "train")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="Pretrain a DVAE prior (Adam, KL warm-up, early stopping on the validation ELBO, resumable).",
        description="Pretrain a DVAE on a trajectories file. Writes DIR/best.safetensors + best.json (the best "
        "weights and their card), DIR/last.* and DIR/last_state.* (for --resume), DIR/log.jsonl and DIR/loss.png.",
    )
    p.add_argument("--data", type=Path, required=True, metavar="TRAIN.npz", action="append",
                   help="training trajectories (.npz from 'mixdvae data trajectories') or spectra; repeat it to "
                        "train on several files of the same sequence length (concatenated)")
    val = p.add_mutually_exclusive_group()
    val.add_argument("--val", type=Path, metavar="VAL.npz", action="append",
                     help="validation trajectories (.npz); repeatable like --data")
    val.add_argument("--val-fraction", type=float, metavar="F",
                     help="hold out this fraction of --data for validation (default: 0.1)")
    p.add_argument("--leakage-data", type=Path, metavar="OTHER.npz", action="append",
                   help="spectra of the other source(s) for leakage training (the [train] leakage_db range; "
                   "mixdvae.dvae.leakage); repeatable like --data")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="TOML/JSON with [model] and [train] tables; flags override it")
    p.add_argument("--family", choices=FAMILIES, help="DVAE family (default: srnn)")
    p.add_argument("--encoder", choices=("causal", "backward"), help="SRNN encoder (default: causal)")
    p.add_argument("--z-dim", type=int, metavar="N", help="latent size (default: 4)")
    p.add_argument("--rnn-dim", type=int, metavar="N", help="forward LSTM size (default: 8)")
    p.add_argument("--epochs", type=int, metavar="N", help="maximum epochs (default: 500)")
    p.add_argument("--batch-size", type=int, metavar="N", help="sequences per step (default: 256)")
    p.add_argument("--lr", type=float, metavar="X", help="Adam learning rate (default: 1e-3)")
    p.add_argument("--patience", type=int, metavar="N", help="early-stopping patience in epochs (default: 50)")
    p.add_argument("--seed", type=int, metavar="S",
                   help="seeds the weights, the split, the shuffling and the noise (default: 128)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--init", type=Path, metavar="W.safetensors",
                   help="start from these weights (a prior of the same architecture; fine-tuning: "
                        "a new run with a fresh optimiser, on any data)")
    p.add_argument("--widen", action="store_true",
                   help="with --init: the weights may come from a prior whose MLP layers (dense_*) are narrower "
                        "than the config's; they are widened keeping the prior's function (mixdvae.dvae.widen)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: torch's choice; 1 is often fastest for small models)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(func=run_train)


def _configs(args: argparse.Namespace) -> tuple[DVAEConfig, TrainConfig]:
    """Defaults (or the resumed run's settings) <- config file <- flags."""
    model: dict[str, Any] = {}
    train: dict[str, Any] = {}
    model_source, train_source = "DVAEConfig", "TrainConfig"
    state_path = run_paths(args.out)["state"]
    if args.resume and state_path.is_file():
        state = load_train_state(state_path)
        model.update(state.architecture)
        train.update(state.train_config)
    if args.config is not None:
        data = load_config_file(args.config)
        for key in data:
            if key not in _TABLES:
                raise ConfigError(f"{args.config}: unknown table '{key}' (known: {', '.join(_TABLES)})")
        for name, target in (("model", model), ("train", train)):
            table = data.get(name, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{args.config}: '{name}' must be a table")
            config_from_dict(DVAEConfig if name == "model" else TrainConfig, table, source=f"{args.config} [{name}]")
            target.update(table)
        model_source, train_source = f"{args.config} [model]", f"{args.config} [train]"
    flags_model = {"family": args.family, "encoder": args.encoder, "z_dim": args.z_dim, "rnn_dim": args.rnn_dim}
    flags_train = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                   "patience": args.patience, "seed": args.seed}
    model_cfg = config_from_dict(DVAEConfig, model, source=model_source)
    train_cfg = config_from_dict(TrainConfig, train, source=train_source)
    model_cfg = dataclasses.replace(model_cfg, **{k: v for k, v in flags_model.items() if v is not None})
    train_cfg = dataclasses.replace(train_cfg, **{k: v for k, v in flags_train.items() if v is not None})
    return model_cfg, train_cfg


def _check_trajectories_file(path: Path) -> None:
    """A training file that is not a spectra file must hold trajectories ('boxes'): a one-line error naming
    both kinds otherwise (an .npz of something else, e.g. separation estimates)."""
    from mixdvae.utils.io import npz_keys

    keys = npz_keys(path)
    if keys is not None and "boxes" not in keys:
        raise DataFormatError(f"{path}: not training sequences: expected 'power' (spectra, `mixdvae data spectra`) or "
                              f"'boxes' (trajectories, `mixdvae data trajectories`), found: {', '.join(keys) or 'nothing'}")


def _load_boxes(path: Path, x_dim: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """Training sequences (N, T, x_dim): box trajectories, or power spectra (key 'power')."""
    from mixdvae.data.spectra import is_spectra_file, load_spectra
    from mixdvae.data.trajectories import load_trajectories

    if is_spectra_file(path):
        power, meta = load_spectra(path)
        if power.shape[-1] != x_dim:
            raise DataFormatError(f"{path}: spectra have {power.shape[-1]} bins per frame but the model's x_dim is {x_dim}")
        description = {"path": str(path), "num": int(power.shape[0]), "length": int(power.shape[1]), "meta": meta}
        return torch.from_numpy(np.ascontiguousarray(power)), description

    _check_trajectories_file(path)
    trajectories = load_trajectories(path)
    boxes = trajectories.boxes
    if boxes.shape[-1] != x_dim:
        raise DataFormatError(
            f"{path}: trajectories have {boxes.shape[-1]} values per frame but the model's x_dim is {x_dim}"
        )
    description = {"path": str(path), "num": int(boxes.shape[0]), "length": int(boxes.shape[1]),
                   "meta": trajectories.meta}
    return torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32)), description


def _sequence_shape(path: Path, x_dim: int, spectra: bool) -> tuple[int, ...]:
    """The shape (N, T, x_dim) of a training file's sequences (SPECTRA: a spectra file, else trajectories)
    from its header alone. A file whose header does not show that shape is read in full, so it fails with
    :func:`_load_boxes`'s error."""
    from mixdvae.utils.io import read_npz_shapes

    key, what = ("power", "spectra file") if spectra else ("boxes", "trajectories file")
    if not spectra:
        _check_trajectories_file(path)
    shape = read_npz_shapes(path, (key,), what=what)[key]
    if len(shape) != 3 or shape[0] == 0 or shape[1] < 2 or shape[2] != x_dim:
        return tuple(_load_boxes(path, x_dim)[0].shape)
    return shape


def _load_files(paths: list[Path], x_dim: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """Training or validation sequences from one or more files, concatenated: (sum N_i, T, x_dim).
    One file gives its own description; several give {"files": [...], "num": sum}.

    Several files are first sized from their headers (no data read), then read once each into one
    preallocated tensor: spectra straight into their rows, a block at a time, so memory peaks at the
    concatenation itself (reading them all and concatenating held twice that: 12 GB for 6 GB of flute
    spectra); trajectory files (small) one at a time, then copied."""
    from mixdvae.data.spectra import is_spectra_file, load_spectra_into

    if len(paths) == 1:
        return _load_boxes(paths[0], x_dim)
    spectra = [is_spectra_file(path) for path in paths]
    shapes = [_sequence_shape(path, x_dim, is_spectra) for path, is_spectra in zip(paths, spectra)]
    if len({shape[1] for shape in shapes}) > 1:
        raise DataFormatError("the --data / --val / --leakage-data files have different sequence lengths ("
                              + ", ".join(f"{path}: {shape[1]}" for path, shape in zip(paths, shapes))
                              + "); make them with the same --length")
    out = torch.empty((sum(shape[0] for shape in shapes), *shapes[0][1:]), dtype=torch.float32)
    descriptions, start = [], 0
    for path, shape, is_spectra in zip(paths, shapes, spectra):
        if is_spectra:  # straight into its rows of the tensor
            meta = load_spectra_into(path, out[start:start + shape[0]].numpy())
            description = {"path": str(path), "num": shape[0], "length": shape[1], "meta": meta}
        else:
            x, description = _load_boxes(path, x_dim)
            if tuple(x.shape) != shape:
                raise DataFormatError(f"{path}: changed while it was being read ({shape} then {tuple(x.shape)})")
            out[start:start + shape[0]] = x
            del x
        descriptions.append(description)
        start += shape[0]
    return out, {"files": descriptions, "num": int(out.shape[0]), "length": int(out.shape[1])}


def _split(x: torch.Tensor, fraction: float, seed: int, path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Hold out round(fraction * N) sequences (at least 1), chosen by a seeded permutation."""
    if not (0.0 < fraction < 1.0):
        raise ConfigError(f"--val-fraction = {fraction!r}: must be in (0, 1)")
    n = x.shape[0]
    n_val = max(1, int(round(fraction * n)))
    if n - n_val < 1:
        raise DataFormatError(f"{path}: {n} sequence(s) are too few to hold out a validation fraction of {fraction}")
    perm = torch.from_numpy(numpy_generator(seed).permutation(n))
    return x[perm[n_val:]], x[perm[:n_val]]


def _git_commit() -> str | None:
    """The commit of the source tree mixdvae runs from, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
            text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _summary(result: TrainResult) -> str:
    why = "early stop" if result.stopped_early else "epoch limit"
    return "\n".join([
        f"best epoch {result.best_epoch} of {result.epochs_run} run ({why}); validation loss per frame "
        f"{result.best_val_loss:.6g} (recon {result.best_val_recon:.6g}, KL {result.best_val_kl:.6g})",
        f"best weights: {result.best_path} (card {result.best_path.with_suffix('.json')})",
        f"log: {result.log_path}",
        f"plot: {result.plot_path}",
    ])


def run_train(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads = {args.threads}: must be an integer >= 1")
        torch.set_num_threads(args.threads)
    model_cfg, train_cfg = _configs(args)
    with process_group(resolve_device(args.device)) as device:  # torchrun: data-parallel (mixdvae.dvae.distributed)
        return _train(args, model_cfg, train_cfg, device)


def _init_from(model: torch.nn.Module, path: Path, widen: bool = False) -> dict[str, Any] | None:
    """Copy the weights of the checkpoint ``path`` into ``model`` (same architecture; with ``widen``,
    narrower MLP layers are widened, :func:`mixdvae.dvae.widen.widen_into`), or a one-line error.
    Returns the widening plan, or None."""
    from mixdvae.dvae.weights import load_weights
    from mixdvae.dvae.widen import widen_into

    source = load_weights(path)
    if widen:
        try:
            plan = widen_into(model, source)
        except ConfigError as e:
            raise ConfigError(f"--init {path} --widen: {e}") from None
        return {field: {"from": old, "to": new} for field, (old, new) in plan.items()}
    own, theirs = model.state_dict(), source.state_dict()
    bad = sorted(k for k in own.keys() | theirs.keys() if k not in own or k not in theirs or own[k].shape != theirs[k].shape)
    if type(source) is not type(model) or bad:
        raise ConfigError(f"--init {path}: a '{source.family}' prior of another architecture than the one asked for "
                          f"('{model.family}'; differing tensors: {', '.join(bad[:4]) or 'none'}; "
                          "wider MLP layers only: add --widen)")
    model.load_state_dict(theirs)
    return None


def _train(args: argparse.Namespace, model_cfg: DVAEConfig, train_cfg: TrainConfig, device: torch.device) -> int:
    if args.init is not None and args.resume:
        raise ConfigError("--init starts a new run from trained weights and --resume continues a run: give one of them")
    if args.widen and args.init is None:
        raise ConfigError("--widen widens the weights given by --init W.safetensors: give --init too")
    train_x, train_desc = _load_files(args.data, model_cfg.x_dim)
    data: dict[str, Any] = {"train": train_desc}
    if args.val is not None:
        val_x, val_desc = _load_files(args.val, model_cfg.x_dim)
        data["val"] = val_desc
    else:
        fraction = 0.1 if args.val_fraction is None else args.val_fraction
        train_x, val_x = _split(train_x, fraction, train_cfg.seed, ", ".join(map(str, args.data)))
        data["val"] = {"split_of": ", ".join(map(str, args.data)), "fraction": fraction, "seed": train_cfg.seed,
                       "num": int(val_x.shape[0])}
        data["train"]["num"] = int(train_x.shape[0])
    leakage_x = None
    if args.leakage_data is not None or train_cfg.leakage_db is not None:
        if args.leakage_data is None:
            raise ConfigError(f"[train] leakage_db = {list(train_cfg.leakage_db)} needs --leakage-data OTHER.npz")
        if train_cfg.leakage_db is None:
            raise ConfigError("--leakage-data needs a leakage_db = [low, high] range (dB) in the [train] table")
        leakage_x, leakage_desc = _load_files(args.leakage_data, model_cfg.x_dim)
        data["leakage"] = leakage_desc
    command = "mixdvae " + shlex.join(sys.argv[1:])
    card_extra: dict[str, Any] = {"data": data, "command": command, "commit": _git_commit()}
    best_card = run_paths(args.out)["best"].with_suffix(".json")
    if args.resume and best_card.is_file():
        # keep the command that started the run; list the ones that resumed it
        previous = read_card(best_card)
        card_extra["command"] = previous.get("command")
        card_extra["resumed_by"] = [*previous.get("resumed_by", []), command]
        card_extra.update({k: previous[k] for k in ("init", "init_widened") if k in previous})
    model = build_dvae(model_cfg, device, seed=train_cfg.seed)
    if args.init is not None:
        widened = _init_from(model, args.init, widen=args.widen)
        card_extra["init"] = str(args.init)
        if widened:  # with --widen and layers that did grow
            card_extra["init_widened"] = widened
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    result = train_dvae(
        model, train_x.to(device), val_x.to(device), train_cfg, args.out, device=device,
        resume=args.resume, progress=progress, card_extra=card_extra,
        leakage_x=None if leakage_x is None else leakage_x.to(device),
    )
    if rank_and_world()[0] == 0:
        print(_summary(result))
    return 0
