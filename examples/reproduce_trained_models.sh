#!/usr/bin/env bash
# The exact commands that made examples/trained/ (times measured on 2 shared cores, 2026-12-01).
#   synthetic spoken digits: data (about 1.5 min alone, 4.5 min shared), SiLIF / C-SiLIF 2x128 (about 2 min
#   each), SpikingSSM / binary S4D at the same parameter count (H 72, N 16, 2 blocks: 38.0 k vs 38.7 k;
#   about 15 / 10 min); load_digits as 64-step sequences: the four families at about 9 k parameters (2-7 min each);
#   then every model's fixed point under loihi2, calibrated on its training data, and the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
data=examples/data
out=out/trained
.venv/bin/silif-deploy make-data --out "$data" --speakers 48 --repetitions 2 --seed 0
for model in silif csilif; do
  .venv/bin/silif-deploy train --data "$data/synth_shd_train.h5" --model-type "$model" \
    --hidden 128 --layers 2 --epochs 40 --pdrop 0.25 --lr 5e-3 --batch-size 64 --seed 0 --threads 1 \
    -o "examples/trained/synth_digits_${model}_2x128.pt"
done
.venv/bin/python examples/pack_test_split.py "$data/synth_shd_test.h5" examples/trained/synth_digits_test.npz
for model in silif csilif; do
  .venv/bin/silif-deploy verify "examples/trained/synth_digits_${model}_2x128.pt" \
    --data examples/trained/synth_digits_test.npz --max-accuracy-drop 1.0
done

# Spiking SSMs on the same data, epochs, batches, split and seed (their authors' AdamW recipe: lr 0.01,
# weight decay 0.01, SSM kernel lr 0.001; cosine decay; BPTT through the exact LIF; pre-norm BatchNorm).
for model in spiking_ssm binary_s4d; do
  .venv/bin/silif-deploy train --data "$data/synth_shd_train.h5" --model-type "$model" \
    --d-model 72 --d-state 16 --blocks 2 --epochs 40 --pdrop 0.1 --batch-size 64 --seed 0 --threads 1 \
    -o "examples/trained/synth_digits_${model}_2x72n16.pt"
done

# The sequence task: scikit-learn's load_digits, one pixel per step (1437 train / 360 test), 30 epochs.
.venv/bin/silif-deploy make-data --kind sklearn-digits --out "$data" --seed 0
cp "$data/digits_seq_test.npz" examples/trained/seq_digits_test.npz
for model in spiking_ssm binary_s4d; do
  .venv/bin/silif-deploy train --data "$data/digits_seq_train.npz" --model-type "$model" \
    --d-model 32 --d-state 32 --blocks 2 --epochs 30 --pdrop 0.1 --batch-size 64 --seed 0 --threads 1 \
    -o "examples/trained/seq_digits_${model}_2x32n32.pt"
done
for model in silif csilif; do
  .venv/bin/silif-deploy train --data "$data/digits_seq_train.npz" --model-type "$model" \
    --hidden 84 --layers 2 --epochs 30 --pdrop 0.1 --batch-size 64 --seed 0 --threads 1 \
    -o "examples/trained/seq_digits_${model}_2x84.pt"
done

# Fixed point under loihi2, state ranges calibrated on the training data; then the four families side by side
# on the test data (compare.json / compare.md / compare.png).
.venv/bin/python examples/pack_test_split.py "$data/synth_shd_train.h5" "$data/synth_shd_train.npz"
for task in synth_digits seq_digits; do
  if [ "$task" = synth_digits ]; then calib="$data/synth_shd_train.npz"; test=examples/trained/synth_digits_test.npz
  else calib="$data/digits_seq_train.npz"; test=examples/trained/seq_digits_test.npz; fi
  artifacts=()
  for ckpt in examples/trained/"$task"_*.pt; do
    name=$(basename "$ckpt" .pt)
    .venv/bin/silif-deploy export "$ckpt" --target loihi2 --calibrate "$calib" -o "$out/$name"
    artifacts+=("$out/$name/$name.loihi2.h5")
  done
  .venv/bin/silif-deploy compare "${artifacts[@]}" --input "$test" -o "examples/trained/compare_$task"
done
