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
import sys

import numpy as np
import pytest
from test_ssm_stages import spiking_ssm_network

import scalar_reference
from silif_deploy.converters.datasets import InputSource
from silif_deploy.deploy import energy_report, reporting
from silif_deploy.deploy.report_builder import build_report
from silif_deploy.hw_models import metrics
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.energy_profile import ENERGY_PROFILE_DIR, available_energy_profiles, load_energy_profile
from silif_deploy.hw_models.fixed_point import OVERFLOW_CODES
from silif_deploy.hw_models.glu import GluParams
from silif_deploy.hw_models.network import INPUT, Add, Dense, FixedPointNetwork, Glu, MeanLinear, Neurons
from silif_deploy.hw_models.neuron_s4d import HeavisideParams
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.run_result import RunResult
from silif_deploy.hw_models.simulator import simulate

if sys.version_info >= (3, 11):
    import tomllib
else:  # the Lava environment (Python 3.10) collects this module too
    import tomli as tomllib

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
    assert t["overflow_not_counted"] == [] and r["b0.y"]["overflow_counted"] and r["b0.glu"]["overflow_events"] == 0


def _one_stage_network(stage, h: int) -> FixedPointNetwork:
    """input (1 channel) → enc Dense (weights 100 into ``stage``'s sources) → ``stage`` → decoder."""
    n = 2 * h if isinstance(stage, Glu) else h
    enc = Dense("enc", INPUT, DenseSynapse(np.full((n, 1), 100, np.int64), 0, 8, True))
    decoder = MeanLinear("decoder", stage.name, np.ones((2, h)), np.zeros(2), 1.0)
    return FixedPointNetwork("spiking_ssm", 1, [enc, stage, decoder], 0, load_profile("loihi2"))


@pytest.mark.parametrize("rule", ["saturate", "wrap"])
def test_add_and_glu_overflows_are_counted_per_stage(rule):
    """Hand counts: a constant input 3 through weights 100 is 300 on every channel from step 1 to T
    (the Dense's one-step delay); 300 + 300 breaks an 8-bit Add every step, and the GLU's 300·σ(300)
    ≈ 300 breaks a 2·128-wide product every step: H·T overflows per sample each."""
    h, steps, batch = 3, 7, 2
    x = np.full((batch, steps, 1), 3.0)
    for stage in (Add("sum", ("enc", "enc"), 8, rule), Glu("glu", "enc", GluParams(np.zeros(h, np.int64), np.zeros(h, np.int64), 0, 128, OVERFLOW_CODES[rule]))):
        network = _one_stage_network(stage, h)
        description = metrics.describe_fixed(network)
        result = simulate(network, x)
        report = metrics.build_report(description, metrics.tally_run(description, x, result),
                                      input_info={"is_counts": False}, provenance={})
        row = rows(report)[stage.name]
        assert row["overflow_counted"] and row["overflow_events"] == h * steps, stage
        assert report["totals"]["overflow_events"] == h * steps
        assert result.diagnostics["stage_overflow_events"].tolist() == [[h * steps]] * batch


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


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A fresh SpikingSSM (H 8, N 8, 2 blocks) and binary-S4D checkpoint saved as ours, a labelled
    random input, and ``export --target loihi2 --calibrate`` of each (which writes the report)."""
    import torch

    from silif_deploy.converters.checkpoint import save_checkpoint
    from silif_deploy.converters.families.spiking_ssm import SpikingSSMConfig, build_model
    from silif_deploy.deploy.cli import main

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("e2e")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (12, 24, 1)).astype(np.float32)  # the fresh somas spike at 12–20 %
    np.savez(root / "x.npz", x=x, labels=rng.integers(0, 4, 12))
    out = {}
    for neuron in ("lif", "heaviside"):
        model = build_model(SpikingSSMConfig(1, 8, 8, 2, 4, True, neuron=neuron), seed=1).eval()
        save_checkpoint(model, root / f"{neuron}.pt")
        assert main(["export", str(root / f"{neuron}.pt"), "--target", "loihi2", "--calibrate", str(root / "x.npz"),
                     "-o", str(root / neuron)]) == 0
        out[neuron] = root / neuron
    return root, x, out, main


@pytest.mark.parametrize("neuron", ["lif", "heaviside"])
def test_export_and_report_on_a_spiking_ssm_checkpoint(exported, neuron):
    from silif_deploy.converters.artifact import read_artifact

    root, x, out, main = exported
    export_report = json.loads((out[neuron] / "report.json").read_text())
    assert export_report["rows"] == "stages" and (out[neuron] / "report.png").stat().st_size > 0
    artifact = out[neuron] / f"{neuron}.loihi2.h5"
    network = read_artifact(artifact)
    soma = "cuba" if neuron == "lif" else "heaviside"
    for profile in ("loihi2", "generic-45nm"):
        assert main(["report", str(artifact), "--input", str(root / "x.npz"), "--energy-profile", profile,
                     "-o", str(root / f"{neuron}-{profile}")]) == 0
        report = json.loads((root / f"{neuron}-{profile}" / "report.json").read_text())
        r, t = rows(report), report["totals"]
        steps = x.shape[1]
        s4d = [s for s in network.stages if isinstance(s, Neurons) and s.kind == "s4d"]
        assert len(s4d) == 2
        for stage in s4d:  # hand counts from the stage's size: H·N/2 = 32 complex states
            assert r[stage.name]["buffers"] == 2 * 32 and r[stage.name]["graded_macs"] == 5 * 32 * steps
        somas = [s.name for s in network.stages if isinstance(s, Neurons) and s.kind == soma]
        assert [layer["name"] for layer in report["fidelity"]["layers"]] == somas
        assert all(r[name]["buffers"] == (8 if soma == "cuba" else 0) for name in somas)
        assert t["buffers"] == 2 * (64 + (8 if soma == "cuba" else 0))
        assert t["sop"] == sum(r[n]["sop"] for n in r if r[n]["kind"] == "binary") > 0
        assert t["graded_macs"] > t["sop"] and not t["overflow_not_counted"]
        energy = report["energy"]
        assert energy["by_cause_uj"]["graded_ops"] > 0 and not [c for c in energy["not_charged"] if c.startswith("graded")]
        assert report["fidelity"]["prediction_agreement"] >= 0.75, report["fidelity"]
        assert all(layer["spike_agreement"] > 0.8 for layer in report["fidelity"]["layers"]), report["fidelity"]
        md = (root / f"{neuron}-{profile}" / "report.md").read_text()
        assert all(f"| {stage.name}" in md for stage in network.stages) and "graded ops" in md
