"""SORT, OC-SORT and ByteTrack (the ``trackers`` package) behind our sequence interface."""

import builtins

import numpy as np
import pytest

from mixdvae.baselines.practitioner import minmax_confidence, rank_confidence, track_practitioner
from mixdvae.data.mot import MotBoxes
from mixdvae.errors import MixDVAEError
from mixdvae.metrics.sequence import evaluate_mot_sequences, mot_sequence_boxes
from mixdvae.tracking.synthetic_sequence import synthetic_sequence


def test_rank_confidence_keeps_the_order_and_maps_into_the_unit_interval():
    c = np.array([42.0, -0.7, 130.0, 42.0, 5.0])
    r = rank_confidence(c)
    assert np.all((r > 0) & (r < 1))
    assert np.array_equal(np.argsort(r, kind="stable"), np.argsort(c, kind="stable"))
    assert r[0] == r[3] == 0.7  # ties share the highest rank of their group: (4 - 1/2) / 5
    assert rank_confidence(np.zeros(0)).size == 0


def test_minmax_confidence_maps_onto_the_unit_interval():
    c = np.array([42.0, -1.0, 139.0, 42.0])
    np.testing.assert_allclose(minmax_confidence(c), [43 / 140, 0.0, 1.0, 43 / 140])
    assert np.all(minmax_confidence(np.full(3, 7.0)) == 1.0)
    assert minmax_confidence(np.zeros(0)).size == 0


@pytest.mark.parametrize("method", ["sort", "ocsort", "bytetrack"])
def test_practitioner_trackers_give_valid_ids_on_a_synthetic_scene(method):
    pytest.importorskip("trackers")
    gt, det, info = synthetic_sequence(num_people=5, length=80, seed=2, clutter_per_frame=0.5)
    tracks = track_practitioner(det, info, method)
    assert tracks.frames.size > 0 and (tracks.ids >= 1).all()
    key = tracks.frames * 100000 + tracks.ids
    assert np.unique(key).size == key.size
    result = MotBoxes("r", tracks.frames, tracks.ids, tracks.boxes, tracks.conf)
    scores = evaluate_mot_sequences([mot_sequence_boxes(gt, result, info)], tool="native").overall
    assert scores["IDF1"] > 60.0, scores


def test_empty_detections_give_no_rows():
    pytest.importorskip("trackers")
    _, det, info = synthetic_sequence(num_people=2, length=10, seed=0)
    empty = det.select(np.zeros(len(det), dtype=bool))
    assert track_practitioner(empty, info, "bytetrack").frames.size == 0


def test_missing_package_is_a_one_line_error(monkeypatch):
    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "trackers" or name.startswith("trackers."):
            raise ImportError("No module named 'trackers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.delitem(__import__("sys").modules, "trackers", raising=False)
    _, det, info = synthetic_sequence(num_people=1, length=5, seed=0)
    with pytest.raises(MixDVAEError, match=r"pip install 'mixdvae\[sequences\]'"):
        track_practitioner(det, info, "sort")


def test_the_cli_parser_builds_without_trackers(monkeypatch):
    """Importing the CLI (every command) must not import trackers."""
    import subprocess
    import sys

    code = ("import sys; import mixdvae.cli.main as m; m.build_parser(); "
            "sys.exit(1 if 'trackers' in sys.modules or 'supervision' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
