"""MOTChallenge files: ``seqinfo.ini``, ``gt/gt.txt``, ``det/det.txt`` and result files.

Line formats (comma separated, one box per line, (x, y) the top-left corner in pixels):

- MOT16/17/20 ground truth, 9 columns: ``frame, id, x, y, w, h, flag, class, visibility``
  (flag 1 = considered by the evaluation, class 1 = pedestrian, visibility in [0, 1]);
- MOT15 ground truth, 10 columns: ``frame, id, x, y, w, h, flag, x3d, y3d, z3d`` (no class, no
  visibility; the world coordinates are not read);
- detections and tracker results, 7 or more columns: ``frame, id, x, y, w, h, conf, ...``
  (id = -1 in public detections).

Boxes are returned as pixel ``(x1, y1, x2, y2) = (x, y, x + w, y + h)``
(:func:`mixdvae.data.boxes.xywh_to_xyxy`). Parsing is strict: every problem raises
:class:`~mixdvae.errors.DataFormatError` with one line naming the file, the 1-based line and the
column, e.g. ``gt.txt:12: column 5 (w) is 'abc', expected a float``. The file is named as the
caller gave its path. CRLF line endings and blank lines are accepted.
"""

from __future__ import annotations

import configparser
import dataclasses
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np

from mixdvae.data.boxes import xywh_to_xyxy, xyxy_to_xywh
from mixdvae.errors import DataFormatError
from mixdvae.utils.io import first_line, write_text

__all__ = [
    "SeqInfo",
    "MotBoxes",
    "MotSequence",
    "read_seqinfo",
    "read_gt",
    "read_det",
    "read_sequence",
    "write_mot_results",
]

logger = logging.getLogger(__name__)

_GT_COLUMNS = ("frame", "id", "x", "y", "w", "h", "flag", "class", "visibility")
_DET_COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf")
# what a column must hold, for messages about text or NaN/inf in it
_EXPECTED = {"frame": "an integer", "id": "an integer", "flag": "0 or 1", "class": "an integer"}
_UNKNOWN_CLASS = -1


