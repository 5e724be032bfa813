"""SANA-FE 2.2.9 (the installed package) against our ``sanafe-loihi`` energy profile.

* ``test_profile_constants_are_the_installed_preset``: every constant of the profile equals the
  value in the Loihi preset the installed ``sanafe`` ships (``sanafe/examples/loihi.yaml``, the
  file ``sanafe.load_loihi()`` reads), read at test time.
* ``test_sanafe_replay_agrees_with_our_estimate``: SANA-FE runs the same fixed-point spike trains
  (our simulator's, of the shipped synthetic-digit SiLIF model on 2 test utterances) on its own
  Loihi preset, and its energy and simulated time per inference are within :data:`TOLERANCE` of
  what ``silif-deploy report --energy-profile sanafe-loihi`` estimates.

SANA-FE has no SiLIF neuron, so the run **replays** our spikes: each layer's neurons are LIF
somas of the preset (``loihi_lif``; threshold out of reach) on one core per layer, receiving
every synapse of our Dense weights (synapse energy, soma access/update energy, axon-in), and next
to them on the same core replay neurons (the preset's ``input`` soma model) emit the layer's
recorded spikes to the next layer (axon-out messages, hops; the preset charges its input soma
nothing, so the replay unit is given the preset's own ``loihi_lif`` spike-out energy and latency).
The input channels are replayed from the input's non-zero bins. What SANA-FE computes on its own
is the event accounting: which synapses, somas, messages and hops each spike costs, the pipeline
timing per core and the tile synchronization. What is shared is the spike trains (ours).
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

sanafe = pytest.importorskip("sanafe", reason="the sanafe extra provides SANA-FE 2.2.9")
yaml = pytest.importorskip("yaml", reason="the sanafe extra provides pyyaml to read SANA-FE's preset")
pytest.importorskip("torch")

from silif_deploy.converters.artifact import write_artifact  # noqa: E402
from silif_deploy.converters.checkpoint import load_model  # noqa: E402
from silif_deploy.converters.float_params import float_network  # noqa: E402
from silif_deploy.converters.quantize import quantize  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.hw_models.energy_profile import load_energy_profile  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402
from silif_deploy.hw_models.simulator import simulate  # noqa: E402

TRAINED = Path(__file__).parents[1] / "examples" / "trained"
TOLERANCE = 0.02
"""Our estimate vs SANA-FE, relative, on energy and on time per inference: ours charges the mean
activity per step and one hop per message, SANA-FE the actual placement and per-step pipeline."""


def preset() -> dict:
    return yaml.safe_load(files("sanafe.examples").joinpath("loihi.yaml").read_text())


def unit(arch: dict, kind: str, name: str) -> dict:
    core = arch["architecture"]["tile"][0]["core"][0]
    return next(u for u in core[kind] if u["name"] == name)["attributes"]


def test_profile_constants_are_the_installed_preset() -> None:
    arch = preset()
    tile = arch["architecture"]["tile"][0]["attributes"]
    syn, soma = unit(arch, "synapse", "loihi_dense_synapse"), unit(arch, "soma", "loihi_lif")
    axon_in, axon_out = unit(arch, "axon_in", "loihi_in"), unit(arch, "axon_out", "loihi_out")
    want = {  # our constant: the preset's value (J → pJ, s → ns)
        "synapse_spike": syn["energy_process_spike"], "synapse_spike_time": syn["latency_process_spike"],
        "soma_access": soma["energy_access_neuron"], "soma_access_time": soma["latency_access_neuron"],
        "soma_update": soma["energy_update_neuron"], "soma_update_time": soma["latency_update_neuron"],
        "soma_spike": soma["energy_spike_out"], "soma_spike_time": soma["latency_spike_out"],
        "axon_out_message": axon_out["energy_message_out"], "axon_out_message_time": axon_out["latency_message_out"],
        "axon_in_message": axon_in["energy_message_in"], "axon_in_message_time": axon_in["latency_message_in"],
        "hop_ew": tile["energy_east_hop"], "hop_ew_time": tile["latency_east_hop"],
        "hop_ns": tile["energy_north_hop"], "hop_ns_time": tile["latency_north_hop"],
        "sync_one_tile": arch["architecture"]["attributes"]["latency_sync"][1],
    }
    assert tile["energy_west_hop"] == tile["energy_east_hop"] and tile["energy_south_hop"] == tile["energy_north_hop"]
    profile = load_energy_profile("sanafe-loihi")
    for name, value in want.items():
        assert profile.constants[name].value == pytest.approx(value * 1e12 if profile.constants[name].unit == "pJ"
                                                              else value * 1e9, rel=1e-12), name
    assert sanafe.__name__ and "2.2.9" in profile.description


def replay_arch(tmp_path: Path):
    """The installed preset plus one soma unit for replay neurons: the input model, charged the
    preset's own ``loihi_lif`` spike-out energy and latency. The chip is cut to its first tile
    (4 cores: the replayed network uses cores 0–3 of tile 0 either way, so hops, messages and the
    one-tile synchronization are unchanged): building all 32 tiles takes ≈8 s."""
    arch = preset()
    arch["architecture"]["attributes"].update(width=1, height=1)
    arch["architecture"]["tile"][0]["name"] = "loihi_tile[0..0]"
    core = arch["architecture"]["tile"][0]["core"][0]
    lif = unit(arch, "soma", "loihi_lif")
    core["soma"].append({"name": "replay[0..1023]", "attributes": {  # as the preset's inputs: one unit per neuron
        "model": "input", "energy_access_neuron": 0.0, "latency_access_neuron": 0.0, "energy_update_neuron": 0.0,
        "latency_update_neuron": 0.0, "energy_spike_out": lif["energy_spike_out"],
        "latency_spike_out": lif["latency_spike_out"]}})
    path = tmp_path / "loihi_replay.yaml"
    path.write_text(yaml.safe_dump(arch))
    return sanafe.load_arch(str(path))


def run_sanafe(chip, arch, weights: list[np.ndarray], trains: list[np.ndarray], steps: int) -> tuple[float, float]:
    """Energy (J) and simulated time (s) of one sample: ``trains[0]`` the input's events (T, N_in),
    ``trains[l + 1]`` hidden layer l's spikes; layer l's events go out l steps later (one step of
    Dense delay per layer, as our hardware model pipelines them)."""
    cores = arch.cores()
    net = sanafe.Network()
    sources = [net.create_neuron_group("input", weights[0].shape[1], {})]
    sources[0].map_to_core(cores[0])
    for l, w in enumerate(weights):
        layer = net.create_neuron_group(f"layer{l}", w.shape[0], {"threshold": 1e30}, soma_hw_name="loihi_lif")
        layer.map_to_core(cores[l + 1])
        sources[l].connect_neurons_dense(layer, {"weight": w.T.astype(float).ravel().tolist()})
        if l + 1 < len(weights):
            replay = net.create_neuron_group(f"replay{l}", w.shape[0], {})
            replay.map_to_core(cores[l + 1])
            sources.append(replay)
    for l, (group, train) in enumerate(zip(sources, trains)):
        padded = np.zeros((steps, train.shape[1]), np.int64)
        padded[l : l + len(train)] = train != 0
        unit_name = "loihi_inputs" if l == 0 else "replay"  # an input soma unit holds one neuron's train
        for n, neuron in enumerate(group.neurons):
            neuron.set_attributes(soma_hw_name=f"{unit_name}[{n}]", model_attributes={"spikes": padded[:, n].tolist()})
    chip.reset()
    chip.load(net)
    result = chip.sim(steps, processing_threads=1)
    return result["energy"]["total"], result["sim_time"]


def test_sanafe_replay_agrees_with_our_estimate(tmp_path, capsys) -> None:
    x = np.load(TRAINED / "synth_digits_test.npz")["x"][:2]
    np.save(tmp_path / "x.npy", x)
    network = quantize(float_network(load_model(TRAINED / "synth_digits_silif_2x128.pt")), load_profile("loihi2"))
    write_artifact(network, tmp_path / "silif.loihi2.h5")
    assert main(["report", str(tmp_path / "silif.loihi2.h5"), "--input", str(tmp_path / "x.npy"),
                 "--energy-profile", "sanafe-loihi", "-o", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    energy = report["energy"]
    assert [layer["cores"] for layer in report["mapping"]["layers"]] == [1, 1, 1]  # one core per layer, as replayed
    ours_uj, ours_ms = energy["total_uj"], energy["latency"]["inference_ns"] * 1e-6

    run = simulate(network, x.astype(np.float32))
    arch = replay_arch(tmp_path)
    weights = [layer.synapse.weights for layer in network.layers]
    steps = x.shape[1] + network.delay
    chip = sanafe.SpikingChip(arch)
    runs = [run_sanafe(chip, arch, weights, [x[b], *(s[b] for s in run.spikes)], steps) for b in range(len(x))]
    theirs_uj, theirs_ms = np.mean([r[0] for r in runs]) * 1e6, np.mean([r[1] for r in runs]) * 1e3
    print(f"energy per inference: ours {ours_uj:.3f} uJ, SANA-FE {theirs_uj:.3f} uJ; "
          f"time: ours {ours_ms:.4f} ms, SANA-FE {theirs_ms:.4f} ms")
    assert ours_uj == pytest.approx(theirs_uj, rel=TOLERANCE)
    assert ours_ms == pytest.approx(theirs_ms, rel=TOLERANCE)
