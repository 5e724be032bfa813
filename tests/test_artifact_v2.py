"""Artifact format version 2: the graph of stages in the file (``docs/artifact.md``).

A residual graph built from quantized layers (so every value is legal under the loihi2 profile)
is written and read back: the same stages, the same identity, bit-identical outputs. A chain
written as version 2 keeps the identity its version 1 file recorded. Edits of the ``stages``
attribute that break the graph's rules are refused in one line.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from random_networks import float_network

from silif_deploy.converters.artifact import artifact_identity, read_artifact, recorded_identity, write_artifact
from silif_deploy.converters.quantize import quantize
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.network import INPUT, Add, Dense, FixedPointNetwork, Neurons, SoftmaxSum
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate

V1 = Path(__file__).parent / "fixtures" / "v1_mixed_chain.loihi2.h5"


def residual_network() -> FixedPointNetwork:
    """input → A (silif) and B (csilif), A + B → graded Dense → C (lif) → readout."""
    prof, rng = load_profile("loihi2"), np.random.default_rng(3)
    layers = {}
    for name, kind, sizes in (("A", "silif", [12, 10]), ("B", "csilif", [12, 10]), ("C", "lif", [10, 8])):
        net = float_network(rng, kind, sizes, 4)
        for layer in net.hidden:
            layer.weight *= 4.0
        layers[name] = quantize(net, prof, state_ranges=[2.0], readout_range=4.0)
    c = layers["C"]
    stages = []
    for name, source in (("A", INPUT), ("B", INPUT), ("C", "A+B")):
        layer = layers[name].hidden[0]
        syn = dataclasses.replace(layer.synapse, graded=True) if name == "C" else layer.synapse
        stages += [Dense(f"{name}.dense", source, syn), Neurons(name, f"{name}.dense", layer.kind, layer.params, layer.scale)]
        if name == "B":
            stages.append(Add("A+B", ("A", "B")))
    stages += [Dense("readout.dense", "C", c.readout.synapse),
               Neurons("readout", "readout.dense", "cuba", c.readout.params, c.readout.scale), SoftmaxSum("scores", "readout")]
    return FixedPointNetwork("residual", 12, stages, c.input_frac_bits, prof, provenance={"note": "test"})


@pytest.fixture(scope="module")
def residual(tmp_path_factory) -> tuple[FixedPointNetwork, Path]:
    path = tmp_path_factory.mktemp("v2") / "residual.loihi2.h5"
    network = residual_network()
    write_artifact(network, path)
    return network, path


def test_a_residual_graph_round_trips(residual):
    network, path = residual
    back = read_artifact(path)
    assert not back.is_chain
    assert [(type(s), s.name) for s in back.stages] == [(type(s), s.name) for s in network.stages]
    assert artifact_identity(back) == artifact_identity(network) == recorded_identity(path)
    x = np.random.default_rng(0).poisson(0.8, (3, 20, 12)).astype(np.float32)
    a, b = simulate(network, x, record_states=True), simulate(back, x, record_states=True)
    assert all(s.sum() > 0 for s in a.spikes), "silent layers: the comparison would be vacuous"
    for key, want in a.to_arrays().items():
        assert b.to_arrays()[key].tobytes() == want.tobytes(), key
    with h5py.File(path) as f:
        assert f.attrs["format_version"] == 2
        assert json.loads(f["layers/1"].attrs["states"]) == ["p", "q"]


def test_a_chain_keeps_its_version_1_identity(tmp_path):
    network = read_artifact(V1)
    write_artifact(network, tmp_path / "v2.loihi2.h5")
    back = read_artifact(tmp_path / "v2.loihi2.h5")
    assert back.is_chain and artifact_identity(back) == recorded_identity(V1)


def test_the_identity_sees_the_graph(residual):
    network, _ = residual
    rewired = network.replace(stages=[Add("B+A", ("B", "A")) if isinstance(s, Add) else s for s in network.stages])
    rewired.stages[7] = dataclasses.replace(rewired.stages[7], source="B+A")
    assert artifact_identity(rewired) != artifact_identity(network)


def _edit_stages(src: Path, dst: Path, edit) -> None:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        stages = json.loads(f.attrs["stages"])
        edit(stages)
        f.attrs["stages"] = json.dumps(stages)


@pytest.mark.parametrize("edit, message", [
    (lambda st: st[4].update(inputs=["A", "C"]), "no earlier stage"),
    (lambda st: st.insert(7, {"name": "late", "type": "add", "inputs": ["A", "C"]}), "sizes differ"),
    (lambda st: st[4].update(type="multiply"), "damaged artifact"),
    (lambda st: st[1].update(layer=1), "damaged artifact"),
    (lambda st: st.pop(), "the last stage must be a softmax_sum"),
    (lambda st: st[-1].update(inputs=["C"]), "not the last neuron stage"),
])
def test_broken_graphs_are_refused_in_one_line(residual, tmp_path, edit, message):
    _, path = residual
    bad = tmp_path / "bad.loihi2.h5"
    _edit_stages(path, bad, edit)
    with pytest.raises(SilifDeployError, match=message) as err:
        read_artifact(bad)
    assert "\n" not in str(err.value)
