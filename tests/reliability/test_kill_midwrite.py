"""``kill -9`` in the middle of writing a file never leaves a half-written file under a final name.

Each run goes through ``_kill_hook.py``, which records every file opened for writing and, at a chosen
write, stores half of the bytes and SIGKILLs the process (a power cut mid-write). Then:

- every write into the output folder went to a temporary name (``.NAME.XXXX.tmp.ext``), renamed
  afterwards (mixdvae.utils.io.atomic_path);
- every file under a final name is complete: it parses (JSON, JSON lines, safetensors, PNG, .npz)
  and holds no NaN;
- ``mixdvae train --resume`` after the kill logs every epoch exactly once and ends with the weights
  of an uninterrupted run.

Commands: ``mixdvae train`` (weights, cards, state, log, loss plot), ``mixdvae plot tracking`` and
``mixdvae bench tracking`` (windows cache); the kill tests of ``separate`` are in
test_interruption.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from conftest import shared_data_dir
from mixdvae.cli.main import main
from mixdvae.data.synthetic import generate_trajectories
from mixdvae.data.trajectories import save_trajectories
from mixdvae.data.windows import WindowSet, save_windows
from mixdvae.tracking.results import TrackingResults, save_tracking_results

HOOK = Path(__file__).with_name("_kill_hook.py")
EPOCHS = 3
TRAIN_FLAGS = ["--z-dim", "2", "--rnn-dim", "4", "--batch-size", "16", "--lr", "0.01", "--seed", "3",
               "--epochs", str(EPOCHS), "--device", "cpu", "--no-progress", "--threads", "1"]


def _run(args: list[str], report: Path, kill: tuple[str, int] | None = None) -> tuple[int, list[str], str | None]:
    """Run ``mixdvae args`` under the hook; -> (return code, paths opened for writing, path killed in)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    spec = [kill[0], str(kill[1])] if kill else []
    proc = subprocess.run([sys.executable, str(HOOK), str(report), *spec, "--", *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    lines = report.read_text().splitlines() if report.is_file() else []
    killed = [line[7:] for line in lines if line.startswith("KILLED ")]
    if kill:
        assert proc.returncode == -signal.SIGKILL and killed, (
            f"the run was not killed while writing {kill}: rc {proc.returncode}, {proc.stderr.decode()[-2000:]}")
    else:
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return proc.returncode, [line for line in lines if not line.startswith("KILLED ")], killed[0] if killed else None


def _no_nan(value) -> None:
    raise ValueError(f"non-finite number {value} in JSON")


def _check_complete(folder: Path) -> list[Path]:
    """Parse every file under a final name in ``folder`` (recursively); -> the files checked.

    A truncated or NaN-holding file raises. Temporary files (name starting with '.') are skipped:
    a kill may leave one behind, never under a final name.
    """
    checked = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        suffix = path.suffix
        if suffix == ".json":
            json.loads(path.read_text(), parse_constant=_no_nan)
        elif suffix == ".jsonl":
            text = path.read_text()
            assert text == "" or text.endswith("\n"), f"{path}: last line is cut"
            for line in text.splitlines():
                json.loads(line, parse_constant=_no_nan)
        elif suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as fh:
                for key in fh.keys():
                    t = fh.get_tensor(key)
                    assert not t.is_floating_point() or bool(torch.isfinite(t).all()), f"{path}: {key} not finite"
        elif suffix == ".png":
            from PIL import Image

            with Image.open(path) as image:
                image.load()
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                for key in npz.files:
                    a = npz[key]
                    if a.dtype.kind == "f" and key not in ("det", "eta"):  # missing detections are NaN by design
                        assert np.isfinite(a).all(), f"{path}: {key} not finite"
        else:
            raise AssertionError(f"{path}: unexpected output file")
        checked.append(path)
    return checked


def _writes_under(folder: Path, writes: list[str]) -> list[Path]:
    return [Path(w) for w in writes if Path(w).is_relative_to(folder.resolve())]


def _final_name(temp: Path) -> str:
    """``.log.jsonl.ab12cd.tmp.jsonl`` -> ``log.jsonl`` (the name atomic_path renames it to)."""
    assert temp.name.startswith(".") and ".tmp" in temp.name, f"{temp} is written under its final name"
    return temp.name[1:].rsplit(".tmp", 1)[0].rsplit(".", 1)[0]


# -------------------------------------------------------------------------------------------- train

@pytest.fixture(scope="module")
def train_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("train_data")
    save_trajectories(folder / "train.npz", generate_trajectories(48, 12, seed=1), {"seed": 1})
    save_trajectories(folder / "val.npz", generate_trajectories(12, 12, seed=2), {"seed": 2})
    return folder


def _train_args(data: Path, out: Path) -> list[str]:
    return ["train", "--data", str(data / "train.npz"), "--val", str(data / "val.npz"), "--out", str(out),
            *TRAIN_FLAGS]


@pytest.fixture(scope="module")
def uninterrupted(train_data, tmp_path_factory) -> tuple[Path, list[str]]:
    """A full run under the hook (no kill): its folder and every path it opened for writing."""
    root = tmp_path_factory.mktemp("full")
    _, writes, _ = _run(_train_args(train_data, root / "run"), root / "report.txt")
    return root / "run", writes


def test_train_writes_every_file_through_a_temporary_name(uninterrupted) -> None:
    out, writes = uninterrupted
    finals = {_final_name(p) for p in _writes_under(out, writes)}
    assert finals == {"best.safetensors", "best.json", "last.safetensors", "last.json", "last_state.safetensors",
                      "last_state.json", "log.jsonl", "loss.png"}
    assert {p.name for p in _check_complete(out)} == finals


# log.jsonl is written once empty, then after each epoch; the state after each epoch
@pytest.mark.parametrize("where", [("*log.jsonl*", 3), ("*last_state.safetensors*", 2)],
                         ids=["log-of-epoch-1", "state-of-epoch-1"])
def test_train_killed_mid_write_keeps_complete_files_and_resumes_exactly(where, train_data, uninterrupted, tmp_path,
                                                                         capsys) -> None:
    out = tmp_path / "run"
    _, writes, killed = _run(_train_args(train_data, out), tmp_path / "report.txt", kill=where)
    assert Path(killed).name.startswith("."), f"killed while writing {killed} under its final name"
    assert all(p.name.startswith(".") for p in _writes_under(out, writes))
    _check_complete(out)
    done = json.loads((out / "last_state.json").read_text())["epoch"]

    assert main(_train_args(train_data, out) + ["--resume"]) == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(EPOCHS)), f"resumed after epoch {done}"
    full_records = [json.loads(line) for line in (uninterrupted[0] / "log.jsonl").read_text().splitlines()]
    assert [r["val_loss"] for r in records] == [r["val_loss"] for r in full_records]
    for name in ("best.safetensors", "last.safetensors"):
        with safe_open(str(out / name), framework="pt") as a, safe_open(str(uninterrupted[0] / name),
                                                                        framework="pt") as b:
            assert set(a.keys()) == set(b.keys())
            for key in a.keys():
                assert torch.equal(a.get_tensor(key), b.get_tensor(key)), (name, key)
    _check_complete(out)


# --------------------------------------------------------------------------------------------- plot

def _tracking_files(folder: Path, W: int = 3, T: int = 12, N: int = 2) -> tuple[Path, Path]:
    t = np.arange(T)[:, None]
    x1 = 80.0 * np.arange(N)[None, :] + 3.0 * t
    gt = np.stack([x1, np.full((T, N), 40.0), x1 + 30, np.full((T, N), 120.0)], axis=-1)  # (T, N, 4)
    gt = np.stack([gt + 4.0 * w for w in range(W)])  # (W, T, N, 4)
    windows = save_windows(folder / "w.npz", WindowSet(
        gt=gt, det=gt + 1.0, det_gt_index=np.tile(np.arange(N), (W, T, 1)), sequence=np.array(["s"] * W),
        ids=np.tile(np.arange(1, N + 1), (W, 1)), image_size=np.tile([640.0, 480.0], (W, 1)),
        frames=np.array([[1 + T * w, T * (w + 1)] for w in range(W)]), recipe={"length": T, "sources": N}))
    results = save_tracking_results(folder / "r.npz", TrackingResults(
        boxes=gt + 0.5, eta=np.tile(np.eye(N), (W, T, 1, 1)), method="test", config={},
        elbo=np.cumsum(np.ones((W, 5)), axis=1)))
    return windows, results


def test_plot_killed_mid_write_leaves_only_complete_pngs(tmp_path) -> None:
    windows, results = _tracking_files(tmp_path)
    out = tmp_path / "plots"
    args = ["plot", "tracking", str(results), "--windows", str(windows), "--out", str(out), "--max-windows", "2",
            "--no-assignments"]
    _, writes, killed = _run(args, tmp_path / "report.txt", kill=("*.png*", 2))
    assert Path(killed).name.startswith("."), f"killed while writing {killed} under its final name"
    written = _writes_under(out, writes)
    assert len(written) == 2 and all(p.name.startswith(".") for p in written)
    assert [p.name for p in _check_complete(out)] == ["window_0000.png"]  # finished before the kill


# -------------------------------------------------------------------------------------------- bench

def test_bench_killed_mid_write_leaves_no_partial_windows_cache(tmp_path) -> None:
    shared = shared_data_dir()
    mot17, mot15 = shared / "MOT17" / "train" / "MOT17-05-SDP", shared / "MOT15" / "train" / "TUD-Campus"
    if not (mot17.is_dir() and mot15.is_dir()):
        pytest.skip("../shared/data is not beside the repository")
    for src, dst in ((mot17, tmp_path / "mot17" / mot17.name), (mot15, tmp_path / "mot15" / mot15.name)):
        (dst / "gt").mkdir(parents=True)
        for rel in ("seqinfo.ini", "gt/gt.txt", "det/det.txt"):
            if (src / rel).is_file():
                (dst / rel).parent.mkdir(exist_ok=True)
                shutil.copy(src / rel, dst / rel)
    cache = tmp_path / "cache"
    args = ["bench", "tracking", "--max-windows", "2", "--lengths", "20", "--no-speed", "--device", "cpu",
            "--no-progress", "--mot17-dir", str(tmp_path / "mot17"), "--mot15-dir", str(tmp_path / "mot15"),
            "--cache-dir", str(cache), "--json", str(tmp_path / "bench.json")]
    _, writes, killed = _run(args, tmp_path / "report.txt", kill=("*_T20_*.npz*", 1))
    assert Path(killed).parent == cache and Path(killed).name.startswith("."), killed
    assert all(p.name.startswith(".") for p in _writes_under(cache, writes))
    assert _check_complete(cache) == []  # nothing under a final name: a later run rebuilds the cache
    assert not (tmp_path / "bench.json").exists()
