"""The stages of SpikingSSM and binary S4D in fixed point (``spiking_ssm.md`` §8): the S4D state,
graded Dense stages with per-row exponents, neuron stages reading graded values, the GLU, Adds of
a declared width with lags, the mean_linear decoder.

What each test proves: random graphs of these stages simulate bit for bit as the scalar reference
(``scalar_reference.py``, written from the docstrings, sharing no code with the loops); the S4D
state is the RF rotation without its spike (the same integers through two kinds' kernels, so the
shared rotation did not change the resonate kinds, which ``test_bit_accuracy`` also checks
against the reference); the sigmoid table's error against float64 is measured over every gate
value; a hand-built SpikingSSM-shaped network (encoder, 2 blocks, decoder) equals the reference,
its S4D states track the float64 recurrence, and it round-trips the artifact with its identity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from random_networks import ssm_networks

import scalar_reference
from silif_deploy.converters.artifact import artifact_identity, check_network, read_artifact, recorded_identity, write_artifact
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.glu import SIGMOID_MAX_ERROR, GluParams, sigmoid_int, SIGMOID_TABLE
from silif_deploy.hw_models.network import INPUT, Add, Dense, FixedPointNetwork, Glu, MeanLinear, Neurons, graph_problem
from silif_deploy.hw_models.neuron_cuba import CubaParams
from silif_deploy.hw_models.neuron_kinds import NeuronState, step
from silif_deploy.hw_models.neuron_resonate import ResonateParams
from silif_deploy.hw_models.neuron_s4d import HeavisideParams, S4dParams
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate, simulate_batches, simulate_raw

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_graph_matches_reference(network: FixedPointNetwork, x: np.ndarray) -> scalar_reference.ReferenceRun:
    """Every neuron stage's spikes, states and overflow counts over the unaligned run, and the
    decoder's logits and scores (host float64: to 1e-9, the integers they come from are exact)."""
    ref = scalar_reference.run(network, x)
    raw = simulate_raw(network, x, record_states=True)
    assert len(raw) == len(network.neuron_stages)
    for l, out in enumerate(raw):
        traces = [sample[l] for sample in ref.traces]
        np.testing.assert_array_equal(out["spikes"], np.array([t.spikes for t in traces]), err_msg=f"stage {l} spikes")
        for j, trajectory in enumerate(out["states"]):
            np.testing.assert_array_equal(trajectory, np.array([t.states[j] for t in traces]), err_msg=f"stage {l} x{j}")
        np.testing.assert_array_equal(out["overflow_events"], [t.events.changed for t in traces], err_msg=f"stage {l}")
    res = simulate(network, x, record_states=True)
    for l, spikes in enumerate(res.spikes):
        np.testing.assert_array_equal(spikes, np.array(ref.spikes[l], bool), err_msg=f"aligned spikes {l}")
    np.testing.assert_allclose(res.readout_u, np.array(ref.readout_u), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(res.scores, np.array(ref.scores), rtol=1e-12, atol=1e-9)
    return ref


def test_random_ssm_graphs_match_the_scalar_reference():
    seen = {"soma spikes": 0, "s4d overflow": 0, "heaviside": 0, "cuba": 0}

    @settings(max_examples=60, **SETTINGS)
    @given(ssm_networks())
    def check(case):
        network, x = case
        ref = assert_graph_matches_reference(network, x)
        for l, stage in enumerate(network.neuron_stages):
            if stage.kind in ("cuba", "heaviside"):
                seen[stage.kind] += 1
                seen["soma spikes"] += sum(map(sum, (row for sample in ref.traces for row in sample[l].spikes)))
            else:
                seen["s4d overflow"] += sum(sample[l].events.changed for sample in ref.traces)

    check()
    assert all(v > 0 for v in seen.values()), seen


def test_s4d_state_is_the_rf_rotation_without_its_spike():
    """RF (reset after the update) never spiking is exactly the S4D state: same λ, gain, bias."""
    rng = np.random.default_rng(3)
    n, f, half = 64, 12, 1 << 23
    lam_re, lam_im, gain = (rng.integers(-(1 << f), (1 << f) + 1, n) for _ in range(3))
    bias = rng.integers(-(1 << 16), 1 << 16, n)
    s4d = S4dParams(lam_re, lam_im, gain, bias, f, 6, half, 1)
    rf = ResonateParams(lam_re, lam_im, gain, bias, 1 << 40, f, 6, half, 1, 0)
    a, b = NeuronState.zeros(2, n), NeuronState.zeros(2, n)
    moved = 0
    for t in range(200):
        drive = rng.integers(-3000, 3000, n)
        sa, a = step("s4d", drive, a, s4d)
        sb, b = step("rf", drive, b, rf)
        np.testing.assert_array_equal(a.states, b.states)
        assert not sa.any() and not sb.any()
        moved += int(np.count_nonzero(a.states))
    assert moved > 0


def test_the_sigmoid_tables_error_is_the_stated_bound():
    """|σ_int(g)/2^12 − σ(g/2^f)| over every integer gate g in ±12 (real units), float64 σ."""
    worst = 0.0
    for gate_frac in (0, 3, 5, 8, 12):
        g = np.arange(-(12 << gate_frac), (12 << gate_frac) + 1)
        got = np.array([sigmoid_int(int(v), gate_frac, SIGMOID_TABLE) for v in g]) / 4096.0
        exact = 1.0 / (1.0 + np.exp(-g / 2.0**gate_frac))
        worst = max(worst, float(np.abs(got - exact).max()))
        assert np.all(np.diff(got) >= 0), "monotone"
    assert worst <= SIGMOID_MAX_ERROR
    assert worst > 1 / 256 - 1e-4, f"the bound {SIGMOID_MAX_ERROR} is tight: measured {worst}"
    assert math.isclose(SIGMOID_TABLE[256] / 4096, 1 / (1 + math.exp(-1 / 64)), abs_tol=2**-13)


VTH = 1 << 12


def spiking_ssm_network(h: int = 6, modes: int = 4, blocks: int = 2, classes: int = 3, seed: int = 0):
    """A SpikingSSM-shaped network under the loihi2 profile, its integers set by hand from a float
    S4D-Lin spectrum (the quantizer's work, not done here): encoder Dense 1 → H; per block the
    s4d states (λ = exp(dt·(−1/2 + iπn)), gain ≈ 4·(1 − |λ|), input_shift 6), the readout Dense over (p, q)
    with per-row exponents, D·u through a diagonal Dense and an Add, Loihi's CUBA LIF soma (du 4095,
    dv 3584, reset to 0), a binary Dense H → 2H, the GLU, the residual Add (x held back 2 steps,
    24-bit saturating); the host's mean_linear decoder."""
    rng = np.random.default_rng(seed)
    prof = load_profile("loihi2")
    one, half = 1 << prof.coefficient_bits, prof.state_max + 1
    n = h * modes

    def w8(shape, scale):
        return (np.clip(np.rint(rng.normal(0, scale, shape) / 2), -128, 127) * 2).astype(np.int64)

    stages = [Dense("enc", INPUT, DenseSynapse(w8((h, 1), 40), 0, 8, True))]
    x = "enc"
    for b in range(blocks):
        dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), h)).repeat(modes)
        lam = np.exp(dt * (-0.5 + 1j * np.pi * np.tile(np.arange(modes), h)))
        gain = np.clip(np.rint(4 * one * (1 - np.abs(lam))), 1, one).astype(np.int64)
        s4d = S4dParams(np.rint(lam.real * one).astype(np.int64), np.rint(lam.imag * one).astype(np.int64),
                        gain, np.zeros(n, np.int64), prof.coefficient_bits, prof.input_shift, half, 1)
        readout = DenseSynapse(w8((h, 2 * n), 40), -6, 8, True, rng.integers(-2, 1, h))
        d = np.diag(w8(h, 40)).astype(np.int64)
        lif = CubaParams(np.full(h, 4095), np.full(h, 3584), np.zeros(h, np.int64), np.zeros(h, np.int64),
                         VTH, prof.input_shift, prof.threshold_exponent, half)
        stages += [Neurons(f"b{b}.s4d", x, "s4d", s4d, 1 << 12),
                   Dense(f"b{b}.C", f"b{b}.s4d", readout),
                   Dense(f"b{b}.D", x, DenseSynapse(d, 0, 8, True)),
                   Add(f"b{b}.y", (f"b{b}.C", f"b{b}.D"), 24, "saturate"),
                   Neurons(f"b{b}.lif", f"b{b}.y", "cuba", lif, VTH << 6),
                   Dense(f"b{b}.mix", f"b{b}.lif", DenseSynapse(w8((2 * h, h), 120), 4, 8, False)),
                   Glu(f"b{b}.glu", f"b{b}.mix", GluParams(rng.integers(-200, 200, h), rng.integers(-500, 500, h), 10, half, 1)),
                   Add(f"b{b}.res", (x, f"b{b}.glu"), 24, "saturate", (2, 0))]
        x = f"b{b}.res"
    stages.append(MeanLinear("decoder", x, rng.normal(0, 1, (classes, h)), rng.normal(0, 0.1, classes), 2.0**10))
    return FixedPointNetwork("spiking_ssm", 1, stages, 2, prof)


