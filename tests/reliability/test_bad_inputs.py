"""Bad inputs, end to end through the CLI: each one ends as exit code 2 and a single stderr line that
names the offending file (or flag) and what is wrong, never a traceback, and never leaves an output
file under its final name. Valid but unusual inputs give a correct, finite result instead.

``CASES`` is the table of distinct bad inputs, one test id each (``pytest --collect-only -q -k exit_2``
lists them); ``ISSUE_CATEGORIES`` maps each category of issue 8 to the cases and tests covering it.
Pickled payloads (whose code must never run) are in test_pickled_payloads.py."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf
import torch
from separation._tiny import SR, tiny_bases, tiny_checkpoint, write_wav

from conftest import shared_data_dir
from mixdvae.cli.main import main
from mixdvae.data.mixtures import Mixtures, save_estimates, save_mixtures
from mixdvae.data.windows import WindowSet, save_windows
from mixdvae.dvae.checkpoint import save_dvae
from mixdvae.dvae.config import DVAEConfig
from mixdvae.dvae.factory import build_dvae
from mixdvae.tracking.results import TrackingResults, save_tracking_results

TUD = shared_data_dir() / "MOT15" / "train" / "TUD-Campus"
CPU = ["--device", "cpu"]
NO_PROGRESS = ["--no-progress"]
W, T, N = 2, 10, 3


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    """Small valid inputs the cases copy and corrupt: trajectories, a tiny motion prior, windows and
    results, tiny NMF bases, a mixtures file."""
    root = tmp_path_factory.mktemp("assets")
    traj = root / "traj.npz"
    assert main(["data", "trajectories", "--num", "20", "--length", "10", "--seed", "0", "--out", str(traj),
                 "--no-progress"]) == 0
    motion = save_dvae(root / "motion", build_dvae(DVAEConfig(z_dim=2, rnn_dim=4), seed=0))
    windows = _windows(root / "w.npz")
    results = save_tracking_results(root / "r.npz", TrackingResults(
        boxes=np.load(windows)["gt"], eta=np.tile(np.eye(N), (W, T, 1, 1)), method="test", config={}))
    bases = tiny_bases(root / "bases.safetensors")
    mixtures = _mixtures(root / "m.npz")
    return {"root": root, "traj": traj, "motion": motion, "windows": windows, "results": results,
            "bases": bases, "mixtures": mixtures}


def _windows(path: Path) -> Path:
    """Two windows of three people with exact detections (as in tests/cli/test_evaluate_tracking.py)."""
    t = np.arange(T)[:, None]
    x1 = 100.0 * np.arange(N)[None, :] + 2.0 * t
    gt = np.stack([x1, np.full((T, N), 50.0), x1 + 40, np.full((T, N), 130.0)], axis=-1)
    gt = np.stack([gt, gt + 5.0])  # (W, T, N, 4)
    perm = np.tile(np.arange(N), (W, T, 1))  # (W, T, K)
    ws = WindowSet(gt=gt, det=gt.copy(), det_gt_index=perm, sequence=np.array(["TUD-Campus"] * W),
                   ids=np.tile(np.arange(1, N + 1), (W, 1)), image_size=np.tile([640.0, 480.0], (W, 1)),
                   frames=np.array([[1, 10], [11, 20]]), recipe={"length": T, "sources": N})
    return save_windows(path, ws)


def _mixtures(path: Path, m: int = 2, length_frames: int = 20) -> Path:
    rng = np.random.default_rng(0)
    L = (length_frames - 1) * 256
    sources = (0.1 * rng.standard_normal((m, 2, L))).astype(np.float32)
    save_mixtures(path, Mixtures(
        mixture=sources.sum(1, dtype=np.float32), sources=sources, source_names=["speech", "flute"],
        sample_rate=SR, length_frames=length_frames, ratio_db=np.zeros(m, np.float32),
        files=np.array([["s.flac", "f.flac"]] * m), offsets=np.zeros((m, 2), np.int64), seed=0))
    return path


# ------------------------------------------------------------------------------------------------ cases

@dataclass
class Bad:
    """``make(tmp, assets) -> (argv, output path that must not appear)``; ``words``: the stderr line
    must contain each of them (``{tmp}`` stands for the case's folder)."""

    make: Callable[[Path, dict], tuple[list[str], Path]]
    words: tuple[str, ...]
    xfail: str | None = None  # a known gap in code this suite may not change: strict xfail with this reason


# MOTChallenge -------------------------------------------------------------------------------------------

def _mot(tmp: Path, edit: Callable[[Path], None]) -> Path:
    seq = tmp / "mot" / "TUD-Campus"
    shutil.copytree(TUD, seq)
    edit(seq)
    return seq


def _windows_argv(tmp: Path, seq: Path) -> tuple[list[str], Path]:
    out = tmp / "out.npz"
    return (["data", "windows", "--mot-dir", str(seq.parent), "--sequences", seq.name, "--detector", "file",
             "--length", "20", "--sources", "3", "--stride", "10", "--out", str(out)], out)


def _edit_line(rel: str, line_no: int, new: Callable[[str], str]) -> Callable[[Path], None]:
    def edit(seq: Path) -> None:
        path = seq / rel
        lines = path.read_text().splitlines()
        lines[line_no - 1] = new(lines[line_no - 1])
        path.write_text("\n".join(lines) + "\n")
    return edit


def _set_col(col: int, value: str) -> Callable[[str], str]:
    def new(line: str) -> str:
        parts = line.split(",")
        parts[col] = value
        return ",".join(parts)
    return new


def mot_case(edit: Callable[[Path], None], *words: str) -> Bad:
    return Bad(lambda tmp, a: _windows_argv(tmp, _mot(tmp, edit)), words)


def _write(rel: str, text: str) -> Callable[[Path], None]:
    def edit(seq: Path) -> None:
        (seq / rel).write_text(text)
    return edit


def _remove(rel: str) -> Callable[[Path], None]:
    return lambda seq: (seq / rel).unlink()


def _gt_duplicate_id(seq: Path) -> None:
    path = seq / "gt" / "gt.txt"
    lines = path.read_text().splitlines()
    first = lines[0].split(",")
    lines.insert(1, ",".join([first[0], first[1], "10", "10", "20", "40", *first[6:]]))
    path.write_text("\n".join(lines) + "\n")


def _seqinfo_without_length(seq: Path) -> None:
    path = seq / "seqinfo.ini"
    path.write_text("".join(l for l in path.read_text().splitlines(keepends=True) if not l.startswith("seqLength")))


# windows / results ----------------------------------------------------------------------------------------

def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _windows_with(tmp: Path, a: dict, **changes) -> Path:
    data = dict(np.load(a["windows"]))
    data.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del data[key]
    return _npz(tmp / "w.npz", **data)


def _track(windows: Callable[[Path, dict], Path]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        out = tmp / "res.npz"
        return ["track", str(windows(tmp, a)), "--out", str(out), "--method", "kalman", *CPU, *NO_PROGRESS], out
    return make


def _nan_gt(tmp: Path, a: dict) -> Path:
    gt = np.load(a["windows"])["gt"].copy()
    gt[0, 3, 1, 2] = np.nan
    return _windows_with(tmp, a, gt=gt)


def _empty_windows(tmp: Path, a: dict) -> Path:
    data = np.load(a["windows"])
    return _windows_with(tmp, a, **{k: data[k][:0] for k in ("gt", "det", "det_gt_index", "sequence", "ids",
                                                            "image_size", "frames")})


def _evaluate_tracking(results: Callable[[Path, dict], Path]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        out = tmp / "scores.json"
        return ["evaluate", "tracking", str(results(tmp, a)), "--windows", str(a["windows"]), "--protocol",
                "standard", "--json", str(out)], out
    return make


def _short_results(tmp: Path, a: dict) -> Path:
    gt = np.load(a["windows"])["gt"]
    return save_tracking_results(tmp / "r.npz", TrackingResults(
        boxes=gt[:, :5], eta=np.tile(np.eye(N), (W, 5, 1, 1)), method="test", config={}))


def _results_without_eta(tmp: Path, a: dict) -> Path:
    data = dict(np.load(a["results"]))
    del data["eta"]
    return _npz(tmp / "r.npz", **data)


# audio --------------------------------------------------------------------------------------------------

def _separate(audio: Callable[[Path], Path]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        out = tmp / "sep"
        return (["separate", str(audio(tmp)), "--out", str(out), "--method", "nmf", "--nmf-bases", str(a["bases"]),
                 "--iterations", "2", *CPU, *NO_PROGRESS], out)
    return make


def _float_wav(tmp: Path, x: np.ndarray, rate: int = SR) -> Path:
    path = tmp / "in.wav"
    sf.write(str(path), x, rate, subtype="FLOAT")
    return path


def _nan_wav(tmp: Path) -> Path:
    x = (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    x[100] = np.nan
    return _float_wav(tmp, x)


def _text_wav(tmp: Path) -> Path:
    path = tmp / "in.wav"
    path.write_text("this is not audio\n")
    return path


def _zip_garbage(name: str) -> Callable[[Path, dict], Path]:
    """A file that starts like a zip archive (as an .npz does) but is not one."""
    def make(tmp: Path, a: dict) -> Path:
        path = tmp / name
        path.write_bytes(b"PK\x03\x04" + b"garbage" * 10)
        return path
    return make


def _empty_file(tmp: Path) -> Path:
    path = tmp / "in.wav"
    path.write_bytes(b"")
    return path


# configs ------------------------------------------------------------------------------------------------

def _train(config_text: str) -> Callable[[Path, dict], tuple[list[str], Path]]:
    return _config_file("c.toml", config_text)


# checkpoints --------------------------------------------------------------------------------------------

def _forecast(weights: Callable[[Path, dict], Path]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        out = tmp / "f.json"
        return ["evaluate", "forecast", "--weights", str(weights(tmp, a)), "--data", str(a["traj"]),
                "--json", str(out), *CPU], out
    return make


def _copy_checkpoint(tmp: Path, a: dict) -> Path:
    for suffix in (".safetensors", ".json"):
        shutil.copy(a["motion"].with_suffix(suffix), tmp / f"w{suffix}")
    return tmp / "w.safetensors"


def _truncated(tmp: Path, a: dict) -> Path:
    path = _copy_checkpoint(tmp, a)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _no_card(tmp: Path, a: dict) -> Path:
    path = _copy_checkpoint(tmp, a)
    path.with_suffix(".json").unlink()
    return path


def _nan_weights(tmp: Path, a: dict) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = _copy_checkpoint(tmp, a)
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    first = sorted(tensors)[0]
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, str(path), metadata=metadata)
    return path


def _other_architecture(tmp: Path, a: dict) -> Path:
    return tiny_checkpoint(tmp / "w", x_dim=7, head="gaussian")


class _Payload:
    """Any custom class: unpickling it would run code chosen by the file."""


def _pickle_pt(tmp: Path, a: dict) -> Path:
    path = tmp / "w.pt"
    torch.save({"state": _Payload()}, path)
    return path


# trajectories -------------------------------------------------------------------------------------------

def _traj_with(boxes: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path, dict], Path]:
    def make(tmp: Path, a: dict) -> Path:
        data = dict(np.load(a["traj"]))
        data["boxes"] = boxes(data["boxes"].copy())
        return _npz(tmp / "t.npz", **data)
    return make


def _nan_boxes(b: np.ndarray) -> np.ndarray:
    b[3, 4, 1] = np.nan
    return b


def _train_on(traj: Callable[[Path, dict], Path]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        out = tmp / "run"
        return ["train", "--data", str(traj(tmp, a)), "--out", str(out), "--epochs", "1", "--z-dim", "2",
                "--rnn-dim", "4", *CPU, *NO_PROGRESS], out
    return make


def _forecast_on(traj: Callable[[Path, dict], Path]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        out = tmp / "f.json"
        return ["evaluate", "forecast", "--weights", str(a["motion"]), "--data", str(traj(tmp, a)),
                "--json", str(out), *CPU], out
    return make


# estimates ----------------------------------------------------------------------------------------------

def _evaluate_separation(estimates: Callable[[np.ndarray], tuple[np.ndarray, list[str]]]):
    def make(tmp: Path, a: dict):
        sources = np.load(a["mixtures"])["sources"]
        est, names = estimates(sources.copy())
        path = save_estimates(tmp / "est.npz", est, names, method="test")
        out = tmp / "scores.json"
        return ["evaluate", "separation", str(path), "--mixtures", str(a["mixtures"]), "--metrics", "rmse,si_sdr",
                "--json", str(out), *NO_PROGRESS], out
    return make


# further cases (issue 8 audit) ---------------------------------------------------------------------------

def _append_col(value: str) -> Callable[[str], str]:
    return lambda line: f"{line},{value}"


def _write_bytes(rel: str, data: bytes) -> Callable[[Path], None]:
    def edit(seq: Path) -> None:
        (seq / rel).write_bytes(data)
    return edit


MOT17 = shared_data_dir() / "MOT17" / "train" / "MOT17-02-SDP"


def _mot17_case(edit: Callable[[Path], None], *words: str) -> Bad:
    """A MOT17 sequence (9-column gt, no det.txt) through the simulated detector."""
    def make(tmp: Path, a: dict):
        seq = tmp / "mot" / MOT17.name
        seq.mkdir(parents=True)
        (seq / "gt").mkdir()
        shutil.copy(MOT17 / "seqinfo.ini", seq / "seqinfo.ini")
        shutil.copy(MOT17 / "gt" / "gt.txt", seq / "gt" / "gt.txt")
        edit(seq)
        out = tmp / "out.npz"
        return (["data", "windows", "--mot-dir", str(seq.parent), "--detector", "simulated", "--length", "20",
                 "--sources", "3", "--stride", "10", "--out", str(out)], out)
    return Bad(make, words)


def _windows_argv_dir(mot_dir: Callable[[Path], Path], sequences: str | None = None):
    def make(tmp: Path, a: dict):
        out = tmp / "out.npz"
        extra = [] if sequences is None else ["--sequences", sequences]
        return (["data", "windows", "--mot-dir", str(mot_dir(tmp)), *extra, "--detector", "file", "--length", "20",
                 "--sources", "3", "--stride", "10", "--out", str(out)], out)
    return make


def _inf_det(tmp: Path, a: dict) -> Path:
    det = np.load(a["windows"])["det"].copy()
    det[1, 2, 0, 3] = np.inf
    return _windows_with(tmp, a, det=det)


def _windows_array(key: str, value: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path, dict], Path]:
    return lambda tmp, a: _windows_with(tmp, a, **{key: value(np.load(a["windows"])[key])})


def _single_npy(tmp: Path, a: dict) -> Path:
    path = tmp / "w.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.load(a["windows"])["gt"])
    return path


def _plot_tracking(results: Callable[[Path, dict], Path]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        out = tmp / "plots"
        return ["plot", "tracking", str(results(tmp, a)), "--windows", str(a["windows"]), "--out", str(out)], out
    return make


def _nan_results(tmp: Path, a: dict) -> Path:
    data = dict(np.load(a["results"]))
    data["boxes"] = data["boxes"].copy()
    data["boxes"][1, 4, 2, 0] = np.nan
    return _npz(tmp / "r.npz", **data)


def _short_wav_at(rate: int, samples: int) -> Callable[[Path], Path]:
    return lambda tmp: _float_wav(tmp, (0.1 * np.random.default_rng(0).standard_normal(samples)).astype(np.float32),
                                  rate)


def _inf_wav(tmp: Path) -> Path:
    x = (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    x[5000] = np.inf
    return _float_wav(tmp, x)


def _config_file(name: str, text: str) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        config = tmp / name
        config.write_text(text)
        out = tmp / "run"
        return ["train", "--config", str(config), "--data", str(a["traj"]), "--out", str(out), "--epochs", "1",
                *CPU, *NO_PROGRESS], out
    return make


def _track_config(text: str) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        config = tmp / "t.toml"
        config.write_text(text)
        out = tmp / "res.npz"
        return ["track", str(a["windows"]), "--out", str(out), "--method", "kalman", "--config", str(config),
                *CPU, *NO_PROGRESS], out
    return make


def _separate_config(text: str) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        config = tmp / "s.toml"
        config.write_text(text)
        argv, out = _separate(lambda t: write_wav(t / "in.wav", np.full(SR, 0.1, np.float32)))(tmp, a)
        return [*argv, "--config", str(config)], out
    return make


def _spectra(source: Callable[[Path], Path]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    """``mixdvae data spectra --audio SOURCE`` (a folder or a manifest)."""
    def make(tmp: Path, a: dict):
        out = tmp / "spectra.npz"
        return ["data", "spectra", "--audio", str(source(tmp)), "--out", str(out), *NO_PROGRESS], out
    return make


def _file_with(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path
    return make


NAN_TENSOR = "rnn_h.weight_hh_l0"


def _bad_tensor(name: str, value: float) -> Callable[[Path, dict], Path]:
    def make(tmp: Path, a: dict) -> Path:
        from safetensors.torch import load_file, save_file

        path = _copy_checkpoint(tmp, a)
        tensors = load_file(str(path))
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[3] = value
        save_file(tensors, str(path), metadata={"format": "mixdvae-dvae"})
        return path
    return make


def _extra_tensor(tmp: Path, a: dict) -> Path:
    from safetensors.torch import load_file, save_file

    path = _copy_checkpoint(tmp, a)
    tensors = load_file(str(path))
    tensors["spare.weight"] = torch.zeros(2, 2)
    save_file(tensors, str(path))
    return path


def _card_edit(edit: Callable[[dict], None]) -> Callable[[Path, dict], Path]:
    def make(tmp: Path, a: dict) -> Path:
        path = _copy_checkpoint(tmp, a)
        card = json.loads(path.with_suffix(".json").read_text())
        edit(card)
        path.with_suffix(".json").write_text(json.dumps(card))
        return path
    return make


def _empty_weights(tmp: Path, a: dict) -> Path:
    path = _copy_checkpoint(tmp, a)
    path.write_bytes(b"")
    return path


def _truncated_pt(tmp: Path, a: dict) -> Path:
    path = tmp / "w.pt"
    torch.save({"x": torch.zeros(10)}, path)
    path.write_bytes(path.read_bytes()[:100])
    return path


def _partial_reference_pt(tmp: Path, a: dict) -> Path:
    """A .pt state_dict with only one tensor of the original MOT layout."""
    path = tmp / "w.pt"
    torch.save({"rnn_h.weight_hh_l0": torch.zeros(16, 4)}, path)
    return path


def _nan_reference_pt(tmp: Path, a: dict) -> Path:
    """An original-layout MOT SRNN state_dict (.pt, read with weights_only) with one NaN weight."""
    from dvae.test_reference import MOT_LAYOUT, original_state_dict

    sd = original_state_dict(MOT_LAYOUT)
    sd["prior_z_mean.weight"][1, 2] = float("nan")
    path = tmp / "w.pt"
    torch.save(sd, path)
    return path


def _resume_state(content: Callable[[Path], None]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        out = tmp / "run"
        out.mkdir()
        content(out / "last_state.safetensors")
        return ["train", "--data", str(a["traj"]), "--out", str(out), "--resume", "--epochs", "2", *CPU,
                *NO_PROGRESS], out / "best.safetensors"
    return make


def _separate_with_prior(weights: Callable[[Path, dict], Path]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        wav = write_wav(tmp / "in.wav", (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32))
        good = tiny_checkpoint(tmp / "flute", seed=1)
        out = tmp / "sep"
        return (["separate", str(wav), "--out", str(out), "--weights", f"speech={weights(tmp, a)}",
                 "--weights", f"flute={good}", "--iterations", "1", *CPU, *NO_PROGRESS], out)
    return make


def _spectral_nan(tmp: Path, a: dict) -> Path:
    from safetensors.torch import load_file, save_file

    path = tiny_checkpoint(tmp / "speech", seed=0)
    tensors = load_file(str(path))
    tensors["head.logvar.bias"] = torch.full_like(tensors["head.logvar.bias"], float("inf"))
    save_file(tensors, str(path), metadata={"format": "mixdvae-dvae"})
    return path


def _bases_with(edit: Callable[[dict], None]) -> Callable[[Path, dict], Path]:
    def make(tmp: Path, a: dict) -> Path:
        from safetensors import safe_open
        from safetensors.torch import save_file

        with safe_open(str(a["bases"]), framework="pt") as f:
            metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
        edit(tensors)
        path = tmp / "b.safetensors"
        save_file(tensors, str(path), metadata=metadata)
        return path
    return make


def _separate_nmf(bases: Callable[[Path, dict], Path]) -> Callable[[Path, dict], tuple[list[str], Path]]:
    def make(tmp: Path, a: dict):
        return _separate(lambda t: write_wav(
            t / "in.wav", (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)))(
            tmp, {"bases": bases(tmp, a)})
    return make


def _diverging_training(tmp: Path, a: dict) -> tuple[list[str], Path]:
    """Finite boxes so large (1e30) that the first loss is inf: nothing may be saved (the folder and
    its empty log are created first, so the file that must not appear is the best checkpoint)."""
    argv, out = _train_on(_traj_with(lambda b: np.full_like(b, 1e30)))(tmp, a)
    return argv, out / "best.safetensors"


def _traj_array(tmp: Path, a: dict, boxes: np.ndarray) -> Path:
    data = dict(np.load(a["traj"]))
    data["boxes"] = boxes
    return _npz(tmp / "t.npz", **data)


CASES: dict[str, Bad] = {
    # MOTChallenge through `mixdvae data windows`
    "mot-det-too-few-columns": mot_case(_edit_line("det/det.txt", 5, lambda l: ",".join(l.split(",")[:4])),
                                        "det.txt:5", "column"),
    "mot-det-text-in-numeric-column": mot_case(_edit_line("det/det.txt", 7, _set_col(2, "left")),
                                               "det.txt:7", "left"),
    "mot-det-nan": mot_case(_edit_line("det/det.txt", 9, _set_col(3, "nan")), "det.txt:9", "nan"),
    "mot-det-negative-width": mot_case(_edit_line("det/det.txt", 11, _set_col(4, "-5")), "det.txt:11", "-5"),
    "mot-det-zero-height": mot_case(_edit_line("det/det.txt", 12, _set_col(5, "0")), "det.txt:12", "0"),
    "mot-det-frame-past-seqlength": mot_case(_edit_line("det/det.txt", 13, _set_col(0, "500")), "det.txt:13", "500"),
    "mot-gt-duplicate-id-in-frame": mot_case(_gt_duplicate_id, "gt.txt", "1"),
    "mot-gt-text-in-id-column": mot_case(_edit_line("gt/gt.txt", 4, _set_col(1, "bob")), "gt.txt:4", "bob"),
    "mot-missing-seqinfo": Bad(lambda tmp, a: (lambda seq: (
        ["data", "windows", "--mot-dir", str(seq), "--detector", "file", "--length", "20", "--sources", "3",
         "--stride", "10", "--out", str(tmp / "out.npz")], tmp / "out.npz"))(_mot(tmp, _remove("seqinfo.ini"))),
        ("TUD-Campus", "seqinfo.ini")),
    "mot-seqinfo-without-seqlength": mot_case(_seqinfo_without_length, "seqinfo.ini", "seqLength"),
    "mot-seqinfo-text-seqlength": mot_case(_write("seqinfo.ini", "[Sequence]\nname=TUD-Campus\nseqLength=many\n"
                                                  "imWidth=640\nimHeight=480\n"), "seqinfo.ini", "many"),
    "mot-missing-gt": mot_case(_remove("gt/gt.txt"), "TUD-Campus", "gt"),
    # windows / results files
    "track-windows-not-an-npz": Bad(_track(lambda tmp, a: (tmp / "w.npz").write_text("hello") and tmp / "w.npz"),
                                    ("{tmp}/w.npz",)),
    "track-windows-missing-file": Bad(_track(lambda tmp, a: tmp / "absent.npz"), ("{tmp}/absent.npz",)),
    "track-windows-missing-key": Bad(_track(lambda tmp, a: _windows_with(tmp, a, det=None)), ("{tmp}/w.npz", "det")),
    "track-windows-wrong-shape": Bad(_track(lambda tmp, a: _windows_with(
        tmp, a, gt=np.load(a["windows"])["gt"][..., :3])), ("{tmp}/w.npz", "gt")),
    "track-windows-nan-gt": Bad(_track(_nan_gt), ("{tmp}/w.npz", "gt")),
    "track-windows-empty": Bad(_track(_empty_windows), ("{tmp}/w.npz",)),
    "evaluate-tracking-results-windows-disagree": Bad(_evaluate_tracking(_short_results), ("{tmp}/r.npz", "shape")),
    "evaluate-tracking-results-missing-key": Bad(_evaluate_tracking(_results_without_eta), ("{tmp}/r.npz", "eta")),
    "evaluate-tracking-results-broken-zip": Bad(_evaluate_tracking(_zip_garbage("r.npz")), ("{tmp}/r.npz", "npz")),
    "track-windows-broken-zip": Bad(_track(_zip_garbage("w.npz")), ("{tmp}/w.npz", "npz")),
    # audio through `mixdvae separate`
    "separate-empty-file": Bad(_separate(_empty_file), ("{tmp}/in.wav",)),
    "separate-all-zero-wav": Bad(_separate(lambda tmp: _float_wav(tmp, np.zeros(SR, np.float32))),
                                 ("{tmp}/in.wav", "silent")),
    "separate-nan-float-wav": Bad(_separate(_nan_wav), ("{tmp}/in.wav", "non-finite")),
    "separate-shorter-than-a-frame": Bad(_separate(lambda tmp: _float_wav(tmp, 0.1 * np.ones(100, np.float32))),
                                         ("{tmp}/in.wav",)),
    "separate-text-named-wav": Bad(_separate(_text_wav), ("{tmp}/in.wav",)),
    "separate-missing-file": Bad(_separate(lambda tmp: tmp / "in.wav"), ("{tmp}/in.wav",)),
    # configs through `mixdvae train --config`
    "train-config-unknown-key": Bad(_train("[train]\nlearning_rate = 0.1\n"), ("{tmp}/c.toml", "learning_rate")),
    "train-config-string-lr": Bad(_train("[train]\nlr = \"fast\"\n"), ("{tmp}/c.toml", "lr")),
    "train-config-negative-lr": Bad(_train("[train]\nlr = -0.001\n"), ("{tmp}/c.toml", "lr")),
    "train-config-negative-forecast-weight": Bad(_train("[train]\nforecast_weight = -1.0\n"), ("{tmp}/c.toml", "forecast_weight")),
    "train-config-unknown-table": Bad(_train("[optimiser]\nlr = 0.1\n"), ("{tmp}/c.toml", "optimiser")),
    "train-config-invalid-toml": Bad(_train("[train\nlr = 0.1\n"), ("{tmp}/c.toml",)),
    "train-config-zero-z-dim": Bad(_train("[model]\nz_dim = 0\n"), ("{tmp}/c.toml", "z_dim")),
    # checkpoints through `mixdvae evaluate forecast --weights`
    "checkpoint-truncated": Bad(_forecast(_truncated), ("{tmp}/w",)),
    "checkpoint-other-architecture": Bad(_forecast(_other_architecture), ("{tmp}/w", "expects 7")),
    "checkpoint-nan-weights": Bad(_forecast(_nan_weights), ("{tmp}/w",)),
    "checkpoint-card-missing": Bad(_forecast(_no_card), ("{tmp}/w",)),
    "checkpoint-pickled-object": Bad(_forecast(_pickle_pt), ("{tmp}/w.pt", "refused")),
    # trajectories through `mixdvae train` / `evaluate forecast`
    "train-trajectories-missing": Bad(_train_on(lambda tmp, a: tmp / "t.npz"), ("{tmp}/t.npz",)),
    "train-trajectories-empty": Bad(_train_on(_traj_with(lambda b: b[:0])), ("{tmp}/t.npz",)),
    "train-trajectories-nan": Bad(_train_on(_traj_with(_nan_boxes)), ("{tmp}/t.npz",)),
    "forecast-trajectories-nan": Bad(_forecast_on(_traj_with(_nan_boxes)), ("{tmp}/t.npz",)),
    "forecast-trajectories-broken-zip": Bad(_forecast_on(_zip_garbage("t.npz")), ("{tmp}/t.npz",)),
    "forecast-trajectories-empty": Bad(_forecast_on(_traj_with(lambda b: b[:0])), ("{tmp}/t.npz",)),
    # estimates through `mixdvae evaluate separation`
    "estimates-wrong-number-of-sources": Bad(_evaluate_separation(
        lambda s: (np.concatenate([s, s[:, :1]], axis=1), ["speech", "flute", "drums"])), ("{tmp}/est.npz",)),
    "estimates-mismatched-length": Bad(_evaluate_separation(lambda s: (s[..., :-10], ["speech", "flute"])),
                                       ("{tmp}/est.npz", "shape")),
    "separation-mixtures-broken-zip": Bad(lambda tmp, a: (
        ["evaluate", "separation", str(save_estimates(tmp / "est.npz", np.zeros((2, 2, 10), np.float32),
                                                      ["speech", "flute"])),
         "--mixtures", str(_zip_garbage("m.npz")(tmp, a)), "--json", str(tmp / "s.json"), *NO_PROGRESS],
        tmp / "s.json"), ("{tmp}/m.npz", "npz")),
    "separate-mixtures-broken-zip": Bad(lambda tmp, a: (
        ["separate", str(_zip_garbage("m.npz")(tmp, a)), "--out", str(tmp / "est.npz"), "--method", "nmf",
         "--nmf-bases", str(a["bases"]), *CPU, *NO_PROGRESS], tmp / "est.npz"), ("{tmp}/m.npz", "npz")),
    "separate-nmf-bases-truncated": Bad(lambda tmp, a: _separate(lambda t: write_wav(
        t / "in.wav", (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)))(tmp, {
            "bases": (lambda p: (p.write_bytes(a["bases"].read_bytes()[:200]), p)[1])(tmp / "b.safetensors")}),
        ("{tmp}/b.safetensors",)),
    "estimates-other-names": Bad(_evaluate_separation(lambda s: (s, ["voice", "flute"])),
                                 ("{tmp}/est.npz", "voice")),

    # --- further cases (issue 8 audit) ---
    "mot-det-inf-confidence": mot_case(_edit_line("det/det.txt", 3, _set_col(6, "inf")), "det.txt:3", "inf"),
    "mot-det-frame-zero": mot_case(_edit_line("det/det.txt", 4, _set_col(0, "0")), "det.txt:4", "frame"),
    "mot-det-fractional-frame": mot_case(_edit_line("det/det.txt", 6, _set_col(0, "3.5")), "det.txt:6", "3.5"),
    "mot-det-ragged-columns": mot_case(_edit_line("det/det.txt", 8, _append_col("7")), "det.txt:8", "columns"),
    "mot-gt-flag-not-binary": mot_case(_edit_line("gt/gt.txt", 6, _set_col(6, "2")), "gt.txt:6", "flag"),
    "mot-gt-not-utf8": mot_case(_write_bytes("gt/gt.txt", b"1,1,\xff\xfe,2,3,4,1,-1,-1,-1\n"), "gt.txt"),
    "mot-seqinfo-no-section": mot_case(_write("seqinfo.ini", "name=TUD-Campus\nseqLength=71\n"), "seqinfo.ini"),
    "mot-seqinfo-negative-width": mot_case(_write("seqinfo.ini", "[Sequence]\nname=TUD-Campus\nseqLength=71\n"
                                                  "imWidth=-640\nimHeight=480\nframeRate=25\n"),
                                           "seqinfo.ini", "imWidth"),
    "mot-dir-missing": Bad(_windows_argv_dir(lambda tmp: tmp / "nowhere"), ("{tmp}/nowhere",)),
    "mot-sequence-unknown": Bad(_windows_argv_dir(lambda tmp: _mot(tmp, lambda s: None).parent, "Nope-01"),
                                ("Nope-01",)),
    "mot17-gt-visibility-above-one": _mot17_case(_edit_line("gt/gt.txt", 5, _set_col(8, "1.5")), "gt.txt:5",
                                                 "visibility"),
    "mot17-gt-fractional-class": _mot17_case(_edit_line("gt/gt.txt", 2, _set_col(7, "1.5")), "gt.txt:2", "class"),
    # windows / results files
    "track-windows-inf-det": Bad(_track(_inf_det), ("{tmp}/w.npz", "det")),
    "track-windows-det-wrong-shape": Bad(_track(_windows_array("det", lambda d: d[:, :, :2])),
                                         ("{tmp}/w.npz", "det")),
    "track-windows-index-wrong-shape": Bad(_track(_windows_array("det_gt_index", lambda d: d[:, :5])),
                                           ("{tmp}/w.npz", "det_gt_index")),
    "track-windows-string-gt": Bad(_track(_windows_array("gt", lambda g: g.astype(str))), ("{tmp}/w.npz", "gt")),
    "track-windows-zero-image-size": Bad(_track(_windows_array("image_size", np.zeros_like)),
                                         ("{tmp}/w.npz", "image_size")),
    "track-windows-single-npy": Bad(_track(_single_npy), ("{tmp}/w.npz", "npz")),
    "plot-tracking-results-nan-boxes": Bad(_plot_tracking(_nan_results), ("{tmp}/r.npz", "boxes")),
    "plot-tracking-results-windows-disagree": Bad(_plot_tracking(_short_results), ("{tmp}/r.npz", "shape")),
    # audio
    "separate-inf-float-wav": Bad(_separate(_inf_wav), ("{tmp}/in.wav", "non-finite")),
    "separate-44k1-shorter-than-a-frame-after-resampling": Bad(_separate(_short_wav_at(44100, 2000)),
                                                               ("{tmp}/in.wav", "shorter")),
    "separate-8k-shorter-than-a-frame": Bad(_separate(_short_wav_at(8000, 500)), ("{tmp}/in.wav", "shorter")),
    "separate-nmf-bases-nan": Bad(_separate_nmf(_bases_with(
        lambda t: t.__setitem__("flute", torch.full_like(t["flute"], float("nan"))))),
        ("{tmp}/b.safetensors", "flute")),
    "separate-nmf-bases-negative": Bad(_separate_nmf(_bases_with(
        lambda t: t.__setitem__("speech", -t["speech"]))), ("{tmp}/b.safetensors", "speech")),
    # audio folders and manifests through `mixdvae data spectra`
    "spectra-manifest-not-utf8": Bad(_spectra(_file_with("m.txt", b"\xff\xfe a.wav\n")), ("{tmp}/m.txt", "UTF-8")),
    "spectra-csv-manifest-without-path-column": Bad(_spectra(_file_with("m.csv", b"file\na.wav\n")),
                                                    ("{tmp}/m.csv", "path")),
    "spectra-csv-manifest-short-row": Bad(_spectra(_file_with("m.csv", b"x,path\na.wav\n")),
                                          ("{tmp}/m.csv:2", "no path")),
    "spectra-manifest-names-missing-file": Bad(_spectra(_file_with("m.txt", b"# list\nnope.flac\n")),
                                               ("{tmp}/m.txt:2", "nope.flac")),
    "spectra-corrupt-flac-in-folder": Bad(_spectra(lambda t: _file_with("audio/x.flac", b"fLaC garbage")(t).parent),
                                          ("{tmp}/audio/x.flac",)),
    "spectra-folder-without-audio": Bad(_spectra(lambda t: _file_with("audio/readme.txt", b"hi")(t).parent),
                                        ("{tmp}/audio", "no audio")),
    # flags
    "bench-tracking-lengths-not-integers": Bad(lambda tmp, a: (
        ["bench", "tracking", "--lengths", "60,abc", "--no-speed", "--json", str(tmp / "b.json"), *CPU],
        tmp / "b.json"), ("--lengths", "abc")),
    "bench-tracking-zero-max-windows": Bad(lambda tmp, a: (
        ["bench", "tracking", "--max-windows", "0", "--no-speed", "--json", str(tmp / "b.json"), *CPU],
        tmp / "b.json"), ("--max-windows",)),
    # configs: wrong types and values
    "train-config-float-epochs": Bad(_train("[train]\nepochs = 1.5\n"), ("{tmp}/c.toml", "epochs")),
    "train-config-bool-batch-size": Bad(_train("[train]\nbatch_size = true\n"), ("{tmp}/c.toml", "batch_size")),
    "train-config-list-lr": Bad(_train("[train]\nlr = [0.1]\n"), ("{tmp}/c.toml", "lr")),
    "train-config-nan-lr": Bad(_train("[train]\nlr = nan\n"), ("{tmp}/c.toml", "lr")),
    "train-config-string-z-dim": Bad(_train("[model]\nz_dim = \"4\"\n"), ("{tmp}/c.toml", "z_dim")),
    "train-config-unknown-family": Bad(_train("[model]\nfamily = \"lstm\"\n"), ("{tmp}/c.toml", "family")),
    "train-config-string-layers": Bad(_train("[model]\ndense_x = \"8\"\n"), ("{tmp}/c.toml", "dense_x")),
    "train-config-table-is-a-number": Bad(_train("train = 5\n"), ("{tmp}/c.toml", "train")),
    "train-config-json-wrong-type": Bad(_config_file("c.json", '{"train": {"patience": "long"}}'),
                                        ("{tmp}/c.json", "patience")),
    "train-config-invalid-json": Bad(_config_file("c.json", '{"train": '), ("{tmp}/c.json", "JSON")),
    "train-config-missing": Bad(lambda tmp, a: (
        ["train", "--config", str(tmp / "absent.toml"), "--data", str(a["traj"]), "--out", str(tmp / "run"),
         *CPU, *NO_PROGRESS], tmp / "run"), ("{tmp}/absent.toml",)),
    "track-config-string-obs-rho": Bad(_track_config("[tracking]\nobs_rho = \"big\"\n"), ("{tmp}/t.toml", "obs_rho")),
    "track-config-nested-wrong-type": Bad(_track_config("[tracking.vem]\niterations = \"x\"\n"),
                                          ("{tmp}/t.toml", "vem", "iterations")),
    "separate-config-nested-unknown-key": Bad(_separate_config("[separation.vem]\nwings = 2\n"),
                                              ("{tmp}/s.toml", "vem", "wings")),
    "track-config-unknown-key": Bad(_track_config("[tracking]\nnot_a_field = 1\n"), ("{tmp}/t.toml", "not_a_field")),
    # checkpoints
    "checkpoint-nan-weight-names-tensor": Bad(_forecast(_bad_tensor(NAN_TENSOR, float("nan"))),
                                              ("{tmp}/w", NAN_TENSOR, "NaN")),
    "checkpoint-inf-weight-names-tensor": Bad(_forecast(_bad_tensor("head.mean.bias", float("-inf"))),
                                              ("{tmp}/w", "head.mean.bias")),
    "checkpoint-extra-tensor": Bad(_forecast(_extra_tensor), ("{tmp}/w", "spare.weight")),
    "checkpoint-empty-weights-file": Bad(_forecast(_empty_weights), ("{tmp}/w.safetensors",)),
    "checkpoint-card-not-json": Bad(_forecast(lambda tmp, a: (lambda p: (p.with_suffix(".json").write_text("{"), p)[1])(
        _copy_checkpoint(tmp, a))), ("{tmp}/w.json",)),
    "checkpoint-card-newer-format": Bad(_forecast(_card_edit(lambda c: c.update(format_version=99))),
                                        ("{tmp}/w.json", "newer")),
    "checkpoint-card-unknown-architecture-key": Bad(_forecast(_card_edit(
        lambda c: c["architecture"].update(wings=2))), ("{tmp}/w.json", "wings")),
    "checkpoint-card-wrong-type": Bad(_forecast(_card_edit(lambda c: c["architecture"].update(z_dim="two"))),
                                      ("{tmp}/w.json", "z_dim")),
    "checkpoint-pt-truncated": Bad(_forecast(_truncated_pt), ("{tmp}/w.pt",)),
    "checkpoint-pt-partial-state-dict": Bad(_forecast(_partial_reference_pt), ("{tmp}/w.pt", "missing")),
    "checkpoint-pt-nan-weight-names-tensor": Bad(_forecast(_nan_reference_pt), ("{tmp}/w.pt", "prior_z_mean.weight")),
    "checkpoint-track-nan-prior": Bad(lambda tmp, a: (
        ["track", str(a["windows"]), "--out", str(tmp / "res.npz"), "--method", "mixdvae", "--weights",
         str(_bad_tensor(NAN_TENSOR, float("nan"))(tmp, a)), *CPU, *NO_PROGRESS], tmp / "res.npz"),
        ("{tmp}/w", NAN_TENSOR)),
    "checkpoint-separate-inf-prior": Bad(_separate_with_prior(_spectral_nan), ("{tmp}/speech", "head.logvar.bias")),
    "checkpoint-separate-motion-prior-for-audio": Bad(
        _separate_with_prior(lambda tmp, a: _copy_checkpoint(tmp, a)), ("{tmp}/w", "complex_variance")),
    "train-resume-truncated-state": Bad(_resume_state(lambda p: p.write_bytes(b"\x10\x00\x00\x00")),
                                        ("last_state.safetensors",)),
    "train-resume-state-of-another-format": Bad(_resume_state(lambda p: __import__("safetensors.torch").torch.save_file(
        {"x": torch.zeros(1)}, str(p), metadata={"format": "other"})), ("last_state.safetensors", "format")),
    # trajectories
    "train-trajectories-wrong-last-dim": Bad(_train_on(lambda tmp, a: _traj_array(
        tmp, a, np.load(a["traj"])["boxes"][..., :3])), ("{tmp}/t.npz",)),
    "train-trajectories-inf": Bad(_train_on(_traj_with(lambda b: (b.__setitem__((0, 0, 0), np.inf), b)[1])),
                                  ("{tmp}/t.npz",)),
    "train-trajectories-diverge-at-first-epoch": Bad(_diverging_training,
                                                     ("training loss is inf", "no epoch was saved")),
    "train-trajectories-2d": Bad(_train_on(lambda tmp, a: _traj_array(tmp, a, np.load(a["traj"])["boxes"][0])),
                                 ("{tmp}/t.npz",)),
}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=case.xfail)) if case.xfail else name
    for name, case in CASES.items()])
def test_bad_input_is_one_line_and_exit_2(name: str, assets, tmp_path: Path, capsys) -> None:
    if (name.startswith("mot-") and not TUD.is_dir()) or (name.startswith("mot17-") and not MOT17.is_dir()):
        pytest.skip("../shared/data is not beside the repository")
    case = CASES[name]
    argv, out = case.make(tmp_path, assets)
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert code == 2, captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixdvae: error: ") and lines[0][16:].strip(), captured.err
    for word in case.words:
        assert word.format(tmp=tmp_path) in lines[0], lines[0]
    assert not out.exists()


# The categories of issue 8 and the cases (keys of CASES) or tests (functions below) that cover them.
ISSUE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "duplicate ids in a frame of gt": ("mot-gt-duplicate-id-in-frame",),
    "missing seqinfo.ini": ("mot-missing-seqinfo",),
    "empty det.txt": ("test_empty_det_txt_is_a_clear_error_or_an_empty_result",),
    "windows file with wrong shapes": ("track-windows-wrong-shape", "track-windows-det-wrong-shape",
                                       "track-windows-index-wrong-shape", "track-windows-string-gt"),
    "windows file with wrong keys": ("track-windows-missing-key",),
    "clipped audio": ("test_clipped_audio_separates_to_finite_outputs_with_a_warning",),
    "8 / 44.1 / 48 kHz, stereo": ("test_unusual_audio_separates_to_finite_outputs_at_the_input_rate",),
    "audio shorter than one frame": ("separate-shorter-than-a-frame", "separate-8k-shorter-than-a-frame",
                                     "separate-44k1-shorter-than-a-frame-after-resampling"),
    "config with wrong types": ("train-config-string-lr", "train-config-float-epochs", "train-config-bool-batch-size",
                                "train-config-list-lr", "train-config-string-z-dim", "train-config-json-wrong-type",
                                "track-config-string-obs-rho", "track-config-nested-wrong-type",
                                "checkpoint-card-wrong-type"),
    "truncated checkpoint": ("checkpoint-truncated", "checkpoint-empty-weights-file", "checkpoint-pt-truncated",
                             "train-resume-truncated-state"),
    "checkpoint of another architecture": ("checkpoint-other-architecture", "checkpoint-extra-tensor",
                                           "checkpoint-pt-partial-state-dict"),
    "checkpoint with NaN weights, refused at load naming the tensor": (
        "checkpoint-nan-weight-names-tensor", "checkpoint-inf-weight-names-tensor",
        "checkpoint-pt-nan-weight-names-tensor", "checkpoint-track-nan-prior", "checkpoint-separate-inf-prior"),
    "pickled checkpoint": ("checkpoint-pickled-object",),  # and test_pickled_payloads.py: the code never runs
}


def test_every_category_of_the_issue_is_covered_and_there_are_at_least_30_bad_inputs() -> None:
    for category, names in ISSUE_CATEGORIES.items():
        missing = [n for n in names if n not in CASES and not callable(globals().get(n))]
        assert not missing, f"{category}: {missing} are neither cases nor tests here"
    assert len(CASES) >= 30


# ------------------------------------------------------------------------------------ valid but unusual

def test_empty_det_txt_is_a_clear_error_or_an_empty_result(tmp_path: Path, assets, capsys) -> None:
    if not TUD.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    argv, out = _windows_argv(tmp_path, _mot(tmp_path, _write("det/det.txt", "")))
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    if code == 0:  # missing detections are NaN in 'det' by design; the ground truth must be finite
        assert np.isfinite(np.load(out)["gt"]).all()
    else:  # today: a warning that det.txt is empty, then the one-line error that no window survives
        assert code == 2
        lines = captured.err.splitlines()
        assert lines[-1].startswith("mixdvae: error: no windows") and "det.txt" in captured.err
        assert all(line.startswith("WARNING: ") for line in lines[:-1])
        assert not out.exists()


@pytest.mark.parametrize("rate,channels", [(8000, 1), (44100, 2), (48000, 2)], ids=["8k-mono", "44k1-stereo",
                                                                                    "48k-stereo"])
def test_unusual_audio_separates_to_finite_outputs_at_the_input_rate(rate: int, channels: int, assets, tmp_path: Path,
                                                                    capsys) -> None:
    t = np.arange(int(1.0 * rate)) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * (220 + 900 * c) * t) for c in range(channels)], axis=1)
    path = tmp_path / "in.wav"
    sf.write(str(path), x.astype(np.float32), rate, subtype="PCM_16")
    argv, out = _separate(lambda tmp: path)(tmp_path, assets)
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert code == 0, captured.err
    for name in ("speech", "flute"):
        info = sf.info(str(out / f"{name}.wav"))
        assert info.samplerate == rate and info.channels == 1 and info.frames == rate
        assert np.isfinite(sf.read(str(out / f"{name}.wav"))[0]).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sample_rate"] == rate and summary["separated_at"] == SR


@pytest.mark.parametrize("method", ["nmf", "mixdvae"])
def test_near_silent_wav_separates_to_finite_output(method: str, assets, tmp_path: Path, capsys) -> None:
    x = (1e-20 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    path = _float_wav(tmp_path, x)
    out = tmp_path / "sep"
    if method == "nmf":
        extra = ["--nmf-bases", str(assets["bases"])]
    else:
        priors = [tiny_checkpoint(tmp_path / name, seed=i) for i, name in enumerate(("speech", "flute"))]
        extra = ["--weights", f"speech={priors[0]}", "--weights", f"flute={priors[1]}"]
    code = main(["separate", str(path), "--out", str(out), "--method", method, *extra, "--iterations", "2",
                 *CPU, *NO_PROGRESS])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert code == 0, captured.err
    for name in ("speech", "flute"):
        y, rate = sf.read(str(out / f"{name}.wav"))
        assert rate == SR and y.shape == (SR,) and np.isfinite(y).all()


def test_clipped_audio_separates_to_finite_outputs_with_a_warning(assets, tmp_path: Path, capsys) -> None:
    t = np.arange(SR) / SR
    x = np.clip(3.0 * np.sin(2 * np.pi * 330 * t), -1.0, 1.0).astype(np.float32)  # 3/4 of the samples at +-1
    path = _float_wav(tmp_path, x)
    argv, out = _separate(lambda tmp: path)(tmp_path, assets)
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert code == 0, captured.err
    assert any(line.startswith("WARNING: ") and "clipped" in line and str(path) in line
               for line in captured.err.splitlines()), captured.err
    for name in ("speech", "flute"):
        y, rate = sf.read(str(out / f"{name}.wav"))
        assert rate == SR and y.shape == x.shape and np.isfinite(y).all()


def test_config_file_with_nested_tables_is_applied(assets, tmp_path: Path, capsys) -> None:
    """A valid [separation] config with a nested [separation.vem] table overrides the preset (every
    --config of track and separate used to fail: 'vem: should be a table of VEMConfig fields')."""
    wav = write_wav(tmp_path / "in.wav", (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32))
    config = tmp_path / "s.toml"
    config.write_text("[separation]\nchunk_frames = 20\n[separation.vem]\nnoise_ratio = 0.05\n")
    argv, out = _separate(lambda tmp: wav)(tmp_path, assets)
    code = main([*argv, "--config", str(config)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads((out / "summary.json").read_text())["chunks_of_frames"] == 20
    for name in ("speech", "flute"):
        assert np.isfinite(sf.read(str(out / f"{name}.wav"))[0]).all()
