"""Bad inputs, end to end through the CLI: each one ends as exit code 2 and a single stderr line that
names the offending file (or flag) and what is wrong, never a traceback, and never leaves an output
file under its final name. Valid but unusual inputs give a correct, finite result instead."""

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
    def make(tmp: Path, a: dict):
        config = tmp / "c.toml"
        config.write_text(config_text)
        out = tmp / "run"
        return ["train", "--config", str(config), "--data", str(a["traj"]), "--out", str(out), "--epochs", "1",
                *CPU, *NO_PROGRESS], out
    return make


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
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_exit_2(name: str, assets, tmp_path: Path, capsys) -> None:
    if name.startswith("mot-") and not TUD.is_dir():
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


def test_there_are_at_least_30_distinct_bad_inputs() -> None:
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
