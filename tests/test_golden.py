"""The float models reproduce the authors' golden outputs, and parameter counts match neurons.md §11."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import checkpoint_path, golden_path  # noqa: E402

from silif_deploy import load_model  # noqa: E402
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402

MODELS = ("silif", "csilif", "cadlif")
MODEL_TYPE = {"silif": None, "csilif": None, "cadlif": "cadlif"}
SHIPPED_PARAMS = {"silif": 359_017, "csilif": 357_993, "cadlif": 357_993}


@pytest.fixture(scope="module", params=MODELS)
def golden_run(request, reference_dir):
    name = request.param
    model = load_model(checkpoint_path(name), model_type=MODEL_TYPE[name])
    golden = dict(np.load(golden_path(name)))
    result = model.run(golden["input"].astype(np.float32))
    return name, model, golden, result


def test_model_is_eval_and_zero_state(golden_run):
    _, model, _, _ = golden_run
    assert not model.training
    assert model.config.init_state == "zeros"


def test_spikes_identical_in_every_layer(golden_run):
    name, _, golden, result = golden_run
    assert len(result.spikes) == 2
    for i, spikes in enumerate(result.spikes):
        expected = np.unpackbits(golden[f"spikes_l{i}"], axis=-1).astype(bool)
        assert spikes.shape == expected.shape == (4, 300, 512)
        assert spikes.dtype == bool
        mismatches = int(np.count_nonzero(spikes != expected))
        assert mismatches == 0, f"{name} layer {i}: {mismatches} spike mismatches"


def test_spike_counts_equal(golden_run):
    _, _, golden, result = golden_run
    for i, spikes in enumerate(result.spikes):
        np.testing.assert_array_equal(spikes.sum(axis=1), golden[f"spike_counts_l{i}"])


def test_summed_softmax_and_prediction(golden_run):
    _, _, golden, result = golden_run
    assert result.scores.shape == golden["summed_softmax"].shape == (4, 35)
    np.testing.assert_allclose(result.scores, golden["summed_softmax"], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(result.prediction, golden["prediction"])
    assert result.readout_u.shape == (4, 300, 35)


def test_forward_matches_run(golden_run):
    """``model(x)`` (the scores) agrees with the documented ``run`` call."""
    _, model, golden, result = golden_run
    with torch.no_grad():
        scores = model(torch.as_tensor(golden["input"][:1], dtype=torch.float32))
    np.testing.assert_allclose(scores.numpy(), result.scores[:1], rtol=0, atol=1e-6)


def test_shipped_parameter_counts(golden_run):
    name, model, _, _ = golden_run
    assert model.parameter_count() == SHIPPED_PARAMS[name]


@pytest.mark.parametrize(
    "model_type, n_in, hidden, n_classes, expected",
    [
        ("csilif", 140, [128, 128], 20, 38_460),
        ("silif", 140, [128, 128], 20, 38_716),
        ("csilif", 140, [512, 512], 20, 350_268),
        ("silif", 140, [512, 512], 35, 359_017),
        ("csilif", 140, [512, 512], 35, 357_993),
        ("cadlif", 140, [512, 512], 35, 357_993),
        ("adlif", 140, [512, 512], 35, 357_993),
        ("rf", 140, [512, 512], 35, 355_945),
        ("lif", 140, [512, 512], 35, 354_921),
        ("silif", 40, [512, 512], 35, 307_817),
        ("silif", 40, [1024, 1024], 35, 1_139_817),
    ],
)
def test_untrained_parameter_counts(model_type, n_in, hidden, n_classes, expected):
    net = SpikingNetwork(NetworkConfig(model_type, n_in, hidden, n_classes))
    assert net.parameter_count() == expected
    # §11 formula: per hidden layer in·H + (k+2)·H, readout H·K + 3·K
    k = {"silif": 5, "csilif": 4, "adlif": 4, "cadlif": 4, "rf": 2, "lif": 1}[model_type]
    total, prev = 0, n_in
    for h in hidden:
        total += prev * h + (k + 2) * h
        prev = h
    assert total + prev * n_classes + 3 * n_classes == expected
