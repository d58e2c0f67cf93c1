"""``mixdvae train`` end to end: summary, cards, one-line errors, and resuming after ``kill -9``."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mixdvae.cli.main import main
from mixdvae.data.synthetic import generate_trajectories
from mixdvae.data.trajectories import save_trajectories
from mixdvae.dvae.checkpoint import load_dvae, read_card

TINY_FLAGS = ["--z-dim", "2", "--rnn-dim", "8", "--batch-size", "8", "--lr", "0.01", "--seed", "3",
              "--device", "cpu", "--no-progress"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trajectories")
    save_trajectories(folder / "train.npz", generate_trajectories(120, 16, seed=1), {"seed": 1, "num": 120})
    save_trajectories(folder / "val.npz", generate_trajectories(24, 16, seed=2), {"seed": 2, "num": 24})
    return folder


def _epochs(log_path):
    return [json.loads(line)["epoch"] for line in log_path.read_text().splitlines()]


def test_trains_and_prints_a_summary(tmp_path, data, capsys):
    out = tmp_path / "run"
    code = main(["train", "--data", str(data / "train.npz"), "--val", str(data / "val.npz"), "--out", str(out),
                 "--epochs", "3", "--family", "vrnn", *TINY_FLAGS])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0].startswith("best epoch ") and "of 3 run (epoch limit); validation loss per frame" in lines[0]
    assert lines[1:] == [f"best weights: {out / 'best.safetensors'} (card {out / 'best.json'})",
                         f"log: {out / 'log.jsonl'}", f"plot: {out / 'loss.png'}"]
    card = read_card(out / "best")
    assert card["architecture"]["family"] == "vrnn" and card["architecture"]["z_dim"] == 2
    assert card["train"]["epochs"] == 3 and card["train"]["lr"] == 0.01 and card["seed"] == 3
    assert card["data"]["train"] == {"path": str(data / "train.npz"), "num": 120, "length": 16,
                                     "meta": {"seed": 1, "num": 120}}
    assert card["data"]["val"]["path"] == str(data / "val.npz")
    assert card["command"].startswith("mixdvae ")
    assert set(card["metrics"]) == {"val_loss", "val_recon", "val_kl", "best_epoch", "epochs_run"}
    assert load_dvae(out / "best").config.family == "vrnn"
    assert (out / "loss.png").stat().st_size > 1000


def test_config_file_and_val_fraction(tmp_path, data, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[model]\nfamily = "dkf"\ndense_dec = [8]\n[train]\nepochs = 5\nkl_warmup_epochs = 0\n')
    out = tmp_path / "run"
    code = main(["train", "--data", str(data / "train.npz"), "--val-fraction", "0.25", "--out", str(out),
                 "--config", str(config), "--epochs", "2", *TINY_FLAGS])
    assert code == 0, capsys.readouterr().err
    card = read_card(out / "best")
    assert card["architecture"]["family"] == "dkf" and card["architecture"]["dense_dec"] == [8]
    assert card["train"]["epochs"] == 2 and card["train"]["kl_warmup_epochs"] == 0  # the flag wins
    assert card["data"]["train"]["num"] == 90 and card["data"]["val"]["num"] == 30
    assert card["data"]["val"]["fraction"] == 0.25


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[train]\nlr_rate = 0.1\n", "c.toml [train]: unknown key 'lr_rate' for TrainConfig"),
        ("[train]\nlr = -0.001\n", "c.toml [train]: TrainConfig.lr = -0.001: must be a finite number > 0"),
        ("[model]\nz_dim = 'four'\n", "c.toml [model]: z_dim: 'four' should be an integer"),
        ("[optimiser]\nlr = 0.1\n", "c.toml: unknown table 'optimiser' (known: model, train)"),
        ("[model]\nx_dim = 3\n", "train.npz: trajectories have 4 values per frame but the model's x_dim is 3"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path, data, capsys, text, expected):
    config = tmp_path / "c.toml"
    config.write_text(text)
    code = main(["train", "--data", str(data / "train.npz"), "--out", str(tmp_path / "run"),
                 "--config", str(config), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and captured.err.startswith("mixdvae: error: ")
    assert expected in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--lr", "-0.001"], "mixdvae: error: TrainConfig.lr = -0.001: must be a finite number > 0\n"),
        (["--z-dim", "0"], "mixdvae: error: DVAEConfig.z_dim = 0: must be an integer >= 1\n"),
        (["--val-fraction", "1.5"], "mixdvae: error: --val-fraction = 1.5: must be in (0, 1)\n"),
        (["--threads", "0"], "mixdvae: error: --threads = 0: must be an integer >= 1\n"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path, data, capsys, flags, expected):
    code = main(["train", "--data", str(data / "train.npz"), "--out", str(tmp_path / "run"), "--no-progress", *flags])
    assert code == 2
    assert capsys.readouterr().err == expected


def test_missing_data_or_state_exits_2(tmp_path, data, capsys):
    code = main(["train", "--data", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nope.npz" in err
    code = main(["train", "--data", str(data / "train.npz"), "--out", str(tmp_path / "run"), "--resume",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"mixdvae: error: {tmp_path / 'run' / 'last_state.safetensors'}: no training state to resume from\n"


def test_resume_after_kill_9_ends_with_the_uninterrupted_weights(tmp_path, data, capsys):
    args = ["train", "--data", str(data / "train.npz"), "--val", str(data / "val.npz"), "--epochs", "14", *TINY_FLAGS]
    cut = tmp_path / "cut"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mixdvae", *args, "--out", str(cut)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = cut / "log.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if log.is_file() and log.read_text().count("\n") >= 2:
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = load_file(cut / "last_state.safetensors")
    done = json.loads((cut / "last_state.json").read_text())["epoch"]
    assert 0 <= done < 13  # the log may hold one more line: the kill can fall before the state write
    before = [line for line in log.read_text().splitlines() if json.loads(line)["epoch"] <= done]

    assert main([*args, "--out", str(cut), "--resume"]) == 0, capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "full")]) == 0, capsys.readouterr().err

    # the resumed run started at the next epoch: the lines before it are kept, none is repeated
    lines = (cut / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(14))
    assert lines[:done + 1] == before
    # the state it resumed from held Adam moments for every parameter
    model = load_dvae(cut / "last")
    slots = ("step", "exp_avg", "exp_avg_sq")
    assert {f"optim/{name}/{slot}" for name, _ in model.named_parameters() for slot in slots} <= set(saved)
    for name in ("best.safetensors", "last.safetensors"):
        a, b = load_file(tmp_path / "full" / name), load_file(cut / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    full_log = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    cut_log = [json.loads(line) for line in lines]
    assert [r["val_loss"] for r in cut_log] == [r["val_loss"] for r in full_log]
    card = read_card(cut / "best")  # the command that started the run, and the one that resumed it
    assert card["command"] == "mixdvae " + shlex.join([*args, "--out", str(cut)])
    assert len(card["resumed_by"]) == 1


def test_init_starts_a_new_run_from_trained_weights(tmp_path, data, capsys):
    """--init: fine-tuning starts from the given weights (one epoch at a vanishing learning rate keeps
    them), on any data, with a fresh optimiser; another architecture or --resume is a one-line error."""
    first = tmp_path / "first"
    assert main(["train", "--data", str(data / "train.npz"), "--val", str(data / "val.npz"), "--out", str(first),
                 "--epochs", "2", *TINY_FLAGS]) == 0
    tuned = tmp_path / "tuned"
    flags = [f for f in TINY_FLAGS if f not in ("--lr", "0.01")]
    code = main(["train", "--data", str(data / "val.npz"), "--val", str(data / "val.npz"), "--out", str(tuned),
                 "--epochs", "1", "--lr", "1e-12", "--init", str(first / "best.safetensors"), *flags])
    assert code == 0, capsys.readouterr().err
    start, end = load_file(first / "best.safetensors"), load_file(tuned / "last.safetensors")
    assert start.keys() == end.keys()
    for k in start:
        torch.testing.assert_close(end[k], start[k], rtol=0, atol=1e-6)
    assert read_card(tuned / "last")["init"] == str(first / "best.safetensors")
    fresh = tmp_path / "fresh"
    assert main(["train", "--data", str(data / "val.npz"), "--val", str(data / "val.npz"), "--out", str(fresh),
                 "--epochs", "1", "--lr", "1e-12", *flags]) == 0
    assert any(not torch.allclose(load_file(fresh / "last.safetensors")[k], start[k]) for k in start)
    capsys.readouterr()

    code = main(["train", "--data", str(data / "train.npz"), "--out", str(tmp_path / "other"), "--epochs", "1",
                 "--init", str(first / "best.safetensors"), *[f if f != "8" else "4" for f in TINY_FLAGS]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("mixdvae: error: --init ") and "architecture" in err
    code = main(["train", "--data", str(data / "train.npz"), "--out", str(first), "--resume",
                 "--init", str(first / "best.safetensors"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err == ("mixdvae: error: --init starts a new run from trained weights and --resume "
                                 "continues a run: give one of them\n")


def test_init_widen_starts_a_wider_prior_with_the_trained_function(tmp_path, data, capsys):
    """--init W --widen: a config whose decoder MLP is wider starts from W's function (one epoch at a
    vanishing rate: the same outputs as W), and the card says what widened; without --widen the error
    says to add it, and --widen without --init is a one-line error."""
    first = tmp_path / "first"
    assert main(["train", "--data", str(data / "train.npz"), "--val", str(data / "val.npz"), "--out", str(first),
                 "--epochs", "2", *TINY_FLAGS]) == 0
    config = tmp_path / "wide.toml"
    config.write_text("[model]\ndense_dec = [48]\n")
    flags = [f for f in TINY_FLAGS if f not in ("--lr", "0.01")]
    wide = tmp_path / "wide"
    code = main(["train", "--config", str(config), "--data", str(data / "val.npz"), "--val", str(data / "val.npz"),
                 "--out", str(wide), "--epochs", "1", "--lr", "1e-12", "--init", str(first / "best.safetensors"),
                 "--widen", *flags])
    assert code == 0, capsys.readouterr().err
    card = read_card(wide / "last")
    assert card["init_widened"] == {"dense_dec": {"from": [16], "to": [48]}}
    assert main(["train", "--data", str(data / "val.npz"), "--val", str(data / "val.npz"), "--out", str(wide),
                 "--resume", "--epochs", "2", "--no-progress"]) == 0  # a resumed run keeps what it started from
    resumed = read_card(wide / "last")
    assert resumed["init_widened"] == card["init_widened"] and resumed["init"] == card["init"]
    assert len(resumed["resumed_by"]) == 1
    source, widened = load_dvae(first / "best.safetensors"), load_dvae(wide / "last.safetensors")
    assert widened.config.dense_dec == (48,) and widened.num_parameters() > source.num_parameters()
    x = torch.as_tensor(generate_trajectories(4, 16, seed=9), dtype=torch.float32)
    source.eval(), widened.eval()
    with torch.no_grad():
        for a, b in zip(source.teacher_forced(x, generator=torch.Generator().manual_seed(0))[2],
                        widened.teacher_forced(x, generator=torch.Generator().manual_seed(0))[2]):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    capsys.readouterr()

    code = main(["train", "--config", str(config), "--data", str(data / "val.npz"), "--out", str(tmp_path / "no"),
                 "--epochs", "1", "--init", str(first / "best.safetensors"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.rstrip().endswith("wider MLP layers only: add --widen)")
    config.write_text("[model]\ndense_dec = [8]\n")
    code = main(["train", "--config", str(config), "--data", str(data / "val.npz"), "--out", str(tmp_path / "narrow"),
                 "--epochs", "1", "--init", str(first / "best.safetensors"), "--widen", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err == (f"mixdvae: error: --init {first / 'best.safetensors'} --widen: dense_dec: [16] -> [8]: "
                                 "widening keeps the number of layers and makes none narrower\n")
    code = main(["train", "--data", str(data / "val.npz"), "--out", str(tmp_path / "alone"), "--widen", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err == "mixdvae: error: --widen widens the weights given by --init W.safetensors: give --init too\n"


def test_several_data_files_train_as_their_concatenation(tmp_path, data, capsys):
    """--data A --data B is the same run as --data on one file holding A then B, weight for weight;
    files of different sequence lengths give a one-line error."""
    a, b = generate_trajectories(40, 16, seed=5), generate_trajectories(30, 16, seed=6)
    save_trajectories(tmp_path / "a.npz", a, {"part": "a"})
    save_trajectories(tmp_path / "b.npz", b, {"part": "b"})
    save_trajectories(tmp_path / "ab.npz", np.concatenate([a, b]), {"part": "ab"})
    common = ["--val", str(data / "val.npz"), "--epochs", "2", *TINY_FLAGS]
    assert main(["train", "--data", str(tmp_path / "a.npz"), "--data", str(tmp_path / "b.npz"),
                 "--out", str(tmp_path / "two"), *common]) == 0
    assert main(["train", "--data", str(tmp_path / "ab.npz"), "--out", str(tmp_path / "one"), *common]) == 0
    two, one = load_file(tmp_path / "two" / "best.safetensors"), load_file(tmp_path / "one" / "best.safetensors")
    assert two.keys() == one.keys() and all(torch.equal(two[k], one[k]) for k in one)
    card = read_card(tmp_path / "two" / "best")
    assert card["data"]["train"]["num"] == 70 and [f["meta"]["part"] for f in card["data"]["train"]["files"]] == ["a", "b"]
    capsys.readouterr()
    save_trajectories(tmp_path / "c.npz", generate_trajectories(20, 12, seed=7), {})
    assert main(["train", "--data", str(tmp_path / "a.npz"), "--data", str(tmp_path / "c.npz"),
                 "--out", str(tmp_path / "bad"), *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different sequence lengths" in err[0] and "c.npz: 12" in err[0]


def test_several_leakage_files_leak_as_their_concatenation(tmp_path, capsys):
    """--leakage-data A --leakage-data B trains the same weights as one file holding A then B (the
    leak is drawn from their union); the card lists both files."""
    from mixdvae.data.spectra import save_spectra

    rng = np.random.default_rng(0)
    own, a, b = (rng.exponential(size=(n, 10, 6)).astype(np.float32) for n in (48, 20, 12))
    save_spectra(tmp_path / "own.npz", own, {})
    for name, part in (("a", a), ("b", b), ("ab", np.concatenate([a, b]))):
        save_spectra(tmp_path / f"{name}.npz", part, {"part": name})
    config = tmp_path / "c.toml"
    config.write_text('[model]\nfamily = "srnn"\nx_dim = 6\nhead = "complex_variance"\ninput_transform = "log"\n'
                      '[train]\nepochs = 2\nleakage_db = [-10.0, 0.0]\n')
    common = ["--config", str(config), "--data", str(tmp_path / "own.npz"), "--val-fraction", "0.25", *TINY_FLAGS]
    assert main(["train", *common, "--leakage-data", str(tmp_path / "a.npz"), "--leakage-data", str(tmp_path / "b.npz"),
                 "--out", str(tmp_path / "two")]) == 0
    assert main(["train", *common, "--leakage-data", str(tmp_path / "ab.npz"), "--out", str(tmp_path / "one")]) == 0
    assert main(["train", *common, "--leakage-data", str(tmp_path / "a.npz"), "--out", str(tmp_path / "a")]) == 0
    two, one = load_file(tmp_path / "two" / "best.safetensors"), load_file(tmp_path / "one" / "best.safetensors")
    assert two.keys() == one.keys() and all(torch.equal(two[k], one[k]) for k in one)
    only_a = load_file(tmp_path / "a" / "best.safetensors")
    assert not all(torch.equal(only_a[k], one[k]) for k in one)  # the second file's segments did leak
    card = read_card(tmp_path / "two" / "best")
    assert card["data"]["leakage"]["num"] == 32 and [f["meta"]["part"] for f in card["data"]["leakage"]["files"]] == ["a", "b"]


@pytest.mark.parametrize("case", ["missing", "not-npz", "wrong-width", "nan", "spectra", "spectra-nan", "other-npz"])
def test_a_bad_file_among_several_gives_the_error_it_gives_alone(tmp_path, data, capsys, case):
    """The several-file reader sizes files from their headers; a bad second file still fails with the
    same one line as when it is the only --data file (shape, value and format errors alike)."""
    bad = tmp_path / "bad.npz"
    boxes = generate_trajectories(10, 16, seed=8)
    if case == "not-npz":
        bad.write_text("boxes\n")
    elif case == "wrong-width":
        np.savez(bad, boxes=boxes[..., :3])
    elif case == "nan":
        boxes[2, 5, 1] = np.nan
        np.savez(bad, boxes=boxes)
    elif case == "spectra":  # a spectra file of 513 bins where the model reads 4 values per frame
        np.savez(bad, power=np.ones((3, 16, 513), np.float32))
    elif case == "spectra-nan":  # read straight into the training tensor when among several
        power = np.ones((3, 16, 4), np.float32)
        power[2, 3, 1] = np.nan
        np.savez(bad, power=power)
    elif case == "other-npz":  # e.g. separation estimates passed as training data
        np.savez(bad, estimates=np.zeros((2, 2, 8), np.float32), source_names=np.array(["a", "b"]))
    errors = []
    for data_flags in (["--data", str(bad)], ["--data", str(data / "train.npz"), "--data", str(bad)]):
        code = main(["train", *data_flags, "--val", str(data / "val.npz"), "--out", str(tmp_path / "run"),
                     "--epochs", "1", *TINY_FLAGS])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and str(bad) in err[0], err
        errors.append(err[0])
    assert errors[0] == errors[1]
    if case == "other-npz":
        assert errors[0] == (f"mixdvae: error: {bad}: not training sequences: expected 'power' (spectra, `mixdvae data "
                             "spectra`) or 'boxes' (trajectories, `mixdvae data trajectories`), found: estimates, source_names")


def test_several_spectra_files_are_read_into_one_tensor(tmp_path):
    """Spectra files among several are read straight into their rows: the result is their concatenation
    (float64 files cast to float32), and each file's description keeps its meta."""
    from mixdvae.cli import train as train_cli
    from mixdvae.data.spectra import save_spectra

    rng = np.random.default_rng(0)
    parts = [rng.exponential(size=(n, 6, 5)) for n in (7, 3000, 2)]
    paths = [save_spectra(tmp_path / f"{i}.npz", part, {"part": i}) for i, part in enumerate(parts)]
    np.savez(paths[2], power=parts[2])  # a float64 file without meta
    x, description = train_cli._load_files(paths, 5)
    assert x.dtype == torch.float32 and torch.equal(x, torch.from_numpy(np.concatenate(parts).astype(np.float32)))
    assert [f["meta"] for f in description["files"]] == [{"part": 0}, {"part": 1}, {}]
    assert [f["num"] for f in description["files"]] == [7, 3000, 2] and description["length"] == 6