@dataclasses.dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of ``seqinfo.ini``: name, image size (pixels), length, frame rate."""

    name: str
    im_width: int
    im_height: int
    seq_length: int
    frame_rate: float

    @property
    def image_size(self) -> tuple[float, float]:
        """(width, height) in pixels, the divisor of :func:`~mixdvae.data.boxes.normalise_boxes`."""
        return (float(self.im_width), float(self.im_height))


@dataclasses.dataclass
class MotBoxes:
    """The boxes of one MOTChallenge file, one row per line, in file order.

    ``flag``, ``obj_class`` and ``visibility`` are ground-truth columns (None for detections).
    MOT15 ground truth has no class and no visibility: ``obj_class`` is -1 and ``visibility`` NaN.

    Shape:
        frame, id: (M,) int64 (frames 1-based); boxes: (M, 4) float64 pixel xyxy; conf: (M,)
        float64 (the flag for ground truth); flag, obj_class: (M,) int64; visibility: (M,) float64.
    """

    source: str
    frame: np.ndarray
    id: np.ndarray
    boxes: np.ndarray
    conf: np.ndarray
    flag: np.ndarray | None = None
    obj_class: np.ndarray | None = None
    visibility: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @property
    def is_gt(self) -> bool:
        return self.flag is not None

    @property
    def considered(self) -> np.ndarray:
        """Rows the MOTChallenge evaluation scores: flag == 1 and class 1 (pedestrian).

        MOT15 has no class column (class -1): there flag == 1 alone decides. Detections: all rows.
        Shape: (M,) bool.
        """
        if self.flag is None or self.obj_class is None:
            return np.ones(len(self), dtype=bool)
        known = self.obj_class != _UNKNOWN_CLASS
        return (self.flag == 1) & (~known | (self.obj_class == 1))

    def select(self, mask: np.ndarray) -> "MotBoxes":
        """The rows where ``mask`` (bool (M,) or integer indices) holds, as a new MotBoxes."""
        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[mask]
        return MotBoxes(self.source, self.frame[mask], self.id[mask], self.boxes[mask], self.conf[mask],
                        take(self.flag), take(self.obj_class), take(self.visibility))


@dataclasses.dataclass
class MotSequence:
    """One sequence folder: its seqinfo and, where the files exist, ground truth and detections."""

    path: Path
    info: SeqInfo
    gt: MotBoxes | None
    det: MotBoxes | None


# --------------------------------------------------------------------------------------- seqinfo


def read_seqinfo(seq_dir: str | os.PathLike) -> SeqInfo:
    """Read ``seq_dir/seqinfo.ini`` (``seq_dir`` may also be the .ini file itself).

    Raises:
        DataFormatError: the file is missing or unreadable, has no ``[Sequence]`` section, or a key
            (name, imWidth, imHeight, seqLength, frameRate) is missing or invalid.
    """
    path = Path(seq_dir)
    if path.is_dir() or path.suffix != ".ini":
        path = path / "seqinfo.ini"
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError, configparser.Error) as err:
        first = first_line(err)
        raise DataFormatError(f"{path}: cannot parse ({first})") from err
    if not parser.has_section("Sequence"):
        raise DataFormatError(f"{path}: no [Sequence] section")
    section = parser["Sequence"]

    def get(key: str) -> str:
        if key.lower() not in section:
            raise DataFormatError(f"{path}: key '{key}' is missing from [Sequence]")
        value = section[key.lower()].strip()
        if not value:
            raise DataFormatError(f"{path}: key '{key}' is empty")
        return value

    def positive_int(key: str) -> int:
        text = get(key)
        try:
            value = int(text)
        except ValueError as err:
            raise DataFormatError(f"{path}: {key} is '{text}', expected a positive integer") from err
        if value <= 0:
            raise DataFormatError(f"{path}: {key} is '{text}', expected a positive integer")
        return value

    name = get("name")
    width, height, length = positive_int("imWidth"), positive_int("imHeight"), positive_int("seqLength")
    rate_text = get("frameRate")
    try:
        rate = float(rate_text)
    except ValueError as err:
        raise DataFormatError(f"{path}: frameRate is '{rate_text}', expected a positive number") from err
    if not np.isfinite(rate) or rate <= 0:
        raise DataFormatError(f"{path}: frameRate is '{rate_text}', expected a positive number")
    return SeqInfo(name=name, im_width=width, im_height=height, seq_length=length, frame_rate=rate)


# ----------------------------------------------------------------------------------- box files


def _read_lines(path: Path) -> tuple[list[str], np.ndarray]:
    """Non-blank lines of ``path`` and their 1-based line numbers (CRLF and CR accepted)."""
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: cannot read ({err})") from err
    lines, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            lines.append(line)
            numbers.append(number)
    return lines, np.asarray(numbers, dtype=np.int64)


def _parse_table(path: Path, lines: list[str], numbers: np.ndarray, names: tuple[str, ...],
                 n_used: int, min_columns: int) -> np.ndarray:
    """The first ``n_used`` columns of every line as float64, with one-line errors.

    Every line must have as many columns as most lines have (:func:`_column_count`), and at least
    ``min_columns``.
    Shape: -> (M, n_used).
    """
    n_columns = _column_count(lines)
    if n_columns < min_columns:
        first = next(i for i, line in enumerate(lines) if len(line.split(",")) == n_columns)
        raise DataFormatError(f"{path}:{numbers[first]}: has {n_columns} columns, expected at least "
                              f"{min_columns} ({','.join(names[:min_columns])})")
    rows = []
    for line, number in zip(lines, numbers):
        parts = line.split(",")
        if len(parts) != n_columns:
            raise DataFormatError(f"{path}:{number}: has {len(parts)} columns, expected {n_columns}")
        try:
            rows.append([float(p) for p in parts[:n_used]])
        except ValueError:
            for col, part in enumerate(parts[:n_used]):
                try:
                    float(part)
                except ValueError as err:
                    raise DataFormatError(f"{path}:{number}: column {col + 1} ({names[col]}) is "
                                          f"'{part.strip()}', expected {_expected(names[col])}") from err
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), n_used)


def _column_count(lines: list[str]) -> int:
    """The number of columns most lines have (the first line's on a tie): the file's layout, so that a
    single line with a column too many or too few is the line named, even when it is the first."""
    return Counter(len(line.split(",")) for line in lines).most_common(1)[0][0]


def _expected(name: str) -> str:
    return _EXPECTED.get(name, "a float")


def _first_failure(path: Path, lines: list[str], numbers: np.ndarray, names: tuple[str, ...],
                   checks: list[tuple[np.ndarray, int, str]]) -> None:
    """Raise for the earliest line failing any check; ``checks`` = (bad mask (M,), column, expectation)."""
    best = None
    for bad, col, expected in checks:
        hits = np.flatnonzero(bad)
        if hits.size and (best is None or hits[0] < best[0]):
            best = (hits[0], col, expected)
    if best is not None:
        row, col, expected = best
        token = lines[row].split(",")[col].strip()
        raise DataFormatError(f"{path}:{numbers[row]}: column {col + 1} ({names[col]}) is '{token}', "
                              f"expected {expected}")


def _common_checks(values: np.ndarray, seqinfo: SeqInfo,
                   names: tuple[str, ...]) -> list[tuple[np.ndarray, int, str]]:
    """Checks shared by gt and det: finite, integer frame in [1, seqLength] and id, w > 0, h > 0."""
    finite = np.isfinite(values)
    checks = [(~finite[:, c], c, _expected(names[c])) for c in range(values.shape[1])]
    with np.errstate(invalid="ignore"):
        frame, ident = values[:, 0], values[:, 1]
        checks += [
            (finite[:, 0] & ((frame != np.round(frame)) | (frame < 1) | (frame > seqinfo.seq_length)), 0,
             f"an integer in [1, {seqinfo.seq_length}] (seqLength)"),
            (finite[:, 1] & (ident != np.round(ident)), 1, "an integer"),
            (finite[:, 4] & (values[:, 4] <= 0), 4, "a float > 0"),
            (finite[:, 5] & (values[:, 5] <= 0), 5, "a float > 0"),
        ]
    return checks


def _empty(path: Path, gt: bool) -> MotBoxes:
    ints, floats = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    extra = (ints.copy(), ints.copy(), floats.copy()) if gt else (None, None, None)
    return MotBoxes(str(path), ints.copy(), ints.copy(), np.zeros((0, 4)), floats.copy(), *extra)


def read_gt(path: str | os.PathLike, seqinfo: SeqInfo) -> MotBoxes:
    """Read a ground-truth file (MOT17 9 columns or MOT15 10 columns) into pixel xyxy boxes.

    Raises:
        DataFormatError: too few columns, text or NaN/inf in a numeric column, a non-integer frame,
            id, flag or class, frame < 1 or > seqLength, w or h <= 0, flag not 0/1, visibility
            outside [0, 1], or an id used twice within one frame.
    """
    path = Path(path)
    lines, numbers = _read_lines(path)
    if not lines:
        logger.warning("%s: no ground-truth boxes", path)
        return _empty(path, gt=True)
    mot17 = _column_count(lines) == len(_GT_COLUMNS)
    n_used = 9 if mot17 else 7
    values = _parse_table(path, lines, numbers, _GT_COLUMNS, n_used, min_columns=9)
    checks = _common_checks(values, seqinfo, _GT_COLUMNS)
    finite = np.isfinite(values)
    checks.append((finite[:, 6] & (values[:, 6] != 0) & (values[:, 6] != 1), 6, "0 or 1"))
    if mot17:
        with np.errstate(invalid="ignore"):
            checks.append((finite[:, 7] & (values[:, 7] != np.round(values[:, 7])), 7, "an integer"))
            checks.append((finite[:, 8] & ((values[:, 8] < 0) | (values[:, 8] > 1)), 8, "a float in [0, 1]"))
    _first_failure(path, lines, numbers, _GT_COLUMNS, checks)

    frame, ident = values[:, 0].astype(np.int64), values[:, 1].astype(np.int64)
    order = np.lexsort((numbers, ident, frame))  # by frame, id, then line
    same = (frame[order][1:] == frame[order][:-1]) & (ident[order][1:] == ident[order][:-1])
    if same.any():
        dup = np.flatnonzero(same)
        # the later of each duplicated pair, earliest in the file first
        later = order[dup + 1][np.argmin(numbers[order[dup + 1]])]
        first = order[dup[np.argmin(numbers[order[dup + 1]])]]
        raise DataFormatError(f"{path}:{numbers[later]}: column 2 (id) is '{ident[later]}', already used "
                              f"in frame {frame[later]} on line {numbers[first]}")
    m = len(lines)
    return MotBoxes(
        source=str(path),
        frame=frame,
        id=ident,
        boxes=xywh_to_xyxy(values[:, 2:6]),
        conf=values[:, 6].copy(),
        flag=values[:, 6].astype(np.int64),
        obj_class=values[:, 7].astype(np.int64) if mot17 else np.full(m, _UNKNOWN_CLASS, dtype=np.int64),
        visibility=values[:, 8].copy() if mot17 else np.full(m, np.nan),
    )


def read_det(path: str | os.PathLike, seqinfo: SeqInfo) -> MotBoxes:
    """Read a detection or tracker-result file (7 or more columns) into pixel xyxy boxes.

    An empty file is valid: zero detections, with a logged warning.

    Raises:
        DataFormatError: too few columns, text or NaN/inf in a numeric column, a non-integer frame
            or id, frame < 1 or > seqLength, w or h <= 0.
    """
    path = Path(path)
    lines, numbers = _read_lines(path)
    if not lines:
        logger.warning("%s: empty detection file (zero detections)", path)
        return _empty(path, gt=False)
    values = _parse_table(path, lines, numbers, _DET_COLUMNS, 7, min_columns=7)
    _first_failure(path, lines, numbers, _DET_COLUMNS, _common_checks(values, seqinfo, _DET_COLUMNS))
    return MotBoxes(source=str(path), frame=values[:, 0].astype(np.int64), id=values[:, 1].astype(np.int64),
                    boxes=xywh_to_xyxy(values[:, 2:6]), conf=values[:, 6].copy())


def read_sequence(seq_dir: str | os.PathLike) -> MotSequence:
    """Read a sequence folder: ``seqinfo.ini``, plus ``gt/gt.txt`` and ``det/det.txt`` where present."""
    seq_dir = Path(seq_dir)
    if not seq_dir.is_dir():
        raise DataFormatError(f"{seq_dir}: sequence folder not found")
    info = read_seqinfo(seq_dir)
    gt_path, det_path = seq_dir / "gt" / "gt.txt", seq_dir / "det" / "det.txt"
    gt = read_gt(gt_path, info) if gt_path.is_file() else None
    det = read_det(det_path, info) if det_path.is_file() else None
    return MotSequence(path=seq_dir, info=info, gt=gt, det=det)


# ---------------------------------------------------------------------------------------- write


def write_mot_results(path: str | os.PathLike, frames: np.ndarray, ids: np.ndarray, boxes_xyxy: np.ndarray,
                      conf: np.ndarray | None = None) -> Path:
    """Write tracker results as MOTChallenge lines ``frame,id,x,y,w,h,conf,-1,-1,-1``, atomically.

    Lines are sorted by frame, then id. Rows whose box holds a NaN or inf are skipped (a source
    with no estimate on that frame), so no NaN is ever written. ``conf`` defaults to 1.

    Shape:
        frames, ids: (M,) integers; boxes_xyxy: (M, 4) pixel xyxy; conf: (M,) or None.
    """
    frames = np.asarray(frames).reshape(-1)
    ids = np.asarray(ids).reshape(-1)
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    conf = np.ones(frames.shape[0]) if conf is None else np.asarray(conf, dtype=np.float64).reshape(-1)
    m = frames.shape[0]
    if ids.shape != (m,) or boxes.shape != (m, 4) or conf.shape != (m,):
        raise ValueError(f"write_mot_results: frames {frames.shape}, ids {ids.shape}, boxes "
                         f"{boxes.shape}, conf {conf.shape}; expected (M,), (M,), (M, 4), (M,)")
    keep = np.isfinite(boxes).all(axis=1) & np.isfinite(conf)
    frames, ids, boxes, conf = frames[keep], ids[keep], boxes[keep], conf[keep]
    order = np.lexsort((ids, frames))
    xywh = xyxy_to_xywh(boxes[order])
    lines = [f"{int(f)},{int(i)},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},{c:.6g},-1,-1,-1\n"
             for f, i, b, c in zip(frames[order], ids[order], xywh, conf[order])]
    return write_text(path, "".join(lines))
