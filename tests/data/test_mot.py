"""MOTChallenge I/O: every shared sequence parses; every bad input fails with its one-line message."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_data_dir
from mixdvae.data.mot import SeqInfo, read_det, read_gt, read_seqinfo, read_sequence, write_mot_results
from mixdvae.errors import DataFormatError

SEQINFO = SeqInfo(name="toy", im_width=640, im_height=480, seq_length=10, frame_rate=25.0)

SHARED_SEQUENCES = sorted(
    p for p in (list((shared_data_dir() / "MOT15" / "train").glob("*"))
                + list((shared_data_dir() / "MOT17" / "train").glob("*"))) if p.is_dir()
)


def _n_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


@pytest.mark.parametrize("seq_dir", SHARED_SEQUENCES, ids=lambda p: p.name)
def test_every_shared_sequence_parses(seq_dir: Path) -> None:
    seq = read_sequence(seq_dir)
    gt_path = seq_dir / "gt" / "gt.txt"
    assert len(seq.gt) == _n_lines(gt_path)
    assert np.isfinite(seq.gt.boxes).all()
    assert (seq.gt.boxes[:, 2] > seq.gt.boxes[:, 0]).all() and (seq.gt.boxes[:, 3] > seq.gt.boxes[:, 1]).all()
    assert seq.gt.frame.min() >= 1 and seq.gt.frame.max() <= seq.info.seq_length
    # first line, converted by hand: x, y, w, h -> x, y, x + w, y + h
    first = [float(v) for v in gt_path.read_text().splitlines()[0].split(",")]
    np.testing.assert_allclose(seq.gt.boxes[0], [first[2], first[3], first[2] + first[4], first[3] + first[5]])
    if seq_dir.parent.parent.name == "MOT17":
        assert seq.det is None  # our MOT17 copy has no det.txt
        assert ((seq.gt.visibility >= 0) & (seq.gt.visibility <= 1)).all()
        assert seq.gt.considered.sum() == ((seq.gt.flag == 1) & (seq.gt.obj_class == 1)).sum() > 0
    else:
        assert len(seq.det) == _n_lines(seq_dir / "det" / "det.txt")
        assert (seq.det.id == -1).all()
        assert (seq.gt.obj_class == -1).all() and np.isnan(seq.gt.visibility).all()
        assert seq.gt.considered.sum() == (seq.gt.flag == 1).sum()


def test_shared_mot17_seqinfo() -> None:
    path = shared_data_dir() / "MOT17" / "train" / "MOT17-09-SDP"
    if not path.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    assert read_seqinfo(path) == SeqInfo("MOT17-09-SDP", 1920, 1080, 525, 30.0)


# ------------------------------------------------------------------------------------ seqinfo


def _write_seqinfo(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seqinfo.ini").write_text(body)
    return folder


GOOD_SEQINFO = "[Sequence]\nname=toy\nimDir=img1\nframeRate=25\nseqLength=10\nimWidth=640\nimHeight=480\nimExt=.jpg\n"


def test_seqinfo_reads_keys(tmp_path: Path) -> None:
    assert read_seqinfo(_write_seqinfo(tmp_path, GOOD_SEQINFO)) == SEQINFO


def test_seqinfo_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError) as err:
        read_seqinfo(tmp_path)
    assert str(err.value) == f"{tmp_path / 'seqinfo.ini'}: file not found"


@pytest.mark.parametrize("body, message", [
    (GOOD_SEQINFO.replace("imWidth=640\n", ""), "key 'imWidth' is missing from [Sequence]"),
    (GOOD_SEQINFO.replace("name=toy\n", ""), "key 'name' is missing from [Sequence]"),
    (GOOD_SEQINFO.replace("seqLength=10", "seqLength=ten"), "seqLength is 'ten', expected a positive integer"),
    (GOOD_SEQINFO.replace("imHeight=480", "imHeight=0"), "imHeight is '0', expected a positive integer"),
    (GOOD_SEQINFO.replace("frameRate=25", "frameRate=-3"), "frameRate is '-3', expected a positive number"),
    ("[Other]\nname=toy\n", "no [Sequence] section"),
])
def test_seqinfo_bad_keys(tmp_path: Path, body: str, message: str) -> None:
    _write_seqinfo(tmp_path, body)
    with pytest.raises(DataFormatError) as err:
        read_seqinfo(tmp_path)
    assert str(err.value) == f"{tmp_path / 'seqinfo.ini'}: {message}"


# ------------------------------------------------------------------------------------- gt / det


def _file(tmp_path: Path, name: str, lines: list[str], ending: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(ending.join(lines).encode() + ending.encode())
    return path


GT_ROWS = [f"{f},{i},{10 * i},{20 + f},{5 + i},{12 + i},1,1,0.{i}" for f in range(1, 5) for i in range(1, 4)]
DET_ROWS = [f"{f},-1,{10 * f}.5,20,8,16,0.{f},-1,-1,-1" for f in range(1, 6)]


def test_gt_values_and_mot15_layout(tmp_path: Path) -> None:
    gt = read_gt(_file(tmp_path, "gt.txt", GT_ROWS), SEQINFO)
    assert len(gt) == 12
    np.testing.assert_array_equal(gt.frame, np.repeat([1, 2, 3, 4], 3))
    np.testing.assert_array_equal(gt.id, np.tile([1, 2, 3], 4))
    np.testing.assert_allclose(gt.boxes[4], [20, 22, 20 + 7, 22 + 14])  # frame 2, id 2
    np.testing.assert_allclose(gt.visibility[:3], [0.1, 0.2, 0.3])
    mot15 = read_gt(_file(tmp_path, "gt15.txt", ["1,1,10,20,5,6,1,-1,-1,-1", "2,1,11,20,5,6,0,3.5,2.1,0"]),
                    SEQINFO)
    np.testing.assert_array_equal(mot15.obj_class, [-1, -1])
    assert np.isnan(mot15.visibility).all()
    np.testing.assert_array_equal(mot15.considered, [True, False])


def test_crlf_and_blank_lines_accepted(tmp_path: Path) -> None:
    plain = read_det(_file(tmp_path, "a.txt", DET_ROWS), SEQINFO)
    crlf = read_det(_file(tmp_path, "b.txt", DET_ROWS + ["", "", ""], ending="\r\n"), SEQINFO)
    np.testing.assert_array_equal(plain.boxes, crlf.boxes)
    np.testing.assert_array_equal(plain.conf, crlf.conf)
    assert len(crlf) == 5


def test_empty_det_is_valid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "det.txt"
    path.write_text("")
    with caplog.at_level(logging.WARNING, logger="mixdvae"):
        det = read_det(path, SEQINFO)
    assert len(det) == 0 and det.boxes.shape == (0, 4)
    assert "empty detection file" in caplog.text


def _set(rows: list[str], line: int, column: int, value: str) -> list[str]:
    """Replace column (1-based) of line (1-based) by value."""
    rows = list(rows)
    parts = rows[line - 1].split(",")
    parts[column - 1] = value
    rows[line - 1] = ",".join(parts)
    return rows


GT_CASES = [
    (_set(GT_ROWS, 12, 5, "abc"), "12: column 5 (w) is 'abc', expected a float"),
    (_set(GT_ROWS, 3, 3, "nan"), "3: column 3 (x) is 'nan', expected a float"),
    (_set(GT_ROWS, 4, 4, "inf"), "4: column 4 (y) is 'inf', expected a float"),
    (_set(GT_ROWS, 5, 5, "0"), "5: column 5 (w) is '0', expected a float > 0"),
    (_set(GT_ROWS, 6, 6, "-2.5"), "6: column 6 (h) is '-2.5', expected a float > 0"),
    (_set(GT_ROWS, 7, 1, "0"), "7: column 1 (frame) is '0', expected an integer in [1, 10] (seqLength)"),
    (_set(GT_ROWS, 8, 1, "11"), "8: column 1 (frame) is '11', expected an integer in [1, 10] (seqLength)"),
    (_set(GT_ROWS, 2, 1, "1.5"), "2: column 1 (frame) is '1.5', expected an integer in [1, 10] (seqLength)"),
    (_set(GT_ROWS, 9, 1, "x"), "9: column 1 (frame) is 'x', expected an integer"),
    (_set(GT_ROWS, 9, 2, "2.5"), "9: column 2 (id) is '2.5', expected an integer"),
    (_set(GT_ROWS, 10, 7, "2"), "10: column 7 (flag) is '2', expected 0 or 1"),
    (_set(GT_ROWS, 11, 8, "ped"), "11: column 8 (class) is 'ped', expected an integer"),
    (_set(GT_ROWS, 11, 9, "1.5"), "11: column 9 (visibility) is '1.5', expected a float in [0, 1]"),
    (_set(GT_ROWS, 5, 2, "1"), "5: column 2 (id) is '1', already used in frame 2 on line 4"),
    (GT_ROWS[:3] + ["2,1,10,20,5,6,1,1"], "4: has 8 columns, expected 9"),
    (["1,1,10,20,5,6,1,1"], "1: has 8 columns, expected at least 9 (frame,id,x,y,w,h,flag,class,visibility)"),
    # the earliest bad line wins, whatever the check
    (_set(_set(GT_ROWS, 9, 5, "0"), 7, 9, "2"), "7: column 9 (visibility) is '2', expected a float in [0, 1]"),
]


@pytest.mark.parametrize("rows, message", GT_CASES, ids=[m for _, m in GT_CASES])
def test_gt_errors(tmp_path: Path, rows: list[str], message: str) -> None:
    path = _file(tmp_path, "gt.txt", rows)
    with pytest.raises(DataFormatError) as err:
        read_gt(path, SEQINFO)
    assert str(err.value) == f"{path}:{message}"


DET_CASES = [
    (_set(DET_ROWS, 3, 7, "nan"), "3: column 7 (conf) is 'nan', expected a float"),
    (_set(DET_ROWS, 2, 5, "abc"), "2: column 5 (w) is 'abc', expected a float"),
    (_set(DET_ROWS, 4, 6, "0"), "4: column 6 (h) is '0', expected a float > 0"),
    (_set(DET_ROWS, 5, 1, "12"), "5: column 1 (frame) is '12', expected an integer in [1, 10] (seqLength)"),
    (["1,-1,10,20,5,6"], "1: has 6 columns, expected at least 7 (frame,id,x,y,w,h,conf)"),
]


@pytest.mark.parametrize("rows, message", DET_CASES, ids=[m for _, m in DET_CASES])
def test_det_errors(tmp_path: Path, rows: list[str], message: str) -> None:
    path = _file(tmp_path, "det.txt", rows, ending="\r\n")
    with pytest.raises(DataFormatError) as err:
        read_det(path, SEQINFO)
    assert str(err.value) == f"{path}:{message}"


def test_missing_box_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError) as err:
        read_gt(tmp_path / "gt.txt", SEQINFO)
    assert str(err.value) == f"{tmp_path / 'gt.txt'}: file not found"


def test_read_sequence_without_det(tmp_path: Path) -> None:
    _write_seqinfo(tmp_path, GOOD_SEQINFO)
    (tmp_path / "gt").mkdir()
    _file(tmp_path / "gt", "gt.txt", GT_ROWS)
    seq = read_sequence(tmp_path)
    assert seq.info == SEQINFO and len(seq.gt) == 12 and seq.det is None


# ---------------------------------------------------------------------------------------- write


def test_results_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    m = 30
    frames = rng.integers(1, 11, size=m)
    ids = rng.permutation(m) + 1
    x1y1 = rng.uniform(0, 500, size=(m, 2))
    boxes = np.concatenate([x1y1, x1y1 + rng.uniform(5, 100, size=(m, 2))], axis=1).round(3)
    conf = rng.uniform(0, 1, size=m).round(4)
    boxes[[3, 17], 2] = np.nan  # sources without an estimate on that frame
    path = write_mot_results(tmp_path / "res.txt", frames, ids, boxes, conf)
    text = path.read_text()
    assert "nan" not in text.lower()
    lines = text.splitlines()
    assert len(lines) == m - 2 and all(line.endswith(",-1,-1,-1") for line in lines)
    back = read_det(path, SEQINFO)
    keep = ~np.isnan(boxes).any(axis=1)
    order = np.lexsort((ids[keep], frames[keep]))
    np.testing.assert_array_equal(back.frame, frames[keep][order])
    np.testing.assert_array_equal(back.id, ids[keep][order])
    np.testing.assert_allclose(back.boxes, boxes[keep][order], atol=1e-6)
    np.testing.assert_allclose(back.conf, conf[keep][order])


def test_results_default_conf_and_format(tmp_path: Path) -> None:
    path = write_mot_results(tmp_path / "r.txt", [2, 1], [7, 3], np.array([[1.0, 2, 11, 22], [0, 0, 4, 8]]))
    assert path.read_text() == ("1,3,0.000,0.000,4.000,8.000,1,-1,-1,-1\n"
                                "2,7,1.000,2.000,10.000,20.000,1,-1,-1,-1\n")
