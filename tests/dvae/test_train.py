"""Pretraining: every family learns, early stopping keeps the truly best weights, an interrupted
run resumes to exactly the weights of an uninterrupted one, and a KL-free DVAE reconstructs."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from mixdvae.data.synthetic import generate_trajectories
from mixdvae.dvae import DVAEConfig, build_dvae
from mixdvae.dvae.checkpoint import load_dvae, read_card
from mixdvae.dvae.train import TrainConfig, evaluate_loss, kl_weight, ss_probability, train_dvae
from mixdvae.dvae.train_state import load_train_state, optimizer_tensors, restore_optimizer
from mixdvae.errors import CheckpointError, ConfigError, DataFormatError, NumericalError

TINY = dict(z_dim=2, rnn_dim=8, dense_x=(8,), dense_enc=(8,), dense_prior=(8,), dense_dec=(8,), dense_g=(8,),
            g_dim=8, dense_z=(8,))
FAST = dict(lr=1e-2, batch_size=16, kl_warmup_epochs=2)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run far faster on one thread (and on a loaded machine OpenMP spinning hurts)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def boxes() -> tuple[torch.Tensor, torch.Tensor]:
    data = torch.from_numpy(generate_trajectories(96, 20, seed=0))
    return data[:64], data[64:]


def _model(family="srnn", encoder="causal", seed=0, **kw):
    return build_dvae(DVAEConfig(family=family, encoder=encoder, **{**TINY, **kw}), seed=seed)


def _log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _without_seconds(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


# --------------------------------------------------------------------------- config and schedules
def test_kl_warmup_and_scheduled_sampling_schedules():
    cfg = TrainConfig(kl_warmup_epochs=4, ss_start=2, ss_end=6, ss_max=0.5)
    assert [kl_weight(cfg, e) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert [ss_probability(cfg, e) for e in range(8)] == [0, 0, 0, 0.125, 0.25, 0.375, 0.5, 0.5]
    assert kl_weight(TrainConfig(kl_warmup_epochs=0), 0) == 1.0
    assert ss_probability(TrainConfig(), 300) == 0.0
    assert ss_probability(TrainConfig(ss_start=3, ss_end=3), 3) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -0.001}, "TrainConfig.lr = -0.001: must be a finite number > 0"),
        ({"lr": math.inf}, "TrainConfig.lr = inf: must be a finite number > 0"),
        ({"batch_size": 0}, "TrainConfig.batch_size = 0: must be an integer >= 1"),
        ({"epochs": 2.5}, "TrainConfig.epochs = 2.5: must be an integer >= 1"),
        ({"kl_warmup_epochs": -1}, "TrainConfig.kl_warmup_epochs = -1: must be an integer >= 0"),
        ({"ss_start": 3}, "TrainConfig.ss_start = 3, ss_end = None: set both or neither"),
        ({"ss_start": 5, "ss_end": 2}, "TrainConfig.ss_end = 2: must be an integer >= 5"),
        ({"ss_max": 1.5}, "TrainConfig.ss_max = 1.5: must be a probability in [0, 1]"),
        ({"grad_clip": 0.0}, "TrainConfig.grad_clip = 0.0: must be a finite number > 0"),
        ({"seed": -1}, "TrainConfig.seed = -1: must be an integer >= 0"),
        ({"precision": "float16"}, "TrainConfig.precision = 'float16': expected 'float32' or 'bfloat16'"),
        ({"forecast_weight": -1.0}, "TrainConfig.forecast_weight = -1.0: must be a number >= 0"),
    ],
)
def test_config_errors_name_the_field(kwargs, message):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**kwargs)
    assert str(err.value) == message


def test_validation_loss_is_deterministic_and_is_the_negative_elbo(boxes):
    model = _model()
    _, val = boxes
    a = evaluate_loss(model, val, seed=5, batch_size=10)
    assert a == evaluate_loss(model, val, seed=5, batch_size=10)
    assert a["loss"] == pytest.approx(a["recon"] + a["kl"])
    # one batch: per frame = -ELBO per sequence / T, with the same posterior sample
    whole = evaluate_loss(model, val, seed=5, batch_size=len(val))
    with torch.no_grad():
        elbo = model.elbo(val, generator=torch.Generator().manual_seed(5))
    assert whole["loss"] == pytest.approx(float(-elbo.mean() / val.shape[1]), rel=1e-5)


# --------------------------------------------------------------------------- (a) every family learns
@pytest.mark.parametrize(
    ("family", "encoder"),
    [("srnn", "causal"), ("srnn", "backward"), ("vrnn", "causal"), ("dkf", "causal"), ("rvae", "causal"),
     ("deep_ar", "causal")],
)
def test_every_family_raises_the_validation_elbo(tmp_path, boxes, family, encoder):
    train, val = boxes
    model = _model(family, encoder)
    untrained = evaluate_loss(model, val, seed=1)["loss"]
    result = train_dvae(model, train, val, TrainConfig(epochs=6, **FAST), tmp_path, progress=False)
    losses = [r["val_loss"] for r in result.history]
    assert result.epochs_run == 6 and len(losses) == 6
    # several nats per frame below the untrained model, and still falling after the first epoch
    assert result.best_val_loss < untrained - 2.0
    assert result.best_val_loss < losses[0] - 1.0
    assert result.best_val_loss == min(losses)
    card = read_card(result.best_path)
    assert card["metrics"]["val_loss"] == result.best_val_loss
    assert card["metrics"]["best_epoch"] == result.best_epoch and card["metrics"]["epochs_run"] == 6
    assert card["train"]["lr"] == 1e-2 and card["seed"] == 128
    loaded = load_dvae(result.best_path)
    assert evaluate_loss(loaded, val, seed=1) == evaluate_loss(model, val, seed=1)
    assert [r["epoch"] for r in _log(result.log_path)] == list(range(6))
    assert result.plot_path.stat().st_size > 1000


def test_bfloat16_autocast_training_raises_the_float32_validation_elbo(tmp_path, boxes):
    """precision = bfloat16: the forward pass under autocast, weights and validation in float32."""
    train, val = boxes
    model = _model("srnn", "causal")
    untrained = evaluate_loss(model, val, seed=1)["loss"]
    result = train_dvae(model, train, val, TrainConfig(epochs=6, precision="bfloat16", **FAST), tmp_path, progress=False)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert result.best_val_loss < untrained - 2.0
    assert read_card(result.best_path)["train"]["precision"] == "bfloat16"


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_on_the_accelerator_raises_the_validation_elbo(tmp_path, boxes, accelerator, precision):
    """Pretraining on ``accelerator`` (float32, and bfloat16 autocast where it is meant to pay):
    the validation ELBO rises as on the CPU, and the saved weights load on the CPU in float32."""
    train, val = boxes
    model = _model("srnn", "causal")
    untrained = evaluate_loss(model, val, seed=1)["loss"]
    result = train_dvae(model, train, val, TrainConfig(epochs=6, precision=precision, **FAST), tmp_path,
                        device=accelerator, progress=False)
    assert all(p.dtype == torch.float32 and p.device.type == torch.device(accelerator).type for p in model.parameters())
    assert result.best_val_loss < untrained - 2.0
    loaded = load_dvae(result.best_path)
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in loaded.parameters())
    assert math.isfinite(evaluate_loss(loaded, val, seed=1)["loss"])


# --------------------------------------------------------------------------- (b) early stopping
def test_early_stopping_keeps_the_truly_best_weights(tmp_path, boxes):
    train, val = boxes
    snapshots = {}

    def spoil_after_epoch_3(epoch, record, model):
        snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        if epoch == 3:  # from now on the validation loss is far worse than at epoch 3
            gen = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(3.0 * torch.randn(p.shape, generator=gen))

    model = _model()
    result = train_dvae(model, train, val, TrainConfig(epochs=50, patience=3, **FAST), tmp_path,
                        progress=False, callback=spoil_after_epoch_3)
    assert result.best_epoch == 3
    assert result.stopped_early and result.epochs_run == 7
    best = load_file(tmp_path / "best.safetensors")
    last = load_file(tmp_path / "last.safetensors")
    for key in best:
        assert torch.equal(best[key], snapshots[3][key]), key
        assert torch.equal(last[key], snapshots[6][key]), key
    assert any(not torch.equal(best[k], last[k]) for k in best)
    # the returned model holds the best weights too
    assert all(torch.equal(v, snapshots[3][k]) for k, v in model.state_dict().items())
    metrics = read_card(tmp_path / "best").get("metrics")
    record = result.history[3]
    assert metrics == {"val_loss": record["val_loss"], "val_recon": record["val_recon"],
                       "val_kl": record["val_kl"], "best_epoch": 3, "epochs_run": 7}


# --------------------------------------------------------------------------- (c) resume
def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(tmp_path, boxes):
    train, val = boxes
    cfg = TrainConfig(epochs=6, **FAST)
    states = {}

    def keep_state_of_epoch_3(run):
        def callback(epoch, record, model):
            if epoch == 3:
                states[run] = load_file(tmp_path / run / "last_state.safetensors")
        return callback

    full = train_dvae(_model(), train, val, cfg, tmp_path / "full", progress=False,
                      callback=keep_state_of_epoch_3("full"))

    def interrupt_after_epoch_2(epoch, record, model):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_dvae(_model(), train, val, cfg, tmp_path / "cut", progress=False, callback=interrupt_after_epoch_2)
    cut_log = (tmp_path / "cut" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in cut_log] == [0, 1, 2]
    assert load_train_state(tmp_path / "cut" / "last_state.safetensors").epoch == 2
    assert (tmp_path / "cut" / "loss.png").is_file()  # the plot of the finished epochs is kept

    resumed = train_dvae(_model(seed=99), train, val, cfg, tmp_path / "cut", resume=True, progress=False,
                         callback=keep_state_of_epoch_3("cut"))
    # the first resumed epoch starts from exactly the saved weights, Adam moments and generators
    assert states["cut"].keys() == states["full"].keys()
    assert any(k.startswith("optim/") and k.endswith("/exp_avg_sq") for k in states["cut"])
    for key, value in states["full"].items():
        assert torch.equal(states["cut"][key], value), key
    for name in ("best.safetensors", "last.safetensors"):
        a, b = load_file(tmp_path / "full" / name), load_file(tmp_path / "cut" / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    log = (tmp_path / "cut" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == list(range(6))
    assert log[:3] == cut_log  # kept as written before the interruption
    assert _without_seconds(resumed.history) == _without_seconds(full.history)
    assert resumed.best_epoch == full.best_epoch and resumed.best_val_loss == full.best_val_loss


def test_resume_after_a_partial_epoch_drops_its_log_lines(tmp_path, boxes):
    """A kill between the log append and the state write leaves one line too many: resume drops it."""
    train, val = boxes
    cfg = TrainConfig(epochs=3, **FAST)
    train_dvae(_model(), train, val, cfg, tmp_path / "full", progress=False)

    def stop(epoch, record, model):
        if epoch == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_dvae(_model(), train, val, cfg, tmp_path / "cut", progress=False, callback=stop)
    with open(tmp_path / "cut" / "log.jsonl", "a") as fh:
        fh.write('{"epoch": 1, "train_loss": 0.5}\n{"epoch": 2, "tr')  # a later epoch and a torn line
    train_dvae(_model(), train, val, cfg, tmp_path / "cut", resume=True, progress=False)
    resumed, full = _log(tmp_path / "cut" / "log.jsonl"), _log(tmp_path / "full" / "log.jsonl")
    assert _without_seconds(resumed) == _without_seconds(full)


def test_restored_optimizer_continues_identically(boxes):
    train, _ = boxes
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for i in range(3):
        opt.zero_grad()
        model.loss(train[i * 8:(i + 1) * 8], generator=torch.Generator().manual_seed(i)).loss.backward()
        opt.step()
    saved = optimizer_tensors(opt, model)
    clone = _model(seed=5)
    clone.load_state_dict(model.state_dict())
    opt2 = torch.optim.Adam(clone.parameters(), lr=1e-2)
    restore_optimizer(opt2, clone, saved, "state")
    assert saved.keys() == optimizer_tensors(opt2, clone).keys()
    assert all(torch.equal(v, optimizer_tensors(opt2, clone)[k]) for k, v in saved.items())
    for m, o in ((model, opt), (clone, opt2)):
        o.zero_grad()
        m.loss(train[:8], generator=torch.Generator().manual_seed(9)).loss.backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), clone.parameters()))


def test_resume_refuses_other_settings_or_data(tmp_path, boxes):
    train, val = boxes
    cfg = TrainConfig(epochs=2, **FAST)
    train_dvae(_model(), train, val, cfg, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="already holds a training run"):
        train_dvae(_model(), train, val, cfg, tmp_path, progress=False)
    with pytest.raises(ConfigError, match=r"TrainConfig.lr = 0.002 but the run was started with 0.01"):
        train_dvae(_model(), train, val, TrainConfig(epochs=2, **{**FAST, "lr": 2e-3}), tmp_path, resume=True,
                   progress=False)
    with pytest.raises(ConfigError, match=r"DVAEConfig.z_dim = 3 but the run was started with 2"):
        train_dvae(_model(z_dim=3), train, val, cfg, tmp_path, resume=True, progress=False)
    with pytest.raises(DataFormatError, match="the training data differ"):
        train_dvae(_model(), train + 0.01, val, cfg, tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="no training state to resume from"):
        train_dvae(_model(), train, val, cfg, tmp_path / "empty", resume=True, progress=False)
    # a longer run is allowed: it continues after epoch 1
    result = train_dvae(_model(), train, val, TrainConfig(epochs=3, **FAST), tmp_path, resume=True, progress=False)
    assert [r["epoch"] for r in _log(result.log_path)] == [0, 1, 2]


def test_non_finite_training_loss_names_the_epoch_and_saves_nothing(tmp_path, boxes, monkeypatch):
    train, val = boxes
    model = _model()
    calls = {"n": 0}
    original = model.loss

    def loss(x, **kw):
        calls["n"] += 1
        terms = original(x, **kw)
        return terms._replace(loss=terms.loss * float("nan")) if calls["n"] > 9 else terms

    monkeypatch.setattr(model, "loss", loss)
    with pytest.raises(NumericalError) as err:  # 4 batches per epoch (+2 validation calls): epoch 1 fails
        train_dvae(model, train, val, TrainConfig(epochs=5, **FAST), tmp_path, progress=False)
    assert str(err.value).startswith("epoch 1: training loss is nan at batch 3;")
    assert load_train_state(tmp_path / "last_state.safetensors").epoch == 0
    assert [r["epoch"] for r in _log(tmp_path / "log.jsonl")] == [0]


def test_bad_data_is_refused(tmp_path, boxes):
    train, val = boxes
    message = "val_x: sequences have D = 3 values per frame but the model's x_dim is 4"
    with pytest.raises(DataFormatError, match=message):
        train_dvae(_model(), train, val[..., :3], TrainConfig(epochs=1), tmp_path, progress=False)
    bad = train.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(DataFormatError, match="train_x: holds NaN"):
        train_dvae(_model(), bad, val, TrainConfig(epochs=1), tmp_path, progress=False)


# --------------------------------------------------------------------------- (d) reconstruction
def test_kl_free_dvae_reconstructs_frames_the_past_cannot_predict(tmp_path):
    """i.i.d. N(0, 1) frames: only z_t can carry x_t. With beta = 0 and z_dim = x_dim an SRNN learns
    to pass x_t through z_t, so decode(x, mean of q(z | x)) reconstructs far below the data std,
    while the same training of Deep AR (no latent) cannot do better than the std."""
    gen = torch.Generator().manual_seed(0)
    train, val = torch.randn(128, 10, 4, generator=gen), torch.randn(32, 10, 4, generator=gen)
    cfg = TrainConfig(lr=1e-2, batch_size=16, epochs=15, kl_warmup_epochs=0, patience=100)
    rmse = {}
    for family in ("srnn", "deep_ar"):
        model = _model(family, z_dim=4, dense_enc=(16,), dense_dec=(16,), beta=0.0)
        train_dvae(model, train, val, cfg, tmp_path / family, progress=False)
        with torch.no_grad():
            _, q = model.encode(val, sample=False)
            rmse[family] = float(((model.decode(val, q.mean).mean - val) ** 2).mean().sqrt())
    std = float(val.std())
    assert rmse["srnn"] < 0.25 * std
    assert rmse["deep_ar"] > 0.9 * std


def test_cosine_schedule_decays_the_logged_learning_rate(tmp_path, boxes):
    train, val = boxes
    cfg = TrainConfig(epochs=4, patience=10, lr_schedule="cosine", lr_min=1e-5, **{**FAST, "lr": 1e-3})
    train_dvae(_model(), train, val, cfg, tmp_path, progress=False)
    lrs = [r["lr"] for r in _log(tmp_path / "log.jsonl")]
    expected = [1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert lrs == pytest.approx(expected)
    assert lrs[0] == pytest.approx(1e-3) and all(a > b for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(ConfigError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_a_run_saved_before_a_field_existed_resumes_with_its_default(tmp_path, boxes):
    """A state written by an older version lacks fields added since (lr_schedule, residual_scale):
    they were trained with the defaults, so resuming must accept them."""
    from mixdvae.dvae.train_state import load_train_state, save_train_state

    train, val = boxes
    cfg = TrainConfig(epochs=2, patience=5, **FAST)
    train_dvae(_model(), train, val, cfg, tmp_path, progress=False)
    path = tmp_path / "last_state.safetensors"
    state = load_train_state(path)
    state.train_config = {k: v for k, v in state.train_config.items() if k not in ("lr_schedule", "lr_min")}
    state.architecture = {k: v for k, v in state.architecture.items() if k != "residual_scale"}
    save_train_state(path, state)
    result = train_dvae(_model(), train, val, TrainConfig(epochs=3, patience=5, **FAST), tmp_path,
                        progress=False, resume=True)
    assert result.epochs_run == 3
