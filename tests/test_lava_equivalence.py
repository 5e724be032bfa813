"""Our Lava processes equal our simulator bit for bit: hidden spikes at every step, the readout
membrane trajectory, and every hidden state after the last step, for every neuron kind.

Runs in the Lava environment (``make test-lava``); the SSC artifacts come from
``tests/test_lava_fixtures.py``, run first in the main environment by ``make test``.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lava")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402

from random_networks import fixed_networks, float_network  # noqa: E402
from silif_deploy.converters.artifact import read_artifact  # noqa: E402
from silif_deploy.converters.lava_backend.network import LAVA_MAX_WEIGHT_BITS, to_lava  # noqa: E402
from silif_deploy.converters.lava_backend.runner import run_lava  # noqa: E402
from silif_deploy.converters.quantize import quantize  # noqa: E402
from silif_deploy.errors import SilifDeployError  # noqa: E402
from silif_deploy.hw_models.network import FixedPointNetwork  # noqa: E402
from silif_deploy.hw_models.neuron_kinds import HIDDEN_KINDS, KINDS  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402
from silif_deploy.hw_models.simulator import simulate, simulate_raw  # noqa: E402

pytestmark = [pytest.mark.lava, pytest.mark.timeout(300)]

ARTIFACTS = Path(__file__).parent / ".artifacts"


def assert_equal_runs(network: FixedPointNetwork, x: np.ndarray) -> None:
    lava = run_lava(network, x, timeout_s=120, record_states=True)
    sim = simulate(network, x, record_states=True)
    raw = simulate_raw(network, x, record_states=True)
    for l, (got, want) in enumerate(zip(lava.spikes, sim.spikes)):
        np.testing.assert_array_equal(got, want, err_msg=f"hidden layer {l} spikes")
    np.testing.assert_array_equal(lava.states["v_readout"], sim.states["v_readout"], err_msg="readout v")
    np.testing.assert_array_equal(lava.readout_u, sim.readout_u)
    np.testing.assert_array_equal(lava.scores, sim.scores)
    for l, layer in enumerate(network.hidden):
        for i, name in enumerate(KINDS[layer.kind].states):
            want = raw[l]["states"][i][:, -1]
            np.testing.assert_array_equal(lava.states[f"{name}_{l}_final"], want, err_msg=f"final {name}_{l}")


@pytest.mark.parametrize("kind", HIDDEN_KINDS)
def test_quantized_random_network(kind: str) -> None:
    """A random float network of each kind, quantized as an export does (count input, graded)."""
    rng = np.random.default_rng(HIDDEN_KINDS.index(kind))
    net = float_network(rng, kind, [10, 12, 9], 4)
    for layer in net.hidden:
        layer.weight *= 4.0  # lively layers: the comparison must see spikes
    net.readout.coefficients["alpha"][:] = [0.9, 0.95, 0.9, 0.95]  # two readout groups in Lava
    x = rng.poisson(1.0, (2, 16, 10)).astype(np.float32)
    network = quantize(net, load_profile("loihi2"), state_ranges=[2.0, 2.0], readout_range=4.0)
    sim = simulate(network, x)
    assert all(s.sum() > 0 for s in sim.spikes), "the network is silent: the comparison would be vacuous"
    assert_equal_runs(network, x)


def test_real_valued_input() -> None:
    """Real-valued inputs travel as signed graded payloads round(x·2^f)."""
    rng = np.random.default_rng(7)
    net = float_network(rng, "silif", [6, 8], 3)
    net.hidden[0].weight *= 4.0
    x = rng.normal(0.0, 2.0, (1, 14, 6))
    network = quantize(net, load_profile("loihi2"), calibration_input=x)
    assert network.input_frac_bits > 0 and network.quantize_input(x).min() < 0
    assert_equal_runs(network, x)


def test_wide_profile_is_refused() -> None:
    """16-bit weights are beyond Lava's Dense: refused before any process is built."""
    network = quantize(float_network(np.random.default_rng(1), "silif", [6, 8], 3), load_profile("loihi2-wide"))
    with pytest.raises(SilifDeployError, match="16-bit weights but Lava's Dense takes at most 8"):
        to_lava(network, n_steps=5)


def _lava_compatible(network: FixedPointNetwork) -> FixedPointNetwork:
    """The drawn network made expressible with Lava's own LIF readout: 24-bit arithmetic, two
    (du, dv) groups, and Dense outputs below 2^18 (see test_lava_oracle for why)."""
    ro = network.readout
    p = ro.params
    pick = np.arange(ro.size) % 2
    params = p._replace(du=p.du[pick], dv=p.dv[pick], half=1 << 23, vth=min(p.vth, (1 << 17) - 1))
    syn = ro.synapse
    exp = syn.weight_exp
    while exp > -8 and int(np.abs(syn.weights).sum(axis=1).max(initial=0)) << max(exp, 0) >= 1 << 17:
        exp -= 1
    readout = dataclasses.replace(ro, params=params, synapse=dataclasses.replace(syn, weight_exp=exp))
    return network.replace(readout=readout)


@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(fixed_networks(max_depth=2, max_width=6, max_steps=20, max_batch=1))
def test_extreme_random_network(case) -> None:
    """Parameters over their full ranges (both overflow rules, 24- and 32-bit hidden states,
    perfect integrators, growing resonators), as the simulator's own bit-accuracy tests draw them."""
    network, x = case
    assume(all(layer.synapse.num_weight_bits <= LAVA_MAX_WEIGHT_BITS for layer in network.layers))
    assert_equal_runs(_lava_compatible(network), x)


@pytest.mark.parametrize("model", ["silif", "csilif"])
def test_ssc_checkpoint(model: str) -> None:
    """The shared SSC 2x512 checkpoints, quantized with the default profile: 2 samples, 20 steps."""
    path = ARTIFACTS / f"ssc_{model}.loihi2.h5"
    inputs = ARTIFACTS / f"ssc_{model}_input.npy"
    if not path.is_file() or not inputs.is_file():
        pytest.fail(f"{path} or {inputs} is missing: run tests/test_lava_fixtures.py in the main environment "
                    "first (`make test-lava` does: its lava-fixtures step)")
    network = read_artifact(path)
    x = np.load(inputs)
    assert_equal_runs(network, x)
