"""``golden`` / ``verify``: bit-exact regression against a golden file, and the fixed-vs-float accuracy budget.

Small random networks (20 inputs, 2 × 16 hidden, 5 classes, 30 steps) keep this fast. Expected
diffs come from the golden's own spikes (a silenced layer, a changed readout weight) or from an
independent re-simulation of the modified artifact, never from ``verify``'s own code.
"""

from __future__ import annotations

import re
import shutil

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from silif_deploy.converters.artifact import read_artifact, write_artifact  # noqa: E402
from silif_deploy.converters.checkpoint import save_checkpoint  # noqa: E402
from silif_deploy.converters.files import sha256_file  # noqa: E402
from silif_deploy.converters.float_params import float_network  # noqa: E402
from silif_deploy.converters.quantize import quantize  # noqa: E402
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.deploy.verification import accuracy_drop  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402
from silif_deploy.hw_models.simulator import simulate  # noqa: E402

N_IN, HIDDEN, N_CLASSES, STEPS = 20, [16, 16], 5, 30
FIRST_DIFF = re.compile(r"^FAILED: first difference in (\w+): sample (\d+), step (\d+), neuron (\d+): "
                        r"expected (-?\d+), got (-?\d+)$", re.M)
ACCURACY = re.compile(r"float accuracy ([\d.]+) %, fixed-point accuracy ([\d.]+) %, drop (-?[\d.]+) pp")


def small_model(seed: int, model_type: str = "csilif", hidden: list[int] = HIDDEN, n_in: int = N_IN,
                bn_gain: float = 1.0) -> SpikingNetwork:
    torch.manual_seed(seed)
    model = SpikingNetwork(NetworkConfig(model_type, n_in, hidden, N_CLASSES, pdrop=0.0)).eval()
    with torch.no_grad():
        for layer in model.hidden_layers:  # a larger BN gain makes every layer spike (~16 % at gain 2)
            layer.norm.weight.fill_(bn_gain)
    return model


def write_model_artifact(model: SpikingNetwork, path, profile: str = "loihi2"):
    """What ``export --target loihi2`` writes: the quantized network plus the float model it came from."""
    network = quantize(float_network(model), load_profile(profile))
    network.float_model = {"config": model.config.to_dict(),
                           "state_dict": {k: v.numpy() for k, v in model.state_dict().items()}}
    write_artifact(network, path)
    return path


def counts(seed: int, n: int, n_in: int = N_IN, rate: float = 0.5) -> np.ndarray:
    return np.random.default_rng(seed).poisson(rate, (n, STEPS, n_in)).astype(np.int16)


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def copy_and_edit(src, dst, edit) -> None:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)


def first_difference(expected: np.ndarray, got: np.ndarray) -> tuple[int, int, int]:
    """(sample, step, neuron) of the earliest differing step, then the lowest sample and neuron in it."""
    differs = expected != got
    step = int(np.flatnonzero(differs.any(axis=(0, 2)))[0])
    sample = int(np.flatnonzero(differs[:, step].any(axis=1))[0])
    neuron = int(np.flatnonzero(differs[sample, step])[0])
    return sample, step, neuron


def golden_input() -> np.ndarray:
    """4 samples; sample 0 silent for 10 steps, so the first difference is in a later sample, which
    tells "earliest step first" from "first sample first"."""
    x = counts(0, 4)
    x[0, :10] = 0
    return x


@pytest.fixture(scope="module")
def golden_setup(tmp_path_factory):
    """An artifact, its golden on 4 samples, and the golden's contents."""
    d = tmp_path_factory.mktemp("golden")
    artifact = write_model_artifact(small_model(0, bn_gain=2.0), d / "net.loihi2.h5")
    np.savez(d / "input.npz", input=golden_input())
    assert main(["golden", str(artifact), "--input", str(d / "input.npz"), "-o", str(d / "golden.npz")]) == 0
    with np.load(d / "golden.npz") as z:
        golden = {k: z[k] for k in z.files}
    return d, artifact, d / "golden.npz", golden


def golden_spikes(golden: dict, layer: int) -> np.ndarray:
    return np.unpackbits(golden[f"spikes_{layer}"], axis=-1)[..., : HIDDEN[layer]]


def test_golden_holds_input_hash_and_the_simulators_outputs(golden_setup):
    _, artifact, _, golden = golden_setup
    assert str(golden["format"]) == "silif-deploy-golden"
    assert str(golden["artifact_sha256"]) == sha256_file(artifact)
    np.testing.assert_array_equal(golden["input"], golden_input())
    result = simulate(read_artifact(artifact), golden_input(), record_states=True)
    for i in range(len(HIDDEN)):
        np.testing.assert_array_equal(golden_spikes(golden, i), result.spikes[i])
        assert 0.05 < result.spikes[i].mean() < 0.5, "the test network must spike in every layer"
    np.testing.assert_array_equal(golden["readout_v"], result.states["v_readout"])


