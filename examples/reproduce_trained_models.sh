#!/usr/bin/env bash
# The exact commands that made examples/trained/: data (about 1.5 min), then two trainings (about 2 min each).
set -euo pipefail
cd "$(dirname "$0")/.."
data=examples/data
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
