#!/usr/bin/env bash
# Development check (not a shipped prior): the speech SRNN retrained without every fifth LibriSpeech
# train-clean-100 speaker (50 of 251, one utterance each), then given the second cosine cycle of
# recipes/speech_srnn_anneal.toml, so that the development set `libri-unseen` of
# benchmarks/separation_options.py (those 50 speakers) can tell whether the second cycle generalises to
# unseen speakers or only fits the training speakers better (docs/separation.md "Annealing").
# About 35 minutes on one core. Run from the repository root with the virtualenv active.
set -euo pipefail
A=${AUDIO_DIR:-../shared/data/audio}
S=runs/data/speech_split
rm -rf $S && mkdir -p $S/train $S/held
i=0
for speaker in $(ls $A/speech/librispeech/train-clean-100 | sort -n); do
    for f in $A/speech/librispeech/train-clean-100/$speaker/*; do
        ln -s "$(realpath "$f")" $S/$([ $((i % 5)) -eq 4 ] && echo held || echo train)/
    done
    i=$((i + 1))
done
mixdvae data spectra --audio $S/train --audio $A/speech/librispeech/misc --audio $A/speech/ljspeech \
    --audio $A/speech/vctk_valentini --audio $A/speech/cmu_arctic --audio $A/speech/ami \
    --length 50 --hop 25 --gain-db -20 0 --seed 1 --out runs/data/speech_train_hop25_split.npz --no-progress
mixdvae train --config recipes/speech_srnn.toml --data runs/data/speech_train_hop25_split.npz --val-fraction 0.1 \
    --leakage-data runs/data/flute_train.npz --out runs/speech_srnn_split --threads 1 --no-progress
mixdvae train --config recipes/speech_srnn_anneal.toml --data runs/data/speech_train_hop25_split.npz --val-fraction 0.1 \
    --leakage-data runs/data/flute_train.npz --init runs/speech_srnn_split/best.safetensors --out runs/speech_srnn_split_an \
    --threads 1 --no-progress
