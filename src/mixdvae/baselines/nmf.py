"""Itakura-Saito NMF baseline for single-channel source separation from power spectrograms.

Each source n has a power-spectral dictionary W_n (F, K_n) learned on its own training spectra;
a mixture's power V (T, F) is then explained by the fixed concatenation W = [W_1, ..., W_N] with
nonnegative activations H (K, T), K = sum_n K_n, and each source gets the variance
v_n = W_n H_n (the rows of H that belong to it). The IS divergence is the negative log-likelihood
(up to constants) of the Gaussian composite model x_ft = sum_n s_n,ft, s_n,ft ~ N_c(0, [W_n H_n]_ft)
(Févotte, Bertin, Durrieu 2009, "Nonnegative matrix factorization with the Itakura-Saito
divergence: with application to music analysis", Neural Computation 21(3)), so the source STFTs
are estimated by the Wiener gains g_n = v_n / sum_m v_m applied to the mixture STFT.

Cost (all sums over f, t):

    D_IS(V | WH) = sum_ft [ v_ft / v^_ft - log(v_ft / v^_ft) - 1 ],   v^ = WH

and, for separation only, the temporal-continuity penalty of Virtanen 2007 ("Monaural sound source
separation by nonnegative matrix factorization with temporal continuity and sparseness criteria",
IEEE TASLP 15(3)):

    C(H) = D_IS(V | WH) + alpha * c_t(H),
    c_t(H) = sum_k (1 / sigma_k^2) sum_{t=2..T} (h_kt - h_k,t-1)^2,   sigma_k^2 = (1/T) sum_t h_kt^2.

Multiplicative updates split each gradient into its positive and negative parts,
grad = [grad]^+ - [grad]^-, and set factor <- factor * ([grad]^- / [grad]^+)^gamma. For IS:

    H <- H * ( [W^T (V v^^-2)] + alpha [grad c_t]^- ) / ( [W^T v^^-1] + alpha [grad c_t]^+ )
    W <- W * ( (V v^^-2) H^T / (v^^-1 H^T) )

(powers and products of V and v^ elementwise). Exponent gamma = 1 is the update of Févotte et al.
2009 and of Virtanen 2007; gamma = 1/2 is the majorisation-minimisation update for beta = 0, which
provably never increases D_IS (Févotte & Idier 2011, "Algorithms for nonnegative matrix
factorization with the beta-divergence", Neural Computation 23(9)). Because the gamma = 1 update
and the penalised update carry no such guarantee, every step here is *safeguarded*: if the cost
of the candidate is above the current cost, gamma is halved (a multiplicative step is a descent
direction in log h, so a small enough gamma decreases the cost) and, after ``_MAX_HALVINGS`` tries,
the factor is kept. The recorded cost is therefore non-increasing by construction.

The data are floored, V <- V + floor * mean(V), so that silent bins (v_ft = 0) keep D_IS finite.
Complex STFTs are (B, T, F), time first; power spectra P = |X|^2 (B, T, F) real.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, NamedTuple, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor
from tqdm.auto import tqdm

from mixdvae.errors import CheckpointError, ConfigError, DataFormatError, NumericalError
from mixdvae.utils.io import atomic_path, first_line

__all__ = [
    "NMF_FORMAT",
    "NMF_FORMAT_VERSION",
    "ISNMFFit",
    "ISNMFSeparation",
    "is_divergence",
    "temporal_continuity_cost",
    "fit_is_nmf",
    "learn_is_nmf_bases",
    "learn_bases_for_sources",
    "separate_is_nmf",
    "wiener_gains",
    "apply_masks",
    "save_nmf_bases",
    "load_nmf_bases",
    "read_nmf_bases_meta",
]

logger = logging.getLogger(__name__)

NMF_FORMAT = "mixdvae-nmf-bases"
NMF_FORMAT_VERSION = 1
_MAX_HALVINGS = 12  # safeguard: gamma, gamma/2, ..., gamma/2^12, then keep the factor


class ISNMFFit(NamedTuple):
    """Result of :func:`fit_is_nmf`.

    Attributes:
        bases: W (F, K), nonnegative, columns of unit L1 (or L2) norm.
        activations: H (K, M) for the M training frames (the scale of W pushed into H).
        costs: D_IS(V + floor | WH) before the first and after each iteration, (iterations + 1,).
    """

    bases: Tensor
    activations: Tensor
    costs: Tensor


class ISNMFSeparation(NamedTuple):
    """Result of :func:`separate_is_nmf`.

    Attributes:
        source_vars: v_n = W_n H_n, (B, N, T, F).
        activations: H (B, K, T), K = sum_n K_n, rows ordered as the bases.
        costs: penalised cost D_IS + alpha c_t per mixture, before the first and after each
            iteration, (iterations + 1, B).
    """

    source_vars: Tensor
    activations: Tensor
    costs: Tensor


# ----------------------------------------------------------------------------------------- checks


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} = {value!r}: must be an integer >= {minimum}")
    return value


def _check_float(name: str, value: Any, low: float, high: float = math.inf, low_open: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{name} = {value!r}: must be a number") from err
    bad_low = x <= low if low_open else x < low
    if not math.isfinite(x) or bad_low or x > high:
        bound = f"{'>' if low_open else '>='} {low:g}" + ("" if high == math.inf else f" and <= {high:g}")
        raise ConfigError(f"{name} = {value!r}: must be a finite number {bound}")
    return x


def _working_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _check_power(name: str, power: Any, shape: str, ndim: int) -> Tensor:
    """A real, finite, nonnegative power spectrogram of ``ndim`` dimensions, else DataFormatError."""
    if not isinstance(power, Tensor):
        raise DataFormatError(f"{name}: expected a torch.Tensor {shape}, got {type(power).__name__}")
    if power.ndim != ndim:
        raise DataFormatError(f"{name}: expected shape {shape}, got {tuple(power.shape)}")
    if power.is_complex() or not power.is_floating_point():
        raise DataFormatError(
            f"{name}: dtype {power.dtype}, expected a real floating-point power spectrogram |X|^2 "
            "(pass stft.abs() ** 2)"
        )
    if power.numel() == 0:
        raise DataFormatError(f"{name}: is empty, shape {tuple(power.shape)}")
    if not bool(torch.isfinite(power).all()):
        raise DataFormatError(f"{name}: holds NaN or inf values")
    low = float(power.min())
    if low < 0:
        raise DataFormatError(f"{name}: has negative values (min {low:.3g}); a power spectrogram |X|^2 must be >= 0")
    return power


def _check_bases(bases: Any, num_bins: int | None) -> list[Tensor]:
    """Nonempty sequence of nonnegative finite (F, K_n) tensors with one F, else ConfigError."""
    if isinstance(bases, Tensor) or not isinstance(bases, Sequence) or len(bases) == 0:
        raise ConfigError("bases: expected a nonempty list of per-source bases W_n (F, K_n)")
    checked = []
    for n, w in enumerate(bases):
        if not isinstance(w, Tensor) or w.ndim != 2 or w.is_complex() or not w.is_floating_point():
            got = tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__
            raise ConfigError(f"bases[{n}]: expected a real floating-point tensor (F, K_n), got {got}")
        if w.shape[1] < 1:
            raise ConfigError(f"bases[{n}]: has K_n = 0 components, expected >= 1")
        if num_bins is not None and w.shape[0] != num_bins:
            raise ConfigError(f"bases[{n}]: has F = {w.shape[0]} bins but the mixture has F = {num_bins}")
        if not bool(torch.isfinite(w).all()):
            raise ConfigError(f"bases[{n}]: holds NaN or inf values")
        if bool((w < 0).any()):
            raise ConfigError(f"bases[{n}]: has negative values (min {float(w.min()):.3g}), bases must be >= 0")
        checked.append(w)
    return checked


# ------------------------------------------------------------------------------------------ costs


def _model_power(bases: Tensor, activations: Tensor) -> Tensor:
    """v^ = W H, stored time first.  Shape: bases (F, K), activations (B, K, T) -> (B, T, F)."""
    return torch.matmul(activations.transpose(1, 2), bases.T)  # (B, T, K) @ (K, F)


def is_divergence(power: Tensor, model_power: Tensor) -> Tensor:
    """D_IS(V | V^) = sum_{t,f} [ v_tf / v^_tf - log(v_tf / v^_tf) - 1 ], summed over the last two dims.

    Both arguments must be positive (floor the data first); no input checks, this is the inner loop.

    Shape: power (..., T, F), model_power (..., T, F) -> (...)
    """
    ratio = power / model_power
    return (ratio - torch.log(ratio) - 1).sum(dim=(-2, -1))


def temporal_continuity_cost(activations: Tensor) -> Tensor:
    """c_t(H) = sum_k (1 / sigma_k^2) sum_{t=2..T} (h_kt - h_k,t-1)^2, sigma_k^2 = (1/T) sum_t h_kt^2
    (Virtanen 2007, eq. 7), i.e. T sum_k D_k / S_k with D_k = sum_t (h_kt - h_k,t-1)^2, S_k = sum_t h_kt^2.

    Shape: activations (B, K, T) -> (B,)
    """
    num_frames = activations.shape[-1]
    sum_sq = activations.square().sum(dim=-1)  # S_k (B, K)
    diff_sq = (activations[..., 1:] - activations[..., :-1]).square().sum(dim=-1)  # D_k (B, K)
    return num_frames * (diff_sq / sum_sq).sum(dim=-1)


def _temporal_gradient_parts(activations: Tensor) -> tuple[Tensor, Tensor]:
    """Positive and negative parts of d c_t / d h_kt (Virtanen 2007, eqs. 15-16, with the edges):

    [grad]^+ = 2 T n_t h_kt / S_k,
    [grad]^- = 2 T (h_k,t-1 + h_k,t+1) / S_k + 2 T h_kt D_k / S_k^2,

    where n_t is the number of neighbours of frame t (2 inside, 1 at the edges) and a missing
    neighbour counts as 0. Virtanen writes the interior case, n_t = 2 (the "4 T h_kt" term).

    Shape: activations (B, K, T) -> (B, K, T), (B, K, T)
    """
    num_frames = activations.shape[-1]
    sum_sq = activations.square().sum(dim=-1, keepdim=True)  # S_k (B, K, 1)
    diff_sq = (activations[..., 1:] - activations[..., :-1]).square().sum(dim=-1, keepdim=True)  # D_k (B, K, 1)
    zero = torch.zeros_like(activations[..., :1])  # (B, K, 1)
    previous = torch.cat([zero, activations[..., :-1]], dim=-1)  # h_k,t-1 (B, K, T)
    following = torch.cat([activations[..., 1:], zero], dim=-1)  # h_k,t+1 (B, K, T)
    neighbours = torch.full((num_frames,), 2.0, dtype=activations.dtype, device=activations.device)
    neighbours[0] -= 1
    neighbours[-1] -= 1  # T = 1: no neighbour at all
    scale = 2.0 * num_frames / sum_sq
    positive = scale * neighbours * activations
    negative = scale * (previous + following) + scale * activations * diff_sq / sum_sq
    return positive, negative


def _penalised_cost(power: Tensor, bases: Tensor, activations: Tensor, temporal_weight: float) -> Tensor:
    """D_IS(V | WH) + alpha c_t(H) per mixture.  Shape: (B, T, F), (F, K), (B, K, T) -> (B,)"""
    cost = is_divergence(power, _model_power(bases, activations))
    if temporal_weight > 0:
        cost = cost + temporal_weight * temporal_continuity_cost(activations)
    return cost


# ------------------------------------------------------------------------------- update machinery


def _safeguarded_update(
    factor: Tensor, ratio: Tensor, cost: Tensor, cost_of: Callable[[Tensor], Tensor], exponent: float
) -> tuple[Tensor, Tensor]:
    """factor <- factor * ratio^gamma per batch element, halving gamma while the cost would rise.

    ``cost_of(candidate) -> (B,)``; elements whose every try raises the cost keep their factor.
    Shape: factor (B, ...), ratio (B, ...), cost (B,) -> (B, ...), (B,)
    """
    batch = factor.shape[0]
    view = (batch,) + (1,) * (factor.ndim - 1)  # broadcast a per-element exponent
    tiny = torch.finfo(factor.dtype).tiny
    gamma = torch.full((batch,), exponent, dtype=factor.dtype, device=factor.device)
    done = torch.zeros(batch, dtype=torch.bool, device=factor.device)
    new_factor, new_cost = factor, cost
    for _ in range(_MAX_HALVINGS + 1):
        candidate = (factor * ratio.pow(gamma.view(view))).clamp_min(tiny)
        candidate_cost = cost_of(candidate)
        accept = ~done & (candidate_cost <= cost)  # NaN never accepted
        new_factor = torch.where(accept.view(view), candidate, new_factor)
        new_cost = torch.where(accept, candidate_cost, new_cost)
        done = done | accept
        if bool(done.all()):
            break
        gamma = gamma / 2
    return new_factor, new_cost


def _activation_step(
    power: Tensor, bases: Tensor, activations: Tensor, cost: Tensor, temporal_weight: float, exponent: float
) -> tuple[Tensor, Tensor]:
    """H <- H * ((W^T (V v^^-2) + alpha [grad c_t]^-) / (W^T v^^-1 + alpha [grad c_t]^+))^gamma, safeguarded.

    Shape: power (B, T, F), bases (F, K), activations (B, K, T), cost (B,) -> (B, K, T), (B,)
    """
    model = _model_power(bases, activations)  # (B, T, F)
    negative = torch.matmul(power / model / model, bases).transpose(1, 2)  # W^T (V v^^-2)  (B, K, T)
    positive = torch.matmul(1.0 / model, bases).transpose(1, 2)  # W^T v^^-1  (B, K, T)
    if temporal_weight > 0:
        t_pos, t_neg = _temporal_gradient_parts(activations)
        positive = positive + temporal_weight * t_pos
        negative = negative + temporal_weight * t_neg
    return _safeguarded_update(
        activations,
        negative / positive,
        cost,
        lambda h: _penalised_cost(power, bases, h, temporal_weight),
        exponent,
    )


def _bases_step(
    power: Tensor, bases: Tensor, activations: Tensor, cost: Tensor, exponent: float
) -> tuple[Tensor, Tensor]:
    """W <- W * (((V v^^-2) H^T) / (v^^-1 H^T))^gamma, summed over the batch, safeguarded.

    Shape: power (B, T, F), bases (F, K), activations (B, K, T), cost () -> (F, K), ()
    """
    model = _model_power(bases, activations)  # (B, T, F)
    negative = torch.einsum("btf,bkt->fk", power / model / model, activations)
    positive = torch.einsum("btf,bkt->fk", 1.0 / model, activations)
    new_bases, new_cost = _safeguarded_update(
        bases.unsqueeze(0),  # one "batch element": the cost is summed over all frames
        (negative / positive).unsqueeze(0),
        cost.reshape(1),
        lambda w: _penalised_cost(power, w[0], activations, 0.0).sum().reshape(1),
        exponent,
    )
    return new_bases[0], new_cost[0]


def _normalise(bases: Tensor, activations: Tensor, norm: str) -> tuple[Tensor, Tensor]:
    """w_k <- w_k / ||w_k||, h_k <- h_k ||w_k||: WH unchanged.  Shape: (F, K), (B, K, T)"""
    scale = bases.sum(dim=0) if norm == "l1" else bases.norm(dim=0)  # (K,)
    scale = scale.clamp_min(torch.finfo(bases.dtype).tiny)
    return bases / scale, activations * scale[None, :, None]


def _floored(power: Tensor, floor: float) -> Tensor:
    """V + floor * mean(V) per mixture (an all-zero mixture gets the absolute floor).

    Shape: (B, T, F) -> (B, T, F)
    """
    mean = power.mean(dim=(1, 2), keepdim=True)  # (B, 1, 1)
    level = torch.where(mean > 0, floor * mean, torch.full_like(mean, floor))
    return power + level


def _initial_activations(power: Tensor, bases: Tensor, generator: torch.Generator | None) -> Tensor:
    """h_kt = m_t / (K wbar_k), m_t = mean_f v_tf, wbar_k = mean_f w_fk, so mean_f (WH)_tf = m_t;
    times U(0.5, 1.5) noise drawn from ``generator`` when one is given.

    Shape: power (B, T, F), bases (F, K) -> (B, K, T)
    """
    batch, num_frames, _ = power.shape
    num_components = bases.shape[1]
    frame_mean = power.mean(dim=-1)  # m_t (B, T)
    basis_mean = bases.mean(dim=0).clamp_min(torch.finfo(bases.dtype).tiny)  # wbar_k (K,)
    activations = frame_mean[:, None, :] / (num_components * basis_mean[None, :, None])  # (B, K, T)
    if generator is not None:
        noise = torch.rand(
            (batch, num_components, num_frames), generator=generator, device=generator.device, dtype=power.dtype
        )
        activations = activations * (0.5 + noise.to(power.device))
    return activations


def _check_costs(costs: Tensor, where: str) -> None:
    if not bool(torch.isfinite(costs).all()):
        raise NumericalError(f"{where}: the IS cost became NaN or inf")


# -------------------------------------------------------------------------------------- learning


def _training_frames(power: Any) -> Tensor:
    """Stack training spectra of one source into one frame matrix.

    Shape: (S, T, F), (T, F) or a sequence of (T_i, F) -> (sum T, F)
    """
    if isinstance(power, Tensor):
        if power.ndim == 3:
            _check_power("power", power, "(S, T, F)", 3)
            return power.reshape(-1, power.shape[-1])  # (S, T, F) -> (S*T, F): all frames as one matrix
        return _check_power("power", power, "(S, T, F) or (T, F)", 2)
    if not isinstance(power, Sequence) or len(power) == 0:
        raise DataFormatError(
            f"power: expected a tensor (S, T, F) or a nonempty list of (T_i, F), got {type(power).__name__}"
        )
    parts = [_check_power(f"power[{i}]", p, "(T_i, F)", 2) for i, p in enumerate(power)]
    bins = {p.shape[-1] for p in parts}
    if len(bins) != 1:
        raise DataFormatError(f"power: training spectra have different numbers of bins {sorted(bins)}")
    return torch.cat([p.to(parts[0].dtype) for p in parts], dim=0)  # (sum T_i, F)


def fit_is_nmf(
    frames: Tensor,
    num_components: int,
    iterations: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    progress: bool = False,
    *,
    norm: Literal["l1", "l2"] = "l1",
    step_exponent: float = 1.0,
    floor: float = 1e-10,
) -> ISNMFFit:
    """IS-NMF of the frame matrix V (F, M) = frames^T: minimise D_IS(V + floor mean(V) | W H) with

    H <- H * ((W^T (V v^^-2)) / (W^T v^^-1))^gamma,   W <- W * (((V v^^-2) H^T) / (v^^-1 H^T))^gamma,
    then w_k <- w_k / ||w_k||, h_k <- h_k ||w_k||   (Févotte, Bertin, Durrieu 2009, Alg. 1),

    safeguarded as in the module docstring, so ``costs`` never increases. W and H start from
    U(0.5, 1.5) draws of ``generator`` (H scaled so that WH matches the frame energies).

    Args:
        frames: power spectra |X|^2, one row per frame (time first), >= 0.
        num_components: K >= 1.
        iterations: number of (H, W) update pairs, >= 0.
        generator: randomness of the initialisation.
        device: where to compute; the results stay there.
        progress: tqdm bar on stderr.
        norm: ``l1`` (columns of W sum to 1) or ``l2``.
        step_exponent: gamma in (0, 1]; 1 = Févotte et al. 2009, 1/2 = MM (Févotte & Idier 2011).
        floor: added to V relative to its mean power.

    Shape: frames (M, F) -> bases (F, K), activations (K, M), costs (iterations + 1,)
    """
    num_components = _check_int("num_components", num_components, 1)
    iterations = _check_int("iterations", iterations, 0)
    step_exponent = _check_float("step_exponent", step_exponent, 0.0, 1.0, low_open=True)
    floor = _check_float("floor", floor, 0.0, low_open=True)
    if norm not in ("l1", "l2"):
        raise ConfigError(f"norm = {norm!r}: must be 'l1' or 'l2'")
    frames = _check_power("frames", frames, "(M, F)", 2)
    dtype = _working_dtype(frames.dtype)
    power = _floored(frames.to(device=device, dtype=dtype).unsqueeze(0), floor)  # (1, M, F): one "mixture"
    num_bins = power.shape[-1]

    draw = torch.rand((num_bins, num_components), generator=generator, device=generator.device, dtype=dtype)
    bases = (0.5 + draw).to(power.device)  # (F, K)
    bases, _ = _normalise(bases, torch.ones(1, num_components, 1, dtype=dtype, device=power.device), norm)
    activations = _initial_activations(power, bases, generator)  # (1, K, M)

    cost = _penalised_cost(power, bases, activations, 0.0)[0]
    history = [cost]
    for _ in tqdm(range(iterations), desc="IS-NMF", unit="it", file=sys.stderr, disable=not progress):
        activations, cost_h = _activation_step(power, bases, activations, cost.reshape(1), 0.0, step_exponent)
        bases, cost = _bases_step(power, bases, activations, cost_h[0], step_exponent)
        bases, activations = _normalise(bases, activations, norm)  # WH and the cost unchanged (up to rounding)
        history.append(cost)
    costs = torch.stack(history)
    _check_costs(costs, "fit_is_nmf")
    logger.debug("IS-NMF K=%d: cost %.6g -> %.6g over %d iterations", num_components, costs[0], costs[-1], iterations)
    return ISNMFFit(bases=bases, activations=activations[0], costs=costs)


def learn_is_nmf_bases(
    power: Tensor | Sequence[Tensor],
    num_components: int,
    iterations: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    progress: bool = False,
    *,
    norm: Literal["l1", "l2"] = "l1",
    step_exponent: float = 1.0,
    floor: float = 1e-10,
    restarts: int = 1,
) -> Tensor:
    """Dictionary W of one source: :func:`fit_is_nmf` of all its training frames as one matrix
    V (F, sum T), min_{W, H >= 0} D_IS(V | WH), with the updates

    H <- H * (W^T (V v^^-2)) / (W^T v^^-1),   W <- W * ((V v^^-2) H^T) / (v^^-1 H^T),   v^ = WH,

    and the columns of W rescaled to unit ``norm`` (the scale pushed into H).

    The IS cost is not convex, so the fit depends on its initial draw. With ``restarts`` = R > 1,
    R fits start from R successive draws of ``generator`` and the one of least final cost
    D_IS(V | W_r H_r) is kept: W = W_r*, r* = argmin_r D_IS(V | W_r H_r). R = 1 is one fit.

    Shape: power (S, T, F), (T, F) or a list of (T_i, F) -> W (F, K)
    """
    restarts = _check_int("restarts", restarts, 1)
    frames = _training_frames(power)  # (sum T, F)
    best: ISNMFFit | None = None
    for restart in range(restarts):
        fit = fit_is_nmf(
            frames, num_components, iterations, generator, device, progress,
            norm=norm, step_exponent=step_exponent, floor=floor,
        )
        logger.debug("IS-NMF restart %d of %d: final cost %.6g", restart + 1, restarts, fit.costs[-1])
        if best is None or bool(fit.costs[-1] < best.costs[-1]):
            best = fit
    assert best is not None
    return best.bases


def learn_bases_for_sources(
    powers: Mapping[str, Tensor | Sequence[Tensor]],
    num_components: int | Mapping[str, int],
    iterations: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    progress: bool = False,
    **options: Any,
) -> dict[str, Tensor]:
    """W_n = :func:`learn_is_nmf_bases` (training spectra of source n) for every named source, in
    the order of ``powers`` (one ``generator`` drawn from in that order).

    Args:
        powers: source name -> its training power spectra.
        num_components: K_n for all sources, or per name.
        options: ``norm``, ``step_exponent``, ``floor`` of :func:`fit_is_nmf`, ``restarts`` of
            :func:`learn_is_nmf_bases`.

    Shape: powers {name: (S, T, F) or [(T_i, F)]} -> {name: W_n (F, K_n)}
    """
    if not isinstance(powers, Mapping) or len(powers) == 0:
        raise ConfigError("powers: expected a nonempty mapping source name -> training power spectra")
    if isinstance(num_components, Mapping):
        missing = [name for name in powers if name not in num_components]
        if missing:
            raise ConfigError(f"num_components: no entry for source(s) {missing}")
    bases = {}
    for name, power in powers.items():
        k = num_components[name] if isinstance(num_components, Mapping) else num_components
        try:
            bases[name] = learn_is_nmf_bases(power, k, iterations, generator, device, progress, **options)
        except (DataFormatError, ConfigError) as err:
            raise type(err)(f"source '{name}': {err}") from err
    return bases


# ------------------------------------------------------------------------------------- separation


def separate_is_nmf(
    mix_power: Tensor,
    bases: Sequence[Tensor],
    iterations: int = 100,
    temporal_weight: float = 0.0,
    generator: torch.Generator | None = None,
    *,
    step_exponent: float = 1.0,
    floor: float = 1e-10,
    device: str | torch.device | None = None,
) -> ISNMFSeparation:
    """Source variances v_n = W_n H_n of each mixture, W = [W_1 ... W_N] fixed, minimising

    C(H) = D_IS(V | WH) + alpha sum_k (1/sigma_k^2) sum_t (h_kt - h_k,t-1)^2,  sigma_k^2 = (1/T) sum_t h_kt^2,

    by the multiplicative update (Virtanen 2007, adapted from KL to IS)

    H <- H * (W^T (V v^^-2) + alpha [grad c_t]^-) / (W^T v^^-1 + alpha [grad c_t]^+),
    [grad c_t]^+ = 2 T n_t h_kt / S_k,   [grad c_t]^- = 2 T (h_k,t-1 + h_k,t+1) / S_k + 2 T h_kt D_k / S_k^2

    (S_k = sum_t h_kt^2, D_k = sum_t (h_kt - h_k,t-1)^2, n_t neighbours of frame t), safeguarded so
    that C never increases. Mixtures are independent: the batch equals a loop over them.

    Args:
        mix_power: |X|^2 of the mixtures, >= 0.
        bases: W_n per source, e.g. from :func:`learn_is_nmf_bases` or :func:`load_nmf_bases`.
        iterations: H updates, >= 0.
        temporal_weight: alpha >= 0 (0: plain IS-NMF).
        generator: None starts from the deterministic energy-matched H; a generator multiplies it
            by U(0.5, 1.5) noise.
        step_exponent: gamma in (0, 1] of the multiplicative update.
        floor: added to each mixture's V relative to its mean power.
        device: where to compute (default: that of ``mix_power``).

    Shape: mix_power (B, T, F), bases [(F, K_n)] * N -> source_vars (B, N, T, F),
        activations (B, K, T) with K = sum_n K_n, costs (iterations + 1, B)
    """
    iterations = _check_int("iterations", iterations, 0)
    temporal_weight = _check_float("temporal_weight", temporal_weight, 0.0)
    step_exponent = _check_float("step_exponent", step_exponent, 0.0, 1.0, low_open=True)
    floor = _check_float("floor", floor, 0.0, low_open=True)
    mix_power = _check_power("mix_power", mix_power, "(B, T, F)", 3)
    B, T, F = mix_power.shape
    bases = _check_bases(bases, F)
    device = mix_power.device if device is None else torch.device(device)
    dtype = _working_dtype(mix_power.dtype)

    power = _floored(mix_power.to(device=device, dtype=dtype), floor)  # (B, T, F)
    all_bases = torch.cat([w.to(device=device, dtype=dtype) for w in bases], dim=1)  # W (F, K)
    sizes = [w.shape[1] for w in bases]
    activations = _initial_activations(power, all_bases, generator)  # (B, K, T)

    cost = _penalised_cost(power, all_bases, activations, temporal_weight)
    history = [cost]
    for _ in range(iterations):
        activations, cost = _activation_step(power, all_bases, activations, cost, temporal_weight, step_exponent)
        history.append(cost)
    costs = torch.stack(history)  # (iterations + 1, B)
    _check_costs(costs, "separate_is_nmf")

    # v_n = W_n H_n for all n at once: mask the rows of H that are not source n's.
    owner = torch.repeat_interleave(torch.arange(len(sizes), device=device), torch.tensor(sizes, device=device))  # (K,)
    membership = (owner[None, :] == torch.arange(len(sizes), device=device)[:, None]).to(dtype)  # (N, K)
    per_source = activations[:, None, :, :] * membership[None, :, :, None]  # (B, N, K, T)
    source_vars = torch.matmul(per_source.transpose(-1, -2), all_bases.T)  # (B, N, T, K) @ (K, F) -> (B, N, T, F)
    return ISNMFSeparation(source_vars=source_vars, activations=activations, costs=costs)


def wiener_gains(source_vars: Tensor) -> Tensor:
    """g_n,tf = v_n,tf / sum_m v_m,tf; bins where every v_m is 0 get 1/N, so sum_n g_n = 1.

    Shape: source_vars (B, N, T, F) -> (B, N, T, F)
    """
    source_vars = _check_power("source_vars", source_vars, "(B, N, T, F)", 4)
    num_sources = source_vars.shape[1]
    total = source_vars.sum(dim=1, keepdim=True)  # (B, 1, T, F)
    gains = source_vars / total.clamp_min(torch.finfo(source_vars.dtype).tiny)
    return torch.where(total > 0, gains, torch.full_like(gains, 1.0 / num_sources))


def apply_masks(mix_stft: Tensor, masks: Tensor) -> Tensor:
    """s^_n,tf = g_n,tf x_tf: each source estimate is the masked mixture STFT.

    Shape: mix_stft (B, T, F) complex, masks (B, N, T, F) real -> (B, N, T, F) complex
    """
    if not isinstance(mix_stft, Tensor) or mix_stft.ndim != 3:
        got = tuple(mix_stft.shape) if isinstance(mix_stft, Tensor) else type(mix_stft).__name__
        raise DataFormatError(f"mix_stft: expected a tensor (B, T, F), got {got}")
    if not isinstance(masks, Tensor) or masks.ndim != 4 or masks.is_complex():
        got = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
        raise DataFormatError(f"masks: expected a real tensor (B, N, T, F), got {got}")
    if masks.shape[0] != mix_stft.shape[0] or masks.shape[2:] != mix_stft.shape[1:]:
        raise DataFormatError(
            f"masks: shape {tuple(masks.shape)} does not match mix_stft {tuple(mix_stft.shape)} as (B, N, T, F)"
        )
    return mix_stft.unsqueeze(1) * masks.to(device=mix_stft.device)  # (B, 1, T, F) * (B, N, T, F)


# ------------------------------------------------------------------------------------------ files


def save_nmf_bases(path: str | os.PathLike, bases: Mapping[str, Tensor], meta: Mapping[str, Any] | None = None) -> Path:
    """Write the per-source bases {name: W_n (F, K_n)} to a safetensors file, atomically.

    The safetensors metadata holds ``format``, ``format_version`` and ``meta``: a JSON object with
    ``components`` {name: K_n} (in the order of ``bases``, which :func:`load_nmf_bases` keeps) plus
    ``meta`` (e.g. iterations, norm, a description of the data).

    Shape: bases {name: (F, K_n)}
    """
    if not isinstance(bases, Mapping) or len(bases) == 0:
        raise ConfigError("bases: expected a nonempty mapping source name -> W (F, K)")
    names = list(bases)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"bases: source names must be nonempty strings, got {name!r}")
    checked = _check_bases([bases[name] for name in names], None)
    tensors = {name: w.detach().to("cpu").contiguous() for name, w in zip(names, checked)}
    components = {name: int(w.shape[1]) for name, w in tensors.items()}
    meta = dict(meta or {})
    if meta.get("components", components) != components:
        raise ConfigError(f"meta: 'components' = {meta['components']!r} but the bases have {components!r}")
    card = {**meta, "components": components}
    try:
        card_json = json.dumps(card, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"meta: not JSON-serialisable ({err})") from err
    metadata = {"format": NMF_FORMAT, "format_version": str(NMF_FORMAT_VERSION), "meta": card_json}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def _read_nmf_file(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: NMF bases file not found")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except Exception as err:  # safetensors raises its own SafetensorError, or OSError
        reason = first_line(err)
        raise CheckpointError(f"{path}: not a readable safetensors file, truncated or corrupt ({reason})") from err
    if metadata.get("format") != NMF_FORMAT:
        raise CheckpointError(f"{path}: metadata format is {metadata.get('format')!r}, expected {NMF_FORMAT!r}")
    if metadata.get("format_version") != str(NMF_FORMAT_VERSION):
        raise CheckpointError(
            f"{path}: format_version {metadata.get('format_version')!r}, this mixdvae reads {NMF_FORMAT_VERSION}"
        )
    try:
        meta = json.loads(metadata.get("meta", "{}"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: metadata 'meta' is not valid JSON ({err})") from err
    if not tensors:
        raise CheckpointError(f"{path}: holds no bases")
    for name, w in tensors.items():
        if w.ndim != 2 or not w.is_floating_point():
            raise CheckpointError(
                f"{path}: tensor '{name}' has shape {tuple(w.shape)} and dtype {w.dtype}, expected float (F, K)"
            )
        if not bool(torch.isfinite(w).all()):
            raise CheckpointError(f"{path}: tensor '{name}' holds NaN or inf values")
        if bool((w < 0).any()):
            raise CheckpointError(f"{path}: tensor '{name}' has negative values, bases must be >= 0")
    components = meta.get("components") if isinstance(meta, dict) else None
    if not isinstance(components, dict) or set(components) != set(tensors):
        raise CheckpointError(f"{path}: metadata 'components' does not list the stored bases {sorted(tensors)}")
    tensors = {name: tensors[name] for name in components}  # the writer's source order (safetensors sorts keys)
    if len({w.shape[0] for w in tensors.values()}) != 1:
        raise CheckpointError(f"{path}: bases have different numbers of bins {[w.shape[0] for w in tensors.values()]}")
    return tensors, meta


def load_nmf_bases(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Read {name: W_n (F, K_n)} written by :func:`save_nmf_bases`, in the order they were saved.

    Raises:
        CheckpointError: one line naming the file if it is missing, truncated, corrupt, of another
            format, or holds NaN / inf / negative / non-2-D bases.

    Shape: -> {name: (F, K_n)}
    """
    tensors, _ = _read_nmf_file(path)
    return {name: w.to(device) for name, w in tensors.items()}


def read_nmf_bases_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON ``meta`` of a bases file: ``components`` {name: K_n} plus what the writer stored."""
    return _read_nmf_file(path)[1]
