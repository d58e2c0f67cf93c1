"""``mixdvae ensemble``: checkpoints of one architecture become one prior that ``mixdvae separate``
takes as --weights; bad members are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
from separation._tiny import flute_like, speech_like, tiny_checkpoint, write_wav

from mixdvae.cli.main import main


def test_an_ensemble_separates_like_any_prior(tmp_path, capsys):
    members = [tiny_checkpoint(tmp_path / f"flute_s{s}", seed=s) for s in (1, 2, 3)]
    speech = tiny_checkpoint(tmp_path / "speech", seed=0)
    code = main(["ensemble", *map(str, members), "--out", str(tmp_path / "flute_ens")])
    assert code == 0, capsys.readouterr().err
    card = json.loads((tmp_path / "flute_ens.json").read_text())
    assert card["ensemble"]["members"] == 3 and card["ensemble"]["combine"] == "geometric"
    wav = write_wav(tmp_path / "mix.wav", speech_like(1.0) + flute_like(1.0))
    code = main(["separate", str(wav), "--out", str(tmp_path / "sep"), "--weights", f"speech={speech}",
                 "--weights", f"flute={tmp_path / 'flute_ens.safetensors'}", "--iterations", "2",
                 "--device", "cpu", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    out, _ = sf.read(str(tmp_path / "sep" / "flute.wav"))
    assert np.isfinite(out).all() and np.abs(out).max() > 0


def test_bad_members_exit_2_with_one_line(tmp_path, capsys):
    a = tiny_checkpoint(tmp_path / "a", seed=1)
    b = tiny_checkpoint(tmp_path / "b", family="deep_ar", seed=2)
    for args, message in (([str(a), str(b)], "architecture differs"),
                          ([str(a), str(tmp_path / "missing.safetensors")], "not found")):
        code = main(["ensemble", *args, "--out", str(tmp_path / "e")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "e.safetensors").exists()
