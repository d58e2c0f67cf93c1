"""Copy the best weights of each training run into src/mixdvae/weights/ and complete its card
with the held-out figures: one-step forecast RMSE of the prior and of constant velocity on 1,000
held-out synthetic trajectories (seed 3, never trained on), in the prior's own box encoding."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from mixdvae.baselines.constant_velocity import constant_velocity_forecast
from mixdvae.cli.evaluate_forecast import prior_forecast
from mixdvae.data.boxes import REFERENCE_IMAGE_SIZE, denormalise_boxes, to_reference_encoding
from mixdvae.data.trajectories import load_trajectories
from mixdvae.dvae.checkpoint import load_dvae
from mixdvae.metrics.forecast import forecast_rmse
from mixdvae.utils.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "motion_srnn": ("recipes/motion_srnn.toml", "runs/data/train10k.npz", "runs/data/val.npz", "normalised"),
    "motion_deep_ar": ("recipes/motion_deep_ar.toml", "runs/data/train.npz", "runs/data/val.npz", "normalised"),
    "motion_srnn_reference": ("recipes/motion_srnn_reference.toml", "runs/data/train_ref.npz", "runs/data/val_ref.npz", "reference"),
}


def install_best(name: str, run_name: str | None = None) -> tuple[Path, dict] | None:
    """Copy runs/RUN_NAME/best.{safetensors,json} (RUN_NAME defaults to NAME) to src/mixdvae/weights/NAME.*; return
    the destination (without suffix) and the card to complete, or None (with a message) if the run has no best weights."""
    run = ROOT / "runs" / (run_name or name)
    if not (run / "best.safetensors").is_file():
        print(f"skip {name}: {run}/best.safetensors not found")
        return None
    dest = ROOT / "src/mixdvae/weights" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "best.safetensors", dest.with_suffix(".safetensors"))
    shutil.copyfile(run / "best.json", dest.with_suffix(".json"))
    return dest, json.loads((run / "best.json").read_text())


def main(names: list[str]) -> int:
    test = load_trajectories(ROOT / "src/mixdvae/assets/heldout_trajectories.npz").boxes
    for name in names or list(RUNS):
        config, train, val, encoding = RUNS[name]
        shipped = install_best(name)
        if shipped is None:
            continue
        dest, card = shipped
        boxes = test if encoding == "normalised" else to_reference_encoding(
            denormalise_boxes(test.astype(np.float64), REFERENCE_IMAGE_SIZE)).astype(np.float32)
        model = load_dvae(dest.with_suffix(".safetensors"))
        pred = prior_forecast(model, boxes)
        target = boxes[:, 1:]
        card["command"] = (f"mixdvae train --config {config} --data {train} --val {val} --out runs/{name}  "
                           "(data made by recipes/train_motion_priors.sh)")
        card["encoding"] = encoding
        card["heldout_forecast"] = {
            "data": "mixdvae data trajectories --num 1000 --length 60 --seed 3"
                    + (" (converted to the reference encoding)" if encoding == "reference" else ""),
            "prior_rmse": forecast_rmse(pred, target),
            "constant_velocity_rmse": forecast_rmse(constant_velocity_forecast(boxes), target),
            "num_trajectories": int(len(boxes)),
            "units": "normalised image coordinates" if encoding == "normalised" else "reference encoding / (1920, 1080)",
        }
        card["license"] = "MIT (weights trained by this project on synthetic data it generates)"
        write_json(dest.with_suffix(".json"), card)
        hf = card["heldout_forecast"]
        print(f"{name}: prior {hf['prior_rmse']:.5f} vs constant velocity {hf['constant_velocity_rmse']:.5f}; "
              f"val loss {card['metrics'].get('val_loss')} at epoch {card['metrics'].get('best_epoch')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
