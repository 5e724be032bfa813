"""The test families' hardware side (``tests/families/*_hw.py``): a one-state kind (leaky1) and a
two-state kind with a synaptic current (synlif), each added by its module alone.

- Random chains mixing them with built-in kinds simulate bit for bit as the scalar reference
  running each family's rule as written here from its record's docstring (not its kernel).
- leaky1 is LIF with one state: a leaky1 network and the equal lif network simulate bit-identically
  (the lif kind runs the adaptive kernel with w = 0: a different kernel, the same arithmetic).
- Lava (``FixedPointNeurons`` with a (k, N) state Var) equals the simulator on random networks of
  each family, every state after the last step included.
- Artifacts of the families round-trip, their values checked against the profile like any kind's.
"""

from __future__ import annotations

import numpy as np
import pytest
import scalar_reference
from families.leaky1_hw import LeakyParams
from families.synlif_hw import SynLifParams
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from random_networks import fixed_networks, hidden_params, ints
from scalar_reference import tz

from silif_deploy.hw_models.network import FixedLayer
from silif_deploy.hw_models.neuron_kinds import HIDDEN_KINDS, KINDS
from silif_deploy.hw_models.simulator import simulate

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FAMILIES = ("leaky1", "synlif")


def leaky1_rule(a: int, x: list[int], s: int, p: dict, n: int, kind: str, ev) -> tuple[int, list[int]]:
    """``LeakyParams``: v_t = ovf(tz(α·(v_{t−1} − θ·s_{t−1}), F) + tz(g·(A_t + bias), F)); s_t = v_t > θ."""
    (v,) = x
    f, theta = p["frac_bits"], p["threshold"]
    v_new = tz(p["alpha"][n] * (v - theta * s), f) + tz(p["gain"][n] * ((a << p["input_shift"]) + p["bias"][n]), f)
    v_new = ev.apply(v_new, p["mode"], p["half"], kind, "v")
    return int(v_new > theta), [v_new]


def synlif_rule(a: int, x: list[int], s: int, p: dict, n: int, kind: str, ev) -> tuple[int, list[int]]:
    """``SynLifParams``: i_t = ovf_i(tz(β·i_{t−1}, F) + A_t + bias);
    v_t = ovf_v(tz(α·(v_{t−1} − θ·s_{t−1}), F) + tz(g·i_t, F)); s_t = v_t > θ."""
    i, v = x
    f, theta = p["frac_bits"], p["threshold"]
    i_new = ev.apply(tz(p["beta"][n] * i, f) + (a << p["input_shift"]) + p["bias"][n], p["i_mode"], p["half"], kind, "i")
    v_new = ev.apply(tz(p["alpha"][n] * (v - theta * s), f) + tz(p["gain"][n] * i_new, f), p["v_mode"], p["half"], kind, "v")
    return int(v_new > theta), [i_new, v_new]


scalar_reference.STEPS.update(leaky1=leaky1_rule, synlif=synlif_rule)


@st.composite
def layer_params(draw, kind: str, n: int, frac_bits: int, half: int, extreme: bool = False):
    """The families' parameters over their full ranges (as ``hidden_params`` draws the built-ins')."""
    if kind in HIDDEN_KINDS:
        return draw(hidden_params(kind, n, frac_bits, half, extreme))
    one = 1 << frac_bits
    threshold = draw(st.integers(1, (1 << 17) - 1)) << 6
    bias = ints(draw, n, -(1 << 20), 1 << 20, (0,))
    shift = draw(st.sampled_from([6, 6, 0, 3]))
    alpha = ints(draw, n, 0, one, (), extreme)
    if kind == "leaky1":
        return LeakyParams(alpha, one - alpha, bias, threshold, frac_bits, shift, half, draw(st.integers(0, 1)))
    beta = ints(draw, n, -one, one, (0,), extreme)
    return SynLifParams(alpha, one - alpha, beta, bias, threshold, frac_bits, shift, half,
                        draw(st.integers(0, 1)), draw(st.integers(0, 1)))


def family_networks(**kwargs):
    return fixed_networks(kinds=(*FAMILIES, *FAMILIES, "silif", "csilif"), layer_params=layer_params, **kwargs)


def test_families_declare_their_states():
    assert (KINDS["leaky1"].states, KINDS["leaky1"].buffers) == (("v",), 1)
    assert (KINDS["synlif"].states, KINDS["synlif"].buffers) == (("i", "v"), 2)


def test_random_family_networks_match_the_scalar_rules():
    from test_bit_accuracy import assert_matches_reference

    seen, events = set(), 0

    @settings(max_examples=120, **SETTINGS)
    @given(family_networks())
    def check(case):
        nonlocal events
        network, x = case
        ref = assert_matches_reference(network, x)
        seen.update(layer.kind for layer in network.hidden)
        events += sum(n for (kind, _, _), n in ref.events().items() if kind in FAMILIES)

    check()
    assert set(FAMILIES) <= seen
    assert events > 0, "no family state ever overflowed: the rules' overflow paths went untested"


def _as_leaky1(layer: FixedLayer) -> FixedLayer:
    p = layer.params
    return FixedLayer("leaky1", layer.synapse, LeakyParams(p.alpha, p.gain, p.bias, p.threshold, p.frac_bits,
                                                           p.input_shift, p.half, p.u_mode), layer.scale)


