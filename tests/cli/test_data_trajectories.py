"""``mixdvae data trajectories`` end to end."""

from __future__ import annotations

import numpy as np
import pytest

from mixdvae.cli.main import main
from mixdvae.data.synthetic import generate_trajectories
from mixdvae.data.trajectories import load_trajectories


def test_writes_the_file_and_one_summary_line(tmp_path, capsys):
    out = tmp_path / "train.npz"
    code = main(["data", "trajectories", "--num", "25", "--length", "12", "--seed", "7", "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out == f"wrote 25 trajectories of 12 frames to {out}\n"
    assert captured.err == ""
    loaded = load_trajectories(out)
    np.testing.assert_array_equal(loaded.boxes, generate_trajectories(25, 12, seed=7))
    assert {k: loaded.meta[k] for k in ("seed", "length", "num")} == {"seed": 7, "length": 12, "num": 25}
    assert loaded.meta["generator"] == "mixdvae.data.synthetic.generate_trajectories"
    assert loaded.meta["recipe"]["x"]["kind_probs"] == [0.15, 0.30, 0.30, 0.25]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num", "0"], "mixdvae: error: num = 0: must be an integer >= 1\n"),
        (["--num", "5", "--length", "2"], "mixdvae: error: length = 2: must be an integer >= 3\n"),
    ],
)
def test_bad_values_exit_2_with_one_line(tmp_path, capsys, flags, message):
    out = tmp_path / "t.npz"
    code = main(["data", "trajectories", *flags, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == message
    assert captured.out == ""
    assert not out.exists()


def test_unparsable_value_exits_2_without_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "trajectories", "--num", "many", "--out", str(tmp_path / "t.npz")])
    captured = capsys.readouterr()
    assert info.value.code == 2
    assert len(captured.err.strip().splitlines()) == 1
    assert "invalid int value: 'many'" in captured.err and "Traceback" not in captured.err
