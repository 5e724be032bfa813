"""The export extracts the float network once; the NIR round trip is its own check (``--check-nir``).

* The artifact written from the one extraction equals the artifact quantized, as before issue 12,
  from the model read back from the NIR file (the old path, rebuilt here from public functions).
* ``export --check-nir`` reads the NIR file back: it passes on a faithful export and refuses in one
  line, writing nothing, when the float network the export used is not what the file gives back
  (a float network nudged by one float64 ulp, which the body check's tolerance lets through).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from silif_deploy.converters.artifact import read_artifact  # noqa: E402
from silif_deploy.converters.checkpoint import save_checkpoint  # noqa: E402
from silif_deploy.converters.float_params import float_network  # noqa: E402
from silif_deploy.converters.nir_import import model_from_nir_file  # noqa: E402
from silif_deploy.converters.quantize import quantize  # noqa: E402
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402
from silif_deploy.deploy import pipeline  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(3)
    net = SpikingNetwork(NetworkConfig("csilif", 20, [12, 8], 5)).eval()
    with torch.no_grad():
        for layer in net.snn:
            layer.norm.running_mean.uniform_(-0.2, 0.2)
            layer.norm.running_var.uniform_(0.5, 1.5)
            layer.norm.weight.uniform_(1.0, 4.0)
    path = tmp_path / "small.pt"
    save_checkpoint(net, path)
    return path


def _assert_same_network(a, b) -> None:
    for x, y in zip(a.layers, b.layers):
        assert x.kind == y.kind and x.scale == y.scale
        assert np.array_equal(x.synapse.weights, y.synapse.weights) and x.synapse.weight_exp == y.synapse.weight_exp
        for name in x.params._fields:
            assert np.array_equal(getattr(x.params, name), getattr(y.params, name)), name


def test_one_extraction_gives_the_artifact_the_nir_read_back_gives(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", str(checkpoint), "--target", "loihi2", "-o", str(out), "--check-nir"]) == 0
    written = read_artifact(out / "small.loihi2.h5")
    old_path = quantize(float_network(model_from_nir_file(out / "small.nir")), load_profile("loihi2"))
    _assert_same_network(written, old_path)


def test_check_nir_on_the_nir_target(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", str(checkpoint), "--target", "nir", "-o", str(out), "--check-nir"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["small.nir"]
    assert main(["export", str(checkpoint), "--target", "nir", "--nir-profile", "lif-compat",
                 "-o", str(tmp_path / "lossy"), "--check-nir"]) == 2
    assert "lossy" in capsys.readouterr().err and not (tmp_path / "lossy").exists()


def test_check_nir_refuses_a_float_network_the_file_does_not_give_back(checkpoint, tmp_path, capsys, monkeypatch):
    def nudged(model):
        net = float_network(model)
        weight = net.hidden[0].weight.copy()
        weight[0, 0] = np.nextafter(weight[0, 0], np.inf)
        return dataclasses.replace(net, hidden=[dataclasses.replace(net.hidden[0], weight=weight), *net.hidden[1:]])

    monkeypatch.setattr(pipeline, "float_network", nudged)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["export", str(checkpoint), "--target", "loihi2", "-o", str(out), "--check-nir"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "read back does not give the exported float network (layer 0: weight" in lines[0]
    assert not out.exists()
    # without the option the export trusts its one extraction (and writes the nudged weight)
    assert main(["export", str(checkpoint), "--target", "loihi2", "-o", str(out)]) == 0