def test_verify_unchanged_artifact_is_ok(golden_setup, capsys):
    _, artifact, golden_file, _ = golden_setup
    code, out, _ = cli(capsys, "verify", artifact, "--golden", golden_file)
    assert code == 0
    assert out.startswith("OK: bit-exact") and "spikes_0: 0 mismatches" in out and "readout_v: 0 mismatches" in out


def test_silenced_layer_fails_at_its_first_golden_spike(golden_setup, capsys):
    """θ of layer 0 above any reachable state: it never spikes, so the first difference is the golden's
    first layer-0 spike (earliest step, then lowest sample and neuron), expected 1, got 0."""
    d, artifact, golden_file, golden = golden_setup
    modified = d / "silenced.loihi2.h5"
    copy_and_edit(artifact, modified, lambda f: f["layers/0"].attrs.__setitem__("threshold", 1 << 30))
    code, out, _ = cli(capsys, "verify", modified, "--golden", golden_file)
    assert code == 1
    spikes0 = golden_spikes(golden, 0)
    step = int(np.flatnonzero(spikes0.any(axis=(0, 2)))[0])
    sample = int(np.flatnonzero(spikes0[:, step].any(axis=1))[0])
    neuron = int(np.flatnonzero(spikes0[sample, step])[0])
    assert FIRST_DIFF.search(out).groups() == ("spikes_0", str(sample), str(step), str(neuron), "1", "0")
    assert f"spikes_0: {int(spikes0.sum())}" in out  # every golden spike of layer 0 is missing
    assert len(out.strip().splitlines()) == 2


def test_changed_readout_weight_fails_in_the_readout_where_its_input_first_spikes(golden_setup, capsys):
    """Readout weight (class k ← hidden neuron i) changed: spikes are untouched and v of class k moves at
    the first step where neuron i of the last hidden layer spikes (the readout is aligned to it)."""
    d, artifact, golden_file, golden = golden_setup
    spikes1 = golden_spikes(golden, 1)
    i = int(np.argmax(spikes1.sum(axis=(0, 1))))
    k = 3

    def edit(f):
        w = f["layers/2/weights"]
        row = w[k]
        row[i] = -row[i] if row[i] else 64
        w[k] = row

    modified = d / "readout_weight.loihi2.h5"
    copy_and_edit(artifact, modified, edit)
    code, out, _ = cli(capsys, "verify", modified, "--golden", golden_file)
    assert code == 1
    step = int(np.flatnonzero(spikes1[:, :, i].any(axis=0))[0])
    sample = int(np.flatnonzero(spikes1[:, step, i])[0])
    layer, s, t, n, expected, got = FIRST_DIFF.search(out).groups()
    assert (layer, int(s), int(t), int(n)) == ("readout_v", sample, step, k)
    assert int(expected) == golden["readout_v"][sample, step, k] != int(got)
    assert "spikes_0: 0, spikes_1: 0, readout_v: " in out


def test_changed_hidden_weight_fails_at_the_first_difference_of_the_two_simulations(golden_setup, capsys):
    """One layer-1 weight flipped: layer 0 is untouched; the first difference (computed here from two
    independent simulations) is in layer 1, at the neuron whose weight changed."""
    d, artifact, golden_file, golden = golden_setup
    spikes0 = golden_spikes(golden, 0)
    pre = int(np.argmax(spikes0.sum(axis=(0, 1))))
    layer1 = read_artifact(artifact).hidden[1]
    # the neuron's gain scales its whole row (every row spans the weight format): weigh by both
    post = int(np.argmax(np.abs(layer1.synapse.weights[:, pre] * layer1.params.gain)))

    def edit(f):
        w = f["layers/1/weights"]
        row = w[post]
        row[pre] = -row[pre]
        w[post] = row

    modified = d / "hidden_weight.loihi2.h5"
    copy_and_edit(artifact, modified, edit)
    code, out, _ = cli(capsys, "verify", modified, "--golden", golden_file)
    assert code == 1
    new = simulate(read_artifact(modified), golden["input"])
    old = simulate(read_artifact(artifact), golden["input"])
    np.testing.assert_array_equal(new.spikes[0], old.spikes[0])
    assert (new.spikes[1] != old.spikes[1]).any(), "pick a weight that changes layer-1 spikes"
    sample, step, neuron = first_difference(old.spikes[1], new.spikes[1])
    assert neuron == post
    mismatches = int((old.spikes[1] != new.spikes[1]).sum())
    assert FIRST_DIFF.search(out).groups()[:4] == ("spikes_1", str(sample), str(step), str(post))
    assert f"spikes_0: 0, spikes_1: {mismatches}, readout_v: " in out


@pytest.mark.parametrize("other", ["wider", "deeper", "more_inputs"])
def test_golden_of_another_network_is_a_one_line_error(golden_setup, capsys, other):
    d, artifact, golden_file, _ = golden_setup
    model = {"wider": lambda: small_model(1, hidden=[16, 24]), "deeper": lambda: small_model(1, hidden=[16, 16, 16]),
             "more_inputs": lambda: small_model(1, n_in=N_IN + 4)}[other]()
    other_artifact = write_model_artifact(model, d / f"{other}.loihi2.h5")
    code, out, err = cli(capsys, "verify", other_artifact, "--golden", golden_file)
    assert code == 2 and out == ""
    assert err.startswith("silif-deploy verify: error: ") and len(err.strip().splitlines()) == 1
    assert "another network" in err and "20 -> 16 -> 16 -> 5" in err


