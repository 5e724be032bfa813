"""The SpikingSSM / binary-S4D stages on Lava equal the simulator bit for bit: scores, per-step
logits, every neuron stage's spikes and every state trajectory (S4D p, q; the CUBA soma's u, v;
the Heaviside's y), aligned as ``simulate`` aligns them.

What this proves: the Lava side runs its own process graph (one Lava process per stage, Lava's
channels and step protocol deciding what each stage sees when, Lava's own ``Dense`` where it is
exact, our int64 ``GradedDense`` elsewhere), while the simulator runs its fused event loops; the two
share only the integer kernels of ``hw_models`` (each checked against the scalar reference in
``test_ssm_stages.py``). Equality therefore checks the stage wiring, the delays and idle rules,
the lags, the fan-out of S4D channels to their states, the per-row exponents, int32 against int64
channels and the host decoder, not the kernels' formulas. Cases: random SSM-shaped graphs
(``random_networks.ssm_networks``: both somas, both overflow rules, 24/32-bit states, per-row
exponents, exact and declared-width Adds), the hand-built network of ``test_ssm_stages.py`` (CUBA
and Heaviside somas; a variant whose Adds saturate and wrap and whose S4D states wrap), an
artifact compared with a simulator output stored beside it, and a stuck run ended by the watchdog.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

pytestmark = [pytest.mark.lava, pytest.mark.timeout(600)]

ARTIFACTS = Path(__file__).parent / ".artifacts"
STORED_SUFFIX = ".fixed.npz"
"""Beside ``<name>.loihi2.h5``: ``<name>.input.npy`` (batch, T, channels) and ``<name>.fixed.npz``,
the simulator's ``RunResult.to_arrays()`` of that input with ``record_states=True``."""


def _lava():
    pytest.importorskip("lava")
    from silif_deploy.converters.lava_backend import network as lava_network
    from silif_deploy.converters.lava_backend.runner import run_lava

    return lava_network, run_lava


def assert_lava_equals(network, x, want=None):
    """Lava against the simulator (or ``want``, its stored arrays): every output, exactly."""
    from silif_deploy.hw_models.simulator import simulate

    _, run_lava = _lava()
    lava = run_lava(network, x, timeout_s=300, record_states=True)
    want = want if want is not None else simulate(network, x, record_states=True).to_arrays()
    got = lava.to_arrays()
    assert got["scores"].tobytes() == want["scores"].tobytes(), (got["scores"], want["scores"])
    assert got["readout_u"].tobytes() == want["readout_u"].tobytes()
    spikes = sorted(k for k in want if k.startswith("spikes_"))
    states = sorted(k for k in want if k.startswith("state_"))
    assert len(spikes) == len(network.neuron_stages) and states
    for key in spikes + states:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    return lava


def _spiking_ssm_network(**kwargs):
    from test_ssm_stages import spiking_ssm_network

    return spiking_ssm_network(**kwargs)


def _heaviside(network):
    from silif_deploy.hw_models.network import Neurons
    from silif_deploy.hw_models.neuron_s4d import HeavisideParams

    for i, stage in enumerate(network.stages):
        if isinstance(stage, Neurons) and stage.kind == "cuba":
            h = len(stage.params.du)
            network.stages[i] = Neurons(stage.name, stage.source, "heaviside", HeavisideParams(np.zeros(h, np.int64), -1, 6), 1)
    return network


def _processes(network):
    """The process types the network maps to (built without running)."""
    lava_network, _ = _lava()
    x_int = np.zeros((network.n_inputs, 1), np.int64)
    return {type(p).__name__ for p in lava_network.to_lava(network, x_int).processes}


