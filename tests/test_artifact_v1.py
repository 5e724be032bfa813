"""Artifact format version 1 still reads and simulates bit for bit as the code that wrote it.

``fixtures/v1_mixed_chain.loihi2.h5`` was written by silif-deploy at commit b86a1ea (format
version 1): four quantized random hidden layers (silif 12→10, rf 10→9, csilif 9→8, lif 8→7) and
the readout (7→4), loihi2 profile. ``v1_mixed_chain_expected.npz`` holds that code's
``simulate(..., record_states=True)`` outputs for the seeded input ``x`` stored beside them. So
this compares today's reader and engine with the outputs of the old ones, not with themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from silif_deploy.converters.artifact import artifact_identity, read_artifact, recorded_identity
from silif_deploy.hw_models.simulator import simulate

FIXTURES = Path(__file__).parent / "fixtures"
V1 = FIXTURES / "v1_mixed_chain.loihi2.h5"


def test_v1_artifact_reads_and_simulates_as_the_code_that_wrote_it():
    expected = dict(np.load(FIXTURES / "v1_mixed_chain_expected.npz"))
    network = read_artifact(V1)
    assert [layer.kind for layer in network.layers] == ["silif", "rf", "csilif", "lif", "cuba"]
    result = simulate(network, expected.pop("x"), record_states=True)
    got = {**result.to_arrays(), **{f"diag_{k}": v for k, v in result.diagnostics.items()}}
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        assert got[key].dtype == want.dtype, key
        assert got[key].tobytes() == want.tobytes(), key


def test_v1_artifact_identity_is_the_one_recorded_at_export():
    """The identity of a chain network did not change with format version 2."""
    assert artifact_identity(read_artifact(V1)) == recorded_identity(V1)
