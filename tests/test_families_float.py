"""The test families leaky1 and synlif, float side: each lives in its own module (tests/families/)
and reaches the whole float chain (torch, checkpoint, NIR both ways, quantization) through the
registry alone. What each test proves:

* the torch step equals a hand-written scalar loop of the rule in ``DESIGN12.md`` (independent of
  the family's code);
* the NIR round trip is bit-exact, and the primitives alone (``nir_interpret``, which never reads the
  payload) reproduce the spikes, so the body states the dynamics; an edited body is refused;
* quantization gives the integer record with hand-computed values, and leaky1's equals the
  ``AdaptiveParams`` of the equal LIF network field for field (another family's code).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from families.leaky1_float import LEAKY1, Leaky1Layer  # noqa: E402
from families.leaky1_hw import LeakyParams  # noqa: E402
from families.synlif_float import SYNLIF, SynLifLayer  # noqa: E402
from families.synlif_hw import SynLifParams  # noqa: E402
from silif_deploy.converters.checkpoint import detect_model_type, load_model, save_checkpoint  # noqa: E402
from silif_deploy.converters.families import FAMILIES  # noqa: E402
from silif_deploy.converters.float_params import first_difference, float_network  # noqa: E402
from silif_deploy.converters.nir_body import node_names  # noqa: E402
from silif_deploy.converters.nir_export import graph_template, to_nir, write_nir  # noqa: E402
from silif_deploy.converters.nir_import import from_nir, model_from_nir_file  # noqa: E402
from silif_deploy.converters.nir_interpret import interpret  # noqa: E402
from silif_deploy.converters.quantize import quantize  # noqa: E402
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402
from silif_deploy.errors import SilifDeployError  # noqa: E402
from silif_deploy.hw_models.fixed_point import OVERFLOW_CODES  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402

KINDS = ("leaky1", "synlif")


def model(kind: str, seed: int = 0) -> SpikingNetwork:
    torch.manual_seed(seed)
    net = SpikingNetwork(NetworkConfig(kind, n_inputs=12, hidden_sizes=[16, 10], n_classes=4, extra={"dt": 0.01}))
    with torch.no_grad():
        for layer in net.snn:
            layer.norm.running_mean.normal_(0.0, 0.3)
            layer.norm.running_var.uniform_(0.3, 3.0)
            layer.norm.weight.uniform_(1.5, 4.0)
            layer.norm.bias.normal_(0.5, 0.3)
    return net.eval()


def counts(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random((3, 60, 12)) < 0.1, rng.integers(1, 4, (3, 60, 12)), 0).astype(np.float32)


def test_registered_from_their_own_modules():
    assert FAMILIES["leaky1"] is LEAKY1 and FAMILIES["synlif"] is SYNLIF
    assert [type(layer) for layer in model("leaky1").hidden_layers] == [Leaky1Layer, Leaky1Layer]


# ------------------------------------------------------------------------- torch step vs scalar loop


def _scalar_leaky1(alpha, currents):
    v = s = 0.0
    vs, ss = [], []
    for i in currents:
        v = alpha * (v - s) + (1 - alpha) * i
        s = 1.0 if v > 1.0 else 0.0
        vs.append(v), ss.append(s)
    return vs, ss


def _scalar_synlif(alpha, beta, currents):
    i_syn = v = s = 0.0
    iis, vs, ss = [], [], []
    for i in currents:
        i_syn = beta * i_syn + i
        v = alpha * (v - s) + (1 - alpha) * i_syn
        s = 1.0 if v > 1.0 else 0.0
        iis.append(i_syn), vs.append(v), ss.append(s)
    return iis, vs, ss


def _identity(layer):
    """W = 1, BatchNorm the identity in eval mode: the layer's input current is its input."""
    layer.eval()
    with torch.no_grad():
        layer.W.weight.fill_(1.0)
        layer.norm.running_mean.zero_()
        layer.norm.running_var.fill_(1.0 - 1e-5)
        layer.norm.weight.fill_(1.0)
        layer.norm.bias.zero_()
    return layer


CURRENTS = [6.0, 0.0, 8.0, -1.0, 9.0, 9.0, 2.0, 0.0, 12.0, 4.0, 0.0, 0.0, 7.0, 7.0, 3.0]