def test_a_spiking_ssm_network_equals_the_reference_and_round_trips(tmp_path):
    network = spiking_ssm_network()
    assert graph_problem(network.stages, network.n_inputs) is None and not network.is_chain
    check_network(network)  # every value legal under the loihi2 profile
    rng = np.random.default_rng(1)
    x = np.clip(rng.normal(0.5, 0.6, (3, 40, 1)), 0, None)
    ref = assert_graph_matches_reference(network, x)
    somas = [l for l, s in enumerate(network.neuron_stages) if s.kind == "cuba"]
    rates = [np.mean([sample[l].spikes for sample in ref.traces]) for l in somas]
    assert all(0.01 < r < 0.9 for r in rates), f"the somas neither silent nor saturated: {rates}"

    # the S4D states follow the float64 recurrence x_t = λ·x_{t−1} + g·(u_t << 6) on the same inputs
    s4d = network.neuron_stages[0]
    lam = (s4d.params.lam_re + 1j * s4d.params.lam_im) / 4096.0
    g = s4d.params.gain / 4096.0
    modes = len(lam) // 6
    u = np.array([[frame[0] * w for w in network.stages[0].synapse.weights[:, 0]]
                  for frame in network.quantize_input(x[0])], np.float64) * 64  # enc output of each frame
    state, exact = np.zeros(len(lam), complex), []
    for t in range(len(u)):
        state = lam * state + g * np.repeat(u[t], modes)
        exact.append(state.copy())
    got = np.array(ref.traces[0][0].states[0]) + 1j * np.array(ref.traces[0][0].states[1])
    got = got[1 : 1 + len(u)]  # the encoder delivers frame t at step t + 1
    err = np.linalg.norm(got - np.array(exact)) / np.linalg.norm(exact)
    # truncation toward zero in every product biases slow modes (1 − |λ| ≈ 2 LSB): the spec
    # measured 1.36 % for F = 12, input_shift 6 (spiking_ssm.md §8.3)
    assert err < 0.02, f"relative error of the integer S4D states against float64: {err}"

    path = tmp_path / "ssm.loihi2.h5"
    write_artifact(network, path)
    back = read_artifact(path)
    assert [type(s) for s in back.stages] == [type(s) for s in network.stages]
    assert artifact_identity(back) == recorded_identity(path) == artifact_identity(network)
    a, b = simulate(network, x, record_states=True), simulate(back, x, record_states=True)
    assert a.scores.tobytes() == b.scores.tobytes()
    streamed = list(simulate_batches(back, x, batch_size=2, keep_spikes=False))  # chunks and threads change nothing
    assert np.concatenate([r.scores for r in streamed]).tobytes() == a.scores.tobytes()
    for key in a.states:
        np.testing.assert_array_equal(a.states[key], b.states[key])
    edited = network.replace()
    edited.stages[-2] = Add("b1.res", ("b0.res", "b1.glu"), 25, "saturate", (2, 0))
    assert artifact_identity(edited) != artifact_identity(network)


