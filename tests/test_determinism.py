"""The same artifact and input give byte-identical outputs: across repeated runs, batch sizes,
batch orders, and a write_artifact/read_artifact round trip."""

from __future__ import annotations

import numpy as np
import pytest

from random_networks import float_network

from silif_deploy.converters.artifact import read_artifact, write_artifact
from silif_deploy.converters.quantize import quantize
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate

N_SAMPLES, N_STEPS, N_INPUTS = 300, 30, 40  # 300 > 256: the default batch size splits it


@pytest.fixture(scope="module", params=[("silif", "counts"), ("csilif", "real")], ids=lambda p: "-".join(p))
def case(request):
    kind, inputs = request.param
    rng = np.random.default_rng(11)
    shape = (N_SAMPLES, N_STEPS, N_INPUTS)
    if inputs == "counts":
        x = (rng.poisson(2.0, shape) * (rng.random(shape) < 0.3)).astype(np.float32)
    else:
        x = rng.normal(0.0, 2.0, shape)
    network = quantize(float_network(rng, kind, [N_INPUTS, 32, 24], 10), load_profile("loihi2"), calibration_input=x)
    return network, x


def outputs(network, x, **kwargs) -> dict[str, np.ndarray]:
    res = simulate(network, x, record_states=True, **kwargs)
    arrays = res.to_arrays()
    arrays.update({f"diag_{k}": v for k, v in res.diagnostics.items()})
    return arrays


def assert_identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key].dtype, a[key].shape) == (b[key].dtype, b[key].shape), key
        assert a[key].tobytes() == b[key].tobytes(), f"{key} differs"


@pytest.fixture(scope="module")
def reference(case):
    network, x = case
    out = outputs(network, x)
    assert any(out[f"spikes_{i}"].any() for i in range(2)), "a silent network would make this test vacuous"
    assert np.ptp(out["readout_u"]) > 0
    return out


def test_repeated_runs_are_byte_identical(case, reference):
    network, x = case
    assert_identical(outputs(network, x), reference)


@pytest.mark.parametrize("batch_size", [1, 3, 256])
def test_batch_size_does_not_change_outputs(case, reference, batch_size):
    network, x = case
    assert_identical(outputs(network, x, batch_size=batch_size), reference)


def test_batch_order_does_not_change_outputs(case, reference):
    network, x = case
    perm = np.random.default_rng(5).permutation(N_SAMPLES)
    permuted = outputs(network, x[perm], batch_size=7)
    inverse = np.argsort(perm)
    assert_identical({k: v[inverse] for k, v in permuted.items()}, reference)


def test_artifact_round_trip_gives_identical_outputs(case, reference, tmp_path):
    network, x = case
    path = tmp_path / "net.loihi2.h5"
    write_artifact(network, path)
    assert_identical(outputs(read_artifact(path), x), reference)
