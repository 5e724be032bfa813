"""The streaming API and the simulator's internal chunking do not change a single output bit.

``simulate`` (one set of arrays filled batch by batch) is the reference for ``simulate_batches``
(fresh arrays per batch, any iterable of batches, optionally without spike rasters); both must
give the same bytes whatever the batch size and the number of samples per layer call (``CHUNK``).
The input event lists must hold exactly ``FixedPointNetwork.quantize_input``'s payloads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from random_networks import fixed_networks, float_network

from silif_deploy.converters.quantize import quantize
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models import fixed_point, simulator
from silif_deploy.hw_models.neuron_kinds import KINDS
from silif_deploy.hw_models.neuron_loops import Events, _KernelSourceCache, input_events, payload_type
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.run_result import RunResult
from silif_deploy.hw_models.simulator import simulate, simulate_batches

SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
N_SAMPLES, N_STEPS, N_INPUTS = 37, 20, 16


def arrays(result: RunResult) -> dict[str, np.ndarray]:
    out = result.to_arrays()
    out.update({f"diag_{k}": v for k, v in result.diagnostics.items()})
    return out


def assert_identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key].dtype, a[key].shape) == (b[key].dtype, b[key].shape), key
        assert a[key].tobytes() == b[key].tobytes(), f"{key} differs"


@pytest.fixture(scope="module", params=["silif", "csilif"])
def case(request):
    rng = np.random.default_rng(3)
    shape = (N_SAMPLES, N_STEPS, N_INPUTS)
    x = (rng.poisson(2.0, shape) * (rng.random(shape) < 0.3)).astype(np.float32)
    net = float_network(rng, request.param, [N_INPUTS, 24, 20], 6)
    network = quantize(net, load_profile("loihi2"), calibration_input=x)
    reference = arrays(simulate(network, x, record_states=True))
    assert all(reference[f"spikes_{i}"].any() for i in range(2)), "a silent network would make this vacuous"
    return network, x, reference


@pytest.mark.parametrize("batch_size", [1, 5, 37, 256])
def test_streamed_batches_equal_simulate(case, batch_size):
    network, x, reference = case
    parts = list(simulate_batches(network, x, record_states=True, batch_size=batch_size))
    assert [len(p.scores) for p in parts] == [min(batch_size, N_SAMPLES - i) for i in range(0, N_SAMPLES, batch_size)]
    assert_identical(arrays(RunResult.concatenate(parts)), reference)


def test_any_iterable_of_uneven_batches(case):
    network, x, reference = case
    cuts = [0, 3, 4, 20, N_SAMPLES]
    parts = list(simulate_batches(network, (x[a:b] for a, b in zip(cuts[:-1], cuts[1:])), record_states=True))
    assert_identical(arrays(RunResult.concatenate(parts)), reference)


def test_without_spike_rasters_everything_else_is_identical(case):
    network, x, reference = case
    parts = list(simulate_batches(network, x, batch_size=16, keep_spikes=False))
    assert all(p.spikes == [] for p in parts)
    joined = arrays(RunResult.concatenate(parts))
    assert_identical(joined, {k: v for k, v in reference.items() if not k.startswith(("spikes_", "state_"))})
    # the spike counts, counted in the loops, against the rasters of the full run
    counts = np.stack([reference[f"spikes_{i}"].sum(axis=(1, 2)) for i in range(2)], axis=1)
    np.testing.assert_array_equal(joined["diag_spike_counts"], counts)


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_samples_per_layer_call_do_not_change_outputs(case, chunk, monkeypatch):
    network, x, reference = case
    monkeypatch.setattr(simulator, "CHUNK", chunk)
    assert_identical(arrays(simulate(network, x, record_states=True, batch_size=10)), reference)


@settings(max_examples=25, **SETTINGS)
@given(case=fixed_networks(max_batch=5), batch_size=st.integers(1, 4), chunk=st.integers(1, 3))
def test_random_networks_stream_and_chunk_identically(case, batch_size, chunk):
    """Every kind, mixed kinds per network, 24- and 32-bit states, graded and binary synapses."""
    network, x = case
    reference = arrays(simulate(network, x, record_states=True))
    original = simulator.CHUNK
    simulator.CHUNK = chunk
    try:
        parts = list(simulate_batches(network, x, record_states=True, batch_size=batch_size))
    finally:
        simulator.CHUNK = original
    assert_identical(arrays(RunResult.concatenate(parts)), reference)


@pytest.mark.parametrize("frac_bits", [0, 3, -2])
def test_input_events_hold_the_quantized_payloads(frac_bits):
    """Exact half units (round half to even), negatives, values beyond the payload width (clipped),
    tiny values that round to zero (not listed), and an integer input type."""
    rng = np.random.default_rng(frac_bits + 10)
    halves = (rng.integers(-600, 600, 394) + 0.5) / 2.0**frac_bits
    values = np.concatenate([halves, rng.normal(0, 80, 400), [1e-9, -1e-9, 1e6, -1e6, np.inf, -np.inf]])
    x = np.where(rng.random(values.size) < 0.3, 0.0, values)
    rng.shuffle(x)
    network = quantize(float_network(rng, "silif", [3, 3], 2), load_profile("loihi2"))
    network.input_frac_bits = frac_bits
    bits = network.profile.input_message_bits
    counts = np.clip(np.rint(x), -300, 300).astype(np.int16)
    for xs in (x.reshape(4, 2, -1), counts.reshape(4, 2, -1)):
        events = input_events(xs, frac_bits, bits, Events.empty(*xs.shape, payload_type(bits)))
        dense = np.zeros(xs.shape, np.int64)
        for b, t in np.ndindex(*xs.shape[:2]):
            k = events.count[b, t]
            assert np.all(events.value[b, t, :k] != 0)
            dense[b, t, events.index[b, t, :k]] = events.value[b, t, :k]
        np.testing.assert_array_equal(dense, network.quantize_input(xs))


def test_nan_input_is_refused():
    x = np.zeros((1, 2, 3))
    x[0, 1, 2] = np.nan
    with pytest.raises(SilifDeployError, match="NaN"):
        input_events(x, 0, 8, Events.empty(1, 2, 3, payload_type(8)))


def test_disk_cache_key_covers_every_kernel_source_of_the_package():
    """numba only checks the cached function's own file; the files compiled into the cached loops
    must be in the key: the package's kernels (listed here by hand), the integer primitives and
    the GLU. A test family's kernel is left out (registered here): its signatures are not cached."""
    import families.leaky1_hw  # noqa: F401  (registers the kind)

    assert "leaky1" in KINDS
    hw = Path(fixed_point.__file__).parent
    sources = ("fixed_point.py", "glu.py", "neuron_adaptive.py", "neuron_cuba.py", "neuron_resonate.py", "neuron_s4d.py")
    assert set(_KernelSourceCache._sources) == {str(hw / name) for name in sources}
