"""Our NIR files in the field's consumers: port names, nirtorch with our node maps, lif-compat honesty.

* nirtorch 2.6 (its own graph executor, our node maps) runs the exact file of each shipped
  synthetic-digit model and gives the float model's readout trajectory bit for bit.
* The root graph's ports are named ``input``/``output`` (NIR's examples; spyx looks ``input`` up
  by name); a file written before, with ``n0_input``/``n7_output``, is still read, exactly.
* lif-compat: our lossy reading is snntorch's own (its imported ``Leaky`` membranes, to float32
  rounding, and the same predictions), ``export`` prints its agreement with the exact model, and
  ``simulate`` runs it, labelled lossy.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from silif_deploy.converters.checkpoint import load_model  # noqa: E402
from silif_deploy.converters.nir_import import model_from_nir_file, read_nir  # noqa: E402
from silif_deploy.converters.nir_lif_compat import run_lif_compat  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402

TRAINED = Path(__file__).parents[1] / "examples" / "trained"


def checkpoint(model: str) -> Path:
    return TRAINED / f"synth_digits_{model}_2x128.pt"


@pytest.fixture(scope="module")
def test_x() -> np.ndarray:
    return np.load(TRAINED / "synth_digits_test.npz")["x"][:32].astype(np.float32)


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("nir")
    for model in ("silif", "csilif"):
        assert main(["export", str(checkpoint(model)), "--target", "nir", "-o", str(out)]) == 0
    return {m: out / f"synth_digits_{m}_2x128.nir" for m in ("silif", "csilif")}


@pytest.mark.parametrize("model", ["silif", "csilif"])
def test_nirtorch_runs_our_file_exactly(model, exports, test_x) -> None:
    pytest.importorskip("nirtorch", reason="the interop extra provides nirtorch")
    from silif_deploy.converters.nirtorch_maps import nir_to_torch, run_steps

    net = nir_to_torch(exports[model])
    u = run_steps(net, test_x)
    want = load_model(checkpoint(model)).run(test_x)
    np.testing.assert_array_equal(u, want.readout_u)  # bit for bit, float32
    assert np.abs(u).max() > 0.1


def test_ports_are_named_input_and_output(exports) -> None:
    graph = nir.read(exports["silif"])
    assert isinstance(graph.nodes["input"], nir.Input) and isinstance(graph.nodes["output"], nir.Output)
    assert list(graph.nodes)[0] == "input" and list(graph.nodes)[-1] == "output"  # still first and last


def test_files_with_the_old_port_names_still_read(exports, test_x, tmp_path) -> None:
    old = tmp_path / "old.nir"
    old.write_bytes(exports["silif"].read_bytes())
    with h5py.File(old, "r+") as f:  # as silif-deploy wrote it before the rename
        nodes = f["node/nodes"]
        nodes.move("input", "n0_input")
        nodes.move("output", "n7_output")
        edges = f["node/edges"][()].astype(str)
        renamed = np.where(edges == "input", "n0_input", np.where(edges == "output", "n7_output", edges))
        del f["node/edges"]
        f["node"].create_dataset("edges", data=renamed.astype("S"))
    assert "n0_input" in nir.read(old).nodes
    got = model_from_nir_file(old).run(test_x)
    np.testing.assert_array_equal(got.readout_u, load_model(checkpoint("silif")).run(test_x).readout_u)


@pytest.fixture(scope="module")
def lif_compat(tmp_path_factory, test_x):
    out = tmp_path_factory.mktemp("lifc")
    data = out / "x.npy"
    np.save(data, test_x)
    return out, data


def test_export_prints_lif_compat_agreement_and_simulate_runs_it(lif_compat, test_x, capsys) -> None:
    out, data = lif_compat
    assert main(["export", str(checkpoint("silif")), "--target", "nir", "--nir-profile", "lif-compat",
                 "-o", str(out), "--calibrate", str(data)]) == 0
    printed = capsys.readouterr().out
    found = re.search(r"agrees with the exact model on (\d+) of (\d+) predictions", printed)
    path = out / "synth_digits_silif_2x128.lif-compat.nir"
    lossy = run_lif_compat(read_nir(path), test_x)
    exact = load_model(checkpoint("silif")).run(test_x)
    assert found and int(found[2]) == 32 and int(found[1]) == int(np.sum(lossy.prediction == exact.prediction))
    result = out / "lossy.npz"
    assert main(["simulate", str(path), "--input", str(data), "--out", str(result), "--record", "readout"]) == 0
    assert "lossy lif-compat reading" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(result)["readout_u"], lossy.readout_u)


def test_lif_compat_reading_is_snntorchs(lif_compat, test_x) -> None:
    pytest.importorskip("snntorch", reason="the interop extra provides snntorch")
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    out, _ = lif_compat
    path = out / "synth_digits_csilif_2x128.lif-compat.nir"
    assert main(["export", str(checkpoint("csilif")), "--target", "nir", "--nir-profile", "lif-compat",
                 "-o", str(out)]) == 0
    graph = read_nir(path)
    net = import_from_nir(graph)
    readout = getattr(net, [n for n in graph.nodes if n.endswith("_readout")][0])
    snntorch.utils.reset(net)
    mem = []
    with torch.no_grad():
        for x_t in torch.as_tensor(test_x).unbind(1):
            net(x_t)
            mem.append(readout.mem.clone())
    mem = torch.stack(mem, 1).numpy()
    ours = run_lif_compat(graph, test_x)
    np.testing.assert_allclose(ours.readout_u, mem, atol=1e-5)  # float32 matmul order only
    from silif_deploy.hw_models.simulator import softmax_sum
    np.testing.assert_array_equal(ours.prediction, softmax_sum(mem.astype(np.float64)).argmax(1))
