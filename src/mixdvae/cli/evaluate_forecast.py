"""``mixdvae evaluate forecast``: one-step-ahead forecast RMSE of a prior vs constant velocity."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from mixdvae.baselines.constant_velocity import constant_velocity_forecast
from mixdvae.data.trajectories import load_trajectories
from mixdvae.dvae.weights import load_weights, shipped_weights
from mixdvae.errors import DataFormatError
from mixdvae.metrics.forecast import forecast_rmse
from mixdvae.utils.device import resolve_device
from mixdvae.utils.io import write_json

__all__ = ["add_parser", "run_forecast", "prior_forecast"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("forecast", help="One-step forecast RMSE of a motion prior against constant velocity.")
    p.add_argument("--data", type=Path, required=True, help="trajectories file (mixdvae data trajectories)")
    p.add_argument("--weights", type=Path, default=None, help="prior checkpoint (default: the shipped motion prior)")
    p.add_argument("--json", type=Path, default=None, help="write the figures as JSON here")
    p.add_argument("--plot", type=Path, default=None, help="save a PNG of a few forecasts here")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.set_defaults(func=run_forecast)


@torch.no_grad()
def prior_forecast(model, boxes: np.ndarray, batch_size: int = 1024, device="cpu") -> np.ndarray:
    """Mean of p(x_t | x_{1:t-1}) for t = 2..T.  Shape: (M, T, D) -> (M, T-1, D)."""
    model = model.eval()
    out = []
    for start in range(0, len(boxes), batch_size):
        x = torch.as_tensor(boxes[start:start + batch_size], dtype=torch.float32, device=device)
        out.append(model.predict_next(x).mean.cpu().numpy())
    return np.concatenate(out)


def run_forecast(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    data = load_trajectories(args.data)
    weights = args.weights or shipped_weights("motion_srnn")
    model = load_weights(weights, device)
    if model.x_dim != data.boxes.shape[-1]:
        raise DataFormatError(
            f"{args.data}: trajectories have {data.boxes.shape[-1]} coordinates, the prior {weights} expects {model.x_dim}"
        )
    pred = prior_forecast(model, data.boxes, args.batch_size, device)
    cv = constant_velocity_forecast(data.boxes)
    target = data.boxes[:, 1:]
    result = {
        "prior_rmse": forecast_rmse(pred, target),
        "constant_velocity_rmse": forecast_rmse(cv, target),
        "num_trajectories": int(data.boxes.shape[0]),
        "length": int(data.boxes.shape[1]),
        "weights": str(weights),
        "data": str(args.data),
        "units": "normalised image coordinates",
    }
    result["ratio"] = result["prior_rmse"] / result["constant_velocity_rmse"]
    print(f"| forecaster | one-step RMSE ({result['num_trajectories']} trajectories, T = {result['length']}) |")
    print("|---|---|")
    print(f"| {model.family} prior ({Path(weights).stem}) | {result['prior_rmse']:.5f} |")
    print(f"| constant velocity | {result['constant_velocity_rmse']:.5f} |")
    print(f"prior / constant velocity = {result['ratio']:.3f}")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        from mixdvae.plotting.forecast import plot_forecasts

        plot_forecasts(args.plot, data.boxes, {"prior": pred, "constant velocity": cv})
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
