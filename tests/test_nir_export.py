"""NIR export / import: exact round trip, stock readability, the body's meaning, edits, interop, bad files."""

from __future__ import annotations

import shutil

import h5py
import nir
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from silif_deploy import load_model  # noqa: E402
from silif_deploy.converters.files import sha256_file  # noqa: E402
from silif_deploy.converters.families import FAMILIES  # noqa: E402
from silif_deploy.converters.nir_body import node_names  # noqa: E402
from silif_deploy.converters.nir_export import DEFAULT_DT, graph_template, to_nir, write_nir  # noqa: E402
from silif_deploy.converters.nir_import import from_nir, model_from_nir_file, read_nir  # noqa: E402
from silif_deploy.converters.nir_interpret import interpret  # noqa: E402
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.errors import SilifDeployError  # noqa: E402

from conftest import checkpoint_path, golden_path  # noqa: E402

CHECKPOINTS = ("silif", "csilif", "cadlif")
KINDS = ("silif", "adlif", "cadlif", "lif", "csilif", "rf")
NAME = "ssc_silif_2x512"


def random_input(batch: int, steps: int, channels: int, seed: int) -> np.ndarray:
    """SSC-like counts: about 6 % non-zero bins holding 1–3 events (the golden inputs' statistics)."""
    rng = np.random.default_rng(seed)
    active = rng.random((batch, steps, channels)) < 0.06
    return np.where(active, rng.integers(1, 4, (batch, steps, channels)), 0).astype(np.float32)


def random_model(kind: str, seed: int = 0) -> SpikingNetwork:
    """A small untrained network with non-trivial BatchNorm statistics and degenerate neurons.

    SiLIF gets β == 1, α == 0 and α == 1 exactly (float32), C-SiLIF |λ| == 1, RF |λ| > 1, so the
    body's special cases are exercised; the BatchNorm gains are large enough for every layer to spike.
    """
    torch.manual_seed(seed)
    config = NetworkConfig(kind, n_inputs=24, hidden_sizes=[40, 32], n_classes=6, dt_max=5.0,
                           extra={"dt": 0.01})
    net = SpikingNetwork(config)
    # RF scales its input by Δt = 0.004; adLIF has small default-init weights and strong adaptation
    gain = {"rf": 150.0, "adlif": 5.0}.get(kind, 1.0)
    with torch.no_grad():
        for layer in net.snn:
            layer.norm.running_mean.normal_(0.0, 0.3)
            layer.norm.running_var.uniform_(0.3, 3.0)
            layer.norm.weight.uniform_(1.5 * gain, 4.0 * gain)
            layer.norm.bias.normal_(0.5 * gain, 0.3 * gain)
        for layer in net.hidden_layers:
            if kind == "silif":
                layer.beta[:3] = -40.0   # exp(-40)·Δt underflows the rate: β == 1.0
                layer.alpha[3:5] = 12.0  # rate·Δt ≈ 650: α == 0.0
                layer.alpha[5] = -40.0   # α == 1.0
            if kind == "adlif":
                layer.a.abs_()  # sparch's a < 0 makes an untrained net diverge (|u| ~ 1e15); trained ones do not
            if kind == "csilif":
                layer.log_log_alpha[:2] = -40.0  # |λ| == 1.0
            if kind == "rf":
                layer.alpha_real[:3], layer.alpha_im[:3] = 1.0, 10.0  # clamp to −0.1: |λ| > 1
    return net.eval()


@pytest.fixture(scope="module")
def golden_exports(tmp_path_factory, reference_dir):
    """(checkpoint model, model read back from its NIR file, file, golden input) per checkpoint."""
    out = {}
    for kind in CHECKPOINTS:
        model = load_model(checkpoint_path(kind), model_type="cadlif" if kind == "cadlif" else None)
        path = write_nir(model, tmp_path_factory.mktemp("nir") / f"ssc_{kind}.nir")
        out[kind] = (model, model_from_nir_file(path), path, np.load(golden_path(kind))["input"])
    return out


