"""SpikingSSM / binary-S4D float models against the authors' code (``../shared/reference_models/spikingssm``).

What each test proves:
- the golden tests: our model, loaded from the authors' checkpoint files (flat and Lightning layouts),
  produces the spikes of every block and the logits that the authors' own code produced (SDN repo @
  709640e inside S4 @ e757cef), in both neuron modes, in the kernel form (FFT convolution, as they
  run it) AND in the streaming form (a per-step recurrence and per-step neurons, sharing only the
  discretization λ, C′ with the kernel form). The post-norm golden holds random BatchNorm statistics,
  so it also proves the norms stay inert there;
- the S4D recurrence equals the convolution with the materialized kernel on a long random input
  (float64), beyond the goldens' 64 steps;
- the configuration read from keys and shapes equals the goldens' recorded config;
- bidirectional models are refused for hardware targets with one line, and their float form really
  looks ahead in time (so the refusal is about something real).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import REFERENCE  # noqa: E402
from silif_deploy import SilifDeployError  # noqa: E402
from silif_deploy.converters.families.spiking_ssm import (  # noqa: E402
    FAMILY_BINARY_S4D,
    LIFParams,
    LIFState,
    S4DState,
    SpikingSSMConfig,
    build_model,
    extract_arrays,
    heaviside_step,
    infer_config,
    lif_step,
    load_spiking_ssm,
    make_optimizer,
    model_from_state,
    parameter_counts,
    read_state,
    s4d_step,
    train_step,
)

GOLDENS = REFERENCE / "spikingssm"
CONFIGS = ("pre_bn_s4d", "pre_bn_trainB", "post_bn_s4d")
MODES = {"bptt": "lif", "sdn": "sdn"}  # golden mode -> our neuron name
LOGIT_TOL = 1e-4


def golden(config: str, mode: str) -> dict:
    data = np.load(GOLDENS / f"{config}_seed7_{mode}.npz")
    return {k: data[k] for k in data.files}


def golden_config(g: dict) -> dict:
    return json.loads(str(g["config_json"]))


def golden_spikes(g: dict, i: int) -> np.ndarray:
    shape = tuple(int(n) for n in g[f"spikes_l{i}_shape"])
    return np.unpackbits(g[f"spikes_l{i}"], axis=-1, count=shape[-1]).reshape(shape)


def check_against_golden(model, g: dict, form: str, dtype: torch.dtype) -> float:
    """Assert identical spikes in every block; return max |logits - golden| (asserted <= 1e-4)."""
    cfg = golden_config(g)
    model = model.to(dtype)
    with torch.no_grad():
        logits, rec = model.trace(torch.from_numpy(g["input"]).to(dtype), form=form, record=True)
    for i in range(cfg["n_layers"]):
        ours = rec[f"spikes_{i}"].numpy().astype(np.uint8)
        theirs = golden_spikes(g, i)
        assert ours.shape == theirs.shape
        flips = int((ours != theirs).sum())
        assert flips == 0, f"block {i}: {flips} spikes differ from the authors' ({form}, {dtype})"
    err = float(np.abs(logits.double().numpy() - g["logits"].astype(np.float64)).max())
    assert err <= LOGIT_TOL, f"max |logits - golden| = {err:.3g} ({form}, {dtype})"
    assert (logits.argmax(-1).numpy() == g["prediction"]).all()
    return err


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("config", CONFIGS)
def test_kernel_form_equals_authors_code(config: str, mode: str) -> None:
    g = golden(config, mode)
    prenorm = golden_config(g)["prenorm"]
    model = load_spiking_ssm(GOLDENS / f"{config}_seed7.pt", neuron=MODES[mode], prenorm=prenorm)
    check_against_golden(model, g, "kernel", torch.float32)


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_streaming_form_equals_authors_code(config: str, mode: str, dtype: torch.dtype) -> None:
    """The per-step form (xi_t = lambda*xi_{t-1} + u_t, per-step LIF / SDN / GLU): what hardware runs."""
    g = golden(config, mode)
    model = load_spiking_ssm(GOLDENS / f"{config}_seed7.lightning.pt", neuron=MODES[mode])  # prenorm from its config
    check_against_golden(model, g, "stream", dtype)


@pytest.mark.parametrize("config", CONFIGS)
def test_lightning_layout_loads_the_same_model(config: str) -> None:
    g = golden(config, "sdn")
    prenorm = golden_config(g)["prenorm"]
    flat = load_spiking_ssm(GOLDENS / f"{config}_seed7.pt", neuron="sdn", prenorm=prenorm)
    lightning = load_spiking_ssm(GOLDENS / f"{config}_seed7.lightning.pt", neuron="sdn")
    assert flat.config == lightning.config
    a, b = flat.state_dict(), lightning.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("config", CONFIGS)
def test_config_from_keys_and_shapes(config: str) -> None:
    cfg = golden_config(golden(config, "bptt"))
    state, hyper = read_state(GOLDENS / f"{config}_seed7.lightning.pt")
    ours = infer_config(state, neuron="lif", hyper=hyper)
    assert (ours.d_input, ours.d_model, ours.d_state, ours.n_layers, ours.n_classes) == (
        cfg["d_input"], cfg["H"], cfg["N"], cfg["n_layers"], cfg["classes"])
    assert (ours.prenorm, ours.norm, ours.trainable_B, ours.bidirectional, ours.shared_vth) == (
        cfg["prenorm"], cfg["norm"], cfg["trainable_B"], cfg["bidirectional"], cfg["shared_vth"])


@pytest.mark.parametrize("config", ["pre_bn_s4d", "pre_bn_trainB"])
def test_s4d_recurrence_equals_convolution_kernel(config: str) -> None:
    """xi_t = lambda*xi_{t-1} + u_t read out per step equals causal_conv(u, K) + D*u over 512 steps."""
    model = load_spiking_ssm(GOLDENS / f"{config}_seed7.pt", prenorm=True).double()
    layer = model.backbone.s4_layers[0]
    u = torch.from_numpy(np.random.default_rng(0).normal(size=(3, model.config.d_model, 512)))
    with torch.no_grad():
        conv = layer.neuron_input(u)
        params = layer.s4d_params()
        state = S4DState(torch.zeros(3, *params.lam.shape, dtype=params.lam.dtype))
        steps = []
        for t in range(u.shape[-1]):
            y, state = s4d_step(u[..., t], state, params)
            steps.append(y)
    stream = torch.stack(steps, -1)
    assert float((stream - conv).abs().max()) < 1e-9 * float(conv.abs().max())


def write_variant(tmp_path: Path, config: str, change) -> Path:
    state, _ = read_state(GOLDENS / f"{config}_seed7.pt")
    change(state)
    out = tmp_path / f"{config}_variant.pt"
    torch.save(state, out)
    return out


def _bidirectional(zero_backward: bool):
    def change(state: dict) -> None:
        for key in [k for k in state if k.endswith("kernel.C")]:
            back = torch.zeros_like(state[key]) if zero_backward else state[key].flip(1)
            state[key] = torch.cat([state[key], back], dim=0)  # (2, H, N/2, 2): two kernel channels
    return change


def test_bidirectional_refused_for_hardware_targets(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "post_bn_s4d", _bidirectional(zero_backward=False))
    with pytest.raises(SilifDeployError) as err:
        load_spiking_ssm(path, prenorm=False, target="loihi2")
    message = str(err.value)
    assert "\n" not in message and "bidirectional" in message and "loihi2" in message
    model = load_spiking_ssm(path, prenorm=False)  # float only
    assert model.config.bidirectional
    with pytest.raises(SilifDeployError):
        model.trace(torch.zeros(1, 8, 1), form="stream")
    # it really looks ahead: an input change at t0 changes the neuron input before t0
    x = torch.from_numpy(golden("post_bn_s4d", "bptt")["input"])
    x2 = x.clone()
    x2[:, 40] += 1.0
    with torch.no_grad():
        a = model.trace(x, record=True)[1]["neuron_in_0"]
        b = model.trace(x2, record=True)[1]["neuron_in_0"]
    assert float((a[:, :40] - b[:, :40]).abs().max()) > 1e-3


def test_bidirectional_with_silent_backward_channel_is_the_causal_model(tmp_path: Path) -> None:
    g = golden("post_bn_s4d", "bptt")
    path = write_variant(tmp_path, "post_bn_s4d", _bidirectional(zero_backward=True))
    check_against_golden(load_spiking_ssm(path, prenorm=False), g, "kernel", torch.float32)


def test_loader_refusals(tmp_path: Path) -> None:
    with pytest.raises(SilifDeployError, match="prenorm"):
        load_spiking_ssm(GOLDENS / "pre_bn_s4d_seed7.pt")  # flat files do not say where the norms act
    no_sdn = write_variant(tmp_path, "pre_bn_s4d",
                           lambda s: [s.pop(k) for k in [k for k in s if ".neuron.model." in k]])
    with pytest.raises(SilifDeployError, match="SDN"):
        load_spiking_ssm(no_sdn, neuron="sdn", prenorm=True)
    load_spiking_ssm(no_sdn, neuron="lif", prenorm=True)  # the authors' "bptt" layout
    pickled = tmp_path / "object.pt"
    torch.save({"backbone.s4_layers.0.kernel.C": Path("x")}, pickled)
    with pytest.raises(SilifDeployError, match="refused for safety"):
        load_spiking_ssm(pickled, prenorm=True)
    other = tmp_path / "silif.pt"
    torch.save({"snn.0.W.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(SilifDeployError, match="not a SpikingSSM"):
        load_spiking_ssm(other, prenorm=True)
    bad_shape = write_variant(tmp_path, "pre_bn_s4d", lambda s: s.update({"decoder.bias": torch.zeros(3)}))
    with pytest.raises(SilifDeployError, match="does not fit"):
        load_spiking_ssm(bad_shape, prenorm=True)


def test_binary_s4d_reconstruction() -> None:
    """A state without ln_vth is binary S4D: Heaviside [y >= 0] on the S4D output, no membrane; the
    kernel and streaming forms agree, and the spikes are exactly the sign test of the neuron input."""
    state, _ = read_state(GOLDENS / "pre_bn_s4d_seed7.pt")
    state = {k: v for k, v in state.items() if not k.endswith("ln_vth")}
    config = infer_config(state, prenorm=True)
    assert config.family == FAMILY_BINARY_S4D and config.neuron == "heaviside"
    model = model_from_state(state, config).double()
    x = torch.from_numpy(golden("pre_bn_s4d", "bptt")["input"]).double()
    with torch.no_grad():
        logits_k, rec_k = model.trace(x, "kernel", record=True)
        logits_s, rec_s = model.trace(x, "stream", record=True)
    for i in range(config.n_layers):
        assert torch.equal(rec_k[f"spikes_{i}"], (rec_k[f"neuron_in_{i}"] >= 0).double())
        assert torch.equal(rec_k[f"spikes_{i}"], rec_s[f"spikes_{i}"])
    assert float((logits_k - logits_s).abs().max()) < 1e-9


def test_spike_test_is_non_strict() -> None:
    """The authors spike at v' - 1 >= 0 (unlike SiLIF's strict >): exactly at threshold is a spike,
    and the hard reset then zeroes the membrane; just below decays by tau = 0.125."""
    y = torch.tensor([1.0, 1.0 - 2**-20, 0.0])
    s, state = lif_step(y, LIFState(torch.zeros(3)), LIFParams())
    assert s.tolist() == [1.0, 0.0, 0.0]
    assert state.v.tolist() == [0.0, 1.0 - 2**-20, 0.0]
    s2, state2 = lif_step(torch.zeros(3), state, LIFParams())
    assert s2.tolist() == [0.0, 0.0, 0.0] and state2.v[1] == (1.0 - 2**-20) * 0.125
    assert heaviside_step(torch.tensor([0.0, -1e-30]), None)[0].tolist() == [1.0, 0.0]


@pytest.mark.parametrize(("overrides", "expected"), [
    # backbone counts the spec measured with the authors' code (spiking_ssm.md §6), encoder/decoder by shape
    (dict(d_input=1, d_model=400, d_state=64, n_layers=2, n_classes=10, prenorm=False, norm="layer"),
     {"encoder": 800, "backbone": 748_000, "decoder": 4_010}),
    (dict(d_input=1, d_model=256, d_state=64, n_layers=4, n_classes=10, prenorm=False, norm="layer"),
     {"backbone": 662_528}),
    (dict(d_input=1, d_model=128, d_state=16, n_layers=6, n_classes=35, prenorm=True, norm="batch",
          trainable_B=True, bidirectional=True), {"backbone": 251_136}),
    (dict(d_input=1, d_model=256, d_state=4, n_layers=6, n_classes=10, prenorm=False, norm="batch",
          trainable_B=True, bidirectional=True), {"backbone": 821_760}),
    # the matched SpikingSSM (spec §13): 37,964 in all
    (dict(d_input=140, d_model=72, d_state=16, n_layers=2, n_classes=20, prenorm=True), {"total": 37_964}),
])
def test_parameter_counts(overrides: dict, expected: dict) -> None:
    counts = parameter_counts(build_model(SpikingSSMConfig(**overrides), seed=0))
    assert {k: counts[k] for k in expected} == expected


def test_sdn_copies_are_not_parameters() -> None:
    g = golden("pre_bn_s4d", "sdn")
    lif = load_spiking_ssm(GOLDENS / "pre_bn_s4d_seed7.pt", neuron="lif", prenorm=True)
    sdn = load_spiking_ssm(GOLDENS / "pre_bn_s4d_seed7.pt", neuron="sdn", prenorm=True)
    assert parameter_counts(lif) == parameter_counts(sdn)
    n_sdn = sum(v.numel() for k, v in sdn.state_dict().items() if ".neuron.model." in k)
    assert n_sdn == 153 * golden_config(g)["n_layers"]


@pytest.mark.parametrize("trainable_b", [False, True])
def test_optimizer_split_follows_the_authors(trainable_b: bool) -> None:
    model = build_model(SpikingSSMConfig(2, 8, 4, 1, 3, prenorm=True, trainable_B=trainable_b), seed=0)
    opt = make_optimizer(model, lr=0.01, weight_decay=0.01)
    hp = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(hp) == len(named)
    kernel = "backbone.s4_layers.0.kernel."
    ssm = ["inv_dt", "A_real", "A_imag", "B"] if trainable_b else ["log_dt", "log_A_real", "A_imag"]
    for name in ssm:
        assert hp[id(named[kernel + name])] == (0.001, 0.0)
    # S4DKernel's C is an ordinary parameter; S4's SSMKernelDiag gives C the SSM lr and the default decay
    assert hp[id(named[kernel + "C"])] == ((0.001, 0.01) if trainable_b else (0.01, 0.01))
    for name in ["encoder.weight", "backbone.s4_layers.0.D", "backbone.s4_layers.0.ln_vth", "decoder.bias"]:
        assert hp[id(named[name])] == (0.01, 0.01)


@pytest.mark.parametrize("neuron", ["lif", "sdn", "heaviside"])
def test_one_train_step_reduces_the_loss(neuron: str) -> None:
    config = SpikingSSMConfig(d_input=3, d_model=16, d_state=8, n_layers=2, n_classes=4, prenorm=True, neuron=neuron)
    model = build_model(config, seed=0)
    gen = torch.Generator().manual_seed(1)
    x, labels = torch.randn(8, 32, 3, generator=gen), torch.randint(0, 4, (8,), generator=gen)
    opt = make_optimizer(model)
    before = train_step(model, opt, x, labels)
    with torch.no_grad():
        after = float(torch.nn.functional.cross_entropy(model(x), labels))  # train mode: batch statistics
    assert after < before
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # the kernel of block 0 reaches the loss only through the spikes: the surrogate gradient passed
    assert float(model.backbone.s4_layers[0].kernel.C.grad.abs().sum()) > 0


@pytest.mark.parametrize("form", ["kernel", "stream"])
def test_causal_step_t_depends_on_inputs_up_to_t(form: str) -> None:
    """As the goldens' causality record (meta_json): a change at t0 = 32 leaves every spike before t0
    and the residual stream before t0 unchanged (the kernel form's 2L zero padding makes the FFT
    convolution linear, not circular) and changes spikes at t0 (no delay anywhere)."""
    g = golden("pre_bn_s4d", "bptt")
    model = load_spiking_ssm(GOLDENS / "pre_bn_s4d_seed7.pt", prenorm=True)
    x = torch.from_numpy(g["input"])
    x2 = x.clone()
    x2[:, 32] += 3.0
    with torch.no_grad():
        a, b = model.trace(x, form, record=True)[1], model.trace(x2, form, record=True)[1]
    for i in range(model.config.n_layers):
        assert torch.equal(a[f"spikes_{i}"][:, :32], b[f"spikes_{i}"][:, :32])
        assert float((a[f"block_out_{i}"][:, :32] - b[f"block_out_{i}"][:, :32]).abs().max()) < 1e-5
    assert not torch.equal(a["spikes_0"][:, 32], b["spikes_0"][:, 32])


def numpy_streaming_reference(arrays, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The exact-LIF network straight from spec §2-§4 in numpy over the extracted arrays: an
    implementation apart from the torch model, sharing only the extracted numbers."""
    h = arrays.encoder_w @ x.transpose(0, 2, 1) + arrays.encoder_b[:, None]  # (B, H, L)
    h = h.transpose(0, 2, 1)
    batch, length, _ = h.shape
    xi = [np.zeros((batch, *b.lam.shape), complex) for b in arrays.blocks]
    v = [np.zeros((batch, b.d.size)) for b in arrays.blocks]
    spikes = [np.zeros((batch, length, b.d.size), np.uint8) for b in arrays.blocks]
    total = np.zeros((batch, h.shape[-1]))
    for t in range(length):
        x_t = h[:, t]
        for i, b in enumerate(arrays.blocks):
            u = b.norm_scale * x_t + b.norm_shift
            xi[i] = b.lam * xi[i] + u[..., None]
            y = (2 * (b.c * xi[i]).sum(-1).real + b.d * u) / b.theta
            v[i] = 0.125 * v[i] + y
            s = (v[i] >= 1.0).astype(float)
            v[i] = v[i] * (1 - s)
            spikes[i][:, t] = s
            n = b.d.size
            a, gate = s @ b.glu_w[:n].T + b.glu_b[:n], s @ b.glu_w[n:].T + b.glu_b[n:]
            x_t = x_t + a / (1 + np.exp(-gate))
        total += x_t
    return (total / length) @ arrays.decoder_w.T + arrays.decoder_b, spikes