def test_leaky1_step_matches_the_scalar_rule():
    layer = _identity(Leaky1Layer(1, 1))
    with torch.no_grad():
        layer.alpha.fill_(0.82)
        spikes, states = layer(torch.tensor(CURRENTS).reshape(1, -1, 1), record_states=True)
    alpha = float(layer.coefficients()["alpha"].detach())
    vs, ss = _scalar_leaky1(alpha, CURRENTS)
    assert spikes[0, :, 0].tolist() == ss and sum(ss) >= 3
    np.testing.assert_allclose(states["v"][0, :, 0].numpy(), vs, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the clamp: α ∈ [e^−1/5, e^−1/25]
        layer.alpha.fill_(0.99)
        assert float(layer.coefficients()["alpha"].detach()) == pytest.approx(math.exp(-1 / 25), rel=1e-6)


def test_synlif_step_matches_the_scalar_rule():
    layer = _identity(SynLifLayer(1, 1))
    with torch.no_grad():
        layer.alpha.fill_(0.85)
        layer.beta.fill_(0.98)
        spikes, states = layer(torch.tensor(CURRENTS).reshape(1, -1, 1), record_states=True)
    c = {k: v.detach() for k, v in layer.coefficients().items()}
    iis, vs, ss = _scalar_synlif(float(c["alpha"]), float(c["beta"]), CURRENTS)
    assert spikes[0, :, 0].tolist() == ss and sum(ss) >= 3
    np.testing.assert_allclose(states["i"][0, :, 0].numpy(), iis, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states["v"][0, :, 0].numpy(), vs, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        layer.beta.fill_(0.5)
        assert float(layer.coefficients()["beta"].detach()) == pytest.approx(math.exp(-1 / 30), rel=1e-6)


# ------------------------------------------------------------------------------------- checkpoints


def test_checkpoints_load_through_the_registry(tmp_path):
    for kind in KINDS:
        net = model(kind)
        save_checkpoint(net, tmp_path / f"{kind}.pt")
        back = load_model(tmp_path / f"{kind}.pt")
        assert back.config.model_type == kind
        x = counts()
        assert np.array_equal(back.run(x).scores, net.run(x).scores)
    # by keys: synlif's (alpha, beta) are its own; leaky1 has LIF's keys, so it is named, never detected
    assert detect_model_type(model("synlif").state_dict()) == "synlif"
    assert detect_model_type(model("leaky1").state_dict()) == "lif"
    torch.save(model("leaky1").state_dict(), tmp_path / "plain.pth")
    assert load_model(tmp_path / "plain.pth", model_type="leaky1").config.model_type == "leaky1"


# --------------------------------------------------------------------------------------------- NIR


@pytest.mark.parametrize("kind", KINDS)
def test_nir_round_trip_is_bit_exact(kind, tmp_path):
    net = model(kind)
    x = counts()
    back = model_from_nir_file(write_nir(net, tmp_path / f"{kind}.nir"))
    assert first_difference(float_network(net), float_network(back)) is None
    a, b = net.run(x), back.run(x)
    assert all(s.sum() > 0 for s in a.spikes), "every layer must spike for the test to mean something"
    assert all(np.array_equal(sa, sb) for sa, sb in zip(a.spikes, b.spikes))
    assert a.readout_u.tobytes() == b.readout_u.tobytes()


@pytest.mark.parametrize("kind", KINDS)
def test_primitives_alone_reproduce_the_spikes(kind):
    net = model(kind)
    x = counts()
    names = node_names(graph_template(kind, 2))
    body = node_names(FAMILIES[kind].nir.template)
    record = [f"{names[f'{kind}{i}']}.{body['spk']}" for i in range(2)]
    got = interpret(to_nir(net), x, record=record)
    ref = net.run(x)
    for i in range(2):
        assert np.array_equal(got.traces[record[i]].astype(bool), ref.spikes[i])
    np.testing.assert_allclose(got.output, ref.readout_u, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_an_edited_body_is_refused(kind):
    graph = to_nir(model(kind))
    sub = graph.nodes[node_names(graph_template(kind, 2))[f"{kind}0"]]
    reset = sub.nodes[node_names(FAMILIES[kind].nir.template)["s2v"]]
    reset.scale = (reset.scale * np.float32(1.01)).astype(np.float32)
    with pytest.raises(SilifDeployError, match=r"layer 0 .*alpha \(reset s2v\) disagrees"):
        from_nir(graph)


# ------------------------------------------------------------------------------------ quantization


def test_leaky1_quantizes_into_its_record_as_lif_does():
    profile = load_profile("loihi2")
    net = model("leaky1")
    fixed = quantize(float_network(net), profile)
    f = profile.coefficient_bits
    for layer, float_layer in zip(fixed.hidden, net.hidden_layers):
        p = layer.params
        assert type(p) is LeakyParams and layer.kind == "leaky1"
        alpha = float_layer.coefficients()["alpha"].detach().double().numpy()
        assert np.array_equal(p.alpha, np.rint(alpha * 2**f).astype(np.int64))
        assert np.array_equal(p.gain, 2**f - p.alpha)
        assert p.threshold == layer.scale and (p.frac_bits, p.input_shift) == (f, profile.input_shift)
        assert p.half == profile.state_max + 1 and p.mode == OVERFLOW_CODES[profile.membrane_overflow]
    # the equal LIF network (same trained values, LIF's layer) quantizes to the same numbers
    lif = SpikingNetwork(NetworkConfig("lif", 12, [16, 10], 4, extra={"dt": 0.01})).eval()
    lif.load_state_dict(net.state_dict())
    for ours, theirs in zip(fixed.hidden, quantize(float_network(lif), profile).hidden):
        assert ours.scale == theirs.scale
        assert np.array_equal(ours.synapse.weights, theirs.synapse.weights)
        for name in LeakyParams._fields:
            theirs_name = {"mode": "u_mode"}.get(name, name)
            assert np.array_equal(getattr(ours.params, name), getattr(theirs.params, theirs_name)), name
    diag = fixed.quantization["layers"][0]
    assert {"alpha_zero_memoryless", "alpha_one_no_input", "state_scale"} <= diag.keys()


def test_synlif_quantizes_into_its_record():
    profile = load_profile("loihi2")
    net = model("synlif")
    fixed = quantize(float_network(net), profile)
    f = profile.coefficient_bits
    for layer, float_layer in zip(fixed.hidden, net.hidden_layers):
        p = layer.params
        assert type(p) is SynLifParams and p._fields == SynLifParams._fields
        c = {k: v.detach().double().numpy() for k, v in float_layer.coefficients().items()}
        assert np.array_equal(p.alpha, np.rint(c["alpha"] * 2**f).astype(np.int64))
        assert np.array_equal(p.beta, np.rint(c["beta"] * 2**f).astype(np.int64))
        assert np.array_equal(p.gain, 2**f - p.alpha) and p.threshold == layer.scale
        assert p.v_mode == OVERFLOW_CODES[profile.membrane_overflow]
        assert p.i_mode == OVERFLOW_CODES[profile.current_overflow]
