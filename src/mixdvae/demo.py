"""``make demo``: the main job on bundled data with the bundled weights.

1. The shipped motion prior forecasts 1,000 held-out synthetic trajectories one step ahead,
   against a constant-velocity forecast (table + plot).
2. MixDVAE and VKF track a bundled MOT17 excerpt (windows of 3 people, simulated detections) and
   are scored with the standard protocol (table + plots of tracks and the ELBO).
3. MixDVAE and temporal NMF separate bundled speech + flute mixtures (wavs, spectrograms, masks,
   ELBO; SI-SDR and PESQ against the references).
Nothing is trained and nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib import resources
from pathlib import Path


from mixdvae.baselines.constant_velocity import constant_velocity_forecast
from mixdvae.cli.evaluate_forecast import prior_forecast
from mixdvae.data.trajectories import load_trajectories
from mixdvae.data.windows import load_windows
from mixdvae.dvae.weights import load_weights, shipped_weights
from mixdvae.metrics.forecast import forecast_rmse
from mixdvae.metrics.mot import evaluate_windows
from mixdvae.plotting.forecast import plot_forecasts
from mixdvae.tracking.presets import PRESETS
from mixdvae.tracking.results import save_tracking_results
from mixdvae.tracking.track import track_windows
from mixdvae.utils.io import write_json


def asset(name: str) -> Path:
    return Path(str(resources.files("mixdvae") / "assets" / name))


def forecast_demo(out: Path) -> dict:
    data = load_trajectories(asset("heldout_trajectories.npz"))
    model = load_weights(shipped_weights("motion_srnn"))
    pred = prior_forecast(model, data.boxes)
    cv = constant_velocity_forecast(data.boxes)
    target = data.boxes[:, 1:]
    res = {"prior_rmse": forecast_rmse(pred, target), "constant_velocity_rmse": forecast_rmse(cv, target),
           "num_trajectories": int(len(data.boxes))}
    write_json(out / "forecast.json", res)
    plot_forecasts(out / "forecast.png", data.boxes, {"SRNN prior": pred, "constant velocity": cv})
    print(f"\n## 1. One-step forecast of {res['num_trajectories']} held-out synthetic trajectories (normalised units)\n")
    ratio = res["prior_rmse"] / res["constant_velocity_rmse"]
    print("| forecaster | RMSE | / constant velocity |\n|---|---|---|")
    print(f"| shipped SRNN motion prior | {res['prior_rmse']:.6f} | {ratio:.3f} |")
    print(f"| constant velocity | {res['constant_velocity_rmse']:.6f} | 1.000 |")
    return res


def tracking_demo(out: Path) -> dict:
    from mixdvae.plotting.tracking import plot_tracking_results

    ws = load_windows(asset("mot17_demo_windows.npz"))
    rows = {}
    print(f"\n## 2. Tracking {len(ws.gt)} MOT17 windows (T = {ws.gt.shape[1]}, N = {ws.gt.shape[2]}, simulated detector), standard protocol\n")
    print("| method | MOTA | IDF1 | #IDS | seconds |\n|---|---|---|---|---|")
    for label, method in (("MixDVAE", "mixdvae"), ("VKF", "vkf")):
        t0 = time.perf_counter()
        res = track_windows(ws, method, PRESETS["default"])
        seconds = time.perf_counter() - t0
        save_tracking_results(out / f"tracking_{method}.npz", res)
        sc = evaluate_windows(res.boxes, ws.gt, eta=res.eta, det_gt_index=ws.det_gt_index, protocol="standard")
        rows[label] = {**sc.overall, "seconds": seconds}
        o = sc.overall
        print(f"| {label} | {o['MOTA']:.1f} | {o['IDF1']:.1f} | {o['IDS']} | {seconds:.2f} |")
        if method == "mixdvae":
            plot_tracking_results(out / "tracking_plots", ws, res, max_windows=4)
    write_json(out / "tracking.json", rows)
    return rows


def separation_demo(out: Path) -> dict:
    """Separate the bundled speech + flute mixtures (LibriSpeech test-other + a real flute recording,
    at -5 and 0 dB) with MixDVAE and temporal NMF; score them; write wavs and spectrograms."""
    from mixdvae.data.audio import SAMPLE_RATE, write_audio
    from mixdvae.data.mixtures import load_mixtures
    from mixdvae.metrics.audio import evaluate_mixture, evaluate_separation
    from mixdvae.plotting.separation import plot_separation
    from mixdvae.separation.presets import PRESETS as SEP_PRESETS
    from mixdvae.separation.separate import Separator

    mix = load_mixtures(asset("speech_flute_demo.npz"))
    names = list(mix.source_names)
    sep_dir = out / "separation"
    print(f"\n## 3. Separating {len(mix)} speech + flute mixtures ({mix.length / SAMPLE_RATE:.1f} s, ratios "
          f"{', '.join(f'{r:+.0f} dB' for r in mix.ratio_db)}), SI-SDR in dB\n")
    print("| method | " + " | ".join(f"{n} SI-SDR | {n} PESQ" for n in names) + " | seconds |")
    print("|---|" + "---|---|" * len(names) + "---|")
    rows = {}
    base = evaluate_mixture(mix.mixture, mix.sources, names)
    rows["Mixture"] = {**base["overall"], "seconds": 0.0}
    for label, method in (("Temporal NMF", "temporal-nmf"), ("MixDVAE", "mixdvae")):
        res = Separator(names, method, SEP_PRESETS["default"]).separate(mix.mixture)
        scores = evaluate_separation(res.waveforms, mix.sources, names)
        rows[label] = {**scores["overall"], "seconds": res.seconds}
        for i in range(len(mix)):
            for n, name in enumerate(names):
                write_audio(sep_dir / f"{method}_{i}_{name}.wav", res.waveforms[i, n], SAMPLE_RATE)
        if method == "mixdvae":
            chunks = 1 if res.elbo is None else res.elbo.shape[1] // len(mix)  # elbo: (I, B * C), mixture-major
            for i in range(len(mix)):
                write_audio(sep_dir / f"mixture_{i}.wav", mix.mixture[i], SAMPLE_RATE)
                plot_separation(sep_dir / f"spectrograms_{i}.png", mix.mixture[i], res.waveforms[i], names,
                                references=mix.sources[i], masks=res.masks[i].cpu().numpy(),
                                elbo=None if res.elbo is None else res.elbo[:, i * chunks:(i + 1) * chunks],
                                title=f"MixDVAE, speech-to-flute ratio {mix.ratio_db[i]:+.0f} dB")
    for label, r in rows.items():
        cells = " | ".join(f"{r[n]['si_sdr']:.2f} | {'-' if r[n]['pesq'] is None else format(r[n]['pesq'], '.2f')}" for n in names)
        print(f"| {label} | {cells} | {r['seconds']:.2f} |")
    write_json(out / "separation.json", rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("outputs") / "demo")
    args = parser.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    print("# mixdvae demo (bundled data and weights; nothing is trained or downloaded)")
    forecast_demo(out)
    tracking_demo(out)
    separation_demo(out)
    print(f"\nOutputs in {out}/: forecast.json, forecast.png, tracking_*.npz, tracking.json, tracking_plots/*.png, "
          "separation.json, separation/*.wav, separation/spectrograms_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