def test_binary_s4d_heaviside_soma_runs():
    """Binary S4D: the Heaviside [y ≥ 0] (threshold −1) in place of the LIF, equal to the reference."""
    network = spiking_ssm_network(blocks=1)
    lif = network.stage("b0.lif")
    network.stages[network.stages.index(lif)] = Neurons("b0.lif", "b0.y", "heaviside",
                                                       HeavisideParams(np.zeros(6, np.int64), -1, 6), 1)
    check_network(network)
    x = np.clip(np.random.default_rng(2).normal(0.5, 0.6, (2, 30, 1)), 0, None)
    ref = assert_graph_matches_reference(network, x)
    assert 0 < np.mean([sample[1].spikes for sample in ref.traces]) < 1


@pytest.mark.parametrize("edit, message", [
    (lambda st: st.insert(9, Glu("odd", "b0.y", GluParams(np.zeros(2, np.int64), np.zeros(2, np.int64), 8, 1 << 23, 1))), "GLU 'odd' reads 5 values"),
    (lambda st: st.__setitem__(8, Add("b0.res", ("enc", "b0.glu"), 24, "saturate", (1, 0))), "same step"),
    (lambda st: st.__setitem__(8, Add("b0.res", ("enc", "b0.glu"), 24, "clip", (2, 0))), "overflow rule 'clip'"),
    (lambda st: st.insert(6, Neurons("bad", "b0.lif", "cuba", st[5].params, 1)), "reads the spikes"),
    (lambda st: st.__setitem__(1, Neurons("b0.s4d", "enc", "s4d", S4dParams(*(np.zeros(7, np.int64),) * 4, 12, 6, 1 << 23, 1), 1)),
     "not a multiple"),
    (lambda st: st.__setitem__(-1, MeanLinear("decoder", "b0.res", np.zeros((3, 4)), np.zeros(3), 1.0)), "mean_linear"),
])
def test_graph_rules_of_the_new_stages_are_refused_in_one_line(edit, message):
    network = spiking_ssm_network(h=5, blocks=1)
    stages = list(network.stages)
    edit(stages)
    problem = graph_problem(stages, network.n_inputs)
    assert problem is not None and message in problem and "\n" not in problem, problem


