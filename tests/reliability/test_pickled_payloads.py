"""Files that would run code if unpickled are refused, and the code does not run.

Each payload, when unpickled, creates a marker file (a harmless stand-in for arbitrary code). The
control test shows the payloads are live: an ordinary unpickling does create the marker. Through the
CLI every entry point that reads weights or arrays (``.pt`` import with ``torch.load(weights_only=True)``,
safetensors checkpoints, the training state, NMF bases, ``.npz`` files read with
``allow_pickle=False``) ends with exit code 2, one stderr line naming the file, and no marker.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from separation._tiny import SR, tiny_checkpoint, write_wav

from mixdvae.cli.main import main
from mixdvae.data.synthetic import generate_trajectories
from mixdvae.data.trajectories import save_trajectories

CPU = ["--device", "cpu", "--no-progress"]


class Payload:
    """Unpickling this creates ``marker``: it stands for any code a pickle can run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _torch_pickle(path: Path, marker: Path) -> Path:
    """A torch.save zip archive: a state_dict-looking dict with the payload in it."""
    torch.save({"rnn_h.weight_hh_l0": torch.zeros(32, 8), "extra": Payload(marker)}, path)
    return path


def _plain_pickle(path: Path, marker: Path) -> Path:
    """A bare pickle stream (what ``torch.save(..., _use_new_zipfile_serialization=False)`` starts with)."""
    path.write_bytes(pickle.dumps({"weights": Payload(marker)}, protocol=2))
    return path


def _npz_with_object_array(path: Path, marker: Path, key: str, others: dict[str, np.ndarray]) -> Path:
    """An .npz whose member ``key`` is an object array: np.load unpickles it when allow_pickle=True."""
    obj = np.empty(1, dtype=object)
    obj[0] = Payload(marker)
    np.savez(path, **{**others, key: obj})
    return path


def test_the_payloads_run_code_when_unpickled(tmp_path: Path) -> None:
    """Control: without the guards the same files would run the payload."""
    markers = [tmp_path / f"ran{i}" for i in range(3)]
    torch.load(_torch_pickle(tmp_path / "a.pt", markers[0]), weights_only=False)
    pickle.loads(_plain_pickle(tmp_path / "b.safetensors", markers[1]).read_bytes())
    with np.load(_npz_with_object_array(tmp_path / "c.npz", markers[2], "boxes", {}), allow_pickle=True) as f:
        f["boxes"]
    assert all(m.exists() for m in markers)


def _forecast(weights: Path, tmp: Path) -> list[str]:
    data = save_trajectories(tmp / "t.npz", generate_trajectories(6, 8, seed=0), {})
    return ["evaluate", "forecast", "--weights", str(weights), "--data", str(data), "--json", str(tmp / "f.json"),
            "--device", "cpu"]


def _pt_forecast(tmp: Path, marker: Path) -> tuple[list[str], Path]:
    path = _torch_pickle(tmp / "evil.pt", marker)
    return _forecast(path, tmp), path


def _pth_plain_forecast(tmp: Path, marker: Path) -> tuple[list[str], Path]:
    path = _plain_pickle(tmp / "evil.pth", marker)
    return _forecast(path, tmp), path


def _safetensors_named_pickle(tmp: Path, marker: Path) -> tuple[list[str], Path]:
    """A pickle renamed to .safetensors, beside a valid card, so the loader gets as far as the weights."""
    good = tiny_checkpoint(tmp / "evil", x_dim=4, head="gaussian")
    _torch_pickle(good, marker)
    return _forecast(good, tmp), good


def _resume_state(tmp: Path, marker: Path) -> tuple[list[str], Path]:
    data = save_trajectories(tmp / "t.npz", generate_trajectories(6, 8, seed=0), {})
    out = tmp / "run"
    out.mkdir()
    state = _torch_pickle(out / "last_state.safetensors", marker)
    return ["train", "--data", str(data), "--out", str(out), "--resume", *CPU], state


