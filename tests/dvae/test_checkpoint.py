"""Checkpoints: safetensors weights + JSON card, and every way loading them can fail."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import torch
from safetensors.torch import load_file, save_file

from mixdvae.config import config_to_dict
from mixdvae.dvae import DVAEConfig, build_dvae
from mixdvae.dvae.checkpoint import checkpoint_paths, load_dvae, read_card, save_dvae
from mixdvae.errors import CheckpointError, NumericalError

SMALL = dict(z_dim=2, rnn_dim=8, dense_x=(4,), dense_enc=(8,), dense_prior=(8,), dense_dec=(8,), dense_g=(8,),
             g_dim=8, dense_z=(4,))
FAMILIES = [("srnn", "causal"), ("srnn", "backward"), ("vrnn", "causal"), ("dkf", "causal"), ("rvae", "causal"),
            ("deep_ar", "causal")]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(family="srnn", encoder="causal", **kw):
    return build_dvae(DVAEConfig(family=family, encoder=encoder, **{**SMALL, **kw}), seed=3)


@pytest.mark.parametrize(("family", "encoder"), FAMILIES)
def test_round_trip_gives_the_same_outputs(tmp_path, family, encoder):
    model = _model(family, encoder)
    path = save_dvae(tmp_path / "prior", model, {"seed": 3, "metrics": {"val_loss": 1.5}})
    assert path == tmp_path / "prior.safetensors"
    loaded = load_dvae(tmp_path / "prior")
    assert loaded.config == model.config
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.randn(3, 7, 4, generator=torch.Generator().manual_seed(0))
    a = model.loss(x, generator=torch.Generator().manual_seed(1))
    b = loaded.loss(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.loss, b.loss)


def test_card_contents(tmp_path):
    model = _model()
    extra = {"train": {"lr": 0.001}, "data": {"path": "train.npz"}, "command": "mixdvae train", "seed": 7,
             "metrics": {"val_loss": -2.0}, "notes": "kept"}
    save_dvae(tmp_path / "m.safetensors", model, extra)
    card = read_card(tmp_path / "m.json")
    assert card["format"] == "mixdvae-dvae" and card["format_version"] == 1
    assert card["architecture"] == config_to_dict(model.config)
    for key, value in extra.items():
        assert card[key] == value
    assert set(card["versions"]) == {"mixdvae", "torch", "numpy", "python"}
    assert card["versions"]["torch"] == torch.__version__
    assert datetime.fromisoformat(card["created"]).tzinfo is not None
    defaults = read_card(save_dvae(tmp_path / "d", model))
    assert defaults["train"] is None and defaults["command"] is None and defaults["metrics"] == {}


def test_paths_with_or_without_suffix():
    assert checkpoint_paths("a/motion") == checkpoint_paths("a/motion.json") == checkpoint_paths("a/motion.safetensors")
    weights, card = checkpoint_paths("a/motion.v2")
    assert (weights.name, card.name) == ("motion.v2.safetensors", "motion.v2.json")


def test_reserved_card_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match="architecture"):
        save_dvae(tmp_path / "m", _model(), {"architecture": {}})


def test_loading_leaves_the_global_rng_alone(tmp_path):
    save_dvae(tmp_path / "m", _model())
    before = torch.get_rng_state()
    load_dvae(tmp_path / "m")
    assert torch.equal(before, torch.get_rng_state())


def test_missing_files(tmp_path):
    save_dvae(tmp_path / "m", _model())
    (tmp_path / "m.safetensors").unlink()
    with pytest.raises(CheckpointError) as err:
        load_dvae(tmp_path / "m")
    assert str(err.value) == f"{tmp_path / 'm.safetensors'}: weights file not found"
    save_dvae(tmp_path / "n", _model())
    (tmp_path / "n.json").unlink()
    with pytest.raises(CheckpointError) as err:
        load_dvae(tmp_path / "n.safetensors")
    assert str(err.value).startswith(f"{tmp_path / 'n.json'}: card not found")


def test_truncated_weights(tmp_path):
    weights = save_dvae(tmp_path / "m", _model())
    data = weights.read_bytes()
    for cut in (len(data) // 2, 5):
        weights.write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as err:
            load_dvae(weights)
        message = str(err.value)
        assert message.startswith(f"{weights}: not a readable safetensors file, truncated or corrupt (")
        assert "\n" not in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not a readable JSON card"),
        (json.dumps({"format": "something-else"}), "not a mixdvae DVAE card (format is 'something-else'"),
        (json.dumps([1, 2]), "not a mixdvae DVAE card (format is 'list'"),
        (json.dumps({"format": "mixdvae-dvae", "format_version": 99, "architecture": {}}),
         "format_version 99 was written by a newer mixdvae"),
        (json.dumps({"format": "mixdvae-dvae", "format_version": 1}), "'architecture' is missing"),
    ],
)
def test_bad_cards(tmp_path, content, expected):
    save_dvae(tmp_path / "m", _model())
    (tmp_path / "m.json").write_text(content)
    with pytest.raises(CheckpointError) as err:
        load_dvae(tmp_path / "m")
    assert str(err.value).startswith(f"{tmp_path / 'm.json'}: ")
    assert expected in str(err.value)


def test_unknown_architecture_key(tmp_path):
    save_dvae(tmp_path / "m", _model())
    card = json.loads((tmp_path / "m.json").read_text())
    card["architecture"]["n_layers"] = 3
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError) as err:
        load_dvae(tmp_path / "m")
    assert str(err.value).startswith(f"{tmp_path / 'm.json'}: architecture: unknown key 'n_layers' for DVAEConfig")


def test_weights_of_another_architecture(tmp_path):
    save_dvae(tmp_path / "motion", _model(rnn_dim=16, dense_x=(4,)))
    save_dvae(tmp_path / "small", _model(rnn_dim=8, dense_x=(4,)))
    (tmp_path / "motion.json").write_bytes((tmp_path / "small.json").read_bytes())
    with pytest.raises(CheckpointError) as err:
        load_dvae(tmp_path / "motion")
    assert str(err.value) == (
        f"{tmp_path / 'motion.safetensors'}: tensor 'rnn_h.weight_ih_l0' has shape (64, 4) but the "
        "architecture in motion.json needs (32, 4)"
    )


def test_missing_and_unexpected_tensors(tmp_path):
    weights = save_dvae(tmp_path / "m", _model())
    tensors = load_file(weights)
    shape = tuple(tensors["prior_z_mean.bias"].shape)
    save_file({k: v for k, v in tensors.items() if k != "prior_z_mean.bias"}, weights)
    with pytest.raises(CheckpointError) as err:
        load_dvae(weights)
    assert str(err.value) == (
        f"{weights}: tensor 'prior_z_mean.bias' is missing but the architecture in m.json needs it with shape "
        f"{shape} (weights of another architecture?)"
    )
    save_file({**tensors, "extra.weight": torch.zeros(2, 3)}, weights)
    with pytest.raises(CheckpointError) as err:
        load_dvae(weights)
    assert str(err.value) == (
        f"{weights}: unexpected tensor 'extra.weight' (2, 3), not part of the architecture in m.json "
        "(weights of another architecture?)"
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights(tmp_path, bad):
    weights = save_dvae(tmp_path / "m", _model())
    tensors = load_file(weights)
    tensors["mlp_hz_x.layers.0.weight"][1, 2] = bad
    save_file(tensors, weights)
    with pytest.raises(CheckpointError) as err:
        load_dvae(weights)
    assert str(err.value) == f"{weights}: tensor 'mlp_hz_x.layers.0.weight' holds NaN or inf values"


def test_saving_non_finite_weights_is_refused(tmp_path):
    model = _model()
    with torch.no_grad():
        model.inf_z_mean.bias[0] = float("nan")
    with pytest.raises(NumericalError, match="tensor 'inf_z_mean.bias': it holds NaN"):
        save_dvae(tmp_path / "m", model)
    assert not (tmp_path / "m.safetensors").exists() and not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_pickles_are_refused(tmp_path, suffix):
    path = tmp_path / f"model_mot{suffix}"
    torch.save(_model().state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        load_dvae(path)
    message = str(err.value)
    assert message.startswith(f"{path}: only safetensors checkpoints")
    assert "mixdvae.dvae.reference" in message