@pytest.fixture(scope="module")
def random_exports(tmp_path_factory):
    out = {}
    for kind in KINDS:
        model = random_model(kind)
        path = write_nir(model, tmp_path_factory.mktemp("nir") / f"{kind}.nir")
        out[kind] = (model, model_from_nir_file(path), path, random_input(3, 80, 24, seed=1))
    return out


@pytest.fixture(scope="module")
def silif_file(golden_exports):
    return golden_exports["silif"][2]


def assert_bit_identical(a, b) -> None:
    assert len(a.spikes) == len(b.spikes)
    for sa, sb in zip(a.spikes, b.spikes):
        assert np.array_equal(sa, sb)
    assert a.readout_u.dtype == b.readout_u.dtype == np.float32
    assert a.readout_u.tobytes() == b.readout_u.tobytes()
    assert a.scores.tobytes() == b.scores.tobytes()


# ------------------------------------------------------------------------------- exact round trip


@pytest.mark.parametrize("kind", CHECKPOINTS)
def test_checkpoint_round_trip_is_bit_exact_on_golden_and_random_inputs(golden_exports, kind):
    model, back, _, x = golden_exports[kind]
    golden = np.load(golden_path(kind))
    result = back.run(x)
    assert_bit_identical(model.run(x), result)
    for i in range(2):  # and still the authors' goldens
        assert np.array_equal(result.spikes[i], np.unpackbits(golden[f"spikes_l{i}"], axis=-1).astype(bool))
    np.testing.assert_allclose(result.scores, golden["summed_softmax"], atol=4e-6)
    other = random_input(3, 300, 140, seed=7)
    assert_bit_identical(model.run(other), back.run(other))
    assert sum(s.sum() for s in back.run(other).spikes) > 1000


@pytest.mark.parametrize("kind", KINDS)
def test_every_neuron_type_round_trips_bit_exactly(random_exports, kind):
    model, back, _, x = random_exports[kind]
    assert not back.training and back.config.to_dict() == model.config.to_dict()
    ours, theirs = model.state_dict(), back.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(ours[k].dtype == theirs[k].dtype and torch.equal(ours[k], theirs[k]) for k in ours)
    expected, result = model.run(x), back.run(x)
    assert_bit_identical(expected, result)
    assert all(s.sum() > 0 for s in result.spikes), "every layer must spike for the test to mean something"


def test_round_trip_in_memory_needs_no_file(random_exports):
    model, _, _, x = random_exports["csilif"]
    assert_bit_identical(model.run(x), from_nir(to_nir(model)).run(x))


# ------------------------------------------------------------------------------- stock readability


def test_stock_nir_read_loads_every_file_in_evaluation_order(golden_exports, random_exports):
    files = [v[2] for v in golden_exports.values()] + [v[2] for v in random_exports.values()]
    for path, model in zip(files, [v[0] for v in golden_exports.values()] + [v[0] for v in random_exports.values()]):
        graph = nir.read(path)  # type checking on (the default)
        kind = model.config.model_type
        template = graph_template(kind, len(model.config.hidden_sizes))
        assert list(graph.nodes) == list(node_names(template).values())  # alphabetical = evaluation order
        body = graph.nodes[node_names(template)[f"{kind}0"]]
        assert list(body.nodes) == list(node_names(FAMILIES[kind].nir.template).values())
        assert all(type(n).__module__.startswith("nir.") for n in body.nodes.values())
        assert nir.serialization.read_version(path) == nir.version == "1.0.8"


def test_graph_metadata_carries_provenance_and_conventions(golden_exports, random_exports):
    model, _, path, _ = golden_exports["silif"]
    meta = nir.read(path).metadata
    assert meta["nir_ext"] == "silif-deploy" and meta["nir_ext_profile"] == "exact" and not meta["lossy"]
    assert (meta["producer"], meta["nir_version"], meta["model_type"], meta["init_state"]) == (
        "silif-deploy", "1.0.8", "silif", "zeros")
    assert meta["source_sha256"] == sha256_file(checkpoint_path("silif")) == model.source_sha256
    assert meta["dt"] == DEFAULT_DT == 1.2 / 299
    assert "softmax" in meta["decision_rule"]
    assert nir.read(random_exports["lif"][2]).metadata["dt"] == 0.01  # the config's extra["dt"] wins


