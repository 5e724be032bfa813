"""NeuroBench 2.3.0's own SynapticOperations and ActivationSparsity on a shipped model equal the
numbers of our report (``simulate --report``, float engine), on 32 test utterances.

This compares two independent counts of the same float run: NeuroBench re-runs each hooked
``nn.Linear`` call with binarized weights and inputs; our report counts non-zero presynaptic
activations times non-zero weights per column (``hw_models/metrics.py``). The helper under test is
``deploy/neurobench_bridge.py`` (which modules to register).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("neurobench", reason="the neurobench extra provides NeuroBench 2.3.0")

from silif_deploy.converters.checkpoint import load_model  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.deploy.neurobench_bridge import neurobench_metrics  # noqa: E402

TRAINED = Path(__file__).parents[1] / "examples" / "trained"


def test_neurobench_equals_our_report(tmp_path) -> None:
    x = np.load(TRAINED / "synth_digits_test.npz")["x"][:32]
    np.save(tmp_path / "x.npy", x)
    checkpoint = TRAINED / "synth_digits_silif_2x128.pt"
    assert main(["simulate", str(checkpoint), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.npz"),
                 "--report", str(tmp_path / "r.json"), "--engine", "float"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    ours = neurobench_metrics(load_model(checkpoint), x.astype(np.float32))
    ops, layers, totals = ours["SynapticOperations"], report["layers"], report["totals"]
    # event counts above 1 make the input layer's ops MACs; binary spikes are ACs
    assert layers[0]["graded"] and not any(layer["graded"] for layer in layers[1:])
    assert ops["Effective_MACs"] == layers[0]["effective_sop"]
    assert ops["Effective_ACs"] == sum(layer["effective_sop"] for layer in layers[1:])
    assert ops["Dense"] == totals["steps"] * totals["synapses"]
    assert ours["ActivationSparsity"] == pytest.approx(totals["sparsity"], abs=1e-12)
    assert 0.5 < totals["sparsity"] < 1 and ops["Effective_ACs"] > 0