def _nmf_bases(tmp: Path, marker: Path) -> tuple[list[str], Path]:
    wav = write_wav(tmp / "in.wav", (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32))
    bases = _torch_pickle(tmp / "bases.safetensors", marker)
    return ["separate", str(wav), "--out", str(tmp / "sep"), "--method", "nmf", "--nmf-bases", str(bases),
            *CPU], bases


def _separate_prior(tmp: Path, marker: Path) -> tuple[list[str], Path]:
    wav = write_wav(tmp / "in.wav", (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32))
    evil = _torch_pickle(tmp / "speech.pt", marker)
    good = tiny_checkpoint(tmp / "flute", seed=1)
    return ["separate", str(wav), "--out", str(tmp / "sep"), "--weights", f"speech={evil}", "--weights",
            f"flute={good}", "--iterations", "1", *CPU], evil


def _trajectories_npz(tmp: Path, marker: Path) -> tuple[list[str], Path]:
    data = _npz_with_object_array(tmp / "t.npz", marker, "boxes", {})
    return ["train", "--data", str(data), "--out", str(tmp / "run"), "--epochs", "1", *CPU], data


def _windows_npz(tmp: Path, marker: Path) -> tuple[list[str], Path]:
    gt = np.zeros((1, 4, 2, 4)) + np.array([0.0, 0.0, 10.0, 10.0])
    others = {"det": gt, "det_gt_index": np.zeros((1, 4, 2), np.int64), "sequence": np.array(["s"]),
              "ids": np.ones((1, 2), np.int64), "image_size": np.ones((1, 2)), "frames": np.ones((1, 2), np.int64),
              "recipe": np.array("{}")}
    data = _npz_with_object_array(tmp / "w.npz", marker, "gt", others)
    return ["track", str(data), "--out", str(tmp / "res.npz"), "--method", "kalman", *CPU], data


def _mixtures_npz(tmp: Path, marker: Path) -> tuple[list[str], Path]:
    """A mixtures .npz for ``evaluate separation`` whose 'sources' member is a pickled object array."""
    from mixdvae.data.mixtures import save_estimates

    est = save_estimates(tmp / "est.npz", np.zeros((1, 2, 10), np.float32), ["speech", "flute"])
    others = {"mixture": np.zeros((1, 10), np.float32), "source_names": np.array(["speech", "flute"]),
              "sample_rate": np.array(SR), "length_frames": np.array(1), "ratio_db": np.zeros(1, np.float32),
              "files": np.array([["a.flac", "b.flac"]]), "offsets": np.zeros((1, 2), np.int64), "seed": np.array(0)}
    mixtures = _npz_with_object_array(tmp / "m.npz", marker, "sources", others)
    return ["evaluate", "separation", str(est), "--mixtures", str(mixtures), "--json", str(tmp / "s.json"),
            "--no-progress"], mixtures


ENTRY_POINTS: dict[str, Callable[[Path, Path], tuple[list[str], Path]]] = {
    "evaluate-forecast-pt": _pt_forecast,
    "evaluate-forecast-pth-plain-pickle": _pth_plain_forecast,
    "evaluate-forecast-safetensors-that-is-a-pickle": _safetensors_named_pickle,
    "train-resume-state-that-is-a-pickle": _resume_state,
    "separate-nmf-bases-that-are-a-pickle": _nmf_bases,
    "separate-prior-pt": _separate_prior,
    "train-trajectories-object-array": _trajectories_npz,
    "track-windows-object-array": _windows_npz,
    "evaluate-separation-mixtures-object-array": _mixtures_npz,
}


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_pickled_payload_is_refused_and_never_run(name: str, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "code_ran"
    argv, evil = ENTRY_POINTS[name](tmp_path, marker)
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert not marker.exists(), "the pickle was unpickled: its code ran"
    assert "Traceback" not in captured.out + captured.err
    assert code == 2, captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixdvae: error: ") and str(evil) in lines[0], captured.err
