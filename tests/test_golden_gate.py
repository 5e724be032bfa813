"""``verify`` as a CI gate that cannot be fooled: any change of the artifact or of any state fails,
the artifact's identity is its content (not its bytes), old goldens still verify what they hold,
and ``verify --data`` refuses budgets and labels that would make it pass on nonsense.

Expected differences come from two independent simulations of the original and the edited
artifact (their recorded states), never from ``verify``'s own digests.
"""

from __future__ import annotations

import re
import shutil

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_verify import STEPS, cli, counts, small_model, write_model_artifact  # noqa: E402

from silif_deploy.converters.artifact import artifact_identity, read_artifact  # noqa: E402
from silif_deploy.converters.checkpoint import save_checkpoint  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.hw_models.dense import weight_grid  # noqa: E402
from silif_deploy.hw_models.neuron_kinds import KINDS  # noqa: E402
from silif_deploy.hw_models.simulator import simulate  # noqa: E402

STATE_DIFF = re.compile(r"^FAILED: first difference in the states \((\w+), (\w+)\) of layer (\d+): sample (\d+), "
                        r"step (\d+), neuron (\d+) ", re.M)


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    """An artifact, a golden on an input whose channel 0 never fires, and the golden's path."""
    d = tmp_path_factory.mktemp("gate")
    artifact = write_model_artifact(small_model(0, bn_gain=2.0), d / "net.loihi2.h5")
    x = counts(0, 4)
    x[:, :, 0] = 0
    np.savez(d / "input.npz", input=x)
    assert main(["golden", str(artifact), "--input", str(d / "input.npz"), "-o", str(d / "golden.npz")]) == 0
    return d, artifact, d / "golden.npz", x


def _edited(src, dst, layer: int, post: int, pre: int, delta_steps: int) -> None:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        w = f[f"layers/{layer}/weights"]
        row = w[post]
        step, _, w_max = weight_grid(int(f[f"layers/{layer}"].attrs["num_weight_bits"]))
        row[pre] = row[pre] + delta_steps * step if row[pre] + step <= w_max else row[pre] - step
        w[post] = row


def _run(path, x):
    result = simulate(read_artifact(path), x, record_states=True)
    return result, read_artifact(path)


def test_one_weight_step_that_moves_no_spike_fails_at_its_first_state(gate, capsys, tmp_path):
    """The issue's case: one hidden weight changed by one step; spikes and readout stay the same, so
    a spikes-and-readout golden says bit-exact. The state check must fail, at the first (step,
    sample) whose states differ in the two simulations and the lowest neuron whose trajectory differs."""
    _, artifact, golden_file, x = gate
    base, network = _run(artifact, x)
    name1, name2 = KINDS[network.hidden[0].kind].states
    found = None
    for pre in range(1, network.n_inputs):  # channel 0 never fires
        for post in range(network.hidden[0].size):
            candidate = tmp_path / f"w{post}_{pre}.loihi2.h5"
            _edited(artifact, candidate, 0, post, pre, 1)
            new, _ = _run(candidate, x)
            same_outputs = all(np.array_equal(a, b) for a, b in zip(new.spikes, base.spikes)) and \
                np.array_equal(new.states["v_readout"], base.states["v_readout"])
            if same_outputs and not np.array_equal(new.states[f"{name1}_0"], base.states[f"{name1}_0"]):
                found = candidate, new
                break
            candidate.unlink()
        if found:
            break
    assert found, "no one-step weight change that keeps every spike: choose another seed"
    modified, new = found
    differs = (new.states[f"{name1}_0"] != base.states[f"{name1}_0"]) | (new.states[f"{name2}_0"] != base.states[f"{name2}_0"])
    step = int(np.flatnonzero(differs.any(axis=(0, 2)))[0])
    sample = int(np.flatnonzero(differs[:, step].any(axis=1))[0])
    neuron = int(np.flatnonzero(differs[sample].any(axis=0))[0])

    code, out, _ = cli(capsys, "verify", modified, "--golden", golden_file)
    assert code == 1
    assert STATE_DIFF.search(out).groups() == (name1, name2, "0", str(sample), str(step), str(neuron))
    pairs = int(differs.any(axis=2).sum())
    assert f"spikes_0: 0, spikes_1: 0, readout_v: 0, states_0: {pairs}, states_1: " in out
    assert "artifact_identity: 1" in out

    # a golden of the 0.1.0 format holds only spikes and the readout: it passes, and says what it lacks
    old = tmp_path / "old_golden.npz"
    with np.load(golden_file) as z:
        keep = {k: z[k] for k in z.files if not k.startswith(("state_digests", "neuron_digests", "artifact_identity", "provenance"))}
    keep["format_version"] = np.array(1)
    np.savez(old, **keep)
    code, out, _ = cli(capsys, "verify", modified, "--golden", old)
    assert code == 0 and out.startswith("OK: bit-exact")
    assert "note: this golden (format 1" in out and "carries no state check" in out