def test_leaky1_simulates_as_the_equal_lif_network():
    spiking = []

    @settings(max_examples=60, **SETTINGS)
    @given(fixed_networks(kinds=("lif",)))
    def check(case):
        lif, x = case
        leaky = lif.replace(hidden=[_as_leaky1(layer) for layer in lif.hidden])
        a, b = simulate(lif, x, record_states=True), simulate(leaky, x, record_states=True)
        assert a.scores.tobytes() == b.scores.tobytes() and a.readout_u.tobytes() == b.readout_u.tobytes()
        for l in range(len(lif.hidden)):
            np.testing.assert_array_equal(a.spikes[l], b.spikes[l])
            np.testing.assert_array_equal(a.states[f"u_{l}"], b.states[f"v_{l}"])
            assert not a.states[f"w_{l}"].any()
        for key, value in a.diagnostics.items():
            np.testing.assert_array_equal(value, b.diagnostics[key], err_msg=key)
        spiking.append(sum(int(s.sum()) for s in a.spikes))

    check()
    assert sum(n > 0 for n in spiking) > 20


def test_family_artifacts_round_trip_and_are_checked(tmp_path):
    from silif_deploy.converters.artifact import read_artifact, write_artifact
    from silif_deploy.errors import SilifDeployError

    @settings(max_examples=10, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(fixed_networks(max_depth=2, kinds=FAMILIES, layer_params=layer_params))
    def check(case):
        network, x = case
        # the file carries the profile's TOML: the drawn network must be the loihi2 profile's, its
        # values made legal under it (the draws span the kernels' whole safe range)
        prof = network.profile
        assume(prof.coefficient_bits == 12 and prof.state_bits == 24)
        assume(all(layer.synapse.num_weight_bits <= 8 and prof.weight_exp_min <= layer.synapse.weight_exp <= 7
                   for layer in network.layers))
        hidden = []
        for layer in network.hidden:
            p = layer.params
            fix = dict(input_shift=prof.input_shift, bias=np.clip(p.bias, -500_000, 500_000))
            fix.update(mode=1) if layer.kind == "leaky1" else fix.update(i_mode=0, v_mode=1)
            hidden.append(FixedLayer(layer.kind, layer.synapse, p._replace(**fix), layer.scale))
        ro = network.readout
        readout = FixedLayer("cuba", ro.synapse, ro.params._replace(bias_exp=np.clip(ro.params.bias_exp, 0, 7)), ro.scale)
        legal = network.replace(hidden=hidden, readout=readout)
        write_artifact(legal, tmp_path / "f.loihi2.h5")
        back = read_artifact(tmp_path / "f.loihi2.h5")
        assert [layer.kind for layer in back.hidden] == [layer.kind for layer in hidden]
        a, b = simulate(legal, x, record_states=True), simulate(back, x, record_states=True)
        for key, value in a.to_arrays().items():
            assert b.to_arrays()[key].tobytes() == value.tobytes(), key
        bad = legal.replace(hidden=[FixedLayer(hidden[0].kind, hidden[0].synapse,
                                               hidden[0].params._replace(alpha=hidden[0].params.alpha + (2 << 24)),
                                               hidden[0].scale), *hidden[1:]])
        write_artifact(bad, tmp_path / "bad.loihi2.h5")
        with pytest.raises(SilifDeployError, match="alpha"):
            read_artifact(tmp_path / "bad.loihi2.h5")

    check()


@pytest.mark.lava
@pytest.mark.timeout(600)
def test_lava_runs_the_families_as_the_simulator():
    pytest.importorskip("lava")
    from test_lava_equivalence import _lava_compatible, assert_equal_runs

    from silif_deploy.converters.lava_backend.network import LAVA_MAX_WEIGHT_BITS

    seen = set()

    @settings(max_examples=8, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(fixed_networks(max_depth=2, max_width=6, max_steps=16, max_batch=1, kinds=FAMILIES, layer_params=layer_params))
    def check(case):
        network, x = case
        assume(all(layer.synapse.num_weight_bits <= LAVA_MAX_WEIGHT_BITS for layer in network.layers))
        assert_equal_runs(_lava_compatible(network), x)
        seen.update(layer.kind for layer in network.hidden)

    check()
    assert seen == set(FAMILIES)


def test_a_family_leaves_the_compiled_cache_usable_without_it(tmp_path):
    """numba's on-disk cache of the layer loop is shared by every process: a signature compiled
    for a kind defined outside the package (here, after simulating a family) must not enter it, or
    a process that never imported the family could not load the cache."""
    import subprocess
    import sys
    from pathlib import Path

    @settings(max_examples=2, **SETTINGS)
    @given(family_networks(max_depth=1))
    def run_family(case):
        simulate(*case)

    run_family()
    fixture = Path(__file__).parent / "fixtures" / "v1_mixed_chain.loihi2.h5"
    code = ("import numpy as np; from silif_deploy.converters.artifact import read_artifact; "
            "from silif_deploy.hw_models.simulator import simulate; "
            f"print(simulate(read_artifact({str(fixture)!r}), np.ones((1, 5, 12))).scores.shape)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "(1, 4)", out.stderr[-2000:]
