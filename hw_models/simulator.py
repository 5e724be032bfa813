"""The bit-accurate CPU simulator of a fixed-point network.

Timing follows Lava on Loihi: the input source sends frame t at step t, and every Dense delivers
one step later, so hidden layer l sees input frame t at step t + l + 1 and the readout at step
t + L + 1 (L hidden layers). The simulator runs T + L + 1 steps (zero input after the last frame)
and returns outputs aligned to the float model's steps: ``spikes[l][:, t]`` is layer l's step
t + l + 1, ``readout_u[:, t]`` the readout's step t + L + 1, dequantized (v / scale).

**Layer start.** Layer l idles (zero state, no spikes) until step l + 2, the first step its input
can carry data; the readout likewise until step L + 2 (Lava's ``LIFReset`` with that offset).
Without this, a neuron's bias would drive it for l + 1 steps before its first input, a transient
the float model does not have.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from silif_deploy.hw_models.network import FixedPointNetwork
from silif_deploy.hw_models.neuron_loops import run_layer
from silif_deploy.hw_models.neuron_kinds import KINDS
from silif_deploy.hw_models.run_result import RunResult


def softmax_sum(u: np.ndarray) -> np.ndarray:
    """Σ_t softmax over classes of u (batch, time, classes), in float64 on the host."""
    z = u - u.max(axis=2, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=2, keepdims=True)).sum(axis=1)


def simulate_raw(network: FixedPointNetwork, x: np.ndarray, record_states: bool = False):
    """Run T + delay steps on (batch, T, channels) input; return unaligned per-layer outputs.

    Returns a list (hidden layers, then readout) of dicts with ``spikes`` (B, T', N) uint8,
    ``x1``/``x2`` integer state trajectories (when recorded) and ``overflow_events`` (B,).
    """
    n_batch, n_steps, _ = x.shape
    total = n_steps + network.delay
    frames = np.zeros((n_batch, total, x.shape[2]), np.int64)
    frames[:, :n_steps] = network.quantize_input(x)
    outputs = []
    presynaptic = frames
    for l, layer in enumerate(network.layers):
        record = record_states or layer is network.readout
        spikes, x1, x2, events = run_layer(layer, presynaptic, start_index(l), record=record)
        outputs.append({"spikes": spikes, "x1": x1, "x2": x2, "overflow_events": events})
        presynaptic = spikes
    return outputs


def start_index(layer_index: int) -> int:
    """0-based step index at which layer ``layer_index`` (the readout is index L) starts updating."""
    return layer_index + 1


def simulate_batches(
    network: FixedPointNetwork, batches: Iterable[np.ndarray] | np.ndarray, record_states: bool = False,
    batch_size: int = 256,
) -> Iterator[RunResult]:
    """Stream results batch by batch: memory stays flat in the number of samples.

    ``batches`` is an array (cut into ``batch_size`` chunks) or any iterable of (batch, T,
    channels) arrays, e.g. a generator reading a large data set piece by piece.
    """
    if isinstance(batches, np.ndarray):
        array = batches
        batches = (array[i : i + batch_size] for i in range(0, len(array), batch_size))
    for x in batches:
        yield _aligned(network, simulate_raw(network, x, record_states), x.shape[1], record_states)


def simulate(network: FixedPointNetwork, x: np.ndarray, record_states: bool = False, batch_size: int = 256) -> RunResult:
    """Simulate (batch, T, channels) inputs; outputs aligned to the float model's time steps."""
    return RunResult.concatenate(list(simulate_batches(network, x, record_states, batch_size)))


def _aligned(network: FixedPointNetwork, outputs, n_steps: int, record_states: bool) -> RunResult:
    spikes, states = [], {}
    for l, (layer, out) in enumerate(zip(network.hidden, outputs)):
        window = slice(l + 1, l + 1 + n_steps)
        spikes.append(out["spikes"][:, window].astype(bool))
        if record_states:
            name1, name2 = KINDS[layer.kind].states
            states[f"{name1}_{l}"] = out["x1"][:, window]
            states[f"{name2}_{l}"] = out["x2"][:, window]
    ro = outputs[-1]
    window = slice(network.delay, network.delay + n_steps)
    v = ro["x2"][:, window]
    readout_u = v / float(network.readout.scale)
    if record_states:
        states["v_readout"] = v
    events = np.stack([o["overflow_events"] for o in outputs], axis=1)
    return RunResult(
        scores=softmax_sum(readout_u),
        spikes=spikes,
        readout_u=readout_u,
        states=states if record_states else None,
        diagnostics={"overflow_events": events, "readout_spikes": ro["spikes"].sum(axis=(1, 2))},
    )