def test_per_row_exponents_are_checked_against_the_profile():
    network = spiking_ssm_network(blocks=1)
    network.stage("b0.C").synapse.row_exp[0] = -20  # −8 − 20 is below the profile's exponent_min
    with pytest.raises(SilifDeployError, match="stage 'b0.C' weight_exp \\+ row_exp"):
        check_network(network)


@pytest.mark.lava
def test_lava_takes_the_graded_stages_and_refuses_a_readout_without_its_dense():
    """Every SpikingSSM stage has a Lava process (``tests/test_lava_ssm.py`` runs them); what Lava
    still refuses, in one line before anything is built, is a softmax readout reading values
    directly: it is Lava's own LIF behind a Dense of its own."""
    from silif_deploy.converters.lava_backend.network import check_lava_compatible
    from silif_deploy.hw_models.network import SoftmaxSum

    check_lava_compatible(spiking_ssm_network(blocks=1))
    network = spiking_ssm_network(blocks=1)
    readout = CubaParams(*(np.zeros(6, np.int64),) * 4, 100, 6, 6, 1 << 23)
    network.stages[-1:] = [Neurons("readout", "b0.res", "cuba", readout, 1), SoftmaxSum("scores", "readout")]
    assert graph_problem(network.stages, network.n_inputs) is None
    with pytest.raises(SilifDeployError, match="the readout 'readout' reads 'b0.res' directly.*--engine fixed") as err:
        check_lava_compatible(network)
    assert "\n" not in str(err.value)
