"""The VEM options of the separation `default` preset on development sets that the benchmark never
uses (docs/separation.md, "Development sets"). Prints the mean SI-SDR per source and option;
`mixdvae bench separation` reports on unseen speakers and real flute.

Development sets (held-out flute never trained on, rendered unless named -notes; -5 and 0 dB):
  arctic   CMU ARCTIC speech, 8 pairs per ratio, seed 3 (the set the preset was first chosen on)
  libri    LibriSpeech train-clean-100 speech, 32 pairs per ratio, seed 7 (T = 300: 16 pairs)
  arctic-rev, libri-rev (stop 17)  the same speech with the held-out renders each put in one
           synthetic room (rt60 in [0.3, 1.5] s, wet level in [-9, 0] dB, seed 11): the real test
           flute is reverberant, the renders are dry
  arctic-low, libri-low (stop 18)  the same with the reverberant renders played 0.8x (3.9 semitones
           lower): the renders almost never reach the flute's lowest notes, real flute does
  arctic-renders, libri-renders (stop 20)  the same speech with the 80 held-out clips of
           recipes/render_flute.py (runs/data/flute_renders/valid, made by recipes/train_audio_priors.sh;
           other instruments of the flute family, whole ranges, held notes), each in one synthetic room
  *-detuned (stop 28)  arctic-notes, libri-notes and libri-rev with every flute clip played off the
           tempered pitch grid (mixdvae.data.audio.detune, +-50 cents and a slow drift): real players
           are not on A = 440 Hz's grid, the renders and the sampled notes are; *-detuned20 the same
           within +-20 cents (drift 5), about what real players do (benchmarks/flute_tuning.py)
  arctic-notes, libri-notes (stop 21)  the same speech with the 40 held-out clips of
           recipes/sample_flute.py (runs/data/flute_sampled/valid): melodies played with two recorded notes
           of a real flute (E4, A5) that its training clips never use, each in one synthetic room
  libri-unseen (stop 21)  the 50 LibriSpeech speakers that recipes/speech_heldout_check.sh keeps out of
           its speech prior (runs/data/speech_split/held) with the reverberant held-out renders of
           libri-rev: with that prior (--weights), the one set whose speakers the speech prior never heard
Both speech sets are in the priors' training data; the flute files are not.

    python benchmarks/separation_options.py [--set NAME] [--length 100] [--json out.json]
        [--rows all|short|srnn|nmf] [--weights SPEECH.safetensors FLUTE.safetensors] [--deep-ar-weights S F] [--nmf-bases B]

`--rows short` scores the baselines and the default preset only, the rows to compare priors or
bases with (`--rows srnn`: dvae-init and the default preset; `--rows nmf`: the two NMF rows alone): `--weights` replaces the shipped SRNN priors (for dvae-init and every mixdvae row),
`--deep-ar-weights` the Deep AR ones, `--nmf-bases` the NMF bases.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import torch

from mixdvae.data.mixtures import load_mixtures, make_mixtures, save_mixtures
from mixdvae.metrics.audio import si_sdr
from mixdvae.separation.presets import DEFAULT, REFERENCE
from mixdvae.separation.separate import Separator

SETS = {
    "arctic": ("cmu_arctic", 8, 3),
    "libri": ("librispeech/train-clean-100", 32, 7),
    "arctic-rev": ("cmu_arctic", 8, 3),
    "libri-rev": ("librispeech/train-clean-100", 32, 7),
    "arctic-low": ("cmu_arctic", 8, 3),
    "libri-low": ("librispeech/train-clean-100", 32, 7),
    "arctic-renders": ("cmu_arctic", 8, 3),
    "libri-renders": ("librispeech/train-clean-100", 32, 7),
    "arctic-notes": ("cmu_arctic", 8, 3),
    "libri-notes": ("librispeech/train-clean-100", 32, 7),
    "libri-unseen": ("librispeech/train-clean-100", 32, 7),
}
# the detuned sets (stop 28) mix the same speech as the set they detune: NAME-detuned (50 cents), NAME-detuned20
SETS.update({f"{base}-detuned{cents}": SETS[base] for base in ("arctic-notes", "libri-notes", "libri-rev")
             for cents in ("", "20")})
RENDERS = Path("runs") / "data" / "flute_renders" / "valid"  # recipes/render_flute.py, held-out clips
UNSEEN = Path("runs") / "data" / "speech_split" / "held"  # recipes/speech_heldout_check.sh, held-out speakers
SAMPLED = Path("runs") / "data" / "flute_sampled" / "valid"  # recipes/sample_flute.py, held-out real notes
REVERB_SEED = 11
DETUNE_SEED = 13
DETUNE_CENTS = 50.0
LOG03 = 10 * math.log10(0.3)  # -5.2 dB: a power gain of 0.3


def _transform_once(files: list[Path], out: Path, transform) -> Path:
    """Write ``transform(signal)`` of every file (in order) as ``out/STEM.flac``, unless ``out``
    already holds as many files."""
    import numpy as np

    from mixdvae.data.audio import SAMPLE_RATE, list_audio_files, read_audio, write_audio

    if out.is_dir() and len(list_audio_files(out)) == len(files):
        return out
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        write_audio(out / (f.stem + ".flac"), np.asarray(transform(read_audio(f)), dtype=np.float32), SAMPLE_RATE)
    return out


def in_rooms(clips: Path, out: Path) -> Path:
    """Each audio file of ``clips`` in one synthetic room (mixdvae.data.audio.synthetic_reverb;
    rt60 ~ U[0.3, 1.5] s, wet level ~ U[-9, 0] dB, drawn in file order from seed REVERB_SEED,
    peak 0.9), written once under ``out``."""
    import numpy as np

    from mixdvae.data.audio import list_audio_files, synthetic_reverb

    rng = np.random.default_rng(REVERB_SEED)

    def room(x):
        y = synthetic_reverb(x, float(rng.uniform(0.3, 1.5)), float(rng.uniform(-9, 0)), rng)
        return y / max(np.abs(y).max(), 1e-8) * 0.9

    return _transform_once(list_audio_files(clips), out, room)


def reverberant_flute(audio_dir: Path, cache_dir: Path) -> Path:
    """The held-out flute renders, each in one synthetic room (:func:`in_rooms`), written once."""
    return in_rooms(audio_dir / "music" / "fluidsynth_flute" / "valid", cache_dir / "flute_valid_rev")


def reverberant_renders(cache_dir: Path) -> Path:
    """The held-out clips of recipes/render_flute.py (``RENDERS``), each in one synthetic room
    (:func:`in_rooms`), written once."""
    if not RENDERS.is_dir():
        raise SystemExit(f"error: {RENDERS} not found: make it with recipes/train_audio_priors.sh "
                         "(python recipes/render_flute.py --out runs/data/flute_renders --num 400)")
    return in_rooms(RENDERS, cache_dir / "flute_renders_valid_rev")


def reverberant_notes(cache_dir: Path) -> Path:
    """The held-out clips of recipes/sample_flute.py (``SAMPLED``: melodies of real flute notes kept out of
    training), each in one synthetic room (:func:`in_rooms`), written once."""
    if not SAMPLED.is_dir():
        raise SystemExit(f"error: {SAMPLED} not found: make it with recipes/train_audio_priors.sh "
                         "(python recipes/sample_flute.py --samples runs/data/tonejs_flute/package --out runs/data/flute_sampled)")
    return in_rooms(SAMPLED, cache_dir / "flute_sampled_valid_rev")


def low_flute(audio_dir: Path, cache_dir: Path) -> Path:
    """The reverberant held-out renders (:func:`reverberant_flute`) played 0.8x
    (mixdvae.data.audio.speed_perturb: 3.9 semitones lower, notes 25 % longer), written once."""
    from mixdvae.data.audio import list_audio_files, speed_perturb

    files = list_audio_files(reverberant_flute(audio_dir, cache_dir))
    return _transform_once(files, cache_dir / "flute_valid_rev_low", lambda x: speed_perturb(x, 0.8))


def detuned(flute: Path, cache_dir: Path, cents: float = DETUNE_CENTS) -> Path:
    """Each audio file of ``flute`` played off the tempered pitch grid (mixdvae.data.audio.detune: c_0 ~
    U[-cents, cents], a drift of cents / 4), drawn in file order from seed DETUNE_SEED, written once."""
    import numpy as np

    from mixdvae.data.audio import detune, list_audio_files

    rng = np.random.default_rng(DETUNE_SEED)
    suffix = "_detuned" if cents == DETUNE_CENTS else f"_detuned{cents:g}"
    return _transform_once(list_audio_files(flute), cache_dir / (flute.name + suffix),
                           lambda x: detune(x, cents, rng))


def option(label, base, vem=None, prior=None, **kw):
    cfg = base
    if vem:
        cfg = dataclasses.replace(cfg, vem=dataclasses.replace(cfg.vem, **vem))
    if prior:
        cfg = dataclasses.replace(cfg, prior=dataclasses.replace(cfg.prior, **prior))
    return label, dataclasses.replace(cfg, **kw)


def options(length: int) -> list:
    preset = dataclasses.replace(DEFAULT, chunk_frames=length, overlap_frames=0)
    # the rows below vary the loop without the gate (mixture_gate_db) or the blend (init_blend), chosen before them
    base = dataclasses.replace(preset, mixture_gate_db=None, init_blend=0.0)
    # the stop-11 default: uniform p(w) = 1/N, temperature 0.5
    uniform = option("", base, vem=dict(assignment_prior="uniform", temperature=0.5))[1]
    return [
        option("reference preset", dataclasses.replace(REFERENCE, chunk_frames=length, overlap_frames=0)),
        option("uniform prior, mean-field E-W, T=1, m, 10 it", uniform, vem=dict(assignment="mean_field", temperature=1.0), estimate="posterior_mean"),
        option("uniform prior, mean-field E-W, T=1, eta X, 10 it", uniform, vem=dict(assignment="mean_field", temperature=1.0)),
        option("uniform prior, marginal E-W, T=1, m, 10 it", uniform, vem=dict(temperature=1.0), estimate="posterior_mean"),
        option("uniform prior, marginal E-W, T=1, eta X, 10 it", uniform, vem=dict(temperature=1.0)),
        option("uniform prior, marginal E-W, T=0.5, eta X, 2 it", uniform, vem=dict(iterations=2)),
        option("uniform prior, marginal E-W, T=0.5, eta X, 10 it (stop-11 default)", uniform),
        option("uniform prior, marginal E-W, T=0.5, eta X, 30 it", uniform, vem=dict(iterations=30)),
        option("uniform prior, marginal E-W, T=0.3, eta X, 10 it", uniform, vem=dict(temperature=0.3)),
        option("uniform prior + M-step on v^x", uniform, vem=dict(m_step=True)),
        option("uniform prior + sampled feedback", uniform, prior=dict(feedback="sample")),
        option("frequency prior, blocks of 50, a=0.1, T=0.5, 10 it", base, vem=dict(temperature=0.5)),
        option("frequency prior, blocks of 50, a=0 (ML), T=0.3, 10 it", base, vem=dict(prior_concentration=0.0)),
        option("frequency prior, blocks of 50, a=0.25, T=0.3, 10 it", base, vem=dict(prior_concentration=0.25)),
        option("frequency prior, one block per chunk, a=0.1, T=0.3, 10 it", base, vem=dict(prior_block=10**6)),
        option("frequency prior, blocks of 25, a=0.1, T=0.3, 10 it", base, vem=dict(prior_block=25)),
        option("frequency prior, blocks of 50, a=0.1, T=0.3, 10 it (the default loop, no gate)", base),
        option("frequency prior, blocks of 50, a=0.1, T=0.3, 20 it", base, vem=dict(iterations=20)),
        *(option(f"default, at most 30 it, stop a chunk when its ELBO per bin moves < {tol}", base,
                 vem=dict(iterations=30, tol=tol)) for tol in (0.005, 0.01, 0.02)),
        option("default, the priors read the mixture at every iteration (feedback = mixture)", base,
               prior=dict(feedback="mixture")),
        option(f"default preset: the default loop + the gate (mixture_gate_db = {preset.mixture_gate_db})", preset),
        # stop 18: the levels the priors read at (docs/separation.md, "Reading at the training levels")
        option("default preset, every reading at 0 dB (stop 17)", preset, prior=dict(mixture_levels_db=(0.0,), estimate_level_db=0.0)),
        option("default preset, every reading at -10 dB", preset, prior=dict(mixture_levels_db=(-10.0,))),
        option("default preset, every reading at -5.2 dB", preset, prior=dict(mixture_levels_db=(LOG03,), estimate_level_db=LOG03)),
        option("default preset, the estimates at 0 dB", preset, prior=dict(estimate_level_db=0.0)),
        option("default preset, the estimates at -5.2 dB", preset, prior=dict(estimate_level_db=LOG03)),
        option("default preset, the estimates at -15.2 dB", preset, prior=dict(estimate_level_db=LOG03 - 10.0)),
        option("default preset, the mixture at 0, -5.2 and -10 dB", preset, prior=dict(mixture_levels_db=(0.0, LOG03, -10.0))),
        # stop 18: the VEM's estimate averaged with the first reading's (docs/separation.md, "The low register")
        option("default preset without the blend (init_blend = 0)", preset, init_blend=0.0),
        option("default preset, init_blend = 0.75", preset, init_blend=0.75),
        option("default preset, init_blend = 1 (the first reading's Wiener estimate)", preset, init_blend=1.0),
    ]


def load_set(name: str, length: int, audio_dir: Path, cache_dir: Path):
    speech, num, seed = SETS[name]
    if name.startswith("libri") and length >= 300:
        num //= 2
    cache = cache_dir / f"dev_{name}_T{length}_n{num}_s{seed}.npz"
    if cache.is_file():
        return load_mixtures(cache)
    base, _, detuning = name.partition("-detuned")
    flute = (reverberant_flute(audio_dir, cache_dir) if base.endswith(("-rev", "-unseen"))
             else low_flute(audio_dir, cache_dir) if base.endswith("-low")
             else reverberant_renders(cache_dir) if base.endswith("-renders")
             else reverberant_notes(cache_dir) if base.endswith("-notes")
             else audio_dir / "music" / "fluidsynth_flute" / "valid")
    if "-detuned" in name:
        flute = detuned(flute, cache_dir, float(detuning or DETUNE_CENTS))
    if name.endswith("-unseen") and not UNSEEN.is_dir():
        raise SystemExit(f"error: {UNSEEN} not found: make it with recipes/speech_heldout_check.sh")
    voices = UNSEEN if name.endswith("-unseen") else audio_dir / "speech" / speech
    mix = make_mixtures(voices, flute, [-5.0, 0.0], length, num, seed=seed)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_mixtures(cache, mix)
    return mix


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio-dir", type=Path, default=Path("..") / "shared" / "data" / "audio")
    p.add_argument("--set", choices=sorted(SETS), default="arctic")
    p.add_argument("--length", type=int, default=100, help="T, STFT frames per mixture (default 100)")
    p.add_argument("--cache-dir", type=Path, default=Path("runs") / "dev")
    p.add_argument("--json", type=Path)
    p.add_argument("--rows", choices=("all", "short", "srnn", "nmf"), default="all",
                   help="all: every option; short: the baselines and the default preset; srnn: dvae-init and "
                        "the default preset; nmf: the NMF rows alone")
    p.add_argument("--weights", type=Path, nargs=2, metavar=("SPEECH", "FLUTE"),
                   help="SRNN checkpoints for dvae-init and mixdvae (default: the shipped ones)")
    p.add_argument("--deep-ar-weights", type=Path, nargs=2, metavar=("SPEECH", "FLUTE"))
    p.add_argument("--nmf-bases", type=Path)
    args = p.parse_args()
    torch.set_num_threads(1)
    mix = load_set(args.set, args.length, args.audio_dir, args.cache_dir)
    names = list(mix.source_names)
    base = dataclasses.replace(DEFAULT, chunk_frames=args.length, overlap_frames=0)
    weights = {"deep-ar": args.deep_ar_weights, "dvae-init": args.weights, "mixdvae": args.weights}

    def score(method, cfg):
        res = Separator(names, method, cfg, weights=weights.get(method), nmf_bases=args.nmf_bases).separate(mix.mixture)
        return {n: float(si_sdr(res.waveforms[:, i], mix.sources[:, i]).mean()) for i, n in enumerate(names)}

    rows = [{"option": "mixture", **{n: float(si_sdr(mix.mixture, mix.sources[:, i]).mean()) for i, n in enumerate(names)}}]
    baselines = {"nmf": ("nmf", "temporal-nmf"), "srnn": ("dvae-init",)}.get(args.rows, ("nmf", "temporal-nmf", "dvae-init", "deep-ar"))
    for method in baselines:
        rows.append({"option": method, **score(method, base)})
    chosen = [(label, cfg) for label, cfg in options(args.length)
              if args.rows == "all" or (args.rows in ("short", "srnn") and label.startswith("default preset: "))]
    for label, cfg in chosen:
        rows.append({"option": label, **score("mixdvae", cfg)})
    print(f"{args.set}, T = {args.length}, {len(mix.mixture)} mixtures")
    print("| option | " + " | ".join(f"{n} SI-SDR" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for r in rows:
        print(f"| {r['option']} | " + " | ".join(f"{r[n]:.2f}" for n in names) + " |")
    if args.json:
        args.json.write_text(json.dumps({"set": args.set, "length": args.length, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