def test_random_ssm_graphs():
    """A modest number of ssm_networks draws (Lava builds ≈20 processes per case): both somas and
    both Dense processes must be seen, and the somas must spike."""
    from random_networks import ssm_networks

    _lava()
    seen = {"cuba": 0, "heaviside": 0, "Dense": 0, "GradedDense": 0, "soma spikes": 0}

    @settings(max_examples=6, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(ssm_networks(max_h=3, max_modes=2, max_steps=10, max_batch=1))
    def check(case):
        network, x = case
        lava = assert_lava_equals(network, x)
        for stage, spikes in zip(network.neuron_stages, lava.spikes):
            if stage.kind in seen:
                seen[stage.kind] += 1
                seen["soma spikes"] += int(spikes.sum())
        for name in _processes(network) & {"Dense", "GradedDense"}:
            seen[name] += 1

    check()
    assert all(v > 0 for v in seen.values()), seen


@pytest.mark.parametrize("soma", ["cuba", "heaviside"])
def test_hand_built_spiking_ssm_network(soma):
    """The blueprint of a quantized SpikingSSM (2 blocks) and its binary-S4D form; the somas are
    neither silent nor saturated, so the spikes carry the comparison."""
    network = _spiking_ssm_network()
    if soma == "heaviside":
        network = _heaviside(network)
    x = np.clip(np.random.default_rng(1).normal(0.5, 0.6, (2 if soma == "cuba" else 1, 30, 1)), 0, None)
    lava = assert_lava_equals(network, x)
    rates = [s.mean() for s, st in zip(lava.spikes, network.neuron_stages) if st.kind == soma]
    assert len(rates) == 2 and all(0.01 < r < 0.99 for r in rates), rates
    # Lava's own Dense where it is exact (encoder, binary mix, the diagonal D), ours for the
    # S4D readout C (24-bit states · 8-bit weights leave int32; per-row exponents)
    assert {"Dense", "GradedDense", "FixedPointNeurons", "AddValues", "GluValues", "ValueRecorder"} <= _processes(network)


def test_saturating_and_wrapping_stages():
    """Narrow widths so that the overflow rules act: the readout sum y saturates at 14 bits, the S4D
    states wrap at 13 (the residual is a 12-bit wrapping Add). The soma's current u (du 4095:
    u = y << 6) shows the saturated y, and the simulator counts the S4D wraps."""
    import dataclasses

    from silif_deploy.hw_models.network import Add
    from silif_deploy.hw_models.simulator import simulate

    network = _spiking_ssm_network(blocks=1)
    for i, stage in enumerate(network.stages):
        if stage.name == "b0.s4d":
            network.stages[i] = dataclasses.replace(stage, params=stage.params._replace(half=1 << 12, mode=0))
        elif stage.name == "b0.y":
            network.stages[i] = Add("b0.y", stage.sources, 14, "saturate")
        elif stage.name == "b0.res":
            network.stages[i] = Add("b0.res", stage.sources, 12, "wrap", (2, 0))
    x = np.clip(np.random.default_rng(4).normal(1.5, 1.0, (1, 30, 1)), 0, None)
    sim = simulate(network, x, record_states=True)
    assert sim.diagnostics["overflow_events"][0, 0] > 0, "the S4D states must wrap"
    assert np.abs(sim.states["u_1"]).max() == ((1 << 13) - 1) << 6, "y must saturate"
    assert_lava_equals(network, x)


def stored_cases() -> list[Path]:
    """The artifacts in tests/.artifacts with an input and a stored simulator output beside them
    (``STORED_SUFFIX``): e.g. the shipped SpikingSSM and binary-S4D models."""
    return sorted(p for p in ARTIFACTS.glob("ssm_*.loihi2.h5")
                  if p.with_name(p.name.replace(".loihi2.h5", STORED_SUFFIX)).is_file())


def assert_artifact_matches_stored(path: Path) -> None:
    from silif_deploy.converters.artifact import read_artifact

    stem = path.name.replace(".loihi2.h5", "")
    x = np.load(path.with_name(f"{stem}.input.npy"))
    want = dict(np.load(path.with_name(stem + STORED_SUFFIX)))
    assert_lava_equals(read_artifact(path), x, want)


def store_simulation(path: Path, x: np.ndarray) -> None:
    """Write ``<name>.input.npy`` and ``<name>.fixed.npz`` beside the artifact ``path`` (main or Lava
    environment: the simulator needs no torch)."""
    from silif_deploy.converters.artifact import read_artifact
    from silif_deploy.hw_models.simulator import simulate

    stem = path.name.replace(".loihi2.h5", "")
    np.save(path.with_name(f"{stem}.input.npy"), x)
    np.savez(path.with_name(stem + STORED_SUFFIX), **simulate(read_artifact(path), x, record_states=True).to_arrays())


@pytest.mark.parametrize("path", stored_cases(), ids=lambda p: p.name)
def test_stored_artifact(path):
    """Fixtures added to tests/.artifacts (``stored_cases``): Lava = the stored simulator output."""
    _lava()
    assert_artifact_matches_stored(path)


def test_artifact_against_a_stored_simulation(tmp_path):
    """The path the fixtures take, on the hand-built network written as an artifact: read back,
    run on Lava, compared with the simulator's arrays stored beside it."""
    from silif_deploy.converters.artifact import write_artifact

    _lava()
    path = tmp_path / "ssm_hand_built.loihi2.h5"
    write_artifact(_heaviside(_spiking_ssm_network(blocks=1)), path)
    store_simulation(path, np.clip(np.random.default_rng(5).normal(0.5, 0.6, (1, 20, 1)), 0, None))
    assert_artifact_matches_stored(path)


@pytest.mark.filterwarnings("ignore:stopping the Lava runtime")
def test_watchdog_ends_a_stuck_ssm_run(monkeypatch):
    """An S4D stage whose parameters numba cannot type (frac_bits None) fails inside Lava's process
    model, which hangs the runtime: the watchdog ends the run and the runtime's processes are gone."""
    import dataclasses

    _lava()
    from test_lava_runtime import assert_run_ends_and_stops_lava

    network = _spiking_ssm_network(blocks=1)
    s4d = network.stages[1]
    network.stages[1] = dataclasses.replace(s4d, params=s4d.params._replace(frac_bits=None))
    assert_run_ends_and_stops_lava(monkeypatch, network, np.ones((1, 4), np.int64))
