"""The quantizer's choices, checked against the float parameters they stand for.

Rows of a resonate layer each span the weight format and the per-neuron gain restores the neuron's
input scale (within the rounding bounds of both formats); the readout's states stay below the
threshold its CUBA neuron must never reach, also where a wide profile's states would pass it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from silif_deploy.converters.quantize import quantize
from silif_deploy.hw_models.dense import DenseSynapse, weight_grid
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate

from conftest import HAS_TORCH, REPO
from random_networks import float_network


def _uneven_rows(kind: str, seed: int = 3):
    """A random network whose rows differ in size by a factor of 1,000, as BatchNorm's γ/σ makes them."""
    rng = np.random.default_rng(seed)
    net = float_network(rng, kind, [20, 32, 24], 5)
    for layer in net.hidden:
        layer.weight *= np.exp(rng.uniform(np.log(0.005), np.log(5.0), (layer.size, 1)))
    return net


@pytest.mark.parametrize("kind", ["csilif", "rf"])
@pytest.mark.parametrize("profile_name", ["loihi2", "loihi2-wide"])
def test_resonate_rows_span_the_weight_format_and_the_gain_restores_the_input_scale(kind, profile_name):
    profile = load_profile(profile_name)
    net = _uneven_rows(kind)
    fixed = quantize(net, profile)
    step, _, w_max = weight_grid(profile.weight_bits)
    one = 1 << profile.coefficient_bits
    for float_layer, layer in zip(net.hidden, fixed.hidden):
        w, gain = layer.synapse.weights, layer.params.gain
        peaks = np.abs(w).max(axis=1)
        # a neuron's share of the layer's largest input scale; with a share above w_max / (step·2^F), a
        # full-range row costs the gain less precision than it gives the weights: such rows all span
        # the format; smaller ones stop short of it, so that no gain rounds to 0
        share = np.abs(float_layer.gain) * np.abs(float_layer.weight).max(axis=1)
        share /= share.max()
        full = share >= w_max / (step * one)
        assert full.any() and peaks.max() == w_max  # the largest weight itself, not the power of two above
        assert np.all(peaks[full] == peaks.max()) and np.all(peaks[share < 0.5 * w_max / (step * one)] < peaks.max())
        assert np.all(gain != 0)
        # g·W·2^(exp + input_shift) / S stands for the float gain·W' (the input is counts: no fraction bits)
        unit = 2.0 ** (layer.synapse.weight_exp + profile.input_shift) / layer.scale
        effective = (gain / one)[:, None] * w * unit
        expected = float_layer.gain[:, None] * float_layer.weight
        row_error = np.abs(effective - expected).max(axis=1) / np.abs(expected).max(axis=1)
        # half a weight step and half a gain step, relative to the values before rounding
        gain_error = 0.5 / (np.abs(gain) - 0.5)
        weight_error = 0.5 * step / (peaks - 0.5 * step)
        assert np.all(row_error <= (1 + weight_error) * (1 + gain_error) - 1)
        # the wide profile's 24-bit gains leave every row the weight format's precision
        if profile_name == "loihi2-wide":
            assert row_error.max() < 2.0**-14
        bias = gain / one * layer.params.bias / layer.scale
        expected_bias = float_layer.gain * float_layer.bias
        mantissa_error = 2.0 ** (2 - profile.bias_mantissa_bits)  # half a step of a mantissa ≥ 2^(bits − 2)
        bias_bound = np.abs(expected_bias) * ((1 + mantissa_error) * (1 + gain_error) - 1) + 0.5 * np.abs(gain / one) / layer.scale
        assert np.all(np.abs(bias - expected_bias) <= bias_bound)


@pytest.mark.parametrize("kind", ["silif", "csilif"])
@pytest.mark.parametrize("profile_name", ["loihi2", "loihi2-wide"])
def test_state_scale_yields_to_weights_that_would_leave_the_format(kind, profile_name):
    """Weights 100 × larger (BatchNorm γ/σ of 30 on weights of 16 do this) and a small state range:
    the range alone would give a scale whose weights exceed w_max·2^7; the scale is lowered instead."""
    profile = load_profile(profile_name)
    net = _uneven_rows(kind)
    for layer in (*net.hidden, net.readout):
        layer.weight *= 100.0
    fixed = quantize(net, profile, state_ranges=[0.5, 0.5], readout_range=0.5)
    _, _, w_max = weight_grid(profile.weight_bits)
    for d, layer in zip(fixed.quantization["layers"] + [fixed.quantization["readout"]], fixed.layers):
        assert d["weights_clipped"] == 0 and layer.synapse.weight_exp <= profile.weight_exp_max
        assert np.abs(layer.synapse.weights).max() > w_max // 2, "the scale is lowered no further than needed"
        assert layer.scale < profile.state_max / (0.5 * profile.calibration_headroom) / 2


