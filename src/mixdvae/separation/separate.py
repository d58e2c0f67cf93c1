"""Single-channel source separation: waveforms -> STFT chunks -> a method -> stitched waveforms.

Every method runs on exactly the same chunks and returns one complex STFT estimate and one mask
per source, so MixDVAE and its baselines go through the same reconstruction and evaluation:
- ``mixdvae``: the audio VEM with one pretrained SRNN per source (:mod:`mixdvae.inference.spectral_vem`);
- ``deep-ar``: the same VEM with deterministic autoregressive LSTM priors;
- ``dvae-init``: the initialisation alone: Wiener gains v_n / sum_m v_m from each SRNN read on the mixture;
- ``nmf`` / ``temporal-nmf``: IS-NMF with per-source bases learned on the priors' training data,
  without / with the temporal-continuity penalty (Virtanen 2007), Wiener reconstruction;
- ``oracle-ibm`` / ``oracle-wiener``: masks from the true sources (need references);
- ``mixture``: the mixture itself for every source.

Chunking: the STFT of the whole input (T_all frames) is cut into chunks of T frames overlapping by
``overlap_frames``; each chunk is divided by the peak |sample| of the waveform it covers (the
reference normalises every chunk so), separated, scaled back, and chunks are cross-faded linearly
over their overlap before the inverse STFT.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from mixdvae.data.audio import HOP, N_FFT, istft, stft
from mixdvae.errors import ConfigError, DataFormatError, NumericalError
from mixdvae.inference.spectral_steps import abs2
from mixdvae.separation.presets import DEFAULT, METHODS, SeparationConfig

__all__ = ["SeparationResult", "Separator", "agreement_db", "chunk_starts", "crossfade_weights", "default_prior_weights"]

log = logging.getLogger(__name__)


@dataclass
class SeparationResult:
    """Separated sources.

    Shape: waveforms (B, N, L) float32; stft (B, N, T, F) complex; masks (B, N, T, F);
    elbo (I, C) per chunk or None (methods without a VEM).
    """

    names: tuple[str, ...]
    method: str
    waveforms: np.ndarray
    stft: Tensor
    masks: Tensor
    elbo: np.ndarray | None
    seconds: float


def agreement_db(a: Tensor, b: Tensor) -> Tensor:
    """How much two sets of source estimates agree: the mean over sources n of the SI-SDR
    (:func:`mixdvae.metrics.audio.si_sdr`) of a_n against b_n, each STFT read as one real vector
    (real and imaginary parts).

    Shape: a, b (B, N, T, F) complex -> (B,)
    """
    from mixdvae.metrics.audio import si_sdr

    flat = lambda x: torch.view_as_real(x).flatten(2).double().cpu().numpy()  # noqa: E731  (B, N, 2TF)
    return torch.as_tensor(si_sdr(flat(a), flat(b)).mean(-1), dtype=a.real.dtype, device=a.device)


def chunk_starts(num_frames: int, chunk: int, overlap: int) -> list[int]:
    """First frames of the chunks covering ``num_frames`` frames: every chunk - overlap frames,
    the last one aligned to the end (one chunk of all frames when num_frames <= chunk)."""
    if num_frames <= chunk:
        return [0]
    step = chunk - overlap
    starts = list(range(0, num_frames - chunk + 1, step))
    if starts[-1] + chunk < num_frames:
        starts.append(num_frames - chunk)
    return starts


def crossfade_weights(starts: Sequence[int], chunk: int, num_frames: int) -> Tensor:
    """Per-chunk frame weights that sum to 1 over chunks at every frame: linear ramps where two
    chunks overlap, 1 elsewhere.  -> (C, T)"""
    length = min(chunk, num_frames)
    w = torch.ones(len(starts), length, dtype=torch.float64)
    for c in range(1, len(starts)):
        ov = starts[c - 1] + length - starts[c]  # frames shared with the previous chunk
        if ov > 0:
            ramp = torch.arange(1, ov + 1, dtype=torch.float64) / (ov + 1)
            w[c, :ov] = torch.minimum(w[c, :ov], ramp)
            w[c - 1, length - ov:] = torch.minimum(w[c - 1, length - ov:], 1 - ramp)
    total = torch.zeros(num_frames, dtype=torch.float64)
    for c, s in enumerate(starts):
        total[s:s + length] += w[c]
    for c, s in enumerate(starts):
        w[c] = w[c] / total[s:s + length]
    return w


def default_prior_weights(names: Sequence[str], family: str) -> list[Path]:
    """The shipped prior of each source name: weights/{name}_{srnn|deep_ar}.safetensors."""
    from mixdvae.dvae.weights import shipped_weights

    suffix = {"srnn": "srnn", "deep_ar": "deep_ar"}[family]
    paths = []
    for name in names:
        path = shipped_weights(f"{name}_{suffix}")
        if not path.is_file():
            raise ConfigError(f"no shipped '{family}' prior for source '{name}' ({path.name}); pass --weights {name}=PATH")
        paths.append(path)
    return paths


class Separator:
    """Separate mixtures into the sources ``names`` with ``method``.

    ``weights``: one checkpoint per source for the DVAE methods (default: the shipped priors);
    ``nmf_bases``: a bases file for the NMF methods (default: the shipped one).
    """

    def __init__(
        self,
        names: Sequence[str] = ("speech", "flute"),
        method: str = "mixdvae",
        config: SeparationConfig = DEFAULT,
        weights: Sequence[str | Path] | None = None,
        nmf_bases: str | Path | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ):
        if method not in METHODS:
            raise ConfigError(f"--method: '{method}' is not a separation method (choose from {', '.join(METHODS)})")
        if len(names) < 1 or len(set(names)) != len(names):
            raise ConfigError(f"--priors: expected distinct source names, got {list(names)}")
        self.names = tuple(names)
        self.method = method
        self.config = config
        self.device = torch.device(device)
        self.seed = seed
        self.prior = None
        self.bases = None
        if method in ("mixdvae", "deep-ar", "dvae-init"):
            from mixdvae.dvae.weights import load_weights
            from mixdvae.inference.spectral_prior import DVAESpectralPrior

            family = "deep_ar" if method == "deep-ar" else "srnn"
            paths = list(weights) if weights is not None else default_prior_weights(self.names, family)
            if len(paths) != len(self.names):
                raise ConfigError(f"--weights: {len(paths)} checkpoint(s) for {len(self.names)} sources")
            models = [load_weights(p, device=self.device, ensemble_ok=True) for p in paths]
            for path, model in zip(paths, models):
                if model.config.head != "complex_variance":
                    raise ConfigError(f"{path}: a '{model.config.head}'-head prior (e.g. a motion prior); "
                                      "separation needs a power-spectrum prior (head 'complex_variance')")
                if model.family != family:
                    raise ConfigError(f"{path}: method '{method}' needs a '{family}' prior, got a '{model.family}' checkpoint")
            self.prior = DVAESpectralPrior(models, config.prior)
        elif method in ("nmf", "temporal-nmf"):
            from mixdvae.baselines.nmf import load_nmf_bases
            from mixdvae.dvae.weights import shipped_weights

            path = Path(nmf_bases) if nmf_bases is not None else shipped_weights("nmf_bases")
            bases = load_nmf_bases(path, device=self.device)
            missing = [n for n in self.names if n not in bases]
            if missing:
                raise ConfigError(f"{path}: no NMF bases for source(s) {missing} (has {sorted(bases)})")
            self.bases = [bases[n] for n in self.names]

    @property
    def needs_references(self) -> bool:
        return self.method.startswith("oracle")

    # ------------------------------------------------------------------ one batch of chunks
    def separate_chunks(self, mix: Tensor, refs: Tensor | None, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor | None]:
        """Estimates, masks and the ELBO history of a batch of STFT chunks.

        Shape: mix (B, T, F) complex, refs (B, N, T, F) complex or None
               -> estimates (B, N, T, F) complex, masks (B, N, T, F), elbo (I, B) or None
        """
        from mixdvae.baselines.nmf import apply_masks, separate_is_nmf, wiener_gains
        from mixdvae.baselines.oracle import ideal_binary_mask, oracle_wiener_mask

        N = len(self.names)
        power = abs2(mix)  # (B, T, F)
        if self.method in ("mixdvae", "deep-ar"):
            # the priors' first reading of the mixture: the start of both loops of the gate and the blend
            first = self.prior.initial_variance(power, generator)  # (B, T, N, F)
            est, masks, elbo = self._gated_vem_estimates(mix, first, generator)
            b = self.config.init_blend
            if b > 0:
                g = wiener_gains(first.permute(0, 2, 1, 3)).to(masks.dtype)
                est, masks = (1 - b) * est + b * apply_masks(mix, g), (1 - b) * masks + b * g
            return est, masks, elbo
        if self.method == "dvae-init":
            v = self.prior.initial_variance(power, generator).permute(0, 2, 1, 3)  # (B, T, N, F) -> (B, N, T, F)
            masks = wiener_gains(v)
        elif self.method in ("nmf", "temporal-nmf"):
            weight = self.config.temporal_weight if self.method == "temporal-nmf" else 0.0
            sep = separate_is_nmf(power, self.bases, self.config.nmf_iterations, temporal_weight=weight)
            masks = wiener_gains(sep.source_vars)
        elif self.method == "mixture":
            masks = torch.ones(mix.shape[0], N, *mix.shape[1:], dtype=power.dtype, device=mix.device)
        else:
            if refs is None:
                raise ConfigError(f"--method {self.method} needs the true sources (a mixtures .npz, not a wav)")
            masks = ideal_binary_mask(refs) if self.method == "oracle-ibm" else oracle_wiener_mask(refs)
        return apply_masks(mix, masks.to(power.dtype)), masks, None

    def _gated_vem_estimates(self, mix: Tensor, first: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """The VEM's estimates, masks and ELBO history, with the gate of ``mixture_gate_db`` when set;
        ``first`` is the priors' first reading of the mixture, the start of both loops.

        Shape: mix (B, T, F), first (B, T, N, F) -> (B, N, T, F), (B, N, T, F), (I, B)"""
        est, masks, elbo = self._vem_estimates(mix, self.prior, generator, first)
        if self.config.mixture_gate_db is None:
            return est, masks, elbo
        from mixdvae.inference.spectral_prior import DVAESpectralPrior

        reading = DVAESpectralPrior(self.prior.models, replace(self.prior.options, feedback="mixture"))
        est_m, masks_m, elbo_m = self._vem_estimates(mix, reading, generator, first)
        keep = agreement_db(est_m, est) > self.config.mixture_gate_db  # (B,)
        pick = lambda a, b, shape: torch.where(keep.view(shape), a, b)  # noqa: E731
        # with an ELBO stop the two loops may run different numbers of iterations: the shorter
        # history repeats its last row, as a stopped chunk does (inference.stopping)
        iters = max(len(elbo), len(elbo_m))
        last = lambda h: torch.cat([h, h[-1:].expand(iters - len(h), -1)])  # noqa: E731
        return (pick(est_m, est, (-1, 1, 1, 1)), pick(masks_m, masks, (-1, 1, 1, 1)),
                pick(last(elbo_m), last(elbo), (1, -1)))

    def _vem_estimates(self, mix: Tensor, prior, generator: torch.Generator,
                       first: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The VEM with ``prior``: estimates (B, N, T, F), masks (B, N, T, F), ELBO history (I, B)."""
        from mixdvae.baselines.nmf import apply_masks
        from mixdvae.inference.spectral_vem import run_spectral_vem

        res = run_spectral_vem(mix, prior, self.config.vem, generator, first_reading=first)
        masks = res.eta.permute(0, 3, 1, 2)  # (B, T, F, N) -> (B, N, T, F)
        if self.config.estimate == "mask":
            return apply_masks(mix, masks), masks, res.elbo
        return res.sources.mean.permute(0, 2, 1, 3), masks, res.elbo

    # ------------------------------------------------------------------ waveforms
    def separate(self, mixture: np.ndarray | Tensor, references: np.ndarray | Tensor | None = None,
                 progress: bool = False, seed: int | None = None) -> SeparationResult:
        """Separate waveforms; ``seed`` (default: the separator's) seeds the VEM's generator.

        Shape: mixture (B, L) or (L,); references (B, N, L) or None -> waveforms (B, N, L)
        """
        t0 = time.perf_counter()
        x = torch.as_tensor(np.asarray(mixture, dtype=np.float32) if not torch.is_tensor(mixture) else mixture)
        x = x.to(self.device, torch.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] < N_FFT:
            raise DataFormatError(f"mixture: expected (B, L >= {N_FFT}) samples, got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise DataFormatError("mixture: holds NaN or inf samples")
        B, L = x.shape
        N = len(self.names)
        X = stft(x)  # (B, T_all, F)
        T_all, F = X.shape[1:]
        refs = None
        if references is not None:
            r = torch.as_tensor(np.asarray(references, dtype=np.float32) if not torch.is_tensor(references) else references)
            if r.shape != (B, N, L):
                raise DataFormatError(f"references: shape {tuple(r.shape)}, expected {(B, N, L)}")
            # (B, N, L) -> (B * N, L) -> STFT (B * N, T_all, F) -> (B, N, T_all, F)
            refs = stft(r.to(self.device, torch.float32).reshape(B * N, L)).reshape(B, N, T_all, F)
        chunk, overlap = self.config.chunk_frames, self.config.overlap_frames
        starts = chunk_starts(T_all, chunk, overlap)
        length = min(chunk, T_all)
        C = len(starts)
        # peak |sample| of the waveform each chunk covers (frame t spans samples t*HOP +- N_FFT/2)
        peaks = torch.stack([x[:, max(0, s * HOP - N_FFT // 2): (s + length - 1) * HOP + N_FFT // 2].abs().amax(-1)
                             for s in starts], 1).clamp_min(1e-8)  # (B, C)
        chunks = torch.stack([X[:, s:s + length] for s in starts], 1) / peaks[..., None, None]  # (B, C, T, F)
        chunks = chunks.reshape(B * C, length, F)
        ref_chunks = None
        if refs is not None:
            ref_chunks = torch.stack([refs[:, :, s:s + length] for s in starts], 1) / peaks[..., None, None, None]
            ref_chunks = ref_chunks.reshape(B * C, N, length, F)
        elif self.needs_references:
            raise ConfigError(f"--method {self.method} needs the true sources (a mixtures .npz, not a wav)")
        generator = torch.Generator(device=self.device).manual_seed(self.seed if seed is None else int(seed))
        est_parts, mask_parts, elbo_parts = [], [], []
        bs = self.config.batch_size
        for i in tqdm(range(0, B * C, bs), desc=self.method, disable=not progress, leave=False):
            e, m, el = self.separate_chunks(chunks[i:i + bs], None if ref_chunks is None else ref_chunks[i:i + bs], generator)
            est_parts.append(e)
            mask_parts.append(m)
            if el is not None:
                elbo_parts.append(el)
        est = torch.cat(est_parts).reshape(B, C, N, length, F) * peaks[:, :, None, None, None]
        masks = torch.cat(mask_parts).reshape(B, C, N, length, F)
        w = crossfade_weights(starts, chunk, T_all).to(self.device)  # (C, T)
        full = torch.zeros(B, N, T_all, F, dtype=est.dtype, device=self.device)
        full_m = torch.zeros(B, N, T_all, F, dtype=masks.dtype, device=self.device)
        for c, s in enumerate(starts):
            full[:, :, s:s + length] += est[:, c] * w[c, None, None, :, None].to(est.real.dtype)
            full_m[:, :, s:s + length] += masks[:, c] * w[c, None, None, :, None].to(masks.dtype)
        wav = istft(full.reshape(B * N, T_all, F), length=L).reshape(B, N, L)
        elbo = None
        if elbo_parts:
            iters = min(e.shape[0] for e in elbo_parts)
            elbo = torch.cat([e[:iters] for e in elbo_parts], dim=1).cpu().numpy()
        waveforms = wav.detach().cpu().numpy().astype(np.float32)
        if not np.isfinite(waveforms).all():
            raise NumericalError(f"separation with '{self.method}' produced non-finite samples")
        return SeparationResult(self.names, self.method, waveforms, full, full_m, elbo, time.perf_counter() - t0)
