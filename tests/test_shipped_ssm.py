"""The shipped SpikingSSM and binary-S4D models (``examples/trained/``) in fixed point.

What each test proves:
* the default profile keeps each shipped model within 1 percentage point of its float accuracy on
  its held-out test split (quantized as ``verify --data`` does: calibrated on that input; the
  README's figures calibrate on the training data, which is not shipped), against labels and the
  float PyTorch model, neither of which shares code with the quantizer or the simulator;
* the simulator equals the scalar reference (``scalar_reference.py``: Python ints, written from the
  stage docstrings) bit for bit on the shipped networks, every neuron stage's spikes, states and
  overflow counts and the decoder's logits; Lava's equality on the same networks is
  ``test_lava_ssm.py::test_stored_artifact`` (fixtures written by ``test_lava_fixtures.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import silif_deploy  # noqa: E402
from silif_deploy.deploy.pipeline import quantize_model  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402
from silif_deploy.hw_models.simulator import simulate  # noqa: E402
from test_ssm_stages import assert_graph_matches_reference  # noqa: E402

TRAINED = Path(__file__).parents[1] / "examples" / "trained"
SHIPPED = {  # model: its test split
    "synth_digits_spiking_ssm_2x72n16": "synth_digits_test.npz",
    "synth_digits_binary_s4d_2x72n16": "synth_digits_test.npz",
    "seq_digits_spiking_ssm_2x32n32": "seq_digits_test.npz",
    "seq_digits_binary_s4d_2x32n32": "seq_digits_test.npz",
}


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def shipped(request):
    data = np.load(TRAINED / SHIPPED[request.param])
    x, labels = data["x"], data["labels"]
    model = silif_deploy.load_model(TRAINED / f"{request.param}.pt")
    return request.param, model, quantize_model(model, load_profile("loihi2"), x), x, labels


def test_shipped_models_lose_at_most_one_point(shipped):
    name, model, network, x, labels = shipped
    float_acc = float(np.mean(model.run(x).prediction == labels))
    fixed_acc = float(np.mean(simulate(network, x).prediction == labels))
    # measured: 91.46 / 91.46 %, 89.17 / 89.38 %, 88.33 / 87.78 %, 80.56 / 80.56 % (float / fixed)
    assert fixed_acc >= float_acc - 0.01, (name, float_acc, fixed_acc)


def test_shipped_models_equal_the_scalar_reference(shipped):
    _, _, network, x, _ = shipped
    assert_graph_matches_reference(network, x[-1:, :40])  # one sample, 40 frames: Python ints are slow
