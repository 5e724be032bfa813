"""The report, metrics and energy of SpikingSSM / binary-S4D graph networks (``spiking_ssm.md`` §11).

What each test proves: on the hand-built SpikingSSM network of ``test_ssm_stages`` (H = 6, N/2 = 4
modes, 2 blocks, 3 classes) every per-stage count equals a count written by hand from the stage
shapes and T (graded MACs, adds, sigmoid lookups, graded messages, buffers, neuron updates), and
the spike-driven counts (SOPs, effective SOPs, sparsity) equal those made from the scalar
reference's soma spikes (``scalar_reference.py``, sharing no code with the simulator or the
metrics); the energy's graded cause equals the hand counts times each shipped profile's constants
read from its TOML text; the fidelity tally compares the soma stages (not the S4D states) at the
simulator's alignment, so a float run equal to the reference's spikes agrees fully and one flipped
spike costs exactly one entry; the float SpikingSSM description counts the block-diagonal readout
and the LIF's one state; the JSON, Markdown and PNG list every stage; chains keep their report.
"""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
from test_ssm_stages import spiking_ssm_network

import scalar_reference
from silif_deploy.converters.datasets import InputSource
from silif_deploy.deploy import energy_report, reporting
from silif_deploy.deploy.report_builder import build_report
from silif_deploy.hw_models import metrics
from silif_deploy.hw_models.energy import estimate_energy
from silif_deploy.hw_models.energy_profile import ENERGY_PROFILE_DIR, available_energy_profiles, load_energy_profile
from silif_deploy.hw_models.network import Neurons
from silif_deploy.hw_models.neuron_s4d import HeavisideParams
from silif_deploy.hw_models.run_result import RunResult
from silif_deploy.hw_models.simulator import simulate

H, MODES, BLOCKS, CLASSES, B, T = 6, 4, 2, 3, 3, 40


@pytest.fixture(scope="module")
def run():
    network = spiking_ssm_network(h=H, modes=MODES, blocks=BLOCKS, classes=CLASSES)
    x = np.clip(np.random.default_rng(1).normal(0.5, 0.6, (B, T, 1)), 0, None)
    result = simulate(network, x)
    description = metrics.describe_fixed(network)
    report = metrics.build_report(description, metrics.tally_run(description, x, result),
                                  input_info={"is_counts": False}, provenance={})
    ref = scalar_reference.run(network, x)
    somas = [i for i, s in enumerate(network.neuron_stages) if s.kind == "cuba"]
    soma_spikes = [np.array(ref.spikes[i], bool) for i in somas]  # aligned (B, T, H), from the reference
    return network, x, result, description, report, soma_spikes


def rows(report):
    return {r["name"]: r for r in report["layers"]}


def test_every_stage_is_a_row_with_hand_counted_graded_work(run):
    network, x, _, _, report, _ = run
    r = rows(report)
    assert report["rows"] == "stages"
    assert list(r) == ["input", *(s.name for s in network.stages)]
    n = H * MODES  # complex states per block
    nonzero_inputs = np.count_nonzero(network.quantize_input(x)) / B
    enc_weights = np.count_nonzero(network.stage("enc").synapse.weights)  # H·d_in = 6 (none rounded to 0)
    assert r["enc"]["graded_macs"] == nonzero_inputs * enc_weights  # input-driven: each non-zero input × its H weights
    assert r["input"]["graded_messages"] == nonzero_inputs  # one reader (the encoder)
    for b in range(BLOCKS):
        c = np.count_nonzero(network.stage(f"b{b}.C").synapse.weights)
        assert r[f"b{b}.s4d"]["graded_macs"] == 5 * n * T   # 4 rotation multiplies + 1 input gain per state
        assert r[f"b{b}.C"]["graded_macs"] == c * T         # every non-zero readout weight every step
        assert r[f"b{b}.D"]["graded_macs"] == H * T         # diagonal D
        assert r[f"b{b}.glu"]["graded_macs"] == H * T and r[f"b{b}.glu"]["sigmoid_lookups"] == H * T
        assert r[f"b{b}.y"]["graded_adds"] == r[f"b{b}.res"]["graded_adds"] == H * T
        assert r[f"b{b}.s4d"]["graded_messages"] == 2 * n * T  # p and q of every state to the readout
        assert r[f"b{b}.y"]["graded_messages"] == r[f"b{b}.glu"]["graded_messages"] == H * T
        readers = 3 if b < BLOCKS - 1 else 1  # the next block's s4d, D and residual; or the decoder
        assert r[f"b{b}.res"]["graded_messages"] == readers * H * T
        assert r[f"b{b}.s4d"]["buffers"] == H * 2 * MODES    # H·N
        assert r[f"b{b}.lif"]["buffers"] == H                # du = 4095: v is the LIF's one state
        assert r[f"b{b}.s4d"]["neuron_updates"] == (T + network.delay) * n
        assert r[f"b{b}.C"]["sop"] == r[f"b{b}.s4d"]["sop"] == 0  # graded presynaptic values: no SOPs
        assert r[f"b{b}.C"]["dense_every_step"] and not r["enc"]["dense_every_step"]
    assert r["decoder"]["graded_macs"] == H * CLASSES and r["decoder"]["graded_adds"] == H * T and r["decoder"]["host"]
    t = report["totals"]
    assert t["buffers"] == BLOCKS * (H * 2 * MODES + H) == 108
    macs = nonzero_inputs * enc_weights + H * CLASSES + sum(
        5 * n * T + np.count_nonzero(network.stage(f"b{b}.C").synapse.weights) * T + 2 * H * T for b in range(BLOCKS))
    assert t["graded_macs"] == macs
    assert t["graded_adds"] == BLOCKS * 2 * H * T + H * T
    assert t["graded_message_bits"] == pytest.approx(
        nonzero_inputs * network.profile.input_message_bits
        + 24 * BLOCKS * (2 * n * T + 2 * H * T) + 24 * H * T * (3 * (BLOCKS - 1) + 1))


