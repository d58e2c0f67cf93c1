#!/usr/bin/env bash
# Trains the shipped motion priors (src/mixdvae/weights/) from synthetic trajectories only.
# Run from the repository root with the virtualenv active (make demo creates it). About an hour
# on 2 CPU cores; pass --device cuda to mixdvae train where a GPU exists.
set -euo pipefail
mkdir -p runs/data
mixdvae data trajectories --num 20000 --length 60 --seed 1 --out runs/data/train.npz
mixdvae data trajectories --num 10000 --length 60 --seed 1 --out runs/data/train10k.npz
mixdvae data trajectories --num 2000 --length 60 --seed 2 --out runs/data/val.npz
mixdvae data trajectories --num 1000 --length 60 --seed 3 --out runs/data/test.npz
mixdvae data trajectories --num 8000 --length 60 --seed 1 --encoding reference --out runs/data/train_ref.npz
mixdvae data trajectories --num 2000 --length 60 --seed 2 --encoding reference --out runs/data/val_ref.npz

mixdvae train --config recipes/motion_srnn.toml --data runs/data/train10k.npz --val runs/data/val.npz --out runs/motion_srnn --threads 1 --no-progress
mixdvae train --config recipes/motion_deep_ar.toml --data runs/data/train.npz --val runs/data/val.npz --out runs/motion_deep_ar --threads 1 --no-progress
mixdvae train --config recipes/motion_srnn_reference.toml --data runs/data/train_ref.npz --val runs/data/val_ref.npz --out runs/motion_srnn_reference --threads 1 --no-progress

# copy the best weights into the package and add the held-out forecast figures to each card
python recipes/ship_weights.py