@pytest.mark.parametrize("content", ["input_only", "not_npz"])
def test_non_golden_file_is_a_one_line_error(golden_setup, capsys, content):
    d, artifact, _, _ = golden_setup
    path = d / f"{content}.npz"
    if content == "input_only":
        np.savez(path, input=counts(0, 2))
    else:
        path.write_text("not a golden\n")
    code, out, err = cli(capsys, "verify", artifact, "--golden", path)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and f"'{path}'" in err and "golden" in err


def test_verify_needs_exactly_one_check(golden_setup, capsys):
    d, artifact, golden_file, _ = golden_setup
    assert cli(capsys, "verify", artifact)[0] == 2
    code, _, err = cli(capsys, "verify", artifact, "--golden", golden_file, "--data", d / "input.npz")
    assert code == 2 and "exactly one of --golden" in err


# --- accuracy budget -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def accuracy_setup(tmp_path_factory):
    """A C-SiLIF network whose `loihi2` fixed point disagrees with float on 4 of 64 samples (6.25 pp; none
    under `loihi2-wide`), with labels = the float predictions, so float accuracy is exactly 100 %."""
    d = tmp_path_factory.mktemp("accuracy")
    model = small_model(6)
    x = counts(6, 64, rate=0.3)
    float_pred = model.run(x).prediction
    np.savez(d / "test.npz", input=x, labels=float_pred)
    np.savez(d / "unlabelled.npz", input=x)
    save_checkpoint(model, d / "model.pt")
    artifact = write_model_artifact(model, d / "model.loihi2.h5")
    fixed_acc = {p: float(np.mean(simulate(quantize(float_network(model), load_profile(p)), x).prediction == float_pred))
                 for p in ("loihi2", "loihi2-wide")}
    assert fixed_acc == {"loihi2": 60 / 64, "loihi2-wide": 1.0}, "the test needs a network that loses accuracy"
    return d, artifact, fixed_acc


def _accuracy_line(out: str) -> tuple[float, float, float]:
    return tuple(float(v) for v in ACCURACY.search(out).groups())  # type: ignore[return-value]


@pytest.mark.parametrize("budget, code", [(6.5, 0), (6.0, 1)])
def test_artifact_accuracy_budget(accuracy_setup, capsys, budget, code):
    d, artifact, fixed_acc = accuracy_setup
    got, out, _ = cli(capsys, "verify", artifact, "--data", d / "test.npz", "--max-accuracy-drop", budget)
    assert got == code
    assert out.startswith("OK: " if code == 0 else "FAILED: ")
    assert _accuracy_line(out) == (100.0, 100 * fixed_acc["loihi2"], 6.25)
    assert f"budget {budget:.2f} pp) on 64 samples" in out


@pytest.mark.parametrize("profile, budget, code", [("loihi2", 6.0, 1), ("loihi2-wide", 0.0, 0)])
def test_checkpoint_accuracy_budget_under_a_profile(accuracy_setup, capsys, profile, budget, code):
    d, _, fixed_acc = accuracy_setup
    got, out, _ = cli(capsys, "verify", d / "model.pt", "--data", d / "test.npz", "--profile", profile,
                      "--max-accuracy-drop", budget)
    assert got == code
    assert _accuracy_line(out)[:2] == (100.0, 100 * fixed_acc[profile])


def test_profile_with_an_artifact_is_refused(accuracy_setup, capsys):
    d, artifact, _ = accuracy_setup
    code, _, err = cli(capsys, "verify", artifact, "--data", d / "test.npz", "--profile", "loihi2-wide")
    assert code == 2 and "--profile applies to checkpoints" in err


def test_data_without_labels_is_a_one_line_error(accuracy_setup, capsys):
    d, artifact, _ = accuracy_setup
    code, out, err = cli(capsys, "verify", artifact, "--data", d / "unlabelled.npz")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "has no labels" in err


@pytest.mark.parametrize("n, lost, drop", [(200, 1, 0.5), (30, 3, 10.0), (480, 12, 2.5), (64, -2, -3.125)])
def test_accuracy_drop_is_exact_at_the_budget(n, lost, drop):
    """One sample lost of 200 is a drop of exactly 0.5 pp, so a 0.5 pp budget passes (a drop computed as
    100·(1 − 199/200) would be 0.5000000000000004 and fail it)."""
    labels = np.arange(n) % 7
    float_pred, fixed_pred = labels.copy(), labels.copy()
    if lost > 0:
        fixed_pred[:lost] += 1
    else:
        float_pred[:-lost] += 1
    acc_float, acc_fixed, got = accuracy_drop(float_pred, fixed_pred, labels)
    assert got == drop
    assert (acc_float, acc_fixed) == ((n - max(-lost, 0)) / n, (n - max(lost, 0)) / n)