def test_sops_and_sparsity_come_from_the_somas_spikes(run):
    network, _, _, _, report, soma_spikes = run
    r = rows(report)
    for b, spikes in enumerate(soma_spikes):
        mix = network.stage(f"b{b}.mix").synapse.weights
        per_neuron = spikes.sum(axis=(0, 1))
        assert r[f"b{b}.mix"]["presynaptic_events"] == spikes.sum() / B
        assert r[f"b{b}.mix"]["sop"] == spikes.sum() * 2 * H / B  # binary events × fan-out 2H
        assert r[f"b{b}.mix"]["effective_sop"] == (per_neuron * np.count_nonzero(mix, axis=0)).sum() / B
        assert r[f"b{b}.lif"]["spikes"] == spikes.sum() / B
        assert r[f"b{b}.lif"]["sparsity"] == pytest.approx(1 - spikes.mean())
        assert r[f"b{b}.lif"]["overflow_events"] == 0
    t = report["totals"]
    assert t["sop"] == sum(s.sum() for s in soma_spikes) * 2 * H / B
    assert 0 < t["sop"] < t["graded_macs"] / 10  # these models' cost is graded: never SOPs alone
    assert t["overflow_not_counted"] == [f"b{b}.{s}" for b in range(BLOCKS) for s in ("y", "glu", "res")]
    assert r["b0.y"]["overflow_events"] is None and not r["b0.glu"]["overflow_counted"]


def _profile_constant(name: str, event: str) -> float:
    """E(event) in pJ summed from the profile's TOML text (not through the profile loader)."""
    data = tomllib.loads((ENERGY_PROFILE_DIR / f"{name}.toml").read_text())
    return sum(count * data["constants"][k]["value"] for k, count in data["costs"][event]["energy"].items())


@pytest.mark.parametrize("name", ["loihi2", "loihi1", "sanafe-loihi", "generic-45nm"])
def test_energy_charges_each_graded_operation_its_own_cost(run, name):
    network, _, _, _, report, _ = run
    t = report["totals"]
    with_energy = energy_report.add_energy_sections(report, network, name)
    energy = with_energy["energy"]
    e_mac, e_add, e_msg = (_profile_constant(name, e) for e in ("graded_mac", "graded_add", "graded_message"))
    assert energy["by_cause_uj"]["graded_ops"] == pytest.approx(
        ((t["graded_macs"] + t["sigmoid_lookups"]) * e_mac + t["graded_adds"] * e_add) / 1e6)
    assert energy["by_cause_uj"]["synaptic_ops"] == pytest.approx(t["sop"] * _profile_constant(name, "synaptic_op") / 1e6)
    spike_msg = energy["by_cause_uj"]["spikes_routing"] - t["graded_messages"] * e_msg / 1e6
    assert spike_msg >= -1e-12  # the graded messages are inside the routing cause
    assert not [c for c in energy["not_charged"] if c.startswith("graded")]
    assert sum(energy["by_cause_uj"].values()) == pytest.approx(energy["total_uj"])
    assert energy["by_cause_uj"]["graded_ops"] > energy["by_cause_uj"]["synaptic_ops"]
    cores = {p["name"]: p["cores"] for p in with_energy["mapping"]["layers"]}
    assert set(cores) == {s.name for s in network.stages if type(s).__name__ in ("Neurons", "Add", "Glu")}


