"""Shared fixtures: paths to ../shared (tests may read it; the product never does)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference_models"
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_LAVA = importlib.util.find_spec("lava") is not None


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"../shared/reference_models not found at {REFERENCE}")
    return REFERENCE


def checkpoint_path(model: str) -> Path:
    return REFERENCE / f"ssc_{model}_2x512.pth"


def golden_path(model: str) -> Path:
    return REFERENCE / "golden" / f"ssc_{model}_seed7.npz"

# Modules that drive Lava need lava-nc, which lives in `.venv-lava` (Python 3.10): `make test-lava`
# runs them there; the main environment does not collect them.
collect_ignore = [] if HAS_LAVA else ["test_lava_equivalence.py", "test_lava_oracle.py", "test_lava_runtime.py", "test_netx_lava.py"]
