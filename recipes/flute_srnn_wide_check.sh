#!/usr/bin/env bash
# Width check (stop 22, not shipped; docs/separation.md "Where the flute prior limits (stop 22, ...)"): is the flute SRNN limited by its width?
# Three runs from scratch with one schedule (18 epochs, cosine from 2e-3 to 2e-5) on the final flute data of
# recipes/train_audio_priors.sh (run that first): the shipped width, twice as wide, and the shipped width with a
# decoder MLP of 512; each then scored on the 15 development sets (benchmarks/separation_options.py --rows srnn, with
# the shipped speech prior). About 80 minutes on 2 cores. Run from the repository root with the virtualenv active.
set -euo pipefail
FN="--data runs/data/flute_train_rev_low.npz --data runs/data/flute_train_renders_rev.npz --data runs/data/flute_train_sampled_rev.npz \
    --val runs/data/flute_val_rev.npz --val runs/data/flute_val_renders_rev.npz --val runs/data/flute_val_sampled_rev.npz"
SETS="arctic-notes:100 libri-notes:100 libri-notes:50 arctic:100 libri:100 libri:50 arctic-rev:100 libri-rev:100 libri-rev:50
      arctic-low:100 libri-low:100 libri-low:50 arctic-renders:100 libri-renders:100 libri-renders:50"
mkdir -p runs/width_check
lane() {  # train one width, then score it on the 15 development sets
    mixdvae train --config recipes/flute_srnn_$1.toml $FN --leakage-data runs/data/speech_train.npz \
        --out runs/flute_srnn_$1_s128 --threads 1 --no-progress
    for st in $SETS; do
        OMP_NUM_THREADS=1 python benchmarks/separation_options.py --set ${st%%:*} --length ${st##*:} --rows srnn \
            --weights src/mixdvae/weights/speech_srnn.safetensors runs/flute_srnn_$1_s128/best.safetensors \
            --json runs/width_check/$1_${st%%:*}_T${st##*:}.json > /dev/null
    done
}
lane wide &
lane scratch
lane widedec
wait
