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
from silif_deploy.hw_models.fixed_point import OVERFLOW_CODES
from silif_deploy.hw_models.network import FixedLayer, FixedPointNetwork
from silif_deploy.hw_models.neuron_adaptive import AdaptiveParams
from silif_deploy.hw_models.neuron_cuba import CubaParams
from silif_deploy.hw_models.neuron_kinds import HIDDEN_KINDS, KINDS
from silif_deploy.hw_models.neuron_resonate import ResonateParams
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate, simulate_raw

SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_matches_reference(network: FixedPointNetwork, x: np.ndarray) -> scalar_reference.ReferenceRun:
    ref = scalar_reference.run(network, x)
    raw = simulate_raw(network, x, record_states=True)
    for l, out in enumerate(raw):
        traces = [sample[l] for sample in ref.traces]
        np.testing.assert_array_equal(out["spikes"], np.array([t.spikes for t in traces]), err_msg=f"layer {l} spikes")
        assert len(out["states"]) == len(traces[0].states), f"layer {l}: number of states"
        for j, trajectory in enumerate(out["states"]):
            np.testing.assert_array_equal(trajectory, np.array([t.states[j] for t in traces]), err_msg=f"layer {l} x{j + 1}")
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
        # the built-in kinds' state names as the spec writes them; a test family declares its own
        names = (("p", "q") if layer.kind in ("csilif", "rf") else ("u", "w")) if layer.kind in HIDDEN_KINDS \
            else KINDS[layer.kind].states
        window = slice(ref.delays[l], ref.delays[l] + x.shape[1])  # l + 1 in a chain
        for j, name in enumerate(names):
            np.testing.assert_array_equal(res.states[f"{name}_{l}"], np.array([s[l].states[j] for s in ref.traces])[:, window])
    for l, out in enumerate(raw):  # the states left after the last step
        final = [sample[l] for sample in ref.final_states]
        for j, trajectory in enumerate(out["states"]):
            np.testing.assert_array_equal(trajectory[:, -1], [f[0][j] for f in final], err_msg=f"layer {l} final x{j + 1}")
        np.testing.assert_array_equal(out["spikes"][:, -1], [f[1] for f in final], err_msg=f"layer {l} final spikes")
    np.testing.assert_array_equal(
        res.diagnostics["overflow_events"], [[t.events.changed for t in sample] for sample in ref.traces]
    )
    return ref


def test_random_networks_match_the_scalar_reference():
    """Every kind, depths 1–3, widths 1–12, 1–25 steps; states reach their limits in every family
    (each rule on each state: ``test_every_overflow_rule_fires_and_matches_the_reference``)."""
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
    # Which rule on which state the draws reach depends on hypothesis' generation (it differs with
    # the tests collected beside this one), so only the families are required here.
    families = {"adaptive": ("silif", "adlif", "cadlif", "lif"), "resonate": ("csilif", "rf"), "cuba": ("cuba",)}
    hits = Counter()
    for (kind, _state, _rule), n in events.items():
        hits[next(f for f, members in families.items() if kind in members)] += n
    assert all(hits[f] > 0 for f in families), f"limits reached per family: {dict(hits)}"


def _runaway_layer(kind: str, mode: int, n: int, frac_bits: int, half: int) -> FixedLayer:
    """A layer whose states run away from a bias above the threshold. Resonate: λ = 1 + i
    (|λ| = √2), gain 1. Adaptive, α = 0 and β = 1 for all; even neurons spike until u wraps, if
    it does (gain 1, a = 0, a negative spike increment: w falls by it on every spike and u = A + bias − w
    rises with it); odd ones never spike but double (gain −1, a = 1: u_t = w_t − C and
    w_t = w_{t−1} + u_{t−1}, so w_t = 2·w_{t−1} − C), both states together."""
    one = 1 << frac_bits
    full, bias, threshold = np.full(n, one, np.int64), np.full(n, half >> 2, np.int64), half >> 4
    synapse = DenseSynapse(np.full((n, 4), 254, np.int64), 7, 8, False)
    if kind in ("csilif", "rf"):
        params = ResonateParams(lam_re=full, lam_im=full, gain=full, bias=bias, threshold=threshold, frac_bits=frac_bits,
                                input_shift=6, half=half, mode=mode, reset_first=int(kind == "csilif"))
    else:
        odd = np.arange(n) % 2
        params = AdaptiveParams(alpha=0 * full, gain=full * (1 - 2 * odd), beta=full, a=full * odd,
                                b_spike=-(half >> 3) * (1 - odd),
                                bias=bias, threshold=threshold, frac_bits=frac_bits, input_shift=6, half=half,
                                u_mode=mode, w_mode=mode)
    return FixedLayer(kind, synapse, params, threshold)


@pytest.mark.parametrize("state_bits", [24, 32])
@pytest.mark.parametrize("rule", ["wrap", "saturate"])
@pytest.mark.parametrize("kind", ["silif", "csilif"])
def test_every_overflow_rule_fires_and_matches_the_reference(kind, rule, state_bits):
    """Each state of each family reaches its limit under each rule (the readout: u wraps, v
    saturates, as Lava's LIF), and the simulator still equals the reference step by step. Random
    networks reach limits too, but which ones depends on hypothesis' draws: this test makes sure."""
    half, n = 1 << (state_bits - 1), 32
    mode = OVERFLOW_CODES[rule]
    hidden = _runaway_layer(kind, mode, n, 12, half)
    readout_synapse = DenseSynapse(np.full((2, n), 254, np.int64), 7, 8, False)
    readout_params = CubaParams(du=np.zeros(2, np.int64), dv=np.zeros(2, np.int64), bias_mant=np.zeros(2, np.int64),
                                bias_exp=np.zeros(2, np.int64), vth=(1 << 17) - 1, input_shift=6, threshold_exponent=6, half=half)
    network = _network([hidden], FixedLayer("cuba", readout_synapse, readout_params, 1 << 10), 4, profile(state_bits, 12))
    ref = assert_matches_reference(network, np.full((1, 80, 4), 3.0, np.float32))
    states = ("p", "q") if kind == "csilif" else ("u", "w")
    fired = {key for key, count in ref.events().items() if count > 0}
    assert {(kind, state, rule) for state in states} <= fired
    if rule == "saturate":  # saturated hidden neurons keep spiking, so the readout's states run away too
        assert {("cuba", "u", "wrap"), ("cuba", "v", "saturate")} <= fired


def _network(hidden: list[FixedLayer], readout: FixedLayer, n_inputs: int, prof, input_frac_bits: int = 0) -> FixedPointNetwork:
    return FixedPointNetwork.chain(model_type=hidden[0].kind, n_inputs=n_inputs, hidden=hidden, readout=readout,
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
