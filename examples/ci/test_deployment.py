"""Deployment regression tests for YOUR repository: copy this file into your tests/ folder.

It checks that the fixed-point artifact you ship still reproduces its golden bit for bit (spikes of
every layer and the readout's integer membrane, step by step), and that fixed point loses at most
MAX_ACCURACY_DROP percentage points of accuracy against the float model on your test split.

One-time set-up (again whenever the model changes on purpose), then commit tests/golden.npz:

    silif-deploy export models/model.pt --target loihi2 -o build
    silif-deploy golden build/model.loihi2.h5 --input tests/golden_input.npz -o tests/golden.npz

where tests/golden_input.npz holds a few samples as ``input`` (batch, time, channels), e.g.
``np.savez("tests/golden_input.npz", input=x_test[:8])``; ``--input`` also reads .npy and SHD/SSC .h5.
Set the paths below, or override them with environment variables in CI.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from silif_deploy.deploy.verification import verify_golden

ARTIFACT = Path(os.environ.get("SILIF_ARTIFACT", "build/model.loihi2.h5"))
GOLDEN = Path(os.environ.get("SILIF_GOLDEN", "tests/golden.npz"))
MODEL = Path(os.environ.get("SILIF_MODEL", "models/model.pt"))  # checkpoint, or the artifact itself
TEST_DATA = Path(os.environ.get("SILIF_TEST_DATA", "data/test.h5"))  # SHD/SSC-layout .h5, or .npz with labels
MAX_ACCURACY_DROP = float(os.environ.get("SILIF_MAX_ACCURACY_DROP", "0.5"))  # percentage points
SILIF_DEPLOY = os.environ.get("SILIF_DEPLOY", "silif-deploy")  # the CLI of the environment under test


def test_artifact_reproduces_golden_bit_exactly():
    first_difference, mismatches = verify_golden(ARTIFACT, GOLDEN)
    assert first_difference is None, f"{first_difference}; mismatches per output: {mismatches}"


def test_fixed_point_accuracy_within_budget():
    run = subprocess.run(
        [SILIF_DEPLOY, "verify", str(MODEL), "--data", str(TEST_DATA), f"--max-accuracy-drop={MAX_ACCURACY_DROP}"],
        capture_output=True, text=True,
    )
    # exit 0: within budget; 1: fixed point lost more than the budget; 2: bad input (message on stderr)
    assert run.returncode == 0, run.stdout + run.stderr
