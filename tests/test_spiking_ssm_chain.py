"""SpikingSSM and binary S4D through the float side of the chain: checkpoints, the float engine, NIR, the CLI.

What each test proves:
* golden agreement **through** ``silif_deploy.load_model`` and ``model.run`` (the engines' RunResult):
  the key-based detection, both of the authors' layouts and both neuron modes give the authors' own
  spikes (identical) and logits (within 1e-4), independent outputs of their code;
* our checkpoint records what the flat state_dict loses (prenorm, the neuron mode): a save/load round
  trip rebuilds the same configuration and the same tensors, so the same outputs bit for bit;
* the NIR round trip is exact (the model read back computes bit-identical outputs), stock ``nir.read``
  loads the file, and an edited body is refused: the body states the model, the payload is not
  merely copied back;
* every refusal is one line, exit status 2, and writes nothing; fixed point (its values:
  ``test_spiking_ssm_fixed.py``) is reached from the same CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

import silif_deploy  # noqa: E402
from conftest import REFERENCE  # noqa: E402
from silif_deploy import SilifDeployError  # noqa: E402
from silif_deploy.converters.checkpoint import save_checkpoint  # noqa: E402
from silif_deploy.converters.families.spiking_ssm import (  # noqa: E402
    SpikingSSMNet, build_model, infer_config, load_spiking_ssm, read_state,
)
from silif_deploy.converters.nir_import import model_from_nir_file  # noqa: E402
from silif_deploy.converters.nir_export import to_nir, write_nir  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402

GOLDENS = REFERENCE / "spikingssm"
CONFIGS = {"pre_bn_s4d": True, "pre_bn_trainB": True, "post_bn_s4d": False}  # config -> prenorm
MODES = {"bptt": "lif", "sdn": "sdn"}


def golden(config: str, mode: str) -> dict:
    data = np.load(GOLDENS / f"{config}_seed7_{mode}.npz")
    return {k: data[k] for k in data.files}


def golden_spikes(g: dict, i: int) -> np.ndarray:
    shape = tuple(int(n) for n in g[f"spikes_l{i}_shape"])
    return np.unpackbits(g[f"spikes_l{i}"], axis=-1, count=shape[-1]).reshape(shape).astype(bool)


def assert_golden(result, g: dict) -> None:
    for i, spikes in enumerate(result.spikes):
        assert np.array_equal(spikes, golden_spikes(g, i)), f"block {i} spikes differ"
    assert float(np.abs(result.scores - g["logits"]).max()) <= 1e-4


def one_line_refusal(capsys, argv: list[str], *words: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("layout", ["flat", "lightning"])
def test_load_model_detects_and_matches_the_goldens(config: str, mode: str, layout: str) -> None:
    g = golden(config, mode)
    if layout == "flat":
        model = silif_deploy.load_model(GOLDENS / f"{config}_seed7.pt", neuron=MODES[mode], prenorm=CONFIGS[config])
    else:  # the Lightning hyper_parameters say where the norms act
        model = silif_deploy.load_model(GOLDENS / f"{config}_seed7.lightning.pt", neuron=MODES[mode])
    assert isinstance(model, SpikingSSMNet) and model.config.prenorm == CONFIGS[config]
    result = model.run(g["input"])
    assert_golden(result, g)
    # scores are the decoder's output; readout_u the decoder per step, whose time mean is the logits
    assert result.readout_u.shape == (*g["input"].shape[:2], g["logits"].shape[1])
    assert np.allclose(result.readout_u.mean(axis=1), result.scores, atol=1e-5)


def test_default_neuron_is_the_exact_lif() -> None:
    model = silif_deploy.load_model(GOLDENS / "pre_bn_s4d_seed7.lightning.pt")
    assert model.config.neuron == "lif"
    assert_golden(model.run(golden("pre_bn_s4d", "bptt")["input"]), golden("pre_bn_s4d", "bptt"))


@pytest.mark.parametrize("config,mode", [("post_bn_s4d", "sdn"), ("pre_bn_trainB", "bptt")])
def test_our_checkpoint_records_prenorm_and_neuron(tmp_path: Path, config: str, mode: str) -> None:
    model = silif_deploy.load_model(GOLDENS / f"{config}_seed7.pt", neuron=MODES[mode], prenorm=CONFIGS[config])
    save_checkpoint(model, tmp_path / "ours.pt")
    back = silif_deploy.load_model(tmp_path / "ours.pt")  # neither prenorm nor the neuron given: recorded
    assert back.config == model.config
    assert load_spiking_ssm(tmp_path / "ours.pt").config == model.config  # the family's own loader reads it too
    assert back.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(back.state_dict()[k], v) for k, v in model.state_dict().items())
    x = golden(config, mode)["input"]
    a, b = model.run(x), back.run(x)
    assert np.array_equal(a.scores, b.scores) and all(map(np.array_equal, a.spikes, b.spikes))
    with pytest.raises(SilifDeployError, match="records prenorm"):
        silif_deploy.load_model(tmp_path / "ours.pt", prenorm=not CONFIGS[config])


def test_binary_s4d_checkpoint_round_trip(tmp_path: Path) -> None:
    state, _ = read_state(GOLDENS / "pre_bn_s4d_seed7.pt")
    state = {k: v for k, v in state.items() if not k.endswith("ln_vth") and ".neuron.model." not in k}
    torch.save(state, tmp_path / "binary.pt")
    model = silif_deploy.load_model(tmp_path / "binary.pt", prenorm=True)
    assert model.config.family == "binary_s4d" and model.config.neuron == "heaviside"
    save_checkpoint(model, tmp_path / "ours.pt")
    assert silif_deploy.load_model(tmp_path / "ours.pt").config == model.config


def test_refusals_through_load_model(tmp_path: Path) -> None:
    with pytest.raises(SilifDeployError, match="prenorm") as err:
        silif_deploy.load_model(GOLDENS / "pre_bn_s4d_seed7.pt")
    assert "--norm-placement" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SilifDeployError, match="not spiking_ssm|holds a spiking_ssm network, not silif"):
        silif_deploy.load_model(GOLDENS / "pre_bn_s4d_seed7.lightning.pt", model_type="silif")
    pickled = tmp_path / "object.pt"
    torch.save({"backbone.s4_layers.0.kernel.C": Path("x")}, pickled)
    with pytest.raises(SilifDeployError, match="refused for safety"):  # the one weights_only loader
        silif_deploy.load_model(pickled)


# ------------------------------------------------------------------------------------------ CLI


def input_file(tmp_path: Path, config: str = "pre_bn_s4d", mode: str = "bptt") -> Path:
    path = tmp_path / "x.npy"
    np.save(path, golden(config, mode)["input"])
    return path


@pytest.mark.parametrize("mode", MODES)
def test_cli_simulate_float_reproduces_the_goldens(tmp_path: Path, capsys, mode: str) -> None:
    x = input_file(tmp_path, "pre_bn_trainB", mode)
    out = tmp_path / "out.npz"
    argv = ["simulate", str(GOLDENS / "pre_bn_trainB_seed7.pt"), "--norm-placement", "pre", "--engine", "float",
            "--input", str(x), "--out", str(out), "--record", "spikes"]
    if mode == "sdn":
        argv += ["--neuron", "sdn"]
    assert main(argv) == 0
    g = golden("pre_bn_trainB", mode)
    with np.load(out) as o:
        assert float(np.abs(o["scores"] - g["logits"]).max()) <= 1e-4
        for i in range(2):
            assert np.array_equal(o[f"spikes_{i}"], golden_spikes(g, i))


def test_cli_inspect_a_spiking_ssm_checkpoint(capsys) -> None:
    assert main(["inspect", str(GOLDENS / "post_bn_s4d_seed7.lightning.pt")]) == 0
    out = capsys.readouterr().out
    assert "SpikingSSM" in out and "post-norm" in out and "2 blocks of H = 16" in out and "--target loihi2" in out


def test_cli_fixed_point_works_and_its_refusals_are_one_line(tmp_path: Path, capsys) -> None:
    """Fixed point works on these families now (tests/test_spiking_ssm_fixed.py checks its values): a
    checkpoint on the fixed or Lava engine is told to export first, --target netx is refused, and
    verify --data quantizes the checkpoint (calibrated on the data) in memory."""
    ckpt = str(GOLDENS / "pre_bn_s4d_seed7.lightning.pt")
    outdir = tmp_path / "netx"
    one_line_refusal(capsys, ["export", ckpt, "--target", "netx", "-o", str(outdir)], "no netx form", "--target loihi2")
    assert not outdir.exists()
    x = input_file(tmp_path)
    for engine in ("fixed", "lava"):
        out = tmp_path / f"{engine}.npz"
        one_line_refusal(capsys, ["simulate", ckpt, "--engine", engine, "--input", str(x), "--out", str(out)],
                         "runs a fixed-point artifact", "--target loihi2")
        assert not out.exists()
    labelled = tmp_path / "labelled.npz"
    np.savez(labelled, x=np.load(x), labels=golden("pre_bn_s4d", "bptt")["logits"].argmax(axis=1))
    assert main(["verify", ckpt, "--data", str(labelled), "--max-accuracy-drop", "100"]) == 0
    assert "OK: float accuracy 100.00 %" in capsys.readouterr().out  # the labels are the float predictions


def test_cli_bidirectional_and_option_refusals(tmp_path: Path, capsys) -> None:
    state, hyper = read_state(GOLDENS / "post_bn_s4d_seed7.lightning.pt")
    for key in [k for k in state if k.endswith("kernel.C")]:
        state[key] = torch.cat([state[key], state[key].flip(1)], dim=0)
    bidi = tmp_path / "bidi.pt"
    torch.save(state, bidi)
    for target in ("nir", "loihi2"):
        outdir = tmp_path / f"out_{target}"
        one_line_refusal(capsys, ["export", str(bidi), "--norm-placement", "post", "--target", target,
                                  "-o", str(outdir)], "bidirectional")
        assert not outdir.exists()
    ckpt = str(GOLDENS / "pre_bn_s4d_seed7.lightning.pt")
    one_line_refusal(capsys, ["export", ckpt, "--neuron", "sdn", "--target", "nir", "-o", str(tmp_path / "n")], "SDN")
    one_line_refusal(capsys, ["export", ckpt, "--target", "nir", "--nir-profile", "lif-compat",
                              "-o", str(tmp_path / "n")], "exact profile")
    assert not (tmp_path / "n").exists()
    silif = REFERENCE / "ssc_silif_2x512.pth"
    if silif.exists():
        one_line_refusal(capsys, ["export", str(silif), "--neuron", "sdn", "--target", "nir",
                                  "-o", str(tmp_path / "s")], "SpikingSSM checkpoints only")


# ------------------------------------------------------------------------------------------ NIR


def binary_s4d_model() -> SpikingSSMNet:
    state, _ = read_state(GOLDENS / "pre_bn_s4d_seed7.pt")
    state = {k: v for k, v in state.items() if not k.endswith("ln_vth") and ".neuron.model." not in k}
    from silif_deploy.converters.families.spiking_ssm import model_from_state

    return model_from_state(state, infer_config(state, prenorm=True))


def models_for_nir():
    for config, prenorm in CONFIGS.items():
        yield config, lambda c=config: silif_deploy.load_model(GOLDENS / f"{c}_seed7.lightning.pt")
    yield "binary_s4d", binary_s4d_model


@pytest.mark.parametrize("name,make", list(models_for_nir()), ids=[n for n, _ in models_for_nir()])
def test_nir_round_trip_is_exact(tmp_path: Path, name: str, make) -> None:
    model = make()
    path = write_nir(model, tmp_path / f"{name}.nir")
    back = model_from_nir_file(path)
    assert back.config == model.config
    x = golden("pre_bn_s4d", "bptt")["input"]
    a, b = model.run(x), back.run(x)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.readout_u, b.readout_u)
    assert all(np.array_equal(s, t) for s, t in zip(a.spikes, b.spikes))
    graph = nir.read(path)  # stock NIR loads it, type checking on
    meta = graph.metadata
    assert meta["model_type"] == model.config.family
    assert set(json.loads(meta["not_expressible"])) == {"glu", "spike_test", "pooling"}
    kinds = {n.split("_", 1)[-1].rstrip("0123456789"): type(node).__name__ for n, node in graph.nodes.items()}
    assert kinds["s4d"] == "NIRGraph" and kinds["glu"] == "Affine" and kinds["res"] == "Scale"
    assert kinds.get("lif", kinds.get("spike")) == ("Threshold" if name == "binary_s4d" else "LIF")
    res0 = next(n for n in graph.nodes if n.endswith("_res0"))
    assert len([e for e in graph.edges if e[1] == res0]) == 2  # the residual: one node, two inputs
    glu = next(node for n, node in graph.nodes.items() if n.endswith("_glu0"))
    assert glu.metadata["expressible"] is False or glu.metadata["expressible"] == 0


def test_nir_body_states_the_s4d() -> None:
    """The 2x2 construction, read independently of the payload: step the body's p, q LIs by hand under
    the per-step reading and compare y with the model's recorded neuron input."""
    model = silif_deploy.load_model(GOLDENS / "post_bn_s4d_seed7.lightning.pt")
    graph = to_nir(model)
    s4d = next(node for n, node in graph.nodes.items() if n.endswith("_s4d0"))
    nodes = {n.split("_", 1)[1]: node for n, node in s4d.nodes.items()}
    d = np.exp(-1.0 / nodes["p"].tau.astype(np.float64))
    w = 1.0 - d
    g = golden("post_bn_s4d", "bptt")
    u = g["ssm_in_0"].astype(np.float64)  # (B, L, H)
    p = np.zeros((u.shape[0], d.size))
    q = np.zeros_like(p)
    ys = []
    for t in range(u.shape[1]):
        x_p = u[:, t] @ nodes["in2p"].weight.T.astype(np.float64) + p * nodes["p2p"].scale + q * nodes["q2p"].scale
        x_q = p * nodes["p2q"].scale + q * nodes["q2q"].scale
        p, q = d * p + w * x_p, d * q + w * x_q
        ys.append(p @ nodes["p2y"].weight.T + q @ nodes["q2y"].weight.T + u[:, t] * nodes["in2y"].scale)
    y = np.stack(ys, axis=1)
    assert float(np.abs(y - g["neuron_in_0"]).max()) < 1e-4  # float32 body parameters


