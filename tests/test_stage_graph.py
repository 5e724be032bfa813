"""The fixed-point network as a graph of stages: residual-style graphs (Add of two neuron stages'
spikes, graded Dense on the sum) simulate bit for bit as the scalar reference, which walks the
stages on its own (``scalar_reference.py``: Python ints, Lava-style Dense buffers); the rules of
the graph are refused in one line each.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from random_networks import residual_networks
from test_bit_accuracy import assert_matches_reference

from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.network import INPUT, Add, Dense, Neurons, graph_problem
from silif_deploy.hw_models.simulator import simulate

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_residual_graphs_match_the_scalar_reference():
    added: list[int] = []

    @settings(max_examples=60, **SETTINGS)
    @given(residual_networks())
    def check(case):
        network, x = case
        assert not network.is_chain
        ref = assert_matches_reference(network, x)
        # the sum really carried 2s (both branches spiking at once) in some of the cases
        a, b = (np.array([sample[l].spikes for sample in ref.traces]) for l in (0, 1))
        added.append(int(((a + b) == 2).sum()))

    check()
    assert sum(v > 0 for v in added) >= 5, "too few cases where both branches spike together"


def test_graph_rules_are_refused_in_one_line():
    @settings(max_examples=1, **SETTINGS)
    @given(residual_networks())
    def check(case):
        network, x = case
        stages = network.stages
        a = network.stage("A")
        problems = {
            "unequal delays": [*stages[:7], Add("bad", ("A", "C")), *stages[7:]],
            "unknown source": [Add("bad", ("A", "nowhere")), *stages],
            "dense feeds nothing": [*stages[:-1], Dense("lost", INPUT, stages[0].synapse), stages[-1]],
            "neurons without dense": [*stages[:2], Neurons("bad", "A", a.kind, a.params, a.scale), *stages[2:]],
            "no softmax_sum": stages[:-1],
            "same name": [*stages[:2], *stages[:2], *stages[2:]],
        }
        for what, bad in problems.items():
            problem = graph_problem(bad, network.n_inputs)
            assert problem is not None and "\n" not in problem, what
        assert "same step" in graph_problem(problems["unequal delays"], network.n_inputs)
        network.stages = problems["unequal delays"]
        with pytest.raises(SilifDeployError, match="the sources of an Add must arrive at the same step"):
            simulate(network, x)

    check()


@pytest.mark.lava
@pytest.mark.timeout(600)
def test_lava_runs_residual_graphs_as_the_simulator():
    """Lava (our AddValues process between the neuron stages and the graded Dense) equals the
    simulator: a quantized residual graph, then random ones made Lava-expressible."""
    pytest.importorskip("lava")
    from hypothesis import assume
    from test_artifact_v2 import residual_network
    from test_lava_equivalence import _lava_compatible, assert_equal_runs

    from silif_deploy.converters.lava_backend.network import LAVA_MAX_WEIGHT_BITS

    network = residual_network()
    x = np.random.default_rng(1).poisson(0.8, (1, 16, 12)).astype(np.float32)
    assert all(s.sum() > 0 for s in simulate(network, x).spikes), "silent layers: the comparison would be vacuous"
    assert_equal_runs(network, x)

    @settings(max_examples=6, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(residual_networks(max_width=6, max_steps=12, max_batch=1))
    def check(case):
        network, x = case
        assume(all(layer.synapse.num_weight_bits <= LAVA_MAX_WEIGHT_BITS for layer in network.layers))
        assert_equal_runs(_lava_compatible(network), x)

    check()
