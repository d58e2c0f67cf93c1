"""The VEM options of the separation `default` preset on a development set that the benchmark never
uses: CMU ARCTIC speech (a training speaker set) mixed with held-out rendered flute
(fluidsynth_flute/valid), T = 100, -5 and 0 dB, 8 pairs each (docs/separation.md). Prints the mean
SI-SDR per source and option; `mixdvae bench separation` reports on unseen speakers and real flute.

    python benchmarks/separation_options.py [--audio-dir ../shared/data/audio] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from mixdvae.data.mixtures import load_mixtures, make_mixtures, save_mixtures
from mixdvae.metrics.audio import si_sdr
from mixdvae.separation.presets import DEFAULT, REFERENCE
from mixdvae.separation.separate import Separator

BASE = dataclasses.replace(DEFAULT, chunk_frames=100, overlap_frames=0)


def option(label, vem=None, prior=None, base=BASE, **kw):
    cfg = base
    if vem:
        cfg = dataclasses.replace(cfg, vem=dataclasses.replace(cfg.vem, **vem))
    if prior:
        cfg = dataclasses.replace(cfg, prior=dataclasses.replace(cfg.prior, **prior))
    return label, dataclasses.replace(cfg, **kw)


OPTIONS = [
    option("reference preset", base=dataclasses.replace(REFERENCE, chunk_frames=100, overlap_frames=0)),
    option("mean-field E-W, T=1, m, 10 it", vem=dict(assignment="mean_field", temperature=1.0), estimate="posterior_mean"),
    option("mean-field E-W, T=1, eta X, 10 it", vem=dict(assignment="mean_field", temperature=1.0)),
    option("marginal E-W, T=1, m, 10 it", vem=dict(temperature=1.0), estimate="posterior_mean"),
    option("marginal E-W, T=1, eta X, 10 it", vem=dict(temperature=1.0)),
    option("marginal E-W, T=1, eta X, 2 it", vem=dict(temperature=1.0, iterations=2)),
    option("marginal E-W, T=0.5, eta X, 2 it", vem=dict(iterations=2)),
    option("marginal E-W, T=0.5, eta X, 10 it (default)"),
    option("marginal E-W, T=0.5, eta X, 30 it", vem=dict(iterations=30)),
    option("default + M-step on v^x", vem=dict(m_step=True)),
    option("default + sampled feedback", prior=dict(feedback="sample")),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio-dir", type=Path, default=Path("..") / "shared" / "data" / "audio")
    p.add_argument("--cache", type=Path, default=Path("runs") / "dev_mix_T100.npz")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.cache.is_file():
        mix = load_mixtures(args.cache)
    else:
        mix = make_mixtures(args.audio_dir / "speech" / "cmu_arctic", args.audio_dir / "music" / "fluidsynth_flute" / "valid",
                            [-5.0, 0.0], 100, 8, seed=3)
        save_mixtures(args.cache, mix)
    names = list(mix.source_names)
    rows = [{"option": "mixture", **{n: float(si_sdr(mix.mixture, mix.sources[:, i]).mean()) for i, n in enumerate(names)}}]
    for method in ("temporal-nmf", "dvae-init", "deep-ar"):
        res = Separator(names, method, BASE).separate(mix.mixture)
        rows.append({"option": method, **{n: float(si_sdr(res.waveforms[:, i], mix.sources[:, i]).mean()) for i, n in enumerate(names)}})
    for label, cfg in OPTIONS:
        res = Separator(names, "mixdvae", cfg).separate(mix.mixture)
        rows.append({"option": label, **{n: float(si_sdr(res.waveforms[:, i], mix.sources[:, i]).mean()) for i, n in enumerate(names)}})
    print("| option | " + " | ".join(f"{n} SI-SDR" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for r in rows:
        print(f"| {r['option']} | " + " | ".join(f"{r[n]:.2f}" for n in names) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
