"""``mixdvae bench sequences``: a smoke run on two tiny folders (one with det.txt, one simulated)."""

import json

from mixdvae.cli.main import main
from .test_track_sequence import _write_sequence


def test_bench_sequences_writes_tables_and_json(tmp_path, capsys):
    with_det = _write_sequence(tmp_path / "a", length=40, seed=3).parent
    no_det_seq = _write_sequence(tmp_path / "b", length=40, seed=4)
    (no_det_seq / "det" / "det.txt").unlink()  # MOT17-like: the simulated detector fills in
    out = tmp_path / "bench.json"
    rc = main(["bench", "sequences", "--mot15-dir", str(with_det), "--mot17-dir", str(no_det_seq.parent),
               "--methods", "kalman,vkf", "--json", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "### MOT15 (public det.txt detections)" in text and "### MOT17 (simulated (seeded) detections)" in text
    result = json.loads(out.read_text())
    for name in ("MOT15", "MOT17"):
        for method in ("kalman", "vkf"):
            r = result[name]["methods"][method]
            assert set(("HOTA", "MOTA", "IDF1", "IDS", "FP", "FN")) <= set(r["overall"])
            assert r["frames"] == 40 and r["fps"] > 0 and len(r["per_sequence"]) == 1
    assert result["spec"]["config"]["lifecycle"]["birth_hits"] > 0


def test_bench_sequences_unknown_method_is_one_line(tmp_path, capsys):
    rc = main(["bench", "sequences", "--methods", "kalman,nope", "--mot15-dir", str(tmp_path)])
    assert rc == 2
    assert "--methods" in capsys.readouterr().err
