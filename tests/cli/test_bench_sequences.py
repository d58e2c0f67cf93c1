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


def test_an_interrupted_bench_sequences_keeps_the_datasets_it_finished(tmp_path, capsys, monkeypatch):
    import mixdvae.bench.sequences as bench_sequences

    with_det = _write_sequence(tmp_path / "a", length=40, seed=3).parent
    other = _write_sequence(tmp_path / "b", length=40, seed=4).parent
    real, calls = bench_sequences.track_sequence, {"n": 0}

    def track_then_interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second dataset: Ctrl-C
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(bench_sequences, "track_sequence", track_then_interrupt)
    out = tmp_path / "bench.json"
    rc = main(["bench", "sequences", "--mot15-dir", str(with_det), "--mot17-dir", str(other),
               "--methods", "kalman", "--json", str(out), "--no-progress"])
    assert rc == 130
    result = json.loads(out.read_text())
    finished = [k for k in result if k != "spec"]
    assert len(finished) == 1 and result[finished[0]]["methods"]["kalman"]["frames"] == 40
    assert result["spec"]["methods"] == ["kalman"]
