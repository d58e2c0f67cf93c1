"""``mixdvae evaluate tracking``: tables, JSON, protocols, one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixdvae.cli.main import main
from mixdvae.data.windows import WindowSet, save_windows
from mixdvae.tracking.results import TrackingResults, save_tracking_results

W, T, N = 2, 10, 3


def _windows(tmp_path: Path) -> Path:
    """Two windows of three well separated people; detections exact, shuffled within frames."""
    t = np.arange(T)[:, None]
    x1 = 100.0 * np.arange(N)[None, :] + 2.0 * t
    gt = np.stack([x1, np.full((T, N), 50.0), x1 + 40, np.full((T, N), 130.0)], axis=-1)
    gt = np.stack([gt, gt + 5.0])  # (W, T, N, 4)
    rng = np.random.default_rng(0)
    perm = np.stack([[rng.permutation(N) for _ in range(T)] for _ in range(W)])  # (W, T, K)
    det = np.take_along_axis(gt, perm[..., None], axis=2)
    ws = WindowSet(gt=gt, det=det, det_gt_index=perm, sequence=np.array(["TUD-Campus", "TUD-Campus"]),
                   ids=np.tile(np.arange(1, N + 1), (W, 1)), image_size=np.tile([640.0, 480.0], (W, 1)),
                   frames=np.array([[1, 10], [11, 20]]), recipe={"length": T, "sources": N})
    return save_windows(tmp_path / "w.npz", ws)


def _results(tmp_path: Path, windows: Path, swap_at: int = 5, frames: int = T) -> Path:
    """Sources 0 and 1 exchange people from ``swap_at`` on in both windows; η follows them."""
    data = np.load(windows)
    gt, perm = data["gt"], data["det_gt_index"]
    follows = np.tile(np.arange(N), (W, T, 1))  # person followed by source n
    follows[:, swap_at:, :2] = [1, 0]
    boxes = np.take_along_axis(gt, follows[..., None], axis=2)
    source_of_person = np.argsort(follows, axis=-1)  # (W, T, N)
    eta = np.zeros((W, T, N, N))
    np.put_along_axis(eta, np.take_along_axis(source_of_person, perm, axis=-1)[..., None], 1.0, axis=-1)
    res = TrackingResults(boxes=boxes[:, :frames], eta=eta[:, :frames], method="test", config={})
    return save_tracking_results(tmp_path / "r.npz", res)


def test_standard_protocol_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    windows = _windows(tmp_path)
    results = _results(tmp_path, windows)
    out = tmp_path / "scores.json"
    rc = main(["evaluate", "tracking", str(results), "--windows", str(windows), "--protocol", "standard",
               "--json", str(out)])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| Protocol | Tool | MOTA↑ | MOTP↑ | IDF1↑ | HOTA↑ | #IDS↓")
    # two switches per window; IDF1 = 1 - 10/30 (hand-computed in tests/metrics/test_mot.py)
    assert lines[2] == "| standard | native | 93.3 | 100.0 | 66.7 | - | 4 | 6 | 0 | 0 | 0 |"
    data = json.loads(out.read_text())
    assert set(data) == {"overall", "per_window", "protocol", "tool"}
    assert (data["protocol"], data["tool"]) == ("standard", "native")
    assert list(data["overall"]) == ["MOTA", "MOTP", "IDF1", "HOTA", "IDS", "MT", "ML", "FP", "FN"]
    assert data["overall"]["IDS"] == 4 and data["overall"]["HOTA"] is None
    rows = data["per_window"]
    assert [(r["window"], r["sequence"], r["frames"], r["IDS"]) for r in rows] == [
        (0, "TUD-Campus", [1, 10], 2), (1, "TUD-Campus", [11, 20], 2)]


def test_paper_protocol_hides_the_swaps(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    windows = _windows(tmp_path)
    rc = main(["evaluate", "tracking", str(_results(tmp_path, windows)), "--windows", str(windows),
               "--protocol", "paper", "--per-window"])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "| paper | native | 100.0 | 100.0 | 100.0 | - | 0 | 6 | 0 | 0 | 0 |"
    assert lines[-1].startswith("| 1 | TUD-Campus | 11-20 | 100.0")


def test_trackeval_tool_reports_hota(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    windows = _windows(tmp_path)
    rc = main(["evaluate", "tracking", str(_results(tmp_path, windows, swap_at=T)), "--windows", str(windows),
               "--protocol", "standard", "--tool", "trackeval"])
    assert rc == 0
    assert capsys.readouterr().out.splitlines()[2] == (
        "| standard | trackeval | 100.0 | 100.0 | 100.0 | 100.0 | 0 | 6 | 0 | 0 | 0 |")


def test_shape_mismatch_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    windows = _windows(tmp_path)
    results = _results(tmp_path, windows, frames=T - 1)
    rc = main(["evaluate", "tracking", str(results), "--windows", str(windows), "--protocol", "paper"])
    assert rc == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"mixdvae: error: {results}: 'boxes' has shape (2, 9, 3, 4) but {windows} 'gt' "
                   "has (2, 10, 3, 4) (W, T, N, 4)"]


def test_missing_results_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    windows = _windows(tmp_path)
    rc = main(["evaluate", "tracking", str(tmp_path / "none.npz"), "--windows", str(windows),
               "--protocol", "standard"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mixdvae: error: {tmp_path / 'none.npz'}: results file not found"
