"""Checkpoint loading: type detection, sizes from shapes, our format, and bad input via the CLI."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from silif_deploy import SilifDeployError, load_model  # noqa: E402
from silif_deploy.converters.checkpoint import (  # noqa: E402
    CHECKPOINT_FORMAT,
    detect_model_type,
    infer_config,
    read_checkpoint,
    save_checkpoint,
)
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402
from silif_deploy.converters.families import FAMILIES  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402

N_IN, HIDDEN, N_CLASSES = 4, [7, 5, 3], 2


def make_net(model_type: str, hidden=None, seed: int = 0) -> SpikingNetwork:
    torch.manual_seed(seed)
    net = SpikingNetwork(NetworkConfig(model_type, N_IN, list(hidden or HIDDEN), N_CLASSES))
    with torch.no_grad():  # non-trivial BN statistics so that a load that ignored them would show
        for i, layer in enumerate(net.snn):
            layer.norm.running_mean.uniform_(-0.2, 0.2)
            layer.norm.running_var.uniform_(0.5, 1.5)
            layer.norm.weight.uniform_(1.0, 4.0)
            layer.norm.bias.uniform_(-0.1, 0.3)
    return net.eval()


def save_state(net_or_state, path):
    state = net_or_state.state_dict() if isinstance(net_or_state, torch.nn.Module) else net_or_state
    torch.save(state, path)
    return path


def sample_input(batch=3, steps=15, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(0.8, size=(batch, steps, N_IN)).astype(np.float32)


# ---------------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "model_type, marker",
    [("silif", "dt"), ("csilif", "log_dt"), ("rf", "alpha_real"), ("lif", "alpha")],
)
def test_type_detected_from_keys(model_type, marker, tmp_path):
    net = make_net(model_type)
    state = net.state_dict()
    assert f"snn.0.{marker}" in state
    assert detect_model_type(state) == model_type
    loaded = load_model(save_state(net, tmp_path / "m.pth"))
    assert loaded.config.model_type == model_type
    assert all(type(layer) is FAMILIES[model_type].layer for layer in loaded.hidden_layers)


@pytest.mark.parametrize("model_type", ["adlif", "cadlif"])
def test_adlif_cadlif_ambiguous(model_type, tmp_path):
    net = make_net(model_type)
    with pytest.raises(SilifDeployError) as err:
        detect_model_type(net.state_dict())
    assert "adlif" in str(err.value) and "cadlif" in str(err.value)
    path = save_state(net, tmp_path / "m.pth")
    with pytest.raises(SilifDeployError, match="cadlif"):
        load_model(path)
    # The given model type resolves it, and decides the clamps.
    for given in ("adlif", "cadlif"):
        loaded = load_model(path, model_type=given)
        assert loaded.config.model_type == given
        assert type(loaded.hidden_layers[0]) is FAMILIES[given].layer


@pytest.mark.parametrize("model_type, wrong", [("silif", "csilif"), ("csilif", "silif"), ("lif", "adlif"), ("rf", "lif")])
def test_wrong_model_type_is_an_error(model_type, wrong, tmp_path):
    path = save_state(make_net(model_type), tmp_path / "m.pth")
    with pytest.raises(SilifDeployError, match=model_type):
        load_model(path, model_type=wrong)


def test_model_type_given_matching_is_accepted(tmp_path):
    path = save_state(make_net("silif"), tmp_path / "m.pth")
    assert load_model(path, model_type="silif").config.model_type == "silif"


def test_readout_keys_never_decide_the_type():
    """The readout (highest index) looks like LIF; detection reads the first hidden layer only."""
    state = make_net("csilif").state_dict()
    assert {k for k in state if k.startswith("snn.3.")} == {
        "snn.3.alpha", "snn.3.W.weight", "snn.3.norm.weight", "snn.3.norm.bias",
        "snn.3.norm.running_mean", "snn.3.norm.running_var", "snn.3.norm.num_batches_tracked",
    }
    assert detect_model_type(state) == "csilif"


# ----------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_sizes_from_shapes(model_type, tmp_path):
    net = make_net(model_type)
    cfg = infer_config(net.state_dict(), model_type)
    assert cfg == {"model_type": model_type, "n_inputs": N_IN, "hidden_sizes": HIDDEN, "n_classes": N_CLASSES}
    loaded = load_model(save_state(net, tmp_path / "m.pth"), model_type=model_type)
    assert [layer.n_hidden for layer in loaded.hidden_layers] == HIDDEN
    assert loaded.config.n_inputs == N_IN and loaded.config.n_classes == N_CLASSES
    assert not loaded.training
    x = sample_input()
    a, b = net.run(x), loaded.run(x)
    np.testing.assert_array_equal(a.scores, b.scores)
    for sa, sb in zip(a.spikes, b.spikes):
        np.testing.assert_array_equal(sa, sb)


def test_single_hidden_layer(tmp_path):
    net = make_net("silif", hidden=[6])
    loaded = load_model(save_state(net, tmp_path / "m.pth"))
    assert loaded.config.hidden_sizes == [6]
    assert len(loaded.run(sample_input()).spikes) == 1


# ------------------------------------------------------------------------------ our format


@pytest.mark.parametrize("model_type", ["silif", "csilif", "cadlif", "rf"])
def test_self_describing_round_trip(model_type, tmp_path):
    net = make_net(model_type, seed=3)
    path = tmp_path / "ours.pt"
    save_checkpoint(net, path)
    state, config = read_checkpoint(path)
    assert config is not None and config["model_type"] == model_type
    assert config["hidden_sizes"] == HIDDEN
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["producer"].startswith("silif-deploy")
    loaded = load_model(path)  # no model type needed, even for cAdLIF
    assert loaded.config.model_type == model_type
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = sample_input(seed=5)
    a, b = net.run(x), loaded.run(x)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.readout_u, b.readout_u)
    for sa, sb in zip(a.spikes, b.spikes):
        np.testing.assert_array_equal(sa, sb)
    with pytest.raises(SilifDeployError):
        load_model(path, model_type="lif" if model_type != "lif" else "silif")


def test_load_model_init_state_option(tmp_path):
    path = save_state(make_net("silif"), tmp_path / "m.pth")
    assert load_model(path).config.init_state == "zeros"
    model = load_model(path, init_state="random")
    assert model.config.init_state == "random"
    x = sample_input()
    assert not np.array_equal(model.run(x).readout_u, model.run(x).readout_u)


# --------------------------------------------------------------------------- bad input, CLI


class NotAStateDict:
    """Unpickling this needs arbitrary code: weights_only loading must refuse it."""

    def __init__(self):
        self.payload = [1, 2, 3]


def _state(model_type="silif"):
    return OrderedDict(make_net(model_type).state_dict())


def _bad_missing_file(tmp_path):
    return tmp_path / "nope.pth", []


def _bad_text(tmp_path):
    p = tmp_path / "notes.pth"
    p.write_text("this is not a checkpoint\n")
    return p, []


def _garbage(content: bytes):
    def make(tmp_path):
        p = tmp_path / "garbage.pth"
        p.write_bytes(content)
        return p, []

    return make


def _npy_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    return buf.getvalue()


def _zip_bytes() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "hello")
    return buf.getvalue()


def _bad_pickle(tmp_path):
    p = tmp_path / "object.pth"
    torch.save(NotAStateDict(), p)
    return p, []


def _bad_missing_key(tmp_path):
    state = _state()
    del state["snn.1.beta"]
    return save_state(state, tmp_path / "m.pth"), []


def _bad_extra_key(tmp_path):
    state = _state()
    state["snn.0.gamma"] = torch.zeros(7)
    return save_state(state, tmp_path / "m.pth"), []


def _bad_chain(tmp_path):
    state = _state()
    state["snn.1.W.weight"] = torch.zeros(5, 9)  # layer 0 has 7 neurons
    return save_state(state, tmp_path / "m.pth"), []


def _bad_param_shape(tmp_path):
    state = _state()
    state["snn.0.alpha"] = torch.zeros(6)  # the layer has 7 neurons
    return save_state(state, tmp_path / "m.pth"), []


def _bad_nan(tmp_path):
    state = _state()
    state["snn.1.a"] = state["snn.1.a"].clone()
    state["snn.1.a"][2] = math.nan
    return save_state(state, tmp_path / "m.pth"), []


def _bad_inf(tmp_path):
    state = _state()
    state["snn.0.norm.running_var"] = state["snn.0.norm.running_var"].clone()
    state["snn.0.norm.running_var"][0] = math.inf
    return save_state(state, tmp_path / "m.pth"), []


def _bad_unknown_keys(tmp_path):
    state = _state()
    state = OrderedDict((k.replace("snn.0.dt", "snn.0.tau"), v) for k, v in state.items())
    for name in ("alpha", "beta", "a", "b"):
        del state[f"snn.0.{name}"]
    return save_state(state, tmp_path / "m.pth"), []


def _bad_unknown_model_type(tmp_path):
    return save_state(_state(), tmp_path / "m.pth"), ["--model-type", "mamba"]


def _bad_unknown_model_type_ambiguous(tmp_path):
    return save_state(_state("cadlif"), tmp_path / "m.pth"), ["--model-type", "mamba"]


def _bad_unknown_type_in_our_format(tmp_path):
    net = make_net("silif")
    p = tmp_path / "ours.pt"
    save_checkpoint(net, p)
    payload = torch.load(p, weights_only=True)
    payload["config"]["model_type"] = "mamba"
    torch.save(payload, p)
    return p, []


def _bad_future_format(tmp_path):
    net = make_net("silif")
    p = tmp_path / "ours.pt"
    save_checkpoint(net, p)
    payload = torch.load(p, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, p)
    return p, []


def _bad_list_values(tmp_path):
    state = {k: (v.tolist() if v.dim() else int(v)) for k, v in _state().items()}
    return save_state(state, tmp_path / "m.pth"), []


def _bad_1d_weight(tmp_path):
    state = _state()
    state["snn.0.W.weight"] = torch.zeros(7)
    return save_state(state, tmp_path / "m.pth"), []


def _bad_zero_classes(tmp_path):
    state = _state()
    state["snn.3.W.weight"] = torch.zeros(0, 3)
    return save_state(state, tmp_path / "m.pth"), []


def _ours_modified(change):
    def make(tmp_path):
        p = tmp_path / "ours.pt"
        save_checkpoint(make_net("silif"), p)
        payload = torch.load(p, weights_only=True)
        change(payload)
        torch.save(payload, p)
        return p, []

    return make


def _bad_tensor_file(tmp_path):
    p = tmp_path / "t.pth"
    torch.save(torch.zeros(3), p)
    return p, []


def _bad_dict_without_layers(tmp_path):
    p = tmp_path / "d.pth"
    torch.save({"weight": torch.zeros(3)}, p)
    return p, []


def _bad_recurrent(tmp_path):
    state = _state("lif")
    state["snn.0.V.weight"] = torch.zeros(7, 7)
    return save_state(state, tmp_path / "m.pth"), []


def _bad_cadlif_without_type(tmp_path):
    return save_state(_state("cadlif"), tmp_path / "m.pth"), []


BAD_CASES = {
    "missing file": (_bad_missing_file, "does not exist"),
    "text file": (_bad_text, "not a PyTorch checkpoint"),
    "text starting with a pickle opcode": (_garbage(b"hello world\n"), "not a PyTorch checkpoint"),
    "empty file": (_garbage(b""), "not a PyTorch checkpoint"),
    "random bytes": (_garbage(np.random.default_rng(0).bytes(300)), "not a PyTorch checkpoint"),
    "json": (_garbage(b'{"snn.0.dt": [1, 2]}'), "not a PyTorch checkpoint"),
    "npy renamed": (_garbage(_npy_bytes()), "not a PyTorch checkpoint"),
    "zip, not torch": (_garbage(_zip_bytes()), "not a PyTorch checkpoint"),
    "arbitrary-code pickle": (_bad_pickle, "arbitrary code"),
    "missing key": (_bad_missing_key, "missing keys"),
    "extra key": (_bad_extra_key, "unexpected keys"),
    "inconsistent layer shapes": (_bad_chain, "shape"),
    "inconsistent parameter shape": (_bad_param_shape, "shape"),
    "NaN parameter": (_bad_nan, "NaN"),
    "inf statistic": (_bad_inf, "inf"),
    "unknown neuron keys": (_bad_unknown_keys, "model type"),
    "unknown --model-type": (_bad_unknown_model_type, "unknown model type 'mamba'"),
    "unknown --model-type, ambiguous keys": (_bad_unknown_model_type_ambiguous, "unknown model type 'mamba'"),
    "unknown type in our format": (_bad_unknown_type_in_our_format, "unknown model type"),
    "future format version": (_bad_future_format, "version"),
    "our format without state_dict": (_ours_modified(lambda d: d.pop("state_dict")), "damaged"),
    "our format, config not a dict": (_ours_modified(lambda d: d.update(config="silif")), "damaged"),
    "our format, bad version": (_ours_modified(lambda d: d.update(format_version="x")), "damaged"),
    "our format, incomplete config": (_ours_modified(lambda d: d["config"].pop("n_inputs")), "configuration"),
    "our format, config disagrees": (_ours_modified(lambda d: d["config"].update(hidden_sizes=[7, 5])), "unexpected keys"),
    "values are lists": (_bad_list_values, "2-D"),
    "1-D weight": (_bad_1d_weight, "2-D"),
    "zero classes": (_bad_zero_classes, "positive"),
    "a bare tensor": (_bad_tensor_file, "not a state_dict"),
    "dict without snn keys": (_bad_dict_without_layers, "snn"),
    "recurrent layer": (_bad_recurrent, "recurrent"),
    "cadlif without --model-type": (_bad_cadlif_without_type, "--model-type"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_cli_bad_checkpoint_one_line_exit_2(case, tmp_path, capsys):
    make, expected = BAD_CASES[case]
    ckpt, extra_args = make(tmp_path)
    x_path = tmp_path / "x.npy"
    np.save(x_path, sample_input())
    out = tmp_path / "out" / "OUT.npz"
    capsys.readouterr()
    rc = main(["simulate", str(ckpt), "--input", str(x_path), "--out", str(out), *extra_args])
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert lines[0].startswith("silif-deploy simulate: error:")
    if expected is not None:
        assert expected.lower() in lines[0].lower(), lines[0]
    assert not out.exists()
    assert not any(p.name.startswith(".OUT.npz") for p in tmp_path.rglob("*"))  # no temp file left


def test_cli_simulate_good_npy(tmp_path, capsys):
    net = make_net("csilif", hidden=[7, 5])
    ckpt = save_state(net, tmp_path / "m.pth")
    x = sample_input(batch=5, steps=20, seed=9)
    x_path = tmp_path / "x.npy"
    np.save(x_path, x)
    out = tmp_path / "OUT.npz"
    rc = main(["simulate", str(ckpt), "--input", str(x_path), "--out", str(out), "--engine", "float",
               "--batch-size", "2", "--record", "spikes,readout"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "layer 0" in captured.out
    with np.load(out) as data:
        arrays = dict(data)
    assert {"scores", "prediction", "spikes_0", "spikes_1", "readout_u"} <= set(arrays)
    expected = load_model(ckpt).run(x)
    assert arrays["scores"].shape == (5, N_CLASSES)
    assert arrays["prediction"].shape == (5,)
    assert arrays["readout_u"].shape == (5, 20, N_CLASSES)
    np.testing.assert_allclose(arrays["scores"], expected.scores, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(arrays["prediction"], expected.prediction)
    np.testing.assert_allclose(arrays["readout_u"], expected.readout_u, rtol=0, atol=1e-6)
    for i, h in enumerate([7, 5]):
        s = arrays[f"spikes_{i}"]
        assert s.dtype == bool and s.shape == (5, 20, h)
        np.testing.assert_array_equal(s, expected.spikes[i])
    assert arrays["spikes_0"].any()


def test_cli_simulate_cadlif_needs_and_takes_model_type(tmp_path, capsys):
    ckpt = save_state(make_net("cadlif"), tmp_path / "m.pth")
    x_path = tmp_path / "x.npy"
    np.save(x_path, sample_input())
    out = tmp_path / "OUT.npz"
    rc = main(["simulate", str(ckpt), "--input", str(x_path), "--out", str(out), "--model-type", "cadlif"])
    assert rc == 0, capsys.readouterr().err
    assert out.exists()
