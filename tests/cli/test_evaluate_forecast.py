"""``mixdvae evaluate forecast``: figures, JSON, and one-line errors for bad input."""

import json

import numpy as np
import pytest

from mixdvae.cli.main import main
from mixdvae.data.synthetic import generate_trajectories, trajectory_meta
from mixdvae.data.trajectories import save_trajectories
from mixdvae.dvae import DVAEConfig, build_dvae
from mixdvae.dvae.checkpoint import save_dvae


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "t.npz"
    save_trajectories(path, generate_trajectories(20, 15, seed=5), trajectory_meta(20, 15, 5))
    return path


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "w"
    save_dvae(path, build_dvae(DVAEConfig(residual=True, input_transform="delta"), seed=0), {})
    return path.with_suffix(".safetensors")


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mixdvae: error:") and "Traceback" not in err[0]
    return err[0]


def test_prints_both_rmses_and_writes_json(tmp_path, data, weights, capsys):
    out = tmp_path / "f.json"
    assert main(["evaluate", "forecast", "--data", str(data), "--weights", str(weights), "--json", str(out), "--device", "cpu"]) == 0
    res = json.loads(out.read_text())
    assert res["num_trajectories"] == 20
    boxes = np.load(data)["boxes"]
    # the constant-velocity figure is independent of the prior: recompute it here
    cv = np.concatenate([boxes[:, :1], 2 * boxes[:, 1:-1] - boxes[:, :-2]], axis=1)
    assert res["constant_velocity_rmse"] == pytest.approx(float(np.sqrt(np.mean((cv - boxes[:, 1:]) ** 2))), rel=1e-5)
    assert res["prior_rmse"] > 0
    assert "constant velocity" in capsys.readouterr().out


def test_missing_data_file(tmp_path, weights, capsys):
    assert main(["evaluate", "forecast", "--data", str(tmp_path / "nope.npz"), "--weights", str(weights)]) == 2
    assert "nope.npz" in _one_error_line(capsys)


def test_nan_trajectory_file(tmp_path, weights, capsys):
    bad = tmp_path / "bad.npz"
    boxes = generate_trajectories(3, 10, seed=0)
    boxes[1, 4, 2] = np.nan
    np.savez(bad, boxes=boxes)
    assert main(["evaluate", "forecast", "--data", str(bad), "--weights", str(weights)]) == 2
    line = _one_error_line(capsys)
    assert "bad.npz" in line and "trajectory 1" in line


def test_empty_trajectory_file(tmp_path, weights, capsys):
    bad = tmp_path / "empty.npz"
    np.savez(bad, boxes=np.zeros((0, 10, 4), dtype=np.float32))
    assert main(["evaluate", "forecast", "--data", str(bad), "--weights", str(weights)]) == 2
    assert "empty.npz" in _one_error_line(capsys)


def test_checkpoint_of_another_architecture(tmp_path, data, capsys):
    path = tmp_path / "other"
    save_dvae(path, build_dvae(DVAEConfig(rnn_dim=16), seed=0), {})
    small = build_dvae(DVAEConfig(rnn_dim=8), seed=0)
    # weights of one architecture under the card of another
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, str(path.with_suffix(".safetensors")))
    assert main(["evaluate", "forecast", "--data", str(data), "--weights", str(path.with_suffix(".safetensors"))]) == 2
    line = _one_error_line(capsys)
    assert "other.safetensors" in line and "shape" in line
