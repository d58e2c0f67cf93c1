"""Property tests of the MOTChallenge parsers (``read_det``, ``read_gt``).

- Any file of finite, well-formed lines parses, to exactly the numbers written (in any spelling
  Python's ``float`` reads: ``12``, ``12.50``, ``1.25e+01``, with spaces, CRLF, blank lines).
- The same file with one line made malformed (text, NaN/inf, a column too many or too few, w or h
  <= 0, a frame outside [1, seqLength] or fractional, a bad flag/visibility/class, an id used twice
  in a frame) raises :class:`DataFormatError` whose message starts ``{path}:{line}:`` with that
  line's number in the file, and never any other exception.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mixdvae.data.mot import SeqInfo, read_det, read_gt
from mixdvae.errors import DataFormatError

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
SEQ = SeqInfo(name="seq", im_width=640, im_height=480, seq_length=50, frame_rate=25.0)
_FOLDER = Path(tempfile.mkdtemp(prefix="mot-properties-"))  # one folder for all examples, removed at exit
atexit.register(shutil.rmtree, _FOLDER, ignore_errors=True)
_count = iter(range(10**9))


@dataclass
class Line:
    """One line's tokens (as written) and the values they stand for."""

    tokens: list[str]
    values: list[float]


def _spell(draw, value: float) -> str:
    """``value`` written one of the ways a MOT file may write it; float(token) == value holds."""
    style = draw(st.sampled_from(["repr", "e", "int", "spaced"]))
    if style == "int" and float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    if style == "e":
        return f"{value:.17e}"
    if style == "spaced":
        return f" {value!r} "
    return repr(float(value))


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-4, 1e4, allow_nan=False, allow_infinity=False)


@st.composite
def det_line(draw, columns: int) -> Line:
    frame = draw(st.integers(1, SEQ.seq_length))
    ident = draw(st.one_of(st.just(-1), st.integers(0, 10_000)))
    values = [float(frame), float(ident), draw(finite), draw(finite), draw(positive), draw(positive), draw(finite)]
    tokens = [_spell(draw, float(frame)) if draw(st.booleans()) else str(frame), str(ident)]
    tokens += [_spell(draw, v) for v in values[2:]]
    tokens += ["-1"] * (columns - 7)
    return Line(tokens, values)


@st.composite
def gt_lines(draw, mot17: bool) -> list[Line]:
    """Ground-truth lines with distinct (frame, id) pairs; MOT17 9 columns, MOT15 10."""
    keys = draw(st.lists(st.tuples(st.integers(1, SEQ.seq_length), st.integers(0, 500)), min_size=3, max_size=15,
                         unique=True))
    lines = []
    for frame, ident in keys:
        box = [draw(finite), draw(finite), draw(positive), draw(positive)]
        flag = float(draw(st.sampled_from([0, 1])))
        values = [float(frame), float(ident), *box, flag]
        tokens = [str(frame), str(ident), *(_spell(draw, v) for v in box), str(int(flag))]
        if mot17:
            cls, vis = draw(st.integers(-1, 12)), draw(st.floats(0.0, 1.0))
            values += [float(cls), vis]
            tokens += [str(cls), _spell(draw, vis)]
        else:
            tokens += ["-1", "-1", "-1"]
        lines.append(Line(tokens, values))
    return lines


def _write(lines: list[list[str]], draw, name: str) -> tuple[Path, list[int]]:
    """Write the lines with random blank lines in between and a random line ending; -> path, the
    1-based line number of each line."""
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text, numbers, number = [], [], 0
    for tokens in lines:
        for _ in range(draw(st.integers(0, 1))):
            text.append("")
            number += 1
        text.append(",".join(tokens))
        number += 1
        numbers.append(number)
    path = _FOLDER / f"{next(_count)}-{name}"
    path.write_bytes((ending.join(text) + ending).encode())
    return path, numbers


@given(st.data())
@SETTINGS
def test_well_formed_det_parses_to_the_numbers_written(data) -> None:
    columns = data.draw(st.integers(7, 10))
    lines = data.draw(st.lists(det_line(columns), min_size=1, max_size=15))
    path, _ = _write([line.tokens for line in lines], data.draw, "det.txt")
    det = read_det(path, SEQ)
    v = np.array([line.values for line in lines])  # (M, 7)
    assert np.array_equal(det.frame, v[:, 0].astype(np.int64)) and np.array_equal(det.id, v[:, 1].astype(np.int64))
    expected = np.stack([v[:, 2], v[:, 3], v[:, 2] + v[:, 4], v[:, 3] + v[:, 5]], axis=1)
    assert np.array_equal(det.boxes, expected) and np.array_equal(det.conf, v[:, 6])
    assert np.isfinite(det.boxes).all() and (det.boxes[:, 2:] > det.boxes[:, :2]).all()