@pytest.mark.parametrize("kind", ["silif", "csilif"])
def test_state_scale_halves_until_every_bias_fits(kind):
    """A small calibrated range gives a fine scale; biases of 4 thresholds would then exceed loihi2's
    bias format (mantissa 4095·2^7 = 524,160): the scale halves instead, and stops at the first fit."""
    profile = load_profile("loihi2")
    net = _uneven_rows(kind)
    for layer in net.hidden:
        layer.bias = np.full(layer.size, 4.0)
    fixed = quantize(net, profile, state_ranges=[0.5, 0.5], readout_range=0.5)
    for d, layer in zip(fixed.quantization["layers"], fixed.hidden):
        assert d["biases_out_of_range"] == 0
        biases = np.abs(layer.params.bias)
        assert 524_160 / 2 < biases.max() <= 524_160, "the largest bias fills the format: halved no further than needed"
        if kind == "silif":  # no row stretch: the bias is 4 thresholds, to the format's rounding
            np.testing.assert_allclose(biases / layer.scale, 4.0, rtol=2**-12)


@pytest.mark.parametrize("profile_name", ["loihi2", "loihi2-wide"])
def test_readout_states_stay_below_its_threshold(profile_name):
    """The readout CUBA LIF spikes and resets v to 0 above vth << 6 (2^23 at most), below a wide
    profile's 32-bit state limit: its scale must keep the calibrated range under vth, not the state max."""
    profile = load_profile(profile_name)
    net = float_network(np.random.default_rng(5), "silif", [12, 16], 4)
    readout_range = 40.0
    fixed = quantize(net, profile, state_ranges=[8.0], readout_range=readout_range)
    readout = fixed.readout
    vth = readout.params.vth << readout.params.threshold_exponent
    assert readout.scale * readout_range * profile.calibration_headroom <= vth
    # every hidden neuron spikes on every step and neuron 0 feeds the readout a constant input whose
    # steady state is 1.5 × the calibrated range: v rises to it (or saturates), it never resets
    fixed.hidden[0].params.bias[:] = 1 << 40
    fixed.hidden[0].synapse.weights[:] = 0
    exp = 7
    steady = 1.5 * readout_range * readout.scale * readout.params.dv / 4096
    weights = np.zeros_like(readout.synapse.weights)
    weights[:, 0] = np.rint(steady / 2.0 ** (exp + profile.input_shift))
    assert np.abs(weights).max() < 2**15
    readout.params.bias_mant[:] = 0
    fixed.readout = dataclasses.replace(readout, synapse=DenseSynapse(weights, exp, 16, False))
    v = simulate(fixed, np.zeros((1, 600, 12), np.int16)).readout_u[0]
    assert np.all(np.diff(v, axis=0) >= 0) and np.all(v[-1] > 1.4 * readout_range), "v never drops back: no reset"


@pytest.mark.skipif(not HAS_TORCH, reason="the shipped models load with PyTorch")
def test_wide_profile_keeps_the_shipped_models_predictions():
    """Weights-only under loihi2-wide, the shipped SiLIF's readout once passed the CUBA threshold and
    reset (72 % of predictions agreed); now every prediction on 96 test utterances equals float's."""
    from silif_deploy import load_model
    from silif_deploy.deploy.pipeline import quantize_model

    with np.load(REPO / "examples" / "trained" / "synth_digits_test.npz") as z:
        x = z["x"][:96]
    model = load_model(REPO / "examples" / "trained" / "synth_digits_silif_2x128.pt")
    reference = model.run(x)
    fixed = simulate(quantize_model(model, load_profile("loihi2-wide")), x)
    assert np.array_equal(fixed.prediction, reference.prediction)
    assert np.abs(fixed.readout_u - reference.readout_u).max() < 1.0
