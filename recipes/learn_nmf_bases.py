"""Learn the IS-NMF bases of the NMF baselines (src/mixdvae/weights/nmf_bases.safetensors) on the
same training spectra as the audio priors (runs/data/speech_train.npz and the flute renders with their
reverberant copies and the copies played 0.8x, runs/data/flute_train_rev_low.npz, plus the renders of
recipes/render_flute.py with theirs, runs/data/flute_train_renders_rev.npz; made by recipes/train_audio_priors.sh; the
real-note melodies the flute priors add at stop 21 made the bases worse, see below): K = 64 components per source
(32 until stop 19; with the wider flute data 64 does better on the development sets, docs/separation.md "More renders"), 100 iterations, seed 0
for each source's own generator, on an evenly
spaced subset of 20,000 frames per source, one initial draw (RESTARTS = 1). `--restarts 8` keeps the best of eight draws
by final IS divergence: tried at stop 20, it separated 0.3 / 0.2 dB worse on the development sets, so lower
training divergence is not better separation here (docs/separation.md "NMF restarts"). Run from the repository root: python recipes/learn_nmf_bases.py"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from mixdvae.baselines.nmf import learn_is_nmf_bases, save_nmf_bases
from mixdvae.data.spectra import load_spectra, spectra_shape

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS, ITERATIONS, FRAMES, SEED, RESTARTS = 64, 100, 20_000, 0, 1


def evenly_spaced_frames(paths: list[Path], count: int) -> tuple[torch.Tensor, list[dict]]:
    """COUNT frames evenly spaced over the frames of PATHS read in order as one sequence (all of them if fewer):
    (count, F). Each file is sized from its header, then read once; one is held at a time (the flute spectra
    are about 6 GB together)."""
    sizes = [num * length for num, length, _ in map(spectra_shape, paths)]
    keep = torch.linspace(0, sum(sizes) - 1, min(count, sum(sizes))).round().long()
    parts, infos, start = [], [], 0
    for path, size in zip(paths, sizes):
        power, info = load_spectra(path)
        mine = keep[(keep >= start) & (keep < start + size)] - start
        parts.append(torch.from_numpy(power.reshape(-1, power.shape[-1])[mine.numpy()].copy()))
        infos.append(info)
        start += size
        del power
    return torch.cat(parts), infos


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "src" / "mixdvae" / "weights" / "nmf_bases.safetensors",
                   help="where to write the bases (default: the shipped file)")
    p.add_argument("--restarts", type=int, default=RESTARTS, help=f"initial draws per source (default {RESTARTS})")
    args = p.parse_args()
    torch.set_num_threads(1)
    powers, meta = {}, {}
    for name, files in (("speech", ("speech_train.npz",)),
                        ("flute", ("flute_train_rev_low.npz", "flute_train_renders_rev.npz"))):
        # (stop 21: adding the real-note melodies, flute_train_sampled_rev.npz, made both NMF rows worse on the
        # development sets, -0.37 / -0.23 dB, the notes sets included; the baselines keep their better bases)
        paths = [ROOT / "runs" / "data" / file for file in files]
        powers[name], infos = evenly_spaced_frames(paths, FRAMES)
        meta[name] = {"data": [str(path.relative_to(ROOT)) for path in paths], "frames": int(len(powers[name])),
                      "spectra": infos}
    # each source from its own generator seeded SEED, so its bases do not depend on the other sources
    bases = {name: learn_is_nmf_bases(power, COMPONENTS, ITERATIONS, torch.Generator().manual_seed(SEED),
                                       progress=True, restarts=args.restarts)
             for name, power in powers.items()}
    out = args.out
    save_nmf_bases(out, bases, {"command": "python " + " ".join(["recipes/learn_nmf_bases.py", *sys.argv[1:]]), "components_per_source": COMPONENTS,
                                "iterations": ITERATIONS, "seed": SEED,
                                "restarts": args.restarts, "training": meta,
                                "license": "MIT (learned by this project; data licenses in ../shared/data/SOURCES.md, and for the renders of recipes/render_flute.py in its docstring: FluidR3_GM and MuseScore General SoundFonts, MIT)"})
    print(f"wrote {out}: {', '.join(f'{k} {tuple(v.shape)}' for k, v in bases.items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
