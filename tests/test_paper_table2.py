"""The paper's efficiency comparison: Table 2 parameter / buffer counts from our report, the SSM
baselines' analytic SOPs, and ``compare`` on the shared checkpoints against a hand SOP count."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import HAS_TORCH, checkpoint_path, golden_path
from silif_deploy.deploy.paper_baselines import FIGURE3_BASELINES, event_ssm_sops, s5rf_sops

needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="builds float models with PyTorch")

# neurons.md §11 and §15.3: (model type, inputs, hidden, classes) → (parameters, buffers) of the authors' code.
TABLE2 = [
    (("csilif", 140, [128, 128], 20), 38_460, 512),        # SHD C-SiLIF (paper: 38.7k, 0.5k)
    (("csilif", 140, [512, 512], 20), 350_268, 2_048),     # SHD C-SiLIF 2×512
    (("silif", 140, [512, 512], 35), 359_017, 2_048),      # SSC SiLIF (paper: 0.35M, 2k)
    (("csilif", 140, [512, 512], 35), 357_993, 2_048),     # SSC C-SiLIF
    (("silif", 40, [512, 512], 35), 307_817, 2_048),       # GSC SiLIF 2×512 (paper: 0.3M)
    (("silif", 40, [1024, 1024], 35), 1_139_817, 4_096),   # GSC SiLIF 2×1024 (paper: 1.1M)
]


@needs_torch
@pytest.mark.parametrize("shape, parameters, buffers", TABLE2)
def test_table2_counts_from_the_report(shape, parameters, buffers):
    import torch

    from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork
    from silif_deploy.hw_models import metrics
    from silif_deploy.converters.float_description import describe_float

    torch.manual_seed(0)
    model = SpikingNetwork(NetworkConfig(*shape)).eval()  # untrained, same shape
    x = np.zeros((1, 3, shape[1]), np.float32)
    description = describe_float(model.config.to_dict(), {k: v.numpy() for k, v in model.state_dict().items()})
    report = metrics.build_report(description, metrics.tally_run(description, x, model.run(x)),
                                  input_info={"kind": "zeros"}, provenance={})
    assert report["totals"]["parameters"] == parameters == model.parameter_count()
    assert report["totals"]["buffers"] == buffers


def test_event_ssm_sops():
    assert event_ssm_sops() == 98_304_000
    assert event_ssm_sops(events=8000, d=64, pooled_steps=1000) == 8000 * 64 * 64 * 2 + 1000 * 64 * 64 * 8
    assert event_ssm_sops(events=4000) == 4000 * 64 * 64 * 2 + 1000 * 64 * 64 * 8


def test_s5rf_and_figure3_points():
    assert s5rf_sops() == 5_437_750
    points = {(p.model, p.dataset): p for p in FIGURE3_BASELINES}
    assert points[("Event-SSM, 64 states", "SSC")].sops == 98_304_000
    assert points[("S5-RF", "SSC")].accuracy == pytest.approx(0.788)
    assert points[("Event-SSM, 128 states", "SHD")].status == "paper"


def _hand_sop(model, x: np.ndarray) -> float:
    """SOP per sample counted from the float model's own spikes (neurons.md §15.1), without metrics."""
    import torch

    with torch.no_grad():
        _, spikes, _, _ = model.forward_all(torch.as_tensor(x, dtype=torch.float32))
    sizes = model.config.hidden_sizes + [model.config.n_classes]
    presynaptic = [x, *[s.numpy() for s in spikes]]
    return sum(np.count_nonzero(z) * n for z, n in zip(presynaptic, sizes)) / len(x)


@needs_torch
def test_hand_sop_matches_the_spec_on_the_golden_input():
    from silif_deploy.converters.checkpoint import load_model

    x = np.load(golden_path("silif"))["input"]
    assert _hand_sop(load_model(checkpoint_path("silif")), x) == 8_899_238.75  # neurons.md §15.4


@needs_torch
def test_compare_cli_on_the_shared_checkpoints(tmp_path):
    from silif_deploy.converters.checkpoint import load_model
    from silif_deploy.deploy.cli import main

    x = np.load(golden_path("silif"))["input"][:2]
    np.save(tmp_path / "x.npy", x)
    models = [str(checkpoint_path(m)) for m in ("silif", "csilif", "cadlif")]
    assert main(["compare", *models, "--input", str(tmp_path / "x.npy"), "--model-type", "cadlif",
                 "-o", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "compare.json").read_text())["models"]
    assert [r["model_type"] for r in rows] == ["silif", "csilif", "cadlif"]
    for path, row in zip(models, rows):
        model = load_model(path, model_type="cadlif" if "cadlif" in path else None)
        assert row["sop_float"] == _hand_sop(model, x)
        assert row["parameters"] == model.parameter_count() and row["buffers"] == 2048
        assert 0.9 < row["prediction_agreement"] <= 1.0 and row["spike_agreement"] > 0.9
        assert row["energy_uj"] > row["dynamic_energy_uj"] > 0
    assert [r["parameters"] for r in rows] == [359_017, 357_993, 357_993]
    assert "| ssc_csilif_2x512.pth |" in (tmp_path / "compare.md").read_text()
