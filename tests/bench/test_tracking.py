"""``mixdvae bench tracking``: an interrupted run keeps the cells it finished."""

from __future__ import annotations

import json

from mixdvae.cli.main import main


def test_an_interrupted_bench_tracking_keeps_the_cells_it_finished(shared_data, tmp_path, capsys, monkeypatch):
    import mixdvae.bench.tracking as bench_tracking

    real = bench_tracking.bench_windows

    def windows_then_interrupt(spec, set_name, length):
        if set_name == "MOT15":  # the second set: Ctrl-C
            raise KeyboardInterrupt
        return real(spec, set_name, length)

    monkeypatch.setattr(bench_tracking, "bench_windows", windows_then_interrupt)
    out = tmp_path / "bench.json"
    rc = main(["bench", "tracking", "--lengths", "60", "--max-windows", "3", "--no-speed", "--no-progress",
               "--mot17-dir", str(shared_data / "MOT17" / "train"), "--mot15-dir", str(shared_data / "MOT15" / "train"),
               "--cache-dir", str(tmp_path / "cache"), "--json", str(out)])
    assert rc == 130
    result = json.loads(out.read_text())
    cell = result["sets"]["MOT17"]["T=60"]
    assert cell["windows"] == 3 and cell["rows"]
    methods = [row["method"] for row in cell["rows"]]
    assert len(methods) >= 3 and any("MixDVAE" in m for m in methods)
    assert all(row["standard"]["MOTA"] <= 100 for row in cell["rows"])  # a percentage, finished and saved
    assert result["sets"].get("MOT15", {}) == {}
