"""Learn the IS-NMF bases of the NMF baselines (src/mixdvae/weights/nmf_bases.safetensors) on the
same training spectra as the audio priors (runs/data/speech_train.npz and the flute renders with their
reverberant copies and the copies played 0.8x, runs/data/flute_train_rev_low.npz, plus the renders of
recipes/render_flute.py with theirs, runs/data/flute_train_renders_rev.npz; made by recipes/train_audio_priors.sh): K = 64 components per source
(32 until stop 19; with the wider flute data 64 does better on the development sets, docs/separation.md "More renders"), 100 iterations, seed 0
for each source's own generator, on an evenly
spaced subset of 20,000 frames per source. Run from the repository root: python recipes/learn_nmf_bases.py"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from mixdvae.baselines.nmf import learn_is_nmf_bases, save_nmf_bases
from mixdvae.data.spectra import load_spectra

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS, ITERATIONS, FRAMES, SEED = 64, 100, 20_000, 0


def main() -> int:
    torch.set_num_threads(1)
    powers, meta = {}, {}
    for name, files in (("speech", ("speech_train.npz",)), ("flute", ("flute_train_rev_low.npz", "flute_train_renders_rev.npz"))):
        paths = [ROOT / "runs" / "data" / file for file in files]
        loaded = [load_spectra(path) for path in paths]
        frames = torch.cat([torch.from_numpy(power).reshape(-1, power.shape[-1]) for power, _ in loaded])  # (S*T, F)
        keep = torch.linspace(0, frames.shape[0] - 1, min(FRAMES, frames.shape[0])).round().long()
        powers[name] = frames[keep]
        meta[name] = {"data": [str(path.relative_to(ROOT)) for path in paths], "frames": int(len(keep)),
                      "spectra": [info for _, info in loaded]}
    # each source from its own generator seeded SEED, so its bases do not depend on the other sources
    bases = {name: learn_is_nmf_bases(power, COMPONENTS, ITERATIONS, torch.Generator().manual_seed(SEED), progress=True)
             for name, power in powers.items()}
    out = ROOT / "src" / "mixdvae" / "weights" / "nmf_bases.safetensors"
    save_nmf_bases(out, bases, {"command": "python recipes/learn_nmf_bases.py", "components_per_source": COMPONENTS,
                                "iterations": ITERATIONS, "seed": SEED, "training": meta,
                                "license": "MIT (learned by this project; data licenses in ../shared/data/SOURCES.md, and for the renders of recipes/render_flute.py in its docstring: FluidR3_GM and MuseScore General SoundFonts, MIT)"})
    print(f"wrote {out}: {', '.join(f'{k} {tuple(v.shape)}' for k, v in bases.items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
