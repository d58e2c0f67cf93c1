"""Trajectories .npz file: round trip and one-line errors for every malformed file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixdvae.data.synthetic import generate_trajectories, trajectory_meta
from mixdvae.data.trajectories import TrajectorySet, load_trajectories, save_trajectories
from mixdvae.errors import DataFormatError


def _boxes(num: int = 4, length: int = 6) -> np.ndarray:
    return generate_trajectories(num, length, seed=0)


def test_round_trip_keeps_boxes_and_meta(tmp_path):
    boxes = _boxes()
    meta = trajectory_meta(4, 6, 0)
    path = save_trajectories(tmp_path / "sub" / "train.npz", boxes, meta)
    assert path == tmp_path / "sub" / "train.npz"
    assert [p.name for p in path.parent.iterdir()] == ["train.npz"]  # no temporary file left
    loaded = load_trajectories(path)
    assert isinstance(loaded, TrajectorySet)
    assert loaded.boxes.dtype == np.float32 and (loaded.num, loaded.length) == (4, 6)
    np.testing.assert_array_equal(loaded.boxes, boxes)
    assert loaded.meta == json.loads(json.dumps(meta))


def test_float64_input_is_stored_as_float32_and_missing_meta_reads_as_empty(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, boxes=_boxes().astype(np.float64))
    loaded = load_trajectories(path)
    assert loaded.boxes.dtype == np.float32 and loaded.meta == {}


def _expect(path, message: str) -> None:
    with pytest.raises(DataFormatError) as info:
        load_trajectories(path)
    text = str(info.value)
    assert "\n" not in text
    assert text == f"{path}: {message}"


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.npz", "trajectories file not found")


def test_not_an_npz(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_text("hello, not a zip\n")
    with pytest.raises(DataFormatError, match=r"bad\.npz: not a valid \.npz file \(") as info:
        load_trajectories(path)
    assert "\n" not in str(info.value)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    _expect(path, "not a valid .npz file (No data left in file)")


def test_single_npy_array_is_not_an_archive(tmp_path):
    path = tmp_path / "one.npz"
    with open(path, "wb") as fh:
        np.save(fh, _boxes())
    _expect(path, "not a valid .npz file (a single .npy array, not an archive)")


def test_truncated_npz(tmp_path):
    path = tmp_path / "cut.npz"
    save_trajectories(path, _boxes(50, 60), {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"cut\.npz: (not a valid \.npz file|cannot read the arrays) \("):
        load_trajectories(path)


def test_missing_boxes_key(tmp_path):
    path = tmp_path / "nobox.npz"
    np.savez(path, tracks=_boxes(), meta=np.array("{}"))
    _expect(path, "missing key 'boxes' (found: tracks, meta)")


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 6)), "boxes have shape (4, 6), expected (num, T, 4)"),
        (np.zeros((4, 6, 5)), "boxes have shape (4, 6, 5), expected (num, T, 4)"),
        (np.zeros((0, 6, 4)), "holds zero trajectories"),
        (np.zeros((3, 2, 4)), "trajectories have T = 2 frames, expected T >= 3"),
        (np.array([["a"] * 4] * 3).reshape(1, 3, 4), "boxes have dtype <U1, expected floats"),
    ],
)
def test_bad_boxes(tmp_path, array, message):
    path = tmp_path / "bad.npz"
    np.savez(path, boxes=array)
    _expect(path, message)


def test_nan_names_trajectory_and_frame(tmp_path):
    boxes = _boxes().copy()
    boxes[2, 4, 1] = np.nan
    boxes[3, 0, 0] = np.inf
    path = tmp_path / "nan.npz"
    np.savez(path, boxes=boxes)
    _expect(path, "trajectory 2, frame 4, coordinate 1 is nan (2 non-finite values in all), expected finite boxes")


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (np.array("{not json"), "key 'meta' is not valid JSON (Expecting property name enclosed in double quotes: "),
        (np.array("[1, 2]"), "key 'meta' should be a JSON object, got list"),
        (np.array([1.0, 2.0]), "key 'meta' should hold one JSON string, got float64 (2,)"),
    ],
)
def test_bad_meta(tmp_path, meta, message):
    path = tmp_path / "meta.npz"
    np.savez(path, boxes=_boxes(), meta=meta)
    with pytest.raises(DataFormatError) as info:
        load_trajectories(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_save_refuses_bad_input_and_writes_nothing(tmp_path):
    boxes = _boxes().copy()
    boxes[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="trajectory 0, frame 1, coordinate 2 is nan"):
        save_trajectories(tmp_path / "x.npz", boxes, {})
    with pytest.raises(ValueError, match="meta is not JSON-serialisable"):
        save_trajectories(tmp_path / "x.npz", _boxes(), {"seed": np.int64(3)})
    assert list(tmp_path.iterdir()) == []
