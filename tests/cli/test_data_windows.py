"""``mixdvae data windows``: smoke runs, summary, and one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_data_dir
from mixdvae.cli.main import main
from mixdvae.data.windows import load_windows

MOT15 = shared_data_dir() / "MOT15" / "train"
MOT17_09 = shared_data_dir() / "MOT17" / "train" / "MOT17-09-SDP"

pytestmark = pytest.mark.skipif(not MOT15.is_dir() or not MOT17_09.is_dir(),
                                reason="../shared/data is not beside the repository")


def test_folder_of_sequences(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "w.npz"
    rc = main(["data", "windows", "--mot-dir", str(MOT15), "--sequences", "TUD-Campus,PETS09-S2L1",
               "--length", "20", "--sources", "3", "--stride", "10", "--seed", "0", "--out", str(out)])
    assert rc == 0
    ws = load_windows(out)
    assert ws.gt.shape[1:] == (20, 3, 4)
    lines = capsys.readouterr().out.splitlines()
    n_campus, n_pets = int((ws.sequence == "TUD-Campus").sum()), int((ws.sequence == "PETS09-S2L1").sum())
    assert lines[0].split() == ["TUD-Campus", str(n_campus), "windows"]
    assert lines[1].split() == ["PETS09-S2L1", str(n_pets), "windows"]
    assert lines[2].startswith("total") and f" {n_campus + n_pets} windows of T=20, N=3" in lines[2]


def test_one_sequence_folder_simulated_detector(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "det.toml"
    config.write_text("[detector]\nmiss_floor = 0.0\nmiss_gamma = 1.0\n")
    out = tmp_path / "sim.npz"
    rc = main(["data", "windows", "--mot-dir", str(MOT17_09), "--length", "40", "--sources", "3",
               "--stride", "80", "--seed", "1", "--detector", "simulated", "--detector-config", str(config),
               "--min-obs-ratio", "0.8", "--out", str(out)])
    assert rc == 0
    ws = load_windows(out)
    assert (ws.sequence == "MOT17-09-SDP").all()
    assert ws.recipe["detector"] == "simulated" and ws.recipe["min_obs_ratio"] == 0.8
    assert ws.recipe["detector_config"]["miss_floor"] == 0.0
    seen = ws.det_gt_index[..., None] == np.arange(3)                       # (W, T, K, N)
    assert (seen.any(axis=2).sum(axis=1) >= 32).all()                       # 0.8 * 40 frames observed
    assert "MOT17-09-SDP" in capsys.readouterr().out


def _error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    return err


def test_file_detector_without_det_txt(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["data", "windows", "--mot-dir", str(MOT17_09), "--length", "40", "--sources", "3",
               "--stride", "40", "--out", str(tmp_path / "w.npz")])
    assert rc == 2
    assert _error_line(capsys) == f"mixdvae: error: {MOT17_09}: no det/det.txt (use the simulated detector)"
    assert not (tmp_path / "w.npz").exists()


def test_no_windows_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["data", "windows", "--mot-dir", str(MOT15 / "TUD-Campus"), "--length", "300", "--sources", "3",
               "--stride", "40", "--out", str(tmp_path / "w.npz")])
    assert rc == 2
    assert _error_line(capsys).startswith("mixdvae: error: no windows of length 300 with 3 sources in TUD-Campus")
    assert not (tmp_path / "w.npz").exists()


def test_unknown_sequence(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["data", "windows", "--mot-dir", str(MOT15), "--sequences", "TUD-Nowhere", "--length", "20",
               "--sources", "3", "--stride", "10", "--out", str(tmp_path / "w.npz")])
    assert rc == 2
    assert _error_line(capsys).startswith(f"mixdvae: error: {MOT15}: no sequence folder 'TUD-Nowhere' (found: ")
