"""The test families through the whole chain, as a user runs it: a checkpoint of a family that
exists only in ``tests/families/`` (its ``_float.py`` and ``_hw.py`` modules, one registration
line each) goes through ``silif-deploy export --target loihi2 --calibrate``, ``simulate`` and
``inspect`` with no other file knowing it.

What each check proves:

- the exported artifact simulates bit for bit as the scalar reference running the family's rule
  written in ``test_families_hw`` from the record's docstring (not its kernel): quantization,
  artifact v2 and the simulator agree on the family's integer meaning;
- a leaky1 checkpoint and the same weights exported as ``lif`` (a built-in kind with another
  kernel and two states, w = 0) give the same spikes, scores and membrane: two independent paths
  through both sides (float family, quantizer, kernel) meet;
- the fixed-point run follows the float model (spike agreement and equal predictions on the
  calibration input): the float family and its quantization describe the same neuron.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the Lava environment has none: this chain starts from a checkpoint

import test_families_hw  # noqa: E402, F401  (registers the families' scalar rules with the reference)
from test_bit_accuracy import assert_matches_reference  # noqa: E402
from test_families_float import counts, model  # noqa: E402

from silif_deploy.converters.artifact import read_artifact  # noqa: E402
from silif_deploy.converters.checkpoint import save_checkpoint  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.hw_models.simulator import simulate  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _export(kind: str, tmp_path, model_type: str | None = None):
    """Export a seeded ``kind`` model; with ``model_type``, its bare state_dict read as that type."""
    ckpt, x = tmp_path / f"{kind}.pt", counts(seed=3)
    if model_type is None:
        save_checkpoint(model(kind), ckpt)
    else:
        ckpt = tmp_path / f"{kind}-as-{model_type}.pth"
        torch.save(model(kind).state_dict(), ckpt)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / f"out-{model_type or kind}"
    extra = ["--model-type", model_type] if model_type else []
    assert main(["export", str(ckpt), "--target", "loihi2", "--calibrate", str(tmp_path / "x.npy"),
                 "-o", str(out), *extra]) == 0
    return read_artifact(next(out.glob("*.loihi2.h5"))), x, out


@pytest.mark.parametrize("kind", ["leaky1", "synlif"])
def test_a_test_family_exports_and_simulates_as_its_rule(kind, tmp_path, capsys):
    network, x, out = _export(kind, tmp_path)
    assert {layer.kind for layer in network.hidden} == {kind}
    assert_matches_reference(network, x.astype(np.float64))

    fixed, ref = simulate(network, x), model(kind).run(x)
    agreement = [float(np.mean(a == b)) for a, b in zip(fixed.spikes, ref.spikes)]
    assert min(agreement) > 0.95, agreement  # 8-bit weights: 96.9 % / 97.5 % (leaky1) when written
    assert np.array_equal(fixed.prediction, ref.prediction)

    assert main(["inspect", str(out / f"{kind}.loihi2.h5")]) == 0
    assert kind in capsys.readouterr().out


def test_leaky1_exports_as_the_equal_lif_network(tmp_path):
    leaky, x, _ = _export("leaky1", tmp_path, model_type="leaky1")
    lif, _, _ = _export("leaky1", tmp_path, model_type="lif")
    assert [layer.kind for layer in lif.hidden] == ["lif", "lif"]
    a, b = simulate(leaky, x, record_states=True), simulate(lif, x, record_states=True)
    assert sum(int(s.sum()) for s in a.spikes) > 0
    for l in range(len(leaky.hidden)):
        np.testing.assert_array_equal(a.spikes[l], b.spikes[l])
        np.testing.assert_array_equal(a.states[f"v_{l}"], b.states[f"u_{l}"])
    assert a.scores.tobytes() == b.scores.tobytes()