def test_nir_edited_body_is_refused(tmp_path: Path) -> None:
    import h5py

    model = silif_deploy.load_model(GOLDENS / "pre_bn_s4d_seed7.lightning.pt")
    path = write_nir(model, tmp_path / "m.nir")
    with h5py.File(path, "r+") as f:
        s4d = next(k for k in f["node/nodes"] if k.endswith("_s4d1"))
        q2p = next(k for k in f[f"node/nodes/{s4d}/nodes"] if k.endswith("_q2p"))
        f[f"node/nodes/{s4d}/nodes/{q2p}/scale"][0] *= 1.01
    with pytest.raises(SilifDeployError, match="Im lambda"):
        model_from_nir_file(path)


def test_cli_export_nir_check_and_simulate(tmp_path: Path, capsys) -> None:
    ckpt = GOLDENS / "pre_bn_s4d_seed7.pt"
    assert main(["export", str(ckpt), "--norm-placement", "pre", "--target", "nir", "--check-nir",
                 "-o", str(tmp_path / "exp")]) == 0
    path = tmp_path / "exp" / "pre_bn_s4d_seed7.nir"
    out = tmp_path / "o.npz"
    assert main(["simulate", str(path), "--input", str(input_file(tmp_path)), "--out", str(out),
                 "--record", "spikes"]) == 0
    g = golden("pre_bn_s4d", "bptt")
    with np.load(out) as o:
        assert float(np.abs(o["scores"] - g["logits"]).max()) <= 1e-4
        assert all(np.array_equal(o[f"spikes_{i}"], golden_spikes(g, i)) for i in range(2))
    capsys.readouterr()
    one_line_refusal(capsys, ["simulate", str(path), "--neuron", "sdn", "--input", str(input_file(tmp_path)),
                              "--out", str(tmp_path / "o2.npz")], "NIR file")
    assert not (tmp_path / "o2.npz").exists()


def test_fresh_model_nir_round_trip(tmp_path: Path) -> None:
    """A random-init model (not the goldens' sizes: N = 16, 3 blocks, several inputs) round-trips too."""
    from silif_deploy.converters.families.spiking_ssm import SpikingSSMConfig

    model = build_model(SpikingSSMConfig(d_input=3, d_model=8, d_state=16, n_layers=3, n_classes=5, prenorm=True),
                        seed=3).eval()
    back = model_from_nir_file(write_nir(model, tmp_path / "fresh.nir"))
    x = np.random.default_rng(0).normal(size=(2, 20, 3)).astype(np.float32)
    assert np.array_equal(model.run(x).scores, back.run(x).scores)