def test_change_no_state_sees_still_fails_on_the_artifact_identity(gate, capsys, tmp_path):
    """A weight from input channel 0, which never fires in the golden input: no state moves, but the
    deployment changed, so the gate fails (exit 1) and says so."""
    _, artifact, golden_file, x = gate
    modified = tmp_path / "channel0.loihi2.h5"
    _edited(artifact, modified, 0, 3, 0, 1)
    base, new = _run(artifact, x)[0], _run(modified, x)[0]
    for key in base.states:
        np.testing.assert_array_equal(base.states[key], new.states[key])
    assert artifact_identity(read_artifact(modified)) != artifact_identity(read_artifact(artifact))
    code, out, _ = cli(capsys, "verify", modified, "--golden", golden_file)
    assert code == 1
    assert out.startswith("FAILED: the artifact differs from the one the golden was made from")
    assert "artifact_identity: 1" in out


def test_unchanged_artifact_passes_every_check(gate, capsys):
    _, artifact, golden_file, _ = gate
    code, out, _ = cli(capsys, "verify", artifact, "--golden", golden_file)
    assert code == 0
    assert "states_0: 0 mismatches" in out and "artifact_identity: 0 mismatches" in out and "note:" not in out


def test_golden_carries_provenance(gate):
    _, artifact, golden_file, _ = gate
    import json

    with np.load(golden_file) as z:
        record = json.loads(str(z["provenance"]))
        assert str(z["artifact_identity"]) == record["artifact_identity"] == artifact_identity(read_artifact(artifact))
    assert record["producer"] == "silif-deploy" and record["hardware_profile"] == "loihi2"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("reexport")
    save_checkpoint(small_model(4), d / "m.pt")
    return d / "m.pt"


def _export(checkpoint, outdir, capsys) -> None:
    assert main(["export", str(checkpoint), "--target", "loihi2", "-o", str(outdir)]) == 0
    capsys.readouterr()


def test_exporting_twice_gives_the_same_identity_and_the_golden_still_passes(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    _export(checkpoint, tmp_path / "a", capsys)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000999")  # another time stamp: other bytes, same content
    _export(checkpoint, tmp_path / "b", capsys)
    a, b = tmp_path / "a" / "m.loihi2.h5", tmp_path / "b" / "m.loihi2.h5"
    assert a.read_bytes() != b.read_bytes()
    assert artifact_identity(read_artifact(a)) == artifact_identity(read_artifact(b))
    np.save(tmp_path / "x.npy", counts(1, 2))
    assert main(["golden", str(a), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "g.npz")]) == 0
    code, out, _ = cli(capsys, "verify", b, "--golden", tmp_path / "g.npz")
    assert code == 0, out


def test_source_date_epoch_makes_exports_byte_identical(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    _export(checkpoint, tmp_path / "a", capsys)
    _export(checkpoint, tmp_path / "b", capsys)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir()) and len(names) == 5
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with h5py.File(tmp_path / "a" / "m.loihi2.h5") as f:
        assert '"created_utc": "2023-11-14T22:13:20Z"' in f.attrs["provenance"]


# --- verify --data: budgets and labels ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    d = tmp_path_factory.mktemp("labels")
    artifact = write_model_artifact(small_model(2), d / "net.loihi2.h5")
    return d, artifact


@pytest.mark.parametrize("budget", ["nan", "inf", "-inf"])
def test_budget_that_is_not_finite_is_refused(labelled, capsys, budget):
    d, artifact = labelled
    np.savez(d / "ok.npz", input=counts(3, 8), labels=np.arange(8) % 5)
    code, out, err = cli(capsys, "verify", artifact, "--data", d / "ok.npz", f"--max-accuracy-drop={budget}")
    assert code == 2 and out == "" and "--max-accuracy-drop" in err and "finite" in err


@pytest.mark.parametrize("labels, says", [([0, 1, 99], "include 99"), ([0, -1, 2], "include -1"),
                                          ([1000, 1, 2], "include 1000"), ([0.0, 1.5, 2.0], "whole numbers")])
def test_labels_outside_the_models_classes_are_refused(labelled, capsys, labels, says):
    d, artifact = labelled
    np.savez(d / "bad.npz", input=counts(3, 3), labels=np.array(labels))
    code, out, err = cli(capsys, "verify", artifact, "--data", d / "bad.npz")
    assert code == 2 and out == "" and says in err and len(err.strip().splitlines()) == 1


def test_float16_input_runs_as_float32(labelled, tmp_path, capsys):
    """float16 holds these counts exactly: the same outputs as the float32 file, not a refusal."""
    _, artifact = labelled
    x = counts(5, 2).astype(np.float32)
    np.save(tmp_path / "x32.npy", x)
    np.save(tmp_path / "x16.npy", x.astype(np.float16))
    for name in ("x32", "x16"):
        assert main(["simulate", str(artifact), "--input", str(tmp_path / f"{name}.npy"),
                     "--out", str(tmp_path / f"{name}.npz")]) == 0
    with np.load(tmp_path / "x32.npz") as a, np.load(tmp_path / "x16.npz") as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    assert STEPS == x.shape[1]


def test_inspect_tells_an_edited_artifact_from_an_exported_one(gate, capsys, tmp_path):
    _, artifact, _, _ = gate
    assert main(["inspect", str(artifact)]) == 0
    out = capsys.readouterr().out
    assert f"identity: {artifact_identity(read_artifact(artifact))}" in out and "as recorded at export" in out
    modified = tmp_path / "edited.loihi2.h5"
    _edited(artifact, modified, 1, 0, 0, 1)
    assert main(["inspect", str(modified)]) == 0
    out = capsys.readouterr().out
    assert f"identity: {artifact_identity(read_artifact(modified))}" in out and "the file was edited since" in out