def test_payload_holds_the_coefficients_in_their_trained_dtype(golden_exports):
    model, _, path, _ = golden_exports["silif"]
    graph = nir.read(path)
    for i, layer in enumerate(model.hidden_layers):
        sub = graph.nodes[f"n{2 + 2 * i}_silif{i}"]
        meta = sub.metadata
        assert (meta["nir_ext"], meta["reset"], meta["reset_timing"], meta["threshold"]) == (
            "silif", "subtract", "prev_step_before_leak", 1.0)
        for key, value in layer.coefficients().items():
            assert meta[key].dtype == np.float32 and np.array_equal(meta[key], value.detach().numpy())
        # β == 1.0 in float32 (torch's exp): no finite τ; the surrogate 2^26·dt decays by exactly 1 in float32
        ones = meta["beta"] == 1.0
        assert np.array_equal(meta["degenerate_beta"], ones)
        tau_w = sub.nodes["n1_w"].tau
        assert np.all(tau_w[ones] == np.float32(2.0**26 * DEFAULT_DT))
        assert np.all(np.float32(np.exp(-DEFAULT_DT / tau_w[ones].astype(np.float64))) == 1.0)
        # which β reach 1.0 depends on the CPU's float32 exp (6 + 37, 4 + 36 and, in the spec, 6 + 43
        # on three machines): bracket the count with float64 β, allowing about an ulp either way
        beta64 = np.exp(-(np.exp(layer.beta.detach().double().numpy()) * np.exp(layer.dt.detach().double().numpy())))
        assert np.count_nonzero(beta64 > 1 - 2.0**-26) <= ones.sum() <= np.count_nonzero(beta64 > 1 - 2.0**-23)
        assert 0 < ones.sum() < 0.1 * len(ones)
    lam = nir.read(golden_exports["csilif"][2]).nodes["n2_csilif0"].metadata["lambda"]
    assert lam.dtype == np.complex64 and (lam.real < 0).mean() > 0.2  # Re λ < 0 for 21.9 % (neurons.md §16)


# ------------------------------------------------------------------------- the body means the payload


def _interpretation_matches(model, graph, x) -> None:
    """Interpret the primitives alone; compare with the reference model's spikes, states and readout."""
    kind, n_hidden = model.config.model_type, len(model.config.hidden_sizes)
    names, body = node_names(graph_template(kind, n_hidden)), node_names(FAMILIES[kind].nir.template)
    state = "p" if kind in ("csilif", "rf") else "u"
    record = [f"{names[f'{kind}{i}']}.{body[role]}" for i in range(n_hidden) for role in ("spk", state)]
    got = interpret(graph, x, record=record)
    ref = model.run(x, record_states=True)
    for i in range(n_hidden):
        spikes, v = got.traces[record[2 * i]], got.traces[record[2 * i + 1]]
        assert np.array_equal(spikes.astype(bool), ref.spikes[i]), f"layer {i}: spike mismatch"
        u = ref.states[f"u_{i}"]
        if np.iscomplexobj(u):  # the body's p is the observable: 2·Re u (C-SiLIF), Re u (RF)
            u = (2.0 if kind == "csilif" else 1.0) * u.real
        assert np.abs(v - u).max() <= 1e-5 * np.abs(u).max(), f"layer {i}: membrane trace"
    np.testing.assert_allclose(got.output, ref.readout_u, rtol=1e-5, atol=1e-5)
    softmax = np.exp(got.output - got.output.max(-1, keepdims=True))
    scores = (softmax / softmax.sum(-1, keepdims=True)).sum(axis=1)
    np.testing.assert_allclose(scores, ref.scores, atol=1e-4)


