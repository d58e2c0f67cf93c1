"""MOT-NT windows: the recipe's guarantees on real sequences, the slot shuffle, seeds, and the file format."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_data_dir
from mixdvae.data.boxes import box_iou
from mixdvae.data.mot import MotBoxes, read_sequence
from mixdvae.data.windows import WindowSet, load_windows, make_windows, match_detections, save_windows
from mixdvae.errors import ConfigError, DataFormatError

MOT15 = shared_data_dir() / "MOT15" / "train"
MOT17 = shared_data_dir() / "MOT17" / "train"
CAMPUS, PETS, MOT17_09 = MOT15 / "TUD-Campus", MOT15 / "PETS09-S2L1", MOT17 / "MOT17-09-SDP"

pytestmark = pytest.mark.skipif(not MOT15.is_dir() or not MOT17.is_dir(),
                                reason="../shared/data is not beside the repository")

# (seq_dirs, length, stride, detector): small so that the whole module runs in a few seconds
CASES = {
    "campus": ([CAMPUS], 20, 10, "file"),
    "pets": ([PETS], 30, 25, "file"),
    "mot17-09-sim": ([MOT17_09], 40, 40, "simulated"),
}


@pytest.fixture(scope="module")
def windows() -> dict[str, WindowSet]:
    return {name: make_windows(dirs, length, 3, stride, seed=0, detector=det)
            for name, (dirs, length, stride, det) in CASES.items()}


@pytest.mark.parametrize("name", CASES)
def test_shapes_and_metadata(windows: dict[str, WindowSet], name: str) -> None:
    ws = windows[name]
    dirs, length, stride, det = CASES[name]
    info = read_sequence(dirs[0]).info
    w = len(ws)
    assert w > 0
    assert ws.gt.shape == (w, length, 3, 4) and ws.det.shape == (w, length, 3, 4)
    assert ws.det_gt_index.shape == (w, length, 3) and ws.det_gt_index.dtype == np.int64
    assert ws.ids.shape == (w, 3) and (np.diff(ws.ids, axis=1) > 0).all()  # distinct, ascending
    assert (ws.sequence == info.name).all()
    np.testing.assert_array_equal(ws.image_size, np.tile([info.im_width, info.im_height], (w, 1)))
    np.testing.assert_array_equal(ws.frames[:, 1] - ws.frames[:, 0] + 1, length)
    assert ((ws.frames[:, 0] - ws.frames[:, 0].min()) % stride == 0).all()
    assert np.isfinite(ws.gt).all()
    assert ws.recipe["length"] == length and ws.recipe["detector"] == det and ws.recipe["seed"] == 0
    # at most 20 distinct subsets per window start
    for f0 in np.unique(ws.frames[:, 0]):
        subsets = {tuple(i) for i in ws.ids[ws.frames[:, 0] == f0]}
        assert len(subsets) == (ws.frames[:, 0] == f0).sum() <= 20


@pytest.mark.parametrize("name", CASES)
def test_gt_matches_the_file_and_every_id_satisfies_the_recipe(windows: dict[str, WindowSet], name: str) -> None:
    ws = windows[name]
    dirs, length, _, _ = CASES[name]
    gt = read_sequence(dirs[0]).gt
    rows = {(int(f), int(i)): r for r, (f, i) in enumerate(zip(gt.frame, gt.id))}
    need = math.ceil(0.65 * length)
    for w in range(len(ws)):
        f0 = int(ws.frames[w, 0])
        for n, ident in enumerate(ws.ids[w]):
            # present and considered (flag 1, pedestrian) on every frame, with the file's box
            r = [rows[(f0 + t, int(ident))] for t in range(length)]
            assert gt.considered[r].all()
            np.testing.assert_array_equal(ws.gt[w, :, n], gt.boxes[r])
        seen = ws.det_gt_index[w][:, :, None] == np.arange(3)               # (T, K, N)
        assert (seen.sum(axis=1) <= 1).all()                                  # one slot per object and frame
        assert (seen.any(axis=1).sum(axis=0) >= need).all()                  # >= 65 % of frames observed
        assert seen[0].any(axis=0).all()                                      # observed on the first frame


def test_every_qualifying_window_and_subset_is_kept(windows: dict[str, WindowSet]) -> None:
    """The recipe written out with loops over frames and ids (matching from match_detections)."""
    ws = windows["pets"]
    _, length, stride, _ = CASES["pets"]
    seq = read_sequence(PETS)
    gt, match = seq.gt, match_detections(seq.gt, seq.det)
    considered = {(int(f), int(i)): bool(m >= 0) for f, i, c, m in zip(gt.frame, gt.id, gt.considered, match) if c}
    need = math.ceil(0.65 * length)
    for f0 in range(int(gt.frame.min()), int(gt.frame.max()) - length + 2, stride):
        frames = range(f0, f0 + length)
        candidates = [int(i) for i in np.unique(gt.id)
                      if all((f, int(i)) in considered for f in frames)
                      and sum(considered[(f, int(i))] for f in frames) >= need and considered[(f0, int(i))]]
        kept = {tuple(ids) for ids in ws.ids[ws.frames[:, 0] == f0]}
        n_subsets = math.comb(len(candidates), 3)
        assert len(kept) == min(20, n_subsets), f0
        assert all(set(s) <= set(candidates) for s in kept)
        if n_subsets <= 20:
            assert kept == set(itertools.combinations(candidates, 3))


@pytest.mark.parametrize("name", CASES)
def test_det_gt_index_consistent_with_iou(windows: dict[str, WindowSet], name: str) -> None:
    ws = windows[name]
    index = ws.det_gt_index
    empty = np.isnan(ws.det).any(axis=-1)
    np.testing.assert_array_equal(empty, index == -1)
    w, t, k = np.nonzero(index >= 0)
    iou = box_iou(ws.det[w, t, k][:, None, :], ws.gt[w, t, index[w, t, k]][:, None, :])[:, 0, 0]
    assert (iou >= 0.5).all()


def test_file_detections_are_rows_of_det_txt(windows: dict[str, WindowSet]) -> None:
    ws = windows["campus"]
    det = read_sequence(CAMPUS).det
    for w, t, k in zip(*np.nonzero(ws.det_gt_index >= 0)):
        frame = ws.frames[w, 0] + t
        assert (np.abs(det.boxes[det.frame == frame] - ws.det[w, t, k]).max(axis=1) == 0).any()


@pytest.mark.parametrize("name", CASES)
def test_slot_order_carries_no_identity(windows: dict[str, WindowSet], name: str) -> None:
    index = windows[name].det_gt_index
    full = (index >= 0).all(axis=-1)                                         # frames with all 3 detections
    identity = (index == np.arange(3)).all(axis=-1)
    # a uniform shuffle of 3 slots is the identity with probability 1/6
    assert full.sum() >= 20
    assert identity[full].mean() < 0.35
    # every order occurs
    assert len({tuple(o) for o in index[full]}) == 6


def test_reproducible_per_seed_and_seeds_differ(windows: dict[str, WindowSet]) -> None:
    ws = windows["mot17-09-sim"]
    again = make_windows([MOT17_09], 40, 3, 40, seed=0, detector="simulated")
    other = make_windows([MOT17_09], 40, 3, 40, seed=1, detector="simulated")
    for key in ("gt", "det", "det_gt_index", "ids", "frames"):
        np.testing.assert_array_equal(getattr(ws, key), getattr(again, key))
    assert len(other) != len(ws) or not np.array_equal(other.det, ws.det, equal_nan=True)
    campus = make_windows([CAMPUS], 20, 3, 10, seed=7, detector="file")
    assert not np.array_equal(campus.det_gt_index, windows["campus"].det_gt_index)
    np.testing.assert_array_equal(campus.gt, windows["campus"].gt)  # the same subsets, other shuffles


def test_sequence_windows_do_not_depend_on_other_sequences(windows: dict[str, WindowSet]) -> None:
    both = make_windows([PETS, CAMPUS], 20, 3, 10, seed=0, detector="file")
    part = both.sequence == "TUD-Campus"
    np.testing.assert_array_equal(both.det[part], windows["campus"].det)
    np.testing.assert_array_equal(both.det_gt_index[part], windows["campus"].det_gt_index)


def test_no_windows_when_tracks_are_short() -> None:
    ws = make_windows([CAMPUS], 300, 3, 40, seed=0)
    assert len(ws) == 0 and ws.gt.shape == (0, 300, 3, 4) and ws.sequence.shape == (0,)


def test_file_detector_needs_det_txt() -> None:
    with pytest.raises(DataFormatError) as err:
        make_windows([MOT17_09], 40, 3, 40, seed=0, detector="file")
    assert str(err.value) == f"{MOT17_09}: no det/det.txt (use the simulated detector)"


@pytest.mark.parametrize("kwargs, field", [
    ({"length": 0}, "length"), ({"stride": -1}, "stride"), ({"detector": "sdp"}, "detector"),
    ({"min_obs_ratio": 1.5}, "min_obs_ratio"), ({"first_frames": 50}, "first_frames"),
])
def test_bad_parameters(kwargs: dict, field: str) -> None:
    args = {"length": 20, "sources": 3, "stride": 10, "seed": 0} | kwargs
    with pytest.raises(ConfigError, match=f"make_windows: {field} = "):
        make_windows([CAMPUS], **args)


# ------------------------------------------------------------------------------- matching oracle


def _brute_force_matches(iou: np.ndarray, row: int = 0, used: frozenset = frozenset()) -> tuple[int, float]:
    """Most pairs with IoU >= 0.5, then highest total IoU, by trying every assignment of rows >= row."""
    if row == iou.shape[0]:
        return (0, 0.0)
    best = _brute_force_matches(iou, row + 1, used)  # row left unmatched
    for col in range(iou.shape[1]):
        if col not in used and iou[row, col] >= 0.5:
            count, total = _brute_force_matches(iou, row + 1, used | {col})
            best = max(best, (count + 1, total + float(iou[row, col])))
    return best


def test_matching_is_optimal_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    for trial in range(60):
        g, d = rng.integers(1, 5, size=2)
        gt_xy = rng.uniform(0, 60, size=(g, 2))
        det_xy = gt_xy[rng.integers(0, g, size=d)] + rng.normal(0, 8, size=(d, 2))
        gt = MotBoxes("g", np.ones(g, dtype=np.int64), np.arange(g), np.hstack([gt_xy, gt_xy + 40]), np.ones(g))
        det = MotBoxes("d", np.ones(d, dtype=np.int64), -np.ones(d, dtype=np.int64),
                       np.hstack([det_xy, det_xy + 40]), np.ones(d))
        match = match_detections(gt, det)
        iou = box_iou(gt.boxes, det.boxes)
        hit = match >= 0
        assert len(set(match[hit])) == hit.sum()
        got = (int(hit.sum()), round(float(iou[np.flatnonzero(hit), match[hit]].sum()), 9))
        assert (iou[np.flatnonzero(hit), match[hit]] >= 0.5).all()
        assert got[0] == _brute_force_matches(iou)[0], trial
        assert got[1] == pytest.approx(_brute_force_matches(iou)[1]), trial


# -------------------------------------------------------------------------------------- file I/O


def test_save_load_round_trip(windows: dict[str, WindowSet], tmp_path: Path) -> None:
    ws = windows["campus"]
    save_windows(tmp_path / "w.npz", ws)
    back = load_windows(tmp_path / "w.npz")
    for key in ("gt", "det", "det_gt_index", "sequence", "ids", "image_size", "frames"):
        np.testing.assert_array_equal(getattr(back, key), getattr(ws, key))
    assert back.recipe == json.loads(json.dumps(ws.recipe))
    assert back.recipe["source_dirs"] == [str(CAMPUS)]


def _arrays(ws: WindowSet) -> dict[str, np.ndarray]:
    return {"gt": ws.gt, "det": ws.det, "det_gt_index": ws.det_gt_index, "sequence": ws.sequence,
            "ids": ws.ids, "image_size": ws.image_size, "frames": ws.frames,
            "recipe": np.array(json.dumps(ws.recipe))}


def _bad(arrays: dict[str, np.ndarray], key: str, value: np.ndarray | None) -> dict[str, np.ndarray]:
    out = dict(arrays)
    if value is None:
        del out[key]
    else:
        out[key] = value
    return out


def test_bad_windows_files(windows: dict[str, WindowSet], tmp_path: Path) -> None:
    good = _arrays(windows["campus"])
    w, t, n, _ = good["gt"].shape
    nan_gt = good["gt"].copy()
    nan_gt[1, 3, 0, 2] = np.nan
    flipped = good["det_gt_index"].copy()
    flipped[good["det_gt_index"] == -1] = 0
    no_index = _bad(good, "det_gt_index", None)
    cases = {
        "missing_key": (no_index, f"missing key 'det_gt_index' (found: {', '.join(no_index)})"),
        "gt_3d": (_bad(good, "gt", good["gt"][..., 0]), f"gt has shape {(w, t, n)}, expected (W, T, N, 4)"),
        "det_T": (_bad(good, "det", good["det"][:, :-1]),
                  f"det has shape {(w, t - 1, n, 4)}, expected (W, T, K, 4) = {(w, t, n, 4)} from gt {(w, t, n, 4)}"),
        "empty": ({k: (v[:0] if v.ndim else v) for k, v in good.items()}, "holds no windows"),
        "nan_gt": (_bad(good, "gt", nan_gt), "gt holds non-finite values (window 1)"),
        "index": (_bad(good, "det_gt_index", flipped), "det_gt_index is -1 exactly where det is NaN, not so here"),
    }
    for name, (arrays, message) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        with pytest.raises(DataFormatError) as err:
            load_windows(path)
        assert str(err.value) == f"{path}: {message}", name

    with pytest.raises(DataFormatError) as err:
        load_windows(tmp_path / "absent.npz")
    assert str(err.value) == f"{tmp_path / 'absent.npz'}: windows file not found"
    text = tmp_path / "text.npz"
    text.write_text("frame,id\n")
    with pytest.raises(DataFormatError) as err:
        load_windows(text)
    assert str(err.value).startswith(f"{text}: not a valid .npz file (") and "\n" not in str(err.value)
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as fh:
        np.save(fh, good["gt"])
    with pytest.raises(DataFormatError) as err:
        load_windows(npy)
    assert str(err.value) == f"{npy}: not a valid .npz file (a single .npy array, not an archive)"
