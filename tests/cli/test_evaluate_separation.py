"""``mixdvae evaluate separation`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixdvae.cli.main import main
from mixdvae.data.mixtures import save_estimates


def test_scores_estimates_prints_tables_and_writes_json(tmp_path, capsys, tone_mixtures):
    mpath, mix = tone_mixtures(tmp_path / "m.npz")
    est = mix.sources + 0.02 * np.random.default_rng(1).standard_normal(mix.sources.shape).astype(np.float32)
    est[1, 1] = 0.0  # PESQ cannot score a silent estimate: a failure, not a dropped value
    epath = tmp_path / "e.npz"
    save_estimates(epath, est, mix.source_names, method="noisy")
    out = tmp_path / "scores.json"
    code = main(["evaluate", "separation", str(epath), "--mixtures", str(mpath), "--json", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    lines = captured.out.splitlines()
    assert "speech:" in lines and "flute:" in lines
    assert sum(line.startswith("| noisy |") for line in lines) == 2
    assert sum(line.startswith("| Mixture |") for line in lines) == 2
    assert any("noisy: 1 value(s) could not be computed (pesq: 1)" in line for line in lines)
    scores = json.loads(out.read_text())
    assert list(scores) == ["meta", "overall", "per_mixture", "failures", "mixture"]
    assert scores["meta"]["method"] == "noisy" and scores["meta"]["metrics"] == ["rmse", "si_sdr", "pesq", "estoi"]
    assert scores["failures"] == [{"index": 1, "source": "flute", "metric": "pesq", "error": "estimate is silent (all zero)"}]
    assert scores["per_mixture"][1]["flute"]["pesq"] is None
    assert scores["overall"]["speech"]["si_sdr"] > scores["mixture"]["overall"]["speech"]["si_sdr"]


def test_metric_subset(tmp_path, capsys, tone_mixtures):
    mpath, mix = tone_mixtures(tmp_path / "m.npz", length_frames=20, m=3)
    epath = tmp_path / "e.npz"
    save_estimates(epath, mix.sources, mix.source_names)
    code = main(["evaluate", "separation", str(epath), "--mixtures", str(mpath), "--metrics", "rmse,si_sdr", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0
    row = next(line for line in captured.out.splitlines() if line.startswith("| e |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "e" and float(cells[1]) < 1e-4 and float(cells[2]) > 60 and cells[3:] == ["-", "-"]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("names", "'source_names' ['flute', 'speech'] differ from"),
        ("shape", "'estimates' has shape (3, 2, 4864) but"),
        ("missing", "estimates file not found"),
    ],
)
def test_mismatched_estimates_exit_2_with_one_line(tmp_path, capsys, tone_mixtures, kind, message):
    mpath, mix = tone_mixtures(tmp_path / "m.npz", length_frames=20, m=2)
    epath = tmp_path / "e.npz"
    if kind == "names":
        save_estimates(epath, mix.sources, ["flute", "speech"])
    elif kind == "shape":
        save_estimates(epath, np.zeros((3, 2, 4864), np.float32), mix.source_names)
    code = main(["evaluate", "separation", str(epath), "--mixtures", str(mpath), "--metrics", "rmse"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith(f"mixdvae: error: {epath}: ") and message in captured.err


def test_unknown_metric_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "separation", str(tmp_path / "e.npz"), "--mixtures", str(tmp_path / "m.npz"), "--metrics", "sdr"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "unknown metric in 'sdr'" in err


def test_an_unwritable_json_is_refused_before_scoring(tmp_path, capsys, tone_mixtures, monkeypatch):
    import mixdvae.cli.evaluate_separation as cli

    mpath, mix = tone_mixtures(tmp_path / "m.npz", length_frames=20, m=2)
    epath = tmp_path / "e.npz"
    save_estimates(epath, mix.sources, mix.source_names)
    (tmp_path / "afile").write_text("x")
    monkeypatch.setattr(cli, "evaluate_separation", lambda *a, **k: pytest.fail("scored before the --json check"))
    code = main(["evaluate", "separation", str(epath), "--mixtures", str(mpath), "--json", str(tmp_path / "afile" / "s.json")])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err == f"mixdvae: error: --json {tmp_path}/afile/s.json: {tmp_path}/afile is a file, not a folder\n"
