"""``mixdvae track SEQ_DIR``, ``mixdvae evaluate sequence``: smoke runs, outputs, one-line errors."""

import json

import numpy as np
import pytest

from mixdvae.cli.main import main
from mixdvae.data.boxes import xyxy_to_xywh
from mixdvae.data.mot import write_mot_results
from mixdvae.tracking.synthetic_sequence import synthetic_sequence


def _write_sequence(root, length=60, seed=1):
    gt, det, info = synthetic_sequence(num_people=4, length=length, seed=seed, clutter_per_frame=0.5)
    seq = root / info.name
    (seq / "det").mkdir(parents=True)
    (seq / "gt").mkdir()
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname={info.name}\nimDir=img1\nframeRate={info.frame_rate:g}\nseqLength={info.seq_length}\n"
        f"imWidth={info.im_width}\nimHeight={info.im_height}\nimExt=.jpg\n")
    write_mot_results(seq / "det" / "det.txt", det.frame, det.id, det.boxes, det.conf)
    xywh = xyxy_to_xywh(gt.boxes)
    (seq / "gt" / "gt.txt").write_text("".join(
        f"{f},{i},{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},1,1,1\n" for f, i, b in zip(gt.frame, gt.id, xywh)))
    return seq


@pytest.mark.parametrize("method", ["kalman", "mixdvae"])
def test_track_a_sequence_folder_then_evaluate_it(tmp_path, capsys, method):
    seq = _write_sequence(tmp_path)
    out = tmp_path / "res" / "result.txt"
    rc = main(["track", str(seq), "--out", str(out), "--method", method, "--device", "cpu", "--no-progress",
               "--plot", str(tmp_path / "plots")])
    assert rc == 0
    rows = np.loadtxt(out, delimiter=",", ndmin=2)
    assert rows.shape[1] == 10 and rows.shape[0] > 100
    assert (rows[:, 1] >= 1).all() and (rows[:, 4] > 0).all() and (rows[:, 5] > 0).all()
    summary = json.loads(out.with_name("result.txt.json").read_text())
    assert summary["method"] == method and summary["num_frames"] == 60 and summary["num_boxes"] == rows.shape[0]
    assert list((tmp_path / "plots").glob("*.png"))
    scores_path = tmp_path / "scores.json"
    rc = main(["evaluate", "sequence", str(out), "--gt", str(seq / "gt" / "gt.txt"), "--json", str(scores_path)])
    assert rc == 0
    overall = json.loads(scores_path.read_text())["overall"]
    for key in ("HOTA", "MOTA", "IDF1", "IDS", "FP", "FN"):
        assert key in overall
    assert overall["IDF1"] > 70.0 and 0.0 < overall["HOTA"] <= 100.0
    assert "HOTA" in capsys.readouterr().out


def test_windows_path_still_refuses_sequence_only_methods(tmp_path, capsys):
    windows = tmp_path / "w.npz"
    windows.write_bytes(b"")
    rc = main(["track", str(windows), "--out", str(tmp_path / "o.npz"), "--method", "sort"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sequence folders only" in err


def test_missing_det_txt_is_one_line_exit_2(tmp_path, capsys):
    seq = _write_sequence(tmp_path)
    (seq / "det" / "det.txt").unlink()
    rc = main(["track", str(seq), "--out", str(tmp_path / "r.txt"), "--method", "kalman"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "det.txt" in err
    assert not (tmp_path / "r.txt").exists()


def test_bad_det_line_names_file_line_and_column(tmp_path, capsys):
    seq = _write_sequence(tmp_path)
    det = seq / "det" / "det.txt"
    lines = det.read_text().splitlines()
    lines[2] = "3,-1,10,10,abc,20,1,-1,-1,-1"
    det.write_text("\n".join(lines) + "\n")
    rc = main(["track", str(seq), "--out", str(tmp_path / "r.txt"), "--method", "kalman"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "det.txt:3" in err and "column 5 (w)" in err


def test_duplicate_id_in_a_frame_of_a_result_is_refused(tmp_path, capsys):
    seq = _write_sequence(tmp_path)
    res = tmp_path / "dup.txt"
    res.write_text("1,1,10,10,20,40,1,-1,-1,-1\n1,1,50,10,20,40,1,-1,-1,-1\n")
    rc = main(["evaluate", "sequence", str(res), "--gt", str(seq / "gt" / "gt.txt")])
    assert rc == 2
    assert "appears twice in frame 1" in capsys.readouterr().err


def test_config_table_overrides_the_defaults_and_bad_keys_are_one_line(tmp_path, capsys):
    seq = _write_sequence(tmp_path)
    good = tmp_path / "c.toml"
    good.write_text("[sequence]\nwindow = 5\n[sequence.lifecycle]\nbirth_hits = 2.0\n")
    out = tmp_path / "r.txt"
    assert main(["track", str(seq), "--out", str(out), "--method", "kalman", "--config", str(good)]) == 0
    config = json.loads(out.with_name("r.txt.json").read_text())["config"]
    assert config["window"] == 5 and config["lifecycle"]["birth_hits"] == 2.0
    bad = tmp_path / "bad.toml"
    bad.write_text("[sequence]\nwindoww = 5\n")
    capsys.readouterr()
    assert main(["track", str(seq), "--out", str(tmp_path / "r2.txt"), "--method", "kalman", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "windoww" in err