@given(st.data())
@SETTINGS
def test_well_formed_gt_parses_to_the_numbers_written(data) -> None:
    mot17 = data.draw(st.booleans())
    lines = data.draw(gt_lines(mot17))
    path, _ = _write([line.tokens for line in lines], data.draw, "gt.txt")
    gt = read_gt(path, SEQ)
    v = np.array([line.values for line in lines])
    assert np.array_equal(gt.frame, v[:, 0].astype(np.int64)) and np.array_equal(gt.id, v[:, 1].astype(np.int64))
    assert np.array_equal(gt.boxes, np.stack([v[:, 2], v[:, 3], v[:, 2] + v[:, 4], v[:, 3] + v[:, 5]], axis=1))
    assert np.array_equal(gt.flag, v[:, 6].astype(np.int64))
    if mot17:
        assert np.array_equal(gt.obj_class, v[:, 7].astype(np.int64)) and np.array_equal(gt.visibility, v[:, 8])
    else:
        assert (gt.obj_class == -1).all() and np.isnan(gt.visibility).all()


NOT_A_NUMBER = st.sampled_from(["abc", "", " ", "1.2.3", "0x10", "--1", "1e", "nan", "NaN", "inf", "-inf", "one"])


@st.composite
def corruption(draw, n_used: int, gt: bool, mot17: bool):
    """(kind, edit): ``edit(tokens) -> tokens`` makes one line malformed."""
    kinds = ["text", "drop", "add", "size", "frame", "fraction"]
    if gt:
        kinds += ["flag"] + (["visibility", "class"] if mot17 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "text":
        col, token = draw(st.integers(0, n_used - 1)), draw(NOT_A_NUMBER)
        return kind, lambda t: t[:col] + [token] + t[col + 1:]
    if kind == "drop":
        return kind, lambda t: t[:-1]
    if kind == "add":
        return kind, lambda t: t + ["-1"]
    if kind == "size":
        col, token = draw(st.sampled_from([4, 5])), draw(st.sampled_from(["0", "-0.0", "-1", "-1e-9", "-3.5"]))
        return kind, lambda t: t[:col] + [token] + t[col + 1:]
    if kind == "frame":
        token = str(draw(st.one_of(st.integers(-100, 0), st.integers(SEQ.seq_length + 1, 10**6))))
        return kind, lambda t: [token] + t[1:]
    if kind == "fraction":
        col = draw(st.sampled_from([0, 1]))
        token = f"{draw(st.integers(1, 40))}.{draw(st.sampled_from(['5', '25', '001']))}"
        return kind, lambda t: t[:col] + [token] + t[col + 1:]
    col, token = {"flag": (6, draw(st.sampled_from(["2", "-1", "0.5"]))),
                  "visibility": (8, draw(st.sampled_from(["1.5", "-0.1", "2"]))),
                  "class": (7, draw(st.sampled_from(["1.5", "0.1"])))}[kind]
    return kind, lambda t: t[:col] + [token] + t[col + 1:]


def _assert_names_line(read, path: Path, line_number: int) -> None:
    try:
        read(path, SEQ)
    except DataFormatError as err:
        message = str(err)
        assert message.startswith(f"{path}:{line_number}:"), (line_number, message)
        assert "\n" not in message
    else:
        raise AssertionError(f"{path}: line {line_number} is malformed but the file parsed")


@given(st.data())
@SETTINGS
def test_one_malformed_det_line_is_named_by_its_number(data) -> None:
    columns = data.draw(st.integers(7, 10))
    lines = [line.tokens for line in data.draw(st.lists(det_line(columns), min_size=3, max_size=12))]
    bad = data.draw(st.integers(0, len(lines) - 1))
    _, edit = data.draw(corruption(7, gt=False, mot17=False))
    lines[bad] = edit(lines[bad])
    path, numbers = _write(lines, data.draw, "det.txt")
    _assert_names_line(read_det, path, numbers[bad])


@given(st.data())
@SETTINGS
def test_one_malformed_gt_line_is_named_by_its_number(data) -> None:
    mot17 = data.draw(st.booleans())
    lines = [line.tokens for line in data.draw(gt_lines(mot17))]
    bad = data.draw(st.integers(0, len(lines) - 1))
    _, edit = data.draw(corruption(9 if mot17 else 7, gt=True, mot17=mot17))
    lines[bad] = edit(lines[bad])
    path, numbers = _write(lines, data.draw, "gt.txt")
    _assert_names_line(read_gt, path, numbers[bad])


@given(st.data())
@SETTINGS
def test_an_id_used_twice_in_a_frame_names_the_later_line(data) -> None:
    mot17 = data.draw(st.booleans())
    lines = [line.tokens for line in data.draw(gt_lines(mot17))]
    first, second = sorted(data.draw(st.lists(st.integers(0, len(lines) - 1), min_size=2, max_size=2, unique=True)))
    lines[second] = lines[first][:2] + lines[second][2:]  # same frame and id as an earlier line
    path, numbers = _write(lines, data.draw, "gt.txt")
    _assert_names_line(read_gt, path, numbers[second])
