"""Energy estimates: hand-computed energies of a tiny activity under every shipped profile.

The expected figures below are written from the published values (``metrics_energy.md`` §4), not
read from the profile files, so a wrong constant or a wrong formula both fail.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import HAS_TORCH
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.energy import CAUSES, dense_macs, estimate_energy
from silif_deploy.hw_models.energy_profile import (
    STATUSES,
    available_energy_profiles,
    energy_profile_from_text,
    load_energy_profile,
)

# Two layers, per-sample means: L0 is graded (the network input), 80 of its 100 neuron-steps updated.
ACTIVITY = [
    {"name": "L0", "sop": 1000.0, "presynaptic_events": 100.0, "spikes": 50.0, "neuron_updates": 80,
     "neurons": 10, "synapses": 140, "steps": 10, "graded": True},
    {"name": "readout", "sop": 200.0, "presynaptic_events": 50.0, "spikes": 0.0, "neuron_updates": 40,
     "neurons": 4, "synapses": 40, "steps": 10, "graded": False},
]
INACTIVE = [20, 0]


def _loihi_expected(syn, active, inactive, message, spike_out, t_syn, t_active, t_inactive, t_message,
                    t_spike, t_sync, static_w):
    """Hand formula of hw_models/energy.py, one layer at a time, with cores = 1."""
    layers = []
    for a, idle in zip(ACTIVITY, INACTIVE):
        layers.append((a["sop"] * syn, a["neuron_updates"] * active + idle * inactive,
                       a["spikes"] * spike_out + a["presynaptic_events"] * message))
    core = [(a["sop"] * t_syn + a["neuron_updates"] * t_active + idle * t_inactive + a["spikes"] * t_spike) / 10
            for a, idle in zip(ACTIVITY, INACTIVE)]
    step = max(core) + t_message + t_sync
    return layers, step, static_w * step * 10 * 1e3  # W · ns → pJ


LOIHI1 = _loihi_expected(23.6, 81, 52, 1.7 + 0.5 * 3.0 + 0.5 * 4.0, 0.0,
                         3.5, 8.4, 5.3, 2.1 + 0.5 * 4.1 + 0.5 * 6.5, 0.0, 113, 0.104)
LOIHI2 = _loihi_expected(23.6, 81, 52, 1.7 + 0.5 * 3.0 + 0.5 * 4.0, 0.0,
                         3.5, 8.4, 5.3, 2.1 + 0.5 * 4.1 + 0.5 * 6.5, 0.0, 113, 0.232)
SANAFE = _loihi_expected(35.5, 51.2 + 21.6, 51.2, 111.0 + 0.0 + 0.5 * 3.0 + 0.5 * 4.2, 69.3,
                         3.8, 6.0 + 3.7, 6.0, 5.1 + 16.0 + 0.5 * 4.1 + 0.5 * 6.5, 30.0, 600, 0.0)


@pytest.mark.parametrize("name, expected, e_mac", [
    ("loihi1", LOIHI1, 23.6), ("loihi2", LOIHI2, 23.6), ("sanafe-loihi", SANAFE, 35.5),
])
def test_chip_profiles_by_hand(name, expected, e_mac):
    layers, step_ns, static = expected
    est = estimate_energy(ACTIVITY, load_energy_profile(name))
    for got, (syn, neuron, routing) in zip(est.layers, layers):
        assert (got.synaptic_ops, got.neuron_updates, got.spikes_routing) == pytest.approx((syn, neuron, routing))
    assert est.step_ns == pytest.approx(step_ns)
    assert est.inference_ns == pytest.approx(step_ns * 10)
    assert est.static == pytest.approx(static)
    assert est.dense_macs == 10 * (140 + 40)
    assert est.dense_mac_energy == pytest.approx(1800 * e_mac)


def test_loihi1_numbers_spelled_out():
    """One profile with every number written out (a check on the helper above)."""
    est = estimate_energy(ACTIVITY, load_energy_profile("loihi1"))
    l0, ro = est.layers
    assert l0.synaptic_ops == pytest.approx(23_600.0)
    assert l0.neuron_updates == pytest.approx(80 * 81 + 20 * 52)  # 7,520
    assert l0.spikes_routing == pytest.approx(520.0)             # 100 messages × 5.2 pJ
    assert ro.synaptic_ops == pytest.approx(4_720.0)
    assert est.step_ns == pytest.approx(427.8 + 7.4 + 113)        # busiest core + message + barrier
    assert est.static == pytest.approx(0.104 * 5482.0 * 1e3)


def test_generic_45nm_charges_the_weight_fetch():
    est = estimate_energy(ACTIVITY, load_energy_profile("generic-45nm"))
    l0, ro = est.layers
    # graded input: fetch 10 + int32 mult 3.1 + add 0.1; binary spikes: fetch 10 + add 0.1
    assert l0.synaptic_ops == pytest.approx(1000 * 13.2)
    assert ro.synaptic_ops == pytest.approx(200 * 10.1)
    assert ro.synaptic_ops > 50 * 200 * 0.1  # the fetch, not the 0.1 pJ add, dominates
    # neuron update: two 64-bit SRAM accesses + 4 int32 multiplies + 6 adds = 33 pJ; no inactive cost
    assert l0.neuron_updates == pytest.approx(80 * 33.0)
    assert l0.spikes_routing == 0.0 and est.static == 0.0
    assert est.step_ns is None and est.inference_ns is None
    assert est.dense_mac_energy == pytest.approx(1800 * 13.2)
    assert any(item.startswith("static") for item in est.not_charged)


@pytest.mark.parametrize("name", ["loihi1", "loihi2", "sanafe-loihi", "generic-45nm"])
def test_split_sums_to_total(name):
    est = estimate_energy(ACTIVITY, load_energy_profile(name), cores=[2, 1])
    assert sum(est.by_cause.values()) == pytest.approx(est.total)
    assert sum(l.total for l in est.layers) + est.static == pytest.approx(est.total)
    d = est.to_dict()
    assert d["total_uj"] == pytest.approx(est.total / 1e6)
    assert sum(d["by_cause_uj"][c] for c in CAUSES) == pytest.approx(d["total_uj"])
    assert d["dynamic_uj"] == pytest.approx((est.total - est.static) / 1e6)


def test_messages_scale_with_destination_cores():
    profile = load_energy_profile("loihi1")
    one = estimate_energy(ACTIVITY, profile, cores=[1, 1])
    three = estimate_energy(ACTIVITY, profile, cores=[3, 1])
    assert three.layers[0].spikes_routing == pytest.approx(3 * one.layers[0].spikes_routing)
    # the L0 work is spread over 3 cores: the busiest core is now L0 / 3 or the readout
    assert three.step_ns == pytest.approx(max(427.8 / 3, 103.6) + 7.4 + 113)


def test_dense_macs_use_input_steps():
    assert dense_macs(ACTIVITY, 7) == 7 * 180
    est = estimate_energy(ACTIVITY, load_energy_profile("loihi2"), input_steps=7)
    assert est.dense_macs == 7 * 180
    assert est.inference_steps == 10  # the run's own steps (fixed point: T + delay)


def test_shipped_profiles_have_status_and_source_for_every_constant():
    assert set(available_energy_profiles()) >= {"loihi1", "loihi2", "sanafe-loihi", "generic-45nm"}
    for name in available_energy_profiles():
        profile = load_energy_profile(name)
        for c in [*profile.constants.values(), *profile.costs.values()]:
            assert c.status in STATUSES and c.source.strip(), (name, c.name)
    loihi2 = load_energy_profile("loihi2")
    per_op = ("synaptic_op", "neuron_update_active", "neuron_update_inactive", "spike_message")
    assert all(loihi2.costs[e].status == "assumed" for e in per_op)  # no public Loihi 2 per-op energy
    assert loihi2.constants["static_power_board"].status == "measured-silicon"


USER_PROFILE = """
name = "mine"
[constants.op]
value = 2.0
unit = "pJ"
status = "assumed"
source = "my lab"
[costs.synaptic_op]
energy = { op = 1.5 }
status = "assumed"
source = "1.5 ops per synaptic op"
"""


def test_user_profile_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(USER_PROFILE)
    est = estimate_energy(ACTIVITY, load_energy_profile(str(path)))
    assert est.total == pytest.approx((1000 + 200) * 3.0)
    assert est.dense_mac_energy is None


@pytest.mark.parametrize("edit, message", [
    (('status = "assumed"\nsource = "my lab"', 'status = "guess"\nsource = "my lab"'), "status 'guess'"),
    (('source = "my lab"', 'source = " "'), "needs a source"),
    (("op = 1.5", "nope = 1.5"), "unknown constant 'nope'"),
    (('unit = "pJ"', 'unit = "ns"'), "must be in pJ"),
    (("[costs.synaptic_op]", "[costs.synaptic_opp]"), "unknown cost 'synaptic_opp'"),
])
def test_bad_user_profiles_are_refused(edit, message):
    with pytest.raises(SilifDeployError, match=message):
        energy_profile_from_text(USER_PROFILE.replace(*edit), origin="mine.toml")


def test_unknown_profile_name():
    with pytest.raises(SilifDeployError, match="unknown energy profile 'loihi9'.*loihi2"):
        load_energy_profile("loihi9")


def test_missing_activity_field():
    with pytest.raises(SilifDeployError, match="layer 1 lacks synapses"):
        estimate_energy([ACTIVITY[0], {k: v for k, v in ACTIVITY[1].items() if k != "synapses"}],
                        load_energy_profile("loihi2"))


@pytest.mark.skipif(not HAS_TORCH, reason="builds a float model with PyTorch")
def test_report_command_writes_energy_and_mapping(tmp_path):
    import torch

    from silif_deploy.converters.artifact import write_artifact
    from silif_deploy.converters.float_params import float_network
    from silif_deploy.converters.quantize import quantize
    from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork
    from silif_deploy.deploy.cli import main
    from silif_deploy.hw_models.profile import load_profile

    torch.manual_seed(1)
    model = SpikingNetwork(NetworkConfig("silif", 6, [8], 3)).eval()
    network = quantize(float_network(model), load_profile())
    network.float_model = {"config": model.config.to_dict(),
                           "state_dict": {k: v.numpy() for k, v in model.state_dict().items()}}
    artifact = tmp_path / "tiny.loihi2.h5"
    write_artifact(network, artifact)
    x = (np.random.default_rng(0).random((3, 20, 6)) < 0.3).astype(np.int16)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "rep"
    assert main(["report", str(artifact), "--input", str(tmp_path / "x.npy"),
                 "--energy-profile", "loihi1", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    energy, mapping = report["energy"], report["mapping"]
    assert [p["cores"] for p in mapping["layers"]] == [1, 1] and mapping["total_cores"] == 2
    expected = estimate_energy(report["layers"], load_energy_profile("loihi1"), cores=[1, 1],
                               input_steps=report["totals"]["input_steps"])
    assert energy["total_uj"] == pytest.approx(expected.total / 1e6)
    assert energy["ann_comparison"]["dense_macs"] == 20 * (6 * 8 + 8 * 3)
    assert energy["profile"]["constants"]["synaptic_spike_op"]["status"] == "pre-silicon"
    assert "## Energy per inference" in (out / "report.md").read_text()
    assert (out / "energy.png").read_bytes()[:4] == b"\x89PNG"