def test_every_shipped_profile_prices_graded_work_with_a_source():
    for name in available_energy_profiles():
        profile = load_energy_profile(name)
        for event in ("graded_mac", "graded_add", "graded_message"):
            cost = profile.costs[event]
            assert profile.energy_pj(event) > 0 and cost.status and cost.source.strip(), (name, event)


def test_fidelity_compares_the_somas_at_the_simulators_alignment(run):
    _, _, result, description, _, soma_spikes = run
    float_like = RunResult(result.scores, [s.copy() for s in soma_spikes], result.readout_u)
    tally = metrics.tally_fidelity(result, float_like, description)
    fid = metrics.fidelity_metrics(description, tally)
    assert [layer["name"] for layer in fid["layers"]] == ["b0.lif", "b1.lif"]
    assert all(layer["spike_agreement"] == 1.0 for layer in fid["layers"]) and fid["prediction_agreement"] == 1.0
    float_like.spikes[1][0, 5, 2] ^= True
    fid = metrics.fidelity_metrics(description, metrics.tally_fidelity(result, float_like, description))
    assert fid["layers"][0]["spike_agreement"] == 1.0
    assert fid["layers"][1]["spike_agreement"] == 1 - 1 / (B * T * H)


def test_binary_s4d_heaviside_holds_no_buffer():
    network = spiking_ssm_network(h=H, modes=MODES, blocks=1)
    lif = network.stage("b0.lif")
    network.stages[network.stages.index(lif)] = Neurons("b0.lif", "b0.y", "heaviside",
                                                       HeavisideParams(np.zeros(H, np.int64), -1, 6), 1)
    x = np.clip(np.random.default_rng(2).normal(0.5, 0.6, (2, 30, 1)), 0, None)
    description = metrics.describe_fixed(network)
    report = metrics.build_report(description, metrics.tally_run(description, x, simulate(network, x)),
                                  input_info={"is_counts": False}, provenance={})
    r = rows(report)
    assert r["b0.lif"]["buffers"] == 0 and r["b0.s4d"]["buffers"] == H * 2 * MODES
    assert report["totals"]["buffers"] == H * 2 * MODES
    assert r["b0.mix"]["sop"] == r["b0.lif"]["spikes"] * 2 * H > 0


def test_float_spiking_ssm_description_counts_the_block_diagonal_readout():
    from silif_deploy.converters.families.spiking_ssm import SpikingSSMConfig, build_model
    from silif_deploy.deploy.report_builder import describe_float_model

    h, n_state, blocks, length = 8, 8, 2, 20
    model = build_model(SpikingSSMConfig(1, h, n_state, blocks, 4, True), seed=0).eval()
    x = np.random.default_rng(0).normal(0, 1, (2, length, 1)).astype(np.float32)
    out = model.run(x)
    description = describe_float_model(model)
    report = metrics.build_report(description, metrics.tally_run(description, x, out), input_info={"is_counts": False},
                                  provenance={})
    r, t = rows(report), report["totals"]
    assert r["b0.C"]["graded_macs"] == h * n_state * length  # 2·H·N/2: each channel reads its own states
    assert r["b0.s4d"]["graded_macs"] == 5 * h * n_state // 2 * length
    assert t["buffers"] == blocks * (h * n_state + h)
    spikes = sum(int(s.sum()) for s in out.spikes)
    assert t["sop"] == spikes * 2 * h / 2
    assert t["parameters"] == sum(p.numel() for p in model.parameters())


def test_the_report_files_list_every_stage(run, tmp_path):
    network, x, *_ = run
    built = build_report(network, InputSource.from_array(x, None), model_source="hand.pt",
                         input_info={"kind": "array", "is_counts": False})
    paths = [tmp_path / n for n in ("r.json", "r.md", "r.png", "e.png")]
    reporting.write_report(built, *paths)
    report = json.loads(paths[0].read_text())
    md = paths[1].read_text()
    assert "## Per stage (per sample)" in md and "graded ops" in md
    for stage in network.stages:
        assert f"| {stage.name}" in md
    summary = reporting.summary_lines(report)
    assert summary[1].startswith("Per sample, graded work")  # graded work before the SOPs
    assert paths[2].read_bytes()[:4] == b"\x89PNG" and paths[3].read_bytes()[:4] == b"\x89PNG"
    assert report["model"]["hidden_sizes"] == [H, H]
