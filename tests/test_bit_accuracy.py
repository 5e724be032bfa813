"""The vectorized simulator equals the slow scalar reference (``scalar_reference.py``) bit for bit.

Randomized networks and inputs come from hypothesis (derandomized, no example database, so CI
runs the same cases every time). Each comparison covers the unaligned run (spikes, both state
trajectories, overflow events per layer) and the aligned outputs of ``simulate`` (spikes, the
integer readout v and its dequantized value, states, scores).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scalar_reference
from random_networks import float_network, profile, fixed_networks, readout_params, hidden_params

from silif_deploy.converters.quantize import quantize
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.network import FixedLayer, FixedPointNetwork
from silif_deploy.hw_models.neuron_kinds import HIDDEN_KINDS
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate, simulate_raw

SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_matches_reference(network: FixedPointNetwork, x: np.ndarray) -> scalar_reference.ReferenceRun:
    ref = scalar_reference.run(network, x)
    raw = simulate_raw(network, x, record_states=True)
    for l, out in enumerate(raw):
        traces = [sample[l] for sample in ref.traces]
        np.testing.assert_array_equal(out["spikes"], np.array([t.spikes for t in traces]), err_msg=f"layer {l} spikes")
        np.testing.assert_array_equal(out["x1"], np.array([t.x1 for t in traces]), err_msg=f"layer {l} x1")
        np.testing.assert_array_equal(out["x2"], np.array([t.x2 for t in traces]), err_msg=f"layer {l} x2")
        np.testing.assert_array_equal(out["overflow_events"], [t.events.changed for t in traces], err_msg=f"layer {l} events")

    res = simulate(network, x, record_states=True)
    for l, spikes in enumerate(res.spikes):
        assert spikes.dtype == bool
        np.testing.assert_array_equal(spikes, np.array(ref.spikes[l], bool), err_msg=f"aligned spikes {l}")
    np.testing.assert_array_equal(res.states["v_readout"], np.array(ref.readout_v))
    assert res.readout_u.dtype == np.float64
    assert res.readout_u.tobytes() == np.array(ref.readout_u, np.float64).tobytes()
    np.testing.assert_allclose(res.scores, ref.scores, rtol=1e-12, atol=1e-12)
    for l, layer in enumerate(network.hidden):
        n1, n2 = ("p", "q") if layer.kind in ("csilif", "rf") else ("u", "w")
        window = slice(l + 1, l + 1 + x.shape[1])
        np.testing.assert_array_equal(res.states[f"{n1}_{l}"], np.array([s[l].x1 for s in ref.traces])[:, window])
        np.testing.assert_array_equal(res.states[f"{n2}_{l}"], np.array([s[l].x2 for s in ref.traces])[:, window])
    for l, out in enumerate(raw):  # the states left after the last step
        final = [sample[l] for sample in ref.final_states]
        for i, key in enumerate(("x1", "x2", "spikes")):
            np.testing.assert_array_equal(out[key][:, -1], [f[i] for f in final], err_msg=f"layer {l} final {key}")
    np.testing.assert_array_equal(
        res.diagnostics["overflow_events"], [[t.events.changed for t in sample] for sample in ref.traces]
    )
    return ref


def test_random_networks_match_the_scalar_reference():
    """Every kind, depths 1–3, widths 1–12, 1–25 steps; the limits are reached, not just allowed."""
    events: Counter = Counter()
    kinds: Counter = Counter()
    spiked: Counter = Counter()

    @settings(max_examples=250, **SETTINGS)
    @given(fixed_networks())
    def check(case):
        network, x = case
        ref = assert_matches_reference(network, x)
        events.update(ref.events())
        kinds.update(layer.kind for layer in network.hidden)
        for l, layer in enumerate(network.layers):
            spiked[layer.kind] += sum(sum(map(sum, sample[l].spikes)) for sample in ref.traces)

    check()
    assert set(kinds) == set(HIDDEN_KINDS)
    silent = [k for k in (*HIDDEN_KINDS, "cuba") if spiked[k] == 0]
    assert not silent, f"kinds that never spiked: {silent}"
    # Overflow rules fired on every state (counted by the reference), both rules where a state has both.
    families = {"adaptive": ("silif", "adlif", "cadlif", "lif"), "resonate": ("csilif", "rf"), "cuba": ("cuba",)}
    hits = Counter()
    for (kind, state, rule), n in events.items():
        family = next(f for f, members in families.items() if kind in members)
        hits[(family, state, rule)] += n
    expected = [(f, s, r) for f, states in (("adaptive", "uw"), ("resonate", "pq")) for s in states for r in ("wrap", "saturate")]
    expected += [("cuba", "u", "wrap"), ("cuba", "v", "saturate")]
    missing = [e for e in expected if hits[e] == 0]
    assert not missing, f"limits never reached: {missing}"


def _network(hidden: list[FixedLayer], readout: FixedLayer, n_inputs: int, prof, input_frac_bits: int = 0) -> FixedPointNetwork:
    return FixedPointNetwork(model_type=hidden[0].kind, n_inputs=n_inputs, hidden=hidden, readout=readout,
                             input_frac_bits=input_frac_bits, profile=prof)


FAN_IN = 3000


@pytest.mark.parametrize("graded", [False, True], ids=["binary", "graded"])
@pytest.mark.parametrize("kind", HIDDEN_KINDS)
@settings(max_examples=2, **SETTINGS)
@given(data=st.data())
def test_fan_in_3000_all_inputs_active(kind, graded, data):
    """3000 inputs all active every step: binary spikes, or graded payloads of 200–255 whose sums
    leave float32's exact range (the Dense GEMM must switch to float64)."""
    frac_bits = data.draw(st.sampled_from([12, 24]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n_hidden, n_steps = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    w = 2 * rng.integers(-128, 128, (n_hidden, FAN_IN))
    w[:, : FAN_IN // 3] = 254  # the sum does not cancel out
    if graded:
        x = rng.integers(200, 256, (2, n_steps, FAN_IN)).astype(np.float32)
        assert int(x.sum(axis=2).max()) * int(np.abs(w).max()) > 2**24
        exp = data.draw(st.integers(-8, 3))
    else:
        x = np.ones((2, n_steps, FAN_IN), np.float32)
        exp = data.draw(st.integers(-8, 7))
    half = 1 << 23
    params = data.draw(hidden_params(kind, n_hidden, frac_bits, half))
    layer = FixedLayer(kind, DenseSynapse(w, exp, 8, graded), params, params.threshold)
    n_classes = data.draw(st.integers(1, 3))
    ro_w = 2 * rng.integers(-128, 128, (n_classes, n_hidden))
    readout = FixedLayer("cuba", DenseSynapse(ro_w, data.draw(st.integers(-8, 7)), 8, False),
                         data.draw(readout_params(n_classes, half)), 1 << 10)
    assert_matches_reference(_network([layer], readout, FAN_IN, profile(24, frac_bits)), x)


@settings(max_examples=30, **SETTINGS)
@given(
    kind=st.sampled_from(HIDDEN_KINDS),
    depth=st.integers(1, 3),
    width=st.integers(1, 12),
    profile_name=st.sampled_from(["loihi2", "loihi2-wide"]),
    inputs=st.sampled_from(["counts", "real", "real_large"]),
    calibrated=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_quantized_float_networks_match_the_scalar_reference(kind, depth, width, profile_name, inputs, calibrated, seed):
    """End to end: random float networks through ``quantize`` (whose weights must land on Lava's
    grid, or the reference's Lava weight handling would differ) and then the simulator."""
    rng = np.random.default_rng(seed)
    n_inputs, n_classes, n_steps = rng.integers(1, 13), rng.integers(1, 13), rng.integers(1, 26)
    net = float_network(rng, kind, [int(n_inputs)] + [width] * depth, int(n_classes))
    shape = (2, int(n_steps), int(n_inputs))
    if inputs == "counts":
        x = (rng.poisson(1.5, shape) * (rng.random(shape) < 0.4)).astype(np.float32)
    else:
        x = rng.normal(0.0, 3.0, shape)
    if inputs == "real_large":  # a peak above the 8-bit payload: the input loses fraction bits (f < 0)
        x[0, 0, 0] = -1000.0
    ranges = list(rng.uniform(0.5, 20.0, depth)) if calibrated else None
    fixed = quantize(net, load_profile(profile_name), state_ranges=ranges,
                     readout_range=float(rng.uniform(0.5, 20.0)) if calibrated else None, calibration_input=x)
    assert (fixed.input_frac_bits == 0) == (inputs == "counts")
    assert (fixed.input_frac_bits < 0) == (inputs == "real_large")
    assert_matches_reference(fixed, x)