@pytest.mark.parametrize("config", CONFIGS)
def test_extracted_arrays_carry_the_whole_network(config: str) -> None:
    """The numpy float network (BatchNorm folded, float64 lambda and C') reproduces the authors' exact-LIF
    golden through an independent numpy streaming implementation."""
    g = golden(config, "bptt")
    model = load_spiking_ssm(GOLDENS / f"{config}_seed7.lightning.pt", neuron="lif")
    arrays = extract_arrays(model)
    assert arrays.blocks[0].lam.dtype == np.complex128
    logits, spikes = numpy_streaming_reference(arrays, g["input"].astype(np.float64))
    for i, s in enumerate(spikes):
        assert (s == golden_spikes(g, i)).all()
    assert float(np.abs(logits - g["logits"]).max()) <= LOGIT_TOL


def test_layernorm_prenorm_is_float_only() -> None:
    model = build_model(SpikingSSMConfig(1, 4, 2, 1, 2, prenorm=True, norm="layer"), seed=0)
    with pytest.raises(SilifDeployError, match="float-only"):
        extract_arrays(model)
    model.eval()(torch.zeros(1, 5, 1), form="stream")  # the float model itself runs it


def test_shipped_sdn_weights_are_the_authors() -> None:
    """The SDN shipped in the package (so a fresh sdn model needs no TorchScript file) equals, bit for
    bit, every copy in the authors' checkpoints."""
    fresh = build_model(SpikingSSMConfig(1, 4, 2, 1, 2, prenorm=True, neuron="sdn"), seed=0)
    shipped = {k.split("neuron.model.")[1]: v for k, v in fresh.state_dict().items() if ".neuron.model." in k}
    assert sum(v.numel() for v in shipped.values()) == 153
    for config in CONFIGS:
        state, _ = read_state(GOLDENS / f"{config}_seed7.pt")
        copies = [k for k in state if ".neuron.model." in k]
        assert len(copies) == 6 * golden_config(golden(config, "sdn"))["n_layers"]
        for key in copies:
            assert torch.equal(state[key], shipped[key.split("neuron.model.")[1]]), key