@pytest.mark.parametrize("kind", CHECKPOINTS)
def test_primitives_alone_reproduce_the_checkpoint(golden_exports, kind):
    model, _, path, x = golden_exports[kind]
    _interpretation_matches(model, nir.read(path), x)


@pytest.mark.parametrize("kind", KINDS)
def test_primitives_alone_reproduce_every_neuron_type(random_exports, kind):
    model, _, path, x = random_exports[kind]
    graph = nir.read(path)
    meta = graph.nodes[f"n2_{kind}0"].metadata
    flags = {k: int(v.sum()) for k, v in meta.items() if k.startswith("degenerate_") and isinstance(v, np.ndarray)}
    planted = {"silif": {"degenerate_alpha": 3, "degenerate_beta": 3}, "csilif": {"degenerate_lambda": 2},
               "rf": {"degenerate_lambda": 3}}.get(kind)
    if planted:
        assert {k: v for k, v in flags.items() if v} == planted
    _interpretation_matches(model, graph, x)


def test_node_order_is_part_of_the_meaning(random_exports):
    """Negative control: evaluate w after u (rename it) and u reads w_{t-1} instead of w_t: spikes change."""
    model, _, path, x = random_exports["adlif"]
    graph = nir.read(path)
    sub = graph.nodes["n2_adlif0"]
    renamed = {"n1_w": "n3a_w", "n2_w2u": "n3b_w2u"}
    sub.nodes = {renamed.get(k, k): v for k, v in sub.nodes.items()}
    sub.edges = [tuple(renamed.get(n, n) for n in edge) for edge in sub.edges]
    with pytest.raises(AssertionError, match="layer 0: spike mismatch"):
        _interpretation_matches(model, graph, x)


def test_nirtorch_runs_the_body_with_plain_node_maps(golden_exports):
    """nirtorch 2.6 delays back-edges by node order too (nir.md §6): float32 node maps reproduce SiLIF."""
    nirtorch = pytest.importorskip("nirtorch", reason="the interop extra provides nirtorch")
    from silif_deploy.converters.nir_interpret import li_step

    model, _, path, x = golden_exports["silif"]
    graph = nir.read(path)
    dt = float(graph.metadata["dt"])

    class LI(torch.nn.Module):
        def __init__(self, node):
            super().__init__()
            d, weight = li_step(node.tau, dt)
            self.d, self.w = torch.tensor(d, dtype=torch.float32), torch.tensor(weight * node.r, dtype=torch.float32)

        def forward(self, x, state=None):
            v = self.w * x if state is None else self.d * state + self.w * x
            return v, v

    class Elementwise(torch.nn.Module):
        def __init__(self, values, op):
            super().__init__()
            self.values, self.op = torch.tensor(values), op

        def forward(self, x):
            return self.op(x, self.values)

    def affine(node):
        linear = torch.nn.Linear(*node.weight.shape[::-1])
        linear.weight.data, linear.bias.data = torch.tensor(node.weight), torch.tensor(node.bias)
        return linear

    node_map = {
        nir.Input: lambda node: torch.nn.Identity(), nir.Output: lambda node: torch.nn.Identity(),
        nir.Affine: affine, nir.LI: LI,
        nir.Scale: lambda node: Elementwise(node.scale, torch.mul),
        nir.Threshold: lambda node: Elementwise(node.threshold, lambda v, t: (v > t).float()),
    }
    net = nirtorch.nir_to_torch(graph, node_map, default_map={})
    state, outputs = None, []
    with torch.no_grad():
        for step in torch.as_tensor(x, dtype=torch.float32).unbind(1):
            out, state = net(step, state)
            outputs.append(out)
    np.testing.assert_allclose(torch.stack(outputs, 1).numpy(), model.run(x).readout_u, atol=1e-5)


# ------------------------------------------------------------------------------------ edited files


def _largest(name):
    def edit(f):
        data = f[name][()]
        data.flat[np.argmax(np.abs(data))] *= 1.001
        f[name][...] = data
    return edit


def _ulp(name):
    def edit(f):
        data = f[name][()]
        data.flat[0] = np.nextafter(data.flat[0], np.float32(2))
        f[name][...] = data
    return edit


