"""``silif-deploy compare`` over the families: a SpikingSSM, a binary S4D and a SiLIF network on one input.

Two tiny untrained SSM models and a tiny SiLIF (fast), a labelled count input. Checked against
expectations computed apart from the report code: the float accuracy from the model's own logits,
the parameter counts from the models, the SSM buffers from spec §11 (H·N per S4D plus H per LIF
soma, 0 for binary S4D's Heaviside), graded MACs present for the SSMs (dense every step) and, for
the SiLIF chain, its input synapses' work on the counts (hand count), one energy figure per shipped profile with the chosen one equal
to the headline column, the three files written together, the Pareto front by hand; an input of the
wrong width is refused in one line before the calibration pass.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from silif_deploy.converters.checkpoint import save_checkpoint  # noqa: E402
from silif_deploy.converters.families import spiking_ssm as ssm  # noqa: E402
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.deploy.cmd_compare import COLUMNS  # noqa: E402
from silif_deploy.deploy.sweep_report import pareto_front  # noqa: E402
from silif_deploy.hw_models.energy_profile import available_energy_profiles  # noqa: E402

H, N, BLOCKS, D_IN, CLASSES, T, SAMPLES = 8, 4, 1, 3, 3, 12, 8


def tiny_ssm(neuron: str) -> ssm.SpikingSSMNet:
    model = ssm.build_model(ssm.SpikingSSMConfig(d_input=D_IN, d_model=H, d_state=N, n_layers=BLOCKS,
                                                 n_classes=CLASSES, prenorm=True, neuron=neuron), seed=3)
    with torch.no_grad():
        for layer in model.backbone.s4_layers:
            if hasattr(layer, "ln_vth"):
                layer.ln_vth.fill_(-1.0)  # thresholds e^-1: the untrained somas spike now and then
    return model.eval()


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (SAMPLES, T, D_IN)).astype(np.uint8)
    labels = np.arange(SAMPLES) % CLASSES
    np.savez(d / "x.npz", x=x, labels=labels)
    models = {"spiking_ssm": tiny_ssm("lif"), "binary_s4d": tiny_ssm("heaviside"),
              "silif": SpikingNetwork(NetworkConfig(model_type="silif", n_inputs=D_IN, hidden_sizes=[6],
                                                    n_classes=CLASSES)).eval()}
    paths = []
    for name, model in models.items():
        paths.append(str(d / f"{name}.pt"))
        save_checkpoint(model, paths[-1])
    assert main(["compare", *paths, "--input", str(d / "x.npz"), "-o", str(d / "out")]) == 0
    return d / "out", models, x, labels


def test_compare_writes_json_markdown_and_png_with_the_stated_columns(compared) -> None:
    out, models, _, _ = compared
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "compare.md", "compare.png"]
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((out / "compare.json").read_text())
    stated = ("accuracy_float", "accuracy_fixed", "sop_float", "sop_fixed", "graded_macs_fixed", "neuron_updates",
              "buffers", "parameters", "energy_uj", "dynamic_energy_uj", "energy_uj_by_profile")
    rows = result["models"]
    assert [r["model_type"] for r in rows] == list(models)
    assert all(key in row for row in rows for key in stated)
    assert result["energy_profiles"] == available_energy_profiles()
    md = (out / "compare.md").read_text()
    assert all(header in md for header in COLUMNS.values())
    assert all(f"{p} total µJ" in md for p in available_energy_profiles())


def test_compare_figures_against_independent_counts(compared) -> None:
    out, models, x, labels = compared
    rows = {r["model_type"]: r for r in json.loads((out / "compare.json").read_text())["models"]}
    for name, model in models.items():
        row = rows[name]
        with torch.no_grad():
            logits = model(torch.as_tensor(x, dtype=torch.float32))
        assert row["accuracy_float"] == pytest.approx(float((logits.argmax(1).numpy() == labels).mean()))
        assert 0.0 <= row["accuracy_fixed"] <= 1.0
        by_profile = row["energy_uj_by_profile"]
        assert set(by_profile) == set(available_energy_profiles())
        assert by_profile["loihi2"]["total_uj"] == row["energy_uj"]  # the default profile is the headline
        assert all(v["total_uj"] >= v["dynamic_uj"] > 0 for v in by_profile.values())
    assert rows["spiking_ssm"]["parameters"] == ssm.parameter_counts(models["spiking_ssm"])["total"]
    assert rows["binary_s4d"]["parameters"] == ssm.parameter_counts(models["binary_s4d"])["total"]
    assert rows["silif"]["parameters"] == models["silif"].parameter_count()
    assert rows["spiking_ssm"]["buffers"] == BLOCKS * (H * N + H)
    assert rows["binary_s4d"]["buffers"] == BLOCKS * H * N
    assert rows["spiking_ssm"]["graded_macs_fixed"] > 0 and rows["binary_s4d"]["graded_macs_fixed"] > 0
    # the chain's input layer takes the counts as graded payloads: non-zero input values × fan-out (6)
    assert rows["silif"]["graded_macs_fixed"] == np.count_nonzero(x) * 6 / SAMPLES


def test_an_input_of_other_channels_is_one_line_before_any_pass(compared, capsys) -> None:
    out, _, _, _ = compared
    np.save(out.parent / "wide.npy", np.zeros((2, T, D_IN + 1), np.uint8))
    capsys.readouterr()
    code = main(["compare", str(out.parent / "spiking_ssm.pt"), "--input", str(out.parent / "wide.npy")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and f"expects {D_IN}" in err


def test_pareto_front_by_hand() -> None:
    # (energy, accuracy): b beats c (cheaper and better), d is dearest but best, a is cheapest
    points = [(1.0, 0.5), (2.0, 0.8), (3.0, 0.7), (5.0, 0.9), (2.0, 0.6)]
    assert pareto_front(points) == [0, 1, 3]