def test_several_data_files_are_held_one_at_a_time(tmp_path, monkeypatch):
    """Reading --data A --data B --data C reads each file once and never holds two files' arrays at once
    (memory peaks at the concatenation plus one file); the result is their concatenation in order."""
    import weakref

    from mixdvae.cli import train as train_cli

    parts = [generate_trajectories(n, 16, seed=s) for n, s in ((40, 5), (30, 6), (20, 7))]
    paths = []
    for i, part in enumerate(parts):
        paths.append(tmp_path / f"{i}.npz")
        save_trajectories(paths[-1], part, {"part": i})
    alive: list[weakref.ref] = []
    real = train_cli._load_boxes

    def watched(path, x_dim):
        assert all(ref() is None for ref in alive), "a file's array was still held when the next was read"
        x, description = real(path, x_dim)
        alive.append(weakref.ref(x))
        return x, description

    monkeypatch.setattr(train_cli, "_load_boxes", watched)
    x, description = train_cli._load_files(paths, 4)
    assert len(alive) == 3  # the shapes come from the files' headers; each file's data is read once
    assert torch.equal(x, torch.from_numpy(np.concatenate(parts).astype(np.float32)))
    assert description["num"] == 90 and [f["meta"]["part"] for f in description["files"]] == [0, 1, 2]
