"""Per-layer report metrics: hand counts on tiny networks, and the §15.4 reference values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from silif_deploy.converters.float_description import describe_float
from silif_deploy.hw_models import metrics
from silif_deploy.hw_models.run_result import RunResult

from conftest import HAS_TORCH, checkpoint_path, golden_path

MODELS = ("silif", "csilif", "cadlif")


def _layer(name, weights, hidden, states=2, graded=False):
    return metrics.LayerDescription(name=name, kind="silif" if hidden else "cuba", weights=np.asarray(weights),
                                    states_per_neuron=states, state_bits=24, weight_bits=8, parameters=None,
                                    hidden=hidden, graded=graded)


# 3 inputs → 2 hidden → 2 readout. Column non-zeros: W0 [1, 0, 2], W1 [0, 1].
TINY = metrics.NetworkDescription(
    "fixed", "silif",
    [_layer("L0", [[1, 0, 2], [0, 0, 3]], True, graded=True), _layer("readout", [[0, 1], [0, 0]], False)],
    extra_steps=2,
)
TINY_X = np.zeros((2, 4, 3), np.int16)
TINY_X[0, 0, 0] = 2  # a bin of two events counts once
TINY_X[0, 1, 1] = 1
TINY_X[0, 2] = [1, 0, 3]
TINY_X[1, 0, 2] = 1
TINY_SPIKES = np.zeros((2, 4, 2), bool)
TINY_SPIKES[0, 0, 0] = TINY_SPIKES[0, 2, 0] = TINY_SPIKES[0, 2, 1] = True


def _result(spikes, readout, diagnostics=None):
    scores = readout.sum(axis=1)
    return RunResult(scores=scores, spikes=spikes, readout_u=readout, diagnostics=diagnostics)


def _tiny_result():
    readout = np.zeros((2, 4, 2))
    readout[0, :, 1] = 1.0
    diag = {"overflow_events": np.array([[3, 0], [1, 2]]), "readout_spikes": np.array([0, 0])}
    return _result([TINY_SPIKES], readout, diag)


def test_hand_counts_on_a_tiny_network():
    tally = metrics.tally_run(TINY, TINY_X, _tiny_result(), labels=np.array([1, 1]))
    l0, ro = metrics.layer_metrics(TINY, tally)
    # sample 0: active channels [2, 1, 1] → 4 events, 8 SOP, effective 2·1 + 1·0 + 1·2 = 4;
    # sample 1: channel 2 once → 1 event, 2 SOP, effective 2. Mean over the two samples:
    assert (l0["presynaptic_events"], l0["sop"], l0["effective_sop"]) == (2.5, 5.0, 3.0)
    # readout: sample 0 sees L0 neuron 0 twice and neuron 1 once → 3 events, SOP 6, effective 0·2 + 1·1 = 1.
    assert (ro["presynaptic_events"], ro["sop"], ro["effective_sop"]) == (1.5, 3.0, 0.5)
    assert l0["spikes"] == 1.5 and l0["sparsity"] == 1 - 3 / 16 and ro["sparsity"] is None
    assert (l0["buffers"], ro["buffers"]) == (4, 0)
    assert (l0["dynamic_memory_bits"], ro["dynamic_memory_bits"]) == (2 * 2 * 24, 2 * 2 * 24)
    assert (l0["weights"], l0["synapses"], ro["weights"], ro["synapses"]) == (3, 6, 1, 4)
    assert (l0["steps"], l0["neuron_updates"]) == (6, 12)  # T + extra steps, every neuron every step
    assert (l0["overflow_events"], ro["overflow_events"]) == (2.0, 1.0)
    tot = metrics.totals(TINY, tally, [l0, ro])
    assert (tot["sop"], tot["effective_sop"], tot["buffers"], tot["spikes"]) == (8.0, 3.5, 4, 1.5)
    assert tot["accuracy"] == 0.5  # scores favour class 1 in sample 0, tie → class 0 in sample 1
    inp = metrics.input_metrics(tally, 3, True)
    assert (inp["nonzero_bins"], inp["events"], inp["max_value"]) == (2.5, 4.0, 3.0)  # 4 + 1 bins, 7 + 1 events
    assert inp["activity"] == 5 / 24


def test_tallies_add_up_across_batches():
    result = _tiny_result()
    whole = metrics.tally_run(TINY, TINY_X, result)
    parts = [metrics.tally_run(TINY, TINY_X[i : i + 1], RunResult(
        result.scores[i : i + 1], [result.spikes[0][i : i + 1]], result.readout_u[i : i + 1],
        diagnostics={k: v[i : i + 1] for k, v in result.diagnostics.items()})) for i in range(2)]
    summed = parts[0] + parts[1]
    assert metrics.layer_metrics(TINY, summed) == metrics.layer_metrics(TINY, whole)
    with pytest.raises(ValueError):
        summed + metrics.tally_run(TINY, TINY_X[:, :3], RunResult(result.scores, [TINY_SPIKES[:, :3]], result.readout_u[:, :3]))


def test_fidelity_hand_counts():
    fixed = _tiny_result()
    ref_spikes = TINY_SPIKES.copy()
    ref_spikes[0, 0, 0] = False  # one spike missing in the float run
    ref_spikes[1, 3, 1] = True  # one extra
    readout = fixed.readout_u.copy()
    readout[1, 2, 0] = -0.5
    reference = _result([ref_spikes], readout)
    reference.scores[1] = [0.0, 1.0]  # float predicts class 1 in sample 1, fixed class 0
    fid = metrics.fidelity_metrics(TINY, metrics.tally_fidelity(fixed, reference))
    (layer,) = fid["layers"]
    assert layer["spike_agreement"] == 14 / 16
    assert layer["spike_jaccard"] == 2 / 4
    assert (layer["spikes_fixed"], layer["spikes_float"]) == (1.5, 1.5)
    assert fid["readout_max_abs_error"] == 0.5 and fid["readout_mean_abs_error"] == 0.5 / 16
    assert (fid["prediction_agreement"], fid["prediction_disagreements"]) == (0.5, 1)


def test_float_description_counts_parameters_and_skips_zero_gamma_rows():
    config = {"model_type": "lif", "hidden_sizes": [2]}
    state = {
        "snn.0.W.weight": np.array([[1.0, 2.0], [3.0, 0.0]]), "snn.0.alpha": np.zeros(2),
        "snn.0.norm.weight": np.array([1.0, 0.0]), "snn.0.norm.bias": np.zeros(2),
        "snn.0.norm.running_mean": np.zeros(2), "snn.0.norm.running_var": np.ones(2),
        "snn.0.norm.num_batches_tracked": np.array(5),
        "snn.1.W.weight": np.ones((3, 2)), "snn.1.alpha": np.zeros(3),
        "snn.1.norm.weight": np.ones(3), "snn.1.norm.bias": np.zeros(3),
    }
    desc = describe_float(config, state)
    assert [layer.parameters for layer in desc.layers] == [4 + 2 + 2 + 2, 6 + 3 + 3 + 3]
    assert [layer.states_per_neuron for layer in desc.layers] == [1, 1]  # LIF: u only; float readout: u
    assert np.count_nonzero(desc.layers[0].weights) == 2  # row 1 has γ = 0: BN folds it to zero
    assert [layer.graded for layer in desc.layers] == [True, False]


def test_quantization_warnings_name_the_layer_and_the_count():
    section = metrics.quantization_section({
        "layers": [{"neurons": 512, "weights": 1000, "weights_zeroed": 100, "beta_one_perfect_integrator": 180,
                    "beta_one_in_float": 4, "alpha_zero_memoryless": 0}],
        "readout": {"neurons": 35, "weights": 10, "biases_out_of_range": 2},
        "calibrated": False,
    })
    assert [layer["name"] for layer in section["layers"]] == ["L0", "readout"]
    assert section["warnings"] == [
        "L0: 180 of 512 β rounded to exactly 1 (perfect integrators); 4 are exactly 1 in float already; "
        "wider coefficients (e.g. profile loihi2-wide) keep the other 176",
        "L0: 100 of 1,000 non-zero float weights became 0 (10.0 %)",
        "readout: 2 of 35 biases out of the bias range (clipped)",
    ]


def test_json_safe_gives_strict_json():
    out = metrics.json_safe({"a": np.int64(3), "b": (np.float32(0.5), float("nan")), "c": np.arange(2)})
    assert out == {"a": 3, "b": [0.5, None], "c": [0, 1]}
    assert type(out["a"]) is int


# ---------------------------------------------------------------------------------------------
# The shared checkpoints.

needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs PyTorch")

# neurons.md §15.4: SOP per sample (input → L0, L0 → L1, L1 → readout), sparsity L0 / L1 / mean.
REFERENCE = {
    "silif": ((1_303_936, 7_332_864, 262_438.75), 8_899_238.75, (0.90676, 0.95118, 0.92897)),
    "csilif": ((1_303_936, 12_178_944, 535_526.25), 14_018_406.25, (0.84514, 0.90039, 0.87276)),
    "cadlif": ((1_303_936, 6_539_136, 206_928.75), 8_050_000.75, (0.91685, 0.96151, 0.93918)),
}
PARAMETERS = {"silif": 359_017, "csilif": 357_993, "cadlif": 357_993}  # neurons.md §11


def _float_report(model_name):
    from silif_deploy.converters.checkpoint import load_model

    model = load_model(checkpoint_path(model_name), model_type=model_name)
    x = np.load(golden_path(model_name))["input"]
    desc = describe_float(model.config.to_dict(), {k: v.numpy() for k, v in model.state_dict().items()})
    tally = metrics.tally_run(desc, x, model.run(x))
    return model, metrics.build_report(desc, tally, input_info={"kind": "file", "is_counts": True}, provenance={})


@needs_torch
@pytest.mark.parametrize("model_name", MODELS)
def test_golden_sop_sparsity_and_parameters(model_name):
    model, report = _float_report(model_name)
    per_matrix, total, sparsity = REFERENCE[model_name]
    assert [layer["sop"] for layer in report["layers"]] == list(per_matrix)
    assert report["totals"]["sop"] == total
    assert [round(layer["sparsity"], 5) for layer in report["layers"][:2]] == list(sparsity[:2])
    assert round(report["totals"]["sparsity"], 5) == sparsity[2]
    assert report["totals"]["parameters"] == PARAMETERS[model_name] == model.parameter_count()
    assert report["totals"]["buffers"] == 2048
    # the golden input: 2,546.75 non-zero bins and 5,088 events per sample (neurons.md §15.4)
    assert (report["input"]["nonzero_bins"], report["input"]["events"]) == (2546.75, 5088.0)
    # float weights are dense: effective SOP equals SOP
    assert report["totals"]["effective_sop"] == total


@needs_torch
def test_fixed_run_counts_quantized_weights_and_hardware_steps():
    from silif_deploy.converters.checkpoint import load_model
    from silif_deploy.converters.float_params import float_network
    from silif_deploy.converters.quantize import quantize
    from silif_deploy.hw_models.profile import load_profile
    from silif_deploy.hw_models.simulator import simulate

    model = load_model(checkpoint_path("silif"))
    network = quantize(float_network(model), load_profile("loihi2"))
    network.float_model = {"config": model.config.to_dict(), "state_dict": {k: v.numpy() for k, v in model.state_dict().items()}}
    x = np.load(golden_path("silif"))["input"]
    result = simulate(network, x)
    desc = metrics.describe_fixed(network)
    layers = metrics.layer_metrics(desc, metrics.tally_run(desc, x, result))
    diags = [*network.quantization["layers"], network.quantization["readout"]]
    assert [layer["weights"] for layer in layers] == [d["weights_nonzero"] for d in diags]
    # neurons.md §11: in·H + (5 + 2)·H per SiLIF layer, H·K + 3·K for the readout
    assert [layer["parameters"] for layer in layers] == [140 * 512 + 7 * 512, 512 * 512 + 7 * 512, 512 * 35 + 3 * 35]
    assert all(layer["steps"] == 303 and layer["neuron_updates"] == 303 * layer["neurons"] for layer in layers)
    # L1's SOP is L0's aligned spikes times the fan-out; effective SOP below it (8-bit weights zero some)
    assert layers[1]["sop"] == result.spikes[0].sum() * 512 / 4
    assert all(layer["effective_sop"] < layer["sop"] for layer in layers)
    assert all(layer["overflow_events"] is not None for layer in layers)


def test_column_counts_equal_numpys_count_nonzero():
    """The uint8-block sums (blocks of 255 rows) against numpy's own per-column count, on rasters
    long enough that a uint8 count over all rows would wrap, and on other dtypes and empty shapes."""
    rng = np.random.default_rng(3)
    for z in (rng.random((3, 400, 7)) < 0.9, rng.integers(-2, 3, (2, 300, 5)).astype(np.int16),
              rng.random((4, 5)) < 0.5, np.zeros((0, 4, 3), bool), np.zeros((2, 3, 0), bool)):
        expected = np.count_nonzero(z, axis=tuple(range(z.ndim - 1)))
        np.testing.assert_array_equal(metrics.column_counts(z), expected)
    assert metrics.column_counts(np.ones((1, 600, 2), bool)).tolist() == [600, 600]


@pytest.mark.parametrize("frac_bits", [-2, 0, 3])
def test_sends_is_where_the_quantized_payload_is_non_zero(frac_bits):
    """``FixedPointNetwork.sends`` (the report's input counts) against the payloads themselves
    (``quantize_input``), on exact halves of the payload grid (rounded to even: ½ sends nothing),
    values beside them, negative values, values beyond the payload width, and integer inputs."""
    from silif_deploy.converters.artifact import read_artifact

    network = read_artifact(Path(__file__).parent / "fixtures/v1_mixed_chain.loihi2.h5").replace(input_frac_bits=frac_bits)
    step = 2.0**-frac_bits
    halves = np.arange(-6, 7) * step / 2
    x = np.concatenate([halves, np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf), [1e9, -1e9, 0.0]])
    for xs in (x.reshape(1, -1, 1), np.arange(-3, 4, dtype=np.int8).reshape(1, -1, 1),
               np.array([[[0], [1], [2]]], np.uint8)):
        np.testing.assert_array_equal(network.sends(xs), network.quantize_input(xs) != 0, err_msg=str(xs.dtype))
