"""Write the SSC artifacts the Lava tests read (the Lava environment has no torch to make them).

``make lava-fixtures`` (a step of ``make test-lava``) runs this in the main environment before
``tests/test_lava_*.py`` (Lava environment): ``tests/.artifacts/ssc_{silif,csilif}.loihi2.h5``,
quantized with the default profile, and ``ssc_{silif,csilif}_input.npy``, the first 2 samples of
each golden input cut to 20 steps.
"""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import checkpoint_path, golden_path  # noqa: E402
from silif_deploy.converters.artifact import read_artifact, write_artifact  # noqa: E402
from silif_deploy.converters.checkpoint import load_model  # noqa: E402
from silif_deploy.converters.float_params import float_network  # noqa: E402
from silif_deploy.converters.quantize import quantize  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402
from silif_deploy.hw_models.simulator import simulate  # noqa: E402

ARTIFACTS = Path(__file__).parent / ".artifacts"
N_SAMPLES, N_STEPS = 2, 20


@pytest.mark.parametrize("model", ["silif", "csilif"])
def test_write_ssc_artifact(model: str, reference_dir) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    x = np.load(golden_path(model))["input"][:N_SAMPLES, :N_STEPS].astype(np.float32)
    np.save(ARTIFACTS / f"ssc_{model}_input.npy", x)
    network = quantize(float_network(load_model(checkpoint_path(model))), load_profile())
    path = ARTIFACTS / f"ssc_{model}.loihi2.h5"
    write_artifact(network, path)
    # the file the Lava test reads runs exactly as the network it came from
    want, got = simulate(network, x), simulate(read_artifact(path), x)
    assert sum(int(s.sum()) for s in want.spikes) > 0
    for a, b in zip(got.spikes, want.spikes):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got.readout_u, want.readout_u)


@pytest.mark.parametrize("model", ["silif", "csilif"])
def test_write_synth_netx(model: str, tmp_path) -> None:
    """``tests/.artifacts/synth_<model>.netx.h5`` and ``synth_<model>.readout.netx.h5``, written by
    ``export --target netx`` from the shipped model, and ``synth_<model>_netx_input.npy`` (3 test
    utterances, 40 steps) for ``test_netx_lava.py``."""
    from silif_deploy.converters.netx_export import netx_problems, read_netx
    from silif_deploy.deploy.cli import main

    ARTIFACTS.mkdir(exist_ok=True)
    trained = Path(__file__).parents[1] / "examples" / "trained"
    assert main(["export", str(trained / f"synth_digits_{model}_2x128.pt"), "--target", "netx", "-o", str(tmp_path)]) == 0
    path = ARTIFACTS / f"synth_{model}.netx.h5"
    (tmp_path / f"synth_digits_{model}_2x128.netx.h5").replace(path)
    (tmp_path / f"synth_digits_{model}_2x128.readout.netx.h5").replace(ARTIFACTS / f"synth_{model}.readout.netx.h5")
    np.save(ARTIFACTS / f"synth_{model}_netx_input.npy", np.load(trained / "synth_digits_test.npz")["x"][:3, :40].astype(np.float32))
    network = read_netx(path)
    assert not netx_problems(network.readout)
    assert network.readout.synapse.weight_exp == 0 and np.all(network.readout.synapse.weights % 2 == 0)


def _digits_test_split() -> np.ndarray:
    """The test split of the sequences the fixture checkpoints were trained on (their maker's)."""
    pytest.importorskip("sklearn")
    from fixtures.make_spiking_ssm_digits import digits

    return digits()[2]


def _shipped_test_split(name: str):
    return lambda: np.load(Path(__file__).parents[1] / "examples" / "trained" / f"{name}_test.npz")["x"]


SSM_CHECKPOINTS = {
    "spiking_ssm_digits": ("tests/fixtures/spiking_ssm_digits.pt", _digits_test_split),
    "binary_s4d_digits": ("tests/fixtures/binary_s4d_digits.pt", _digits_test_split),
    "synth_spiking_ssm": ("examples/trained/synth_digits_spiking_ssm_2x72n16.pt", _shipped_test_split("synth_digits")),
    "synth_binary_s4d": ("examples/trained/synth_digits_binary_s4d_2x72n16.pt", _shipped_test_split("synth_digits")),
    "seq_spiking_ssm": ("examples/trained/seq_digits_spiking_ssm_2x32n32.pt", _shipped_test_split("seq_digits")),
    "seq_binary_s4d": ("examples/trained/seq_digits_binary_s4d_2x32n32.pt", _shipped_test_split("seq_digits")),
}
"""SpikingSSM / binary-S4D checkpoints (the test fixtures and the shipped models) whose loihi2
artifacts ``tests/test_lava_ssm.py`` runs on Lava, each with the data it reads; a missing one is skipped."""


@pytest.mark.parametrize("name", sorted(SSM_CHECKPOINTS))
def test_write_ssm_artifact(name: str) -> None:
    """``tests/.artifacts/ssm_<name>.loihi2.h5`` (quantized with the default profile, calibrated on the
    first 64 sequences of its data), with one later sequence as ``ssm_<name>.input.npy`` and the
    simulator's output on it as ``ssm_<name>.fixed.npz`` (``test_lava_ssm.store_simulation``)."""
    relative, data = SSM_CHECKPOINTS[name]
    checkpoint = Path(__file__).parents[1] / relative
    if not checkpoint.is_file():
        pytest.skip(f"{checkpoint} is not in this checkout")
    from silif_deploy.deploy.engines import load_float_model
    from silif_deploy.deploy.pipeline import quantize_model
    from test_lava_ssm import store_simulation

    ARTIFACTS.mkdir(exist_ok=True)
    x = data()
    network = quantize_model(load_float_model(checkpoint, for_fixed_point="export"), load_profile(), x[:64])
    path = ARTIFACTS / f"ssm_{name}.loihi2.h5"
    write_artifact(network, path)
    sample = x[len(x) - 1 :]  # one sample: Lava compiles its process graph per sample (≈10 s here)
    store_simulation(path, sample)
    assert simulate(read_artifact(path), sample).scores.shape == (1, network.n_classes)
