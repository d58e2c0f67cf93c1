"""How often the `default` preset's gate keeps the self-reading loop (docs/separation.md, "Where the flute gap
sits").

The gate (``SeparationConfig.mixture_gate_db``) runs two loops per chunk, one where the priors read their own
estimates and one where they read the mixture, and keeps the mixture-reading loop's estimate where the two agree
above G dB. This counts, per mixtures file, the chunks where the self-reading loop is kept (agreement <= G) and the
median and least agreement. As in `mixdvae bench separation`, a file named ``..._T{T}_...`` is separated in one
chunk of T frames per mixture (chunks of the preset's 50 frames otherwise).

    python benchmarks/separation_gate.py FILE.npz [FILE.npz ...] [--weights speech=PATH --weights flute=PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import torch

from mixdvae.data.mixtures import load_mixtures
from mixdvae.separation import separate
from mixdvae.separation.presets import DEFAULT


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--weights", action="append", default=[], metavar="NAME=PATH", help="a prior per source (default: shipped)")
    args = p.parse_args()
    torch.set_num_threads(1)
    weights = dict(w.split("=", 1) for w in args.weights) or None
    agreements: list[torch.Tensor] = []
    measure = separate.agreement_db

    def recording(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = measure(a, b)
        agreements.append(out.detach().cpu())
        return out

    separate.agreement_db = recording  # the gate calls it once per batch of chunks
    print(f"| mixtures | chunks | self-reading loop kept (agreement <= {DEFAULT.mixture_gate_db:g} dB) | median agreement (dB) | least (dB) |")
    print("|---|---|---|---|---|")
    try:
        for path in args.files:
            agreements.clear()
            mix = load_mixtures(path)
            names = list(mix.source_names)
            found = re.search(r"_T(\d+)", path.name)
            cfg = dataclasses.replace(DEFAULT, chunk_frames=int(found.group(1)), overlap_frames=0) if found else DEFAULT
            separate.Separator(names, "mixdvae", cfg,
                               weights=[weights[n] for n in names] if weights else None).separate(mix.mixture)
            d = torch.cat(agreements)
            kept = int((d <= DEFAULT.mixture_gate_db).sum())
            print(f"| {path.name} | {len(d)} | {kept} | {d.median():.1f} | {d.min():.1f} |")
    finally:
        separate.agreement_db = measure
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
