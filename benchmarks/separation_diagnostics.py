"""Where MixDVAE separation loses, for a pair of priors (docs/separation.md, "Leakage-trained priors").

For each mixtures file, mean SI-SDR (dB) per source of:
- ``VEM``: the `default` preset as `mixdvae separate` runs it;
- ``priors read the true sources``: each prior reads its clean source (E-Z, v^s) and one E-W gives
  the masks: what the priors could do with perfect feedback (their reconstruction is the limit);
- ``VEM from the oracle masks``: the `default` loop started from the oracle Wiener masks
  (``run_spectral_vem(init_masks=...)``): if it ends where ``VEM`` ends, the loop's fixed point,
  not its start, decides;
- ``temporal NMF``: for scale.

    python benchmarks/separation_diagnostics.py [--weights speech=PATH --weights flute=PATH] [FILE.npz ...]

Files default to the two T = 100 development sets of benchmarks/separation_options.py
(runs/dev/dev_arctic_T100_n8_s3.npz, runs/dev/dev_libri_T100_n32_s7.npz) when that script has made them.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from pathlib import Path

import torch

from mixdvae.baselines.nmf import apply_masks
from mixdvae.baselines.oracle import oracle_wiener_mask
from mixdvae.data.mixtures import load_mixtures
from mixdvae.inference.spectral_steps import abs2, e_step_w_spectral, marginal_log_likelihood_spectral
from mixdvae.inference.spectral_vem import run_spectral_vem
from mixdvae.metrics.audio import si_sdr
from mixdvae.separation.presets import DEFAULT
from mixdvae.separation.separate import Separator


class _TrueSourceReading(Separator):
    """Masks from one E-W on the priors' reading of the true sources."""

    @property
    def needs_references(self) -> bool:
        return True

    def separate_chunks(self, mix, refs, generator):
        vem = self.config.vem
        power = abs2(mix)
        noise = vem.noise_ratio * (power + vem.eps_rel * power.mean(dim=(1, 2), keepdim=True))
        v = self.prior.initial_variance(abs2(refs).transpose(1, 2), generator)  # (B, N, T, F) -> (B, T, N, F)
        log_prior = torch.full((refs.shape[1],), -math.log(refs.shape[1]), dtype=power.dtype)
        eta = e_step_w_spectral(marginal_log_likelihood_spectral(mix, noise, v), log_prior, vem.temperature)
        masks = eta.permute(0, 3, 1, 2)
        return apply_masks(mix, masks), masks, None


class _FromOracleMasks(Separator):
    """The VEM started from the oracle Wiener masks."""

    @property
    def needs_references(self) -> bool:
        return True

    def separate_chunks(self, mix, refs, generator):
        start = oracle_wiener_mask(refs).permute(0, 2, 3, 1)  # (B, N, T, F) -> (B, T, F, N)
        res = run_spectral_vem(mix, self.prior, self.config.vem, generator, init_masks=start.contiguous())
        masks = res.eta.permute(0, 3, 1, 2)
        return apply_masks(mix, masks), masks, res.elbo


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", type=Path)
    p.add_argument("--weights", action="append", default=[], metavar="NAME=PATH", help="a prior per source (default: shipped)")
    args = p.parse_args()
    torch.set_num_threads(1)
    dev = Path("runs") / "dev"
    files = args.files or [f for f in (dev / "dev_arctic_T100_n8_s3.npz", dev / "dev_libri_T100_n32_s7.npz") if f.is_file()]
    if not files:
        print("no mixtures files: pass some (mixdvae data mixtures ... --out M.npz)", file=sys.stderr)
        return 2
    given = dict(w.split("=", 1) for w in args.weights)
    print("| mixtures | method | " + " | ".join(f"{n} SI-SDR" for n in ("speech", "flute")) + " |")
    print("|---|---|---|---|")
    for f in files:
        mix = load_mixtures(f)
        names = list(mix.source_names)
        weights = [given[n] for n in names] if given else None
        found = re.search(r"_T(\d+)", f.name)
        cfg = dataclasses.replace(DEFAULT, chunk_frames=int(found.group(1)) if found else 100, overlap_frames=0)
        rows = [("VEM", Separator(names, "mixdvae", cfg, weights=weights)),
                ("priors read the true sources", _TrueSourceReading(names, "mixdvae", cfg, weights=weights)),
                ("VEM from the oracle masks", _FromOracleMasks(names, "mixdvae", cfg, weights=weights)),
                ("temporal NMF", Separator(names, "temporal-nmf", cfg))]
        for label, sep in rows:
            res = sep.separate(mix.mixture, mix.sources if sep.needs_references else None)
            scores = [float(si_sdr(res.waveforms[:, i], mix.sources[:, i]).mean()) for i in range(len(names))]
            print(f"| {f.name} ({len(mix.mixture)}) | {label} | " + " | ".join(f"{s:.2f}" for s in scores) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