EDITS = {
    "body LI tau": (_largest("node/nodes/n4_silif1/nodes/n3_u/tau"), "layer 1 ('n4_silif1')"),
    "body Scale": (_largest("node/nodes/n2_silif0/nodes/n7_s2w/scale"), "layer 0 ('n2_silif0')"),
    "body Affine": (_largest("node/nodes/n1_affine0/weight"), "layer 0 ('n2_silif0')"),
    "body readout": (_largest("node/nodes/n6_readout/tau"), "readout ('n6_readout')"),
    "payload coefficient": (_ulp("node/nodes/n2_silif0/metadata/alpha"), "layer 0 ('n2_silif0')"),
    "payload trained": (_largest("node/nodes/n4_silif1/metadata/trained_dt"), "layer 1 ('n4_silif1')"),
    "payload BatchNorm": (_largest("node/nodes/n3_affine1/metadata/bn_running_var"), "layer 1 ('n4_silif1')"),
}


@pytest.mark.parametrize("what", EDITS)
def test_edited_file_is_refused_naming_the_layer(silif_file, golden_exports, tmp_path, capsys, what):
    edit, layer = EDITS[what]
    bad = tmp_path / "edited.nir"
    shutil.copy(silif_file, bad)
    with h5py.File(bad, "r+") as f:
        edit(f)
    nir.read(bad)  # still a valid NIR file: only our reader can tell
    x = tmp_path / "x.npy"
    np.save(x, golden_exports["silif"][3])
    out = tmp_path / "out.npz"
    assert main(["simulate", str(bad), "--input", str(x), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error:" in err and layer in err
    assert not out.exists()


# ------------------------------------------------------------------------------------------ interop


def test_lif_compat_profile_loads_and_runs_in_snntorch(tmp_path, capsys):
    pytest.importorskip("snntorch", reason="the interop extra provides snntorch")
    from snntorch import Leaky
    from snntorch.import_nir import import_from_nir

    assert main(["export", str(checkpoint_path("silif")), "--target", "nir", "-o", str(tmp_path),
                 "--nir-profile", "lif-compat"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == [f"{NAME}.lif-compat.nir"]  # never the exact file's name
    path = tmp_path / f"{NAME}.lif-compat.nir"
    graph = nir.read(path)
    assert graph.metadata["nir_ext_profile"] == "lif-compat" and graph.metadata["lossy"]
    assert all(n.metadata.get("lossy") for n in graph.nodes.values() if isinstance(n, nir.LIF))
    net = import_from_nir(read_nir(path))
    x = torch.as_tensor(np.load(golden_path("silif"))["input"][:, :3], dtype=torch.float32)
    state = None
    for t in range(3):
        out, state = net(x[:, t], state)
    assert out.shape == (4, 35)
    # snntorch's β = 1 − 1e-4/τ recovers the model's α: the conventions of nir.md §10.4 were met
    alpha = load_model(checkpoint_path("silif")).hidden_layers[0].coefficients()["alpha"].detach()
    first = next(m for m in net.modules() if isinstance(m, Leaky))
    torch.testing.assert_close(first.beta.float(), alpha, atol=2e-5, rtol=0)
    with pytest.raises(SilifDeployError, match="lossy 'lif-compat' export"):
        from_nir(graph)
    with pytest.raises(SilifDeployError, match="is a LIF; the interpreter handles"):
        interpret(graph, x.numpy())


# ---------------------------------------------------------------------------------------- CLI


def test_simulate_nir_matches_the_checkpoint(silif_file, golden_exports, tmp_path, capsys):
    x = tmp_path / "x.npz"
    np.savez(x, input=golden_exports["silif"][3])
    outputs = []
    for model in (silif_file, checkpoint_path("silif")):
        out = tmp_path / f"{len(outputs)}.npz"
        assert main(["simulate", str(model), "--input", str(x), "--out", str(out), "--engine", "float",
                     "--record", "spikes,readout"]) == 0
        with np.load(out) as f:
            outputs.append({k: f[k] for k in f.files})
    assert outputs[0].keys() == outputs[1].keys() >= {"scores", "prediction", "spikes_0", "spikes_1", "readout_u"}
    for key in outputs[0]:
        assert outputs[0][key].tobytes() == outputs[1][key].tobytes(), key


def test_export_defaults_to_out_name_and_re_exports_a_nir_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(checkpoint_path("silif")), "--target", "nir"]) == 0
    first = tmp_path / "out" / NAME / f"{NAME}.nir"
    assert f"wrote out/{NAME}/{NAME}.nir" in capsys.readouterr().out
    assert main(["export", str(first), "--target", "nir", "-o", "again"]) == 0
    second = tmp_path / "again" / f"{NAME}.nir"
    assert nir.read(second).metadata["source_sha256"] == sha256_file(first)  # provenance chains
    x = random_input(2, 50, 140, seed=3)
    assert_bit_identical(model_from_nir_file(first).run(x), model_from_nir_file(second).run(x))


def _foreign(path):
    graph = nir.NIRGraph.from_list(nir.Affine(np.ones((3, 2), np.float32), np.zeros(3, np.float32)),
                                   nir.LIF(*(np.ones(3, np.float32),) * 4))
    nir.write(path, graph)


def _readout_swapped(path):
    graph = to_nir(random_model("lif"))
    li = graph.nodes["n6_readout"]
    graph.nodes["n6_readout"] = nir.LIF(li.tau, li.r, li.v_leak, np.ones_like(li.tau))
    nir.write(path, graph)


def _edit(silif_file, change):
    def make(path):
        shutil.copy(silif_file, path)
        with h5py.File(path, "r+") as f:
            change(f)
    return make


def _set_string(name, value):
    def change(f):
        del f[name]
        f.create_dataset(name, data=value, dtype=h5py.string_dtype())
    return change


def _truncate(name, rows=None, cols=None):
    def change(f):
        data = f[name][()]
        del f[name]
        f.create_dataset(name, data=data[:rows] if cols is None else data[:, :cols])
    return change


BAD_FILES = {
    "missing": (lambda path, _: None, "does not exist"),
    "not HDF5": (lambda path, _: path.write_text("hello"), "not HDF5"),
    "HDF5 not NIR": (lambda path, _: h5py.File(path, "w").create_dataset("x", data=[1]).file.close(),
                     "not a NIR graph"),
    "NIR 0.2.0": (lambda path, f: _edit(f, _set_string("version", "0.2.0"))(path), "written by NIR 0.2.0"),
    "unknown node type": (lambda path, f: _edit(f, _set_string("node/nodes/n2_silif0/nodes/n3_u/type", "Foo"))(path),
                          "type 'Foo'"),
    "unhandled node type": (lambda path, _: _readout_swapped(path), "is a LIF, expected a LI"),
    "foreign graph": (lambda path, _: _foreign(path), "not written by silif-deploy"),
    "weights do not chain": (lambda path, f: _edit(f, _truncate("node/nodes/n3_affine1/weight", cols=500))(path),
                             "shapes do not chain"),
    "bias does not chain": (lambda path, f: _edit(f, _truncate("node/nodes/n1_affine0/bias", rows=511))(path),
                            "shapes do not chain: 'n1_affine0' bias"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_nir_file_is_refused_in_one_line_and_nothing_is_written(silif_file, tmp_path, capsys, case):
    make, message = BAD_FILES[case]
    bad = tmp_path / "bad.nir"
    make(bad, silif_file)
    x = tmp_path / "x.npy"
    np.save(x, random_input(1, 5, 140, seed=0))
    out = tmp_path / "out.npz"
    assert main(["simulate", str(bad), "--input", str(x), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("silif-deploy simulate: error:") and message in err
    assert not out.exists()
    outdir = tmp_path / "export"
    assert main(["export", str(bad), "--target", "nir", "-o", str(outdir)]) == 2
    assert message in capsys.readouterr().err
    assert not outdir.exists()
