"""What the audio VEM's feedback adds to the priors' first reading, on the development sets of
benchmarks/separation_options.py (docs/separation-history.md, "Reverberation augmentation").

For the given priors it prints, per set, the mean SI-SDR (speech / flute) of:
  dvae-init          the priors' first reading of the mixture (Wiener gains), no loop;
  default            the default preset (the priors read their own estimates at every iteration);
  mixture feedback   the default with feedback = "mixture" (v^s stays the first reading);
  gated, D dB        the default with mixture_gate_db = D: per mixture, the mixture-feedback
                     estimate unless it disagrees with the default's (separation.separate.agreement_db
                     below D dB), else the default's: the default's feedback rescues first readings
                     that failed.

    python benchmarks/separation_feedback.py [--flute W.safetensors] [--sets arctic:50,libri:100]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from separation_options import DEFAULT, load_set  # noqa: E402

from mixdvae.dvae.weights import shipped_weights  # noqa: E402
from mixdvae.metrics.audio import si_sdr  # noqa: E402
from mixdvae.separation.separate import Separator  # noqa: E402

THRESHOLDS_DB = (5.0, 10.0, 15.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speech", type=Path, default=shipped_weights("speech_srnn"))
    p.add_argument("--flute", type=Path, default=shipped_weights("flute_srnn"))
    p.add_argument("--sets", default="arctic:50,arctic:100,libri:50,libri:100,libri:300")
    p.add_argument("--audio-dir", type=Path, default=Path("..") / "shared" / "data" / "audio")
    p.add_argument("--cache-dir", type=Path, default=Path("runs") / "dev")
    args = p.parse_args()
    torch.set_num_threads(1)
    weights = [args.speech, args.flute]
    print("| set | dvae-init | default | mixture feedback | " + " | ".join(f"gated, {t:g} dB" for t in THRESHOLDS_DB) + " |")
    print("|---|---|---|---|" + "---|" * len(THRESHOLDS_DB))
    for item in args.sets.split(","):
        name, length = item.split(":")
        mix = load_set(name, int(length), args.audio_dir, args.cache_dir)
        names = list(mix.source_names)
        # "default" is the loop without the gate (the preset has mixture_gate_db = 10 since stop 16)
        base = dataclasses.replace(DEFAULT, chunk_frames=int(length), overlap_frames=0, mixture_gate_db=None)
        runs = [
            ("dvae-init", base),
            ("mixdvae", base),
            ("mixdvae", dataclasses.replace(base, prior=dataclasses.replace(base.prior, feedback="mixture"))),
            *(("mixdvae", dataclasses.replace(base, mixture_gate_db=t)) for t in THRESHOLDS_DB),
        ]
        cells = []
        for method, cfg in runs:
            w = Separator(names, method, cfg, weights=weights).separate(mix.mixture).waveforms
            cells.append([float(np.mean(np.asarray(si_sdr(w[:, i], mix.sources[:, i])))) for i in range(len(names))])
        fmt = " | ".join(f"{c[0]:.2f} / {c[1]:.2f}" for c in cells)
        print(f"| {name} T={length} ({len(mix.mixture)}) | {fmt} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
