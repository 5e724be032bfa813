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

**Stages.** The network is a graph of stages (:mod:`.network`); the simulator walks them in
order, running each spiking neuron stage fused with the Dense that feeds it (one layer, as above,
with its delay in place of l + 1) where that Dense has no other reader and no row exponents, and
every other stage on its own (:mod:`.graded_loops`: a Dense, a neuron stage reading values, an
Add, a GLU) on the event lists of its sources. A chain is the case above. The host stage is the
last: SoftmaxSum of the readout's v, or MeanLinear of graded values.

**Speed and memory.** Chunks of ``CHUNK`` samples run through all layers (layers pass spike lists,
see :mod:`.neuron_loops`) and write their outputs straight into the aligned arrays, so the working
set is a few MB whatever the batch; :func:`simulate_batches` streams any number of samples in
memory that does not grow with their number. Threads: ``numba.get_num_threads()`` (set it with
``numba.set_num_threads``) take chunks in turn.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba
import numpy as np

from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.fixed_point import OVERFLOW_CODES, wide
from silif_deploy.hw_models.graded_loops import dense_values, glu_values, neuron_values
from silif_deploy.hw_models.network import (
    INPUT, Add, Dense, FixedLayer, FixedPointNetwork, Glu, MeanLinear, Neurons, graph_problem, layer_pairs, neuron_count,
    sends_graded,
)
from silif_deploy.hw_models.neuron_kinds import KINDS, READOUT_KIND, STATES
from silif_deploy.hw_models.neuron_loops import (
    NO_STATES, NOTHING, Events, PreparedLayer, Recording, add_events, input_events, payload_type, run_layer,
)
from silif_deploy.hw_models.run_result import RunResult

READOUT_STATE = "v"
"""The readout's state the scores are computed from (dequantized: v / scale)."""

CHUNK = 8
"""Samples a thread runs through all layers at a time: the spike lists it reuses (CHUNK × steps ×
neurons int32 per layer) stay in cache. 8 was the fastest of 4–64 for SSC 2×512 on 2 cores."""


def softmax_sum(u: np.ndarray) -> np.ndarray:
    """Σ_t softmax over classes of u (batch, time, classes), in float64 on the host."""
    e = u - u.max(axis=2, keepdims=True)
    np.exp(e, out=e)  # in place: the same operations on the same values, without temporaries
    e /= e.sum(axis=2, keepdims=True)
    return e.sum(axis=1)


def mean_linear(decoder: MeanLinear, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The host's decoder (:class:`~.network.MeanLinear`) on the (batch, T, H) integer values it
    reads: (logits_t = W·(x_t / scale) + bias per step, their mean over the T steps), float64; each
    sample's operations are the same whatever the samples around it (the Lava engine calls it too)."""
    logits = np.einsum("bth,ch->btc", values / float(decoder.scale), np.asarray(decoder.weights, np.float64)) + decoder.bias
    return logits, logits.mean(axis=1)


def start_index(layer_index: int) -> int:
    """0-based step index at which layer ``layer_index`` of a chain (the readout is index L) starts
    updating: its delay (one step per Dense on the way)."""
    return layer_index + 1


class _Plan(NamedTuple):
    """How a network's stages run: per stage in order, what to do (``steps``):
    ``("layer", r, source, start)`` runs neuron stage r fused with its Dense (``layers[r]``) on the
    events of ``source`` from step ``start`` (its delay); ``("neurons", r, source, start, n_src,
    graded out, params)`` runs neuron stage r on the values of ``source``; ``("dense", source, w_t, exps,
    graded)``, ``("add", a, b, lag_a, lag_b, half, mode)`` and ``("glu", source, h, params)`` the
    graded stages. ``sizes``: each stage's number of values; ``starts``: each neuron stage's delay;
    ``kinds``/``neurons``: each neuron stage's kind and size; ``graded``: the stages whose events carry values."""

    layers: list[PreparedLayer | None]
    steps: list[tuple[str, tuple]]
    sizes: dict[str, int]
    starts: list[int]
    kinds: list[str]
    neurons: list[int]
    graded: set[str]


def _plan(network: FixedPointNetwork) -> _Plan:
    problem = graph_problem(network.stages, network.n_inputs)
    if problem is not None:
        raise SilifDeployError(f"the network's stages cannot run: {problem}")
    delays, sizes, bounds = network.delays(), network.sizes(), network.value_bounds()
    graded = {INPUT} | {stage.name for stage in network.stages if sends_graded(stage)}
    dense = {st.name: st for st in network.stages if isinstance(st, Dense)}
    # a layer (a Dense and the neuron stage that is its only reader) runs fused when the neurons spike
    # and the Dense has one exponent (the fast path)
    fused = {d.name for d, neurons in layer_pairs(network.stages)
             if KINDS[neurons.kind].output != STATES and d.synapse.row_exp is None}
    layers, steps, starts, kinds, counts = [], [], [], [], []
    for stage in network.stages:
        name = stage.name
        if isinstance(stage, Neurons):
            r, start = len(layers), delays[name]
            if stage.source in fused:
                d = dense[stage.source]
                layer = FixedLayer(stage.kind, d.synapse, stage.params, stage.scale)
                steps.append((name, ("layer", r, d.source, start)))
                layers.append(PreparedLayer.of(layer, bounds[d.source]))
            else:
                steps.append((name, ("neurons", r, stage.source, start, sizes[stage.source], name in graded,
                                     wide(stage.params))))
                layers.append(None)
            starts.append(start)
            kinds.append(stage.kind)
            counts.append(neuron_count(stage))
        elif isinstance(stage, Dense) and name not in fused:
            syn = stage.synapse
            w_t = np.ascontiguousarray(syn.weights.T, dtype=np.int64)
            steps.append((name, ("dense", stage.source, w_t, syn.exponents, bool(syn.graded))))
        elif isinstance(stage, Add):
            a, b = stage.sources
            half = 0 if stage.bits == 0 else 1 << (stage.bits - 1)
            steps.append((name, ("add", a, b, *stage.lags, half, OVERFLOW_CODES[stage.overflow],
                                 payload_type(bounds[name].bit_length()))))
        elif isinstance(stage, Glu):
            steps.append((name, ("glu", stage.source, sizes[name], wide(stage.params))))
    return _Plan(layers, steps, sizes, starts, kinds, counts, graded)


def _host_stage(network: FixedPointNetwork):
    """The decoder on the host, or None for the softmax_sum of the readout."""
    last = network.stages[-1]
    return last if isinstance(last, MeanLinear) else None


def simulate_raw(network: FixedPointNetwork, x: np.ndarray, record_states: bool = False):
    """Run T + delay steps on (batch, T, channels) input; return unaligned per-layer outputs.

    Returns a list (one per neuron stage, in run order: in a chain hidden layers, then readout) of
    dicts with ``spikes`` (B, T', N) uint8, ``states`` (the kind's k integer state trajectories,
    each (B, T', N), when recorded; the readout's always) and ``overflow_events`` (B,).
    """
    n_batch, n_steps, _ = x.shape
    total = n_steps + network.delay
    plan = _plan(network)
    recordings, record = [], []
    for kind, n in zip(plan.kinds, plan.neurons):
        shape = (n_batch, total, n)
        record.append(record_states or kind == READOUT_KIND)
        k = len(KINDS[kind].states)
        states = tuple(np.zeros(shape, np.int64) if record[-1] else NO_STATES for _ in range(k))
        recordings.append(Recording(0, np.zeros(shape, np.uint8), states, np.zeros(n_batch, np.int64)))
    _run(network, plan, x, recordings, [np.empty((n_batch, total), np.int32) for _ in recordings], 0)
    return [
        {"spikes": r.spikes, "states": r.states if rec else None, "overflow_events": r.overflow_events}
        for r, rec in zip(recordings, record)
    ]


def simulate_batches(
    network: FixedPointNetwork, batches: Iterable[np.ndarray] | np.ndarray, record_states: bool = False,
    batch_size: int = 256, keep_spikes: bool = True,
) -> Iterator[RunResult]:
    """Stream results batch by batch: memory stays flat in the number of samples.

    ``batches`` is an array (cut into ``batch_size`` chunks) or any iterable of (batch, T,
    channels) arrays, e.g. a generator reading a large data set piece by piece. With
    ``keep_spikes=False`` the hidden spike rasters are not kept (``spikes`` is empty); scores,
    readout and diagnostics are the same. ``diagnostics["spike_counts"]`` (batch, hidden layers)
    counts each layer's spikes over the aligned steps either way.
    """
    prepared = _plan(network)
    for x in _cut(batches, batch_size):
        outputs = _AlignedOutputs(network, prepared, x.shape[0], x.shape[1], record_states, keep_spikes)
        outputs.fill(prepared, x, 0)
        yield outputs.result()


def simulate(network: FixedPointNetwork, x: np.ndarray, record_states: bool = False, batch_size: int = 256,
             keep_spikes: bool = True) -> RunResult:
    """Simulate (batch, T, channels) inputs; outputs aligned to the float model's time steps.

    The same as joining :func:`simulate_batches`, without the copies: batches fill one set of arrays.
    ``keep_spikes`` as in :func:`simulate_batches`.
    """
    prepared = _plan(network)
    outputs = _AlignedOutputs(network, prepared, x.shape[0], x.shape[1], record_states, keep_spikes)
    for at in range(0, x.shape[0], batch_size):
        outputs.fill(prepared, x[at : at + batch_size], at)
    return outputs.result()


def _cut(batches: Iterable[np.ndarray] | np.ndarray, batch_size: int) -> Iterable[np.ndarray]:
    if isinstance(batches, np.ndarray):
        return (batches[i : i + batch_size] for i in range(0, len(batches), batch_size))
    return batches


def _value_type(what: tuple) -> type | None:
    """The type of the values a step's events carry (None: spikes)."""
    if what[0] == "layer" or (what[0] == "neurons" and not what[5]):
        return None
    return what[-1] if what[0] == "add" else np.int64


def _run(network: FixedPointNetwork, plan: _Plan, x: np.ndarray, recordings: list[Recording],
         counts: list[np.ndarray], at: int, finish: Callable[[slice, dict], None] | None = None,
         stage_overflow: dict[str, np.ndarray] | None = None) -> None:
    """Run every stage for T + delay steps on ``x``; sample b is row ``at + b`` of ``recordings`` and
    of ``counts`` (each neuron stage's spike count per (sample, step)) and of ``stage_overflow``
    (each Add and GLU stage's overflow events per sample, where given); then ``finish(rows,
    events)`` per chunk (``events``: each stage's event lists of the chunk).

    Chunks of ``CHUNK`` samples go through all stages in one thread; ``numba.get_num_threads()``
    threads take chunks in turn (the loops and numpy release the GIL). Samples share no state, so
    the split cannot change a result.
    """
    n_batch = x.shape[0]
    chunks: queue.SimpleQueue[int] = queue.SimpleQueue()
    for b0 in range(0, n_batch, CHUNK):
        chunks.put(b0)

    def work() -> None:
        n_steps, n_in = x.shape[1:]
        total = n_steps + network.delay
        chunk = max(1, min(CHUNK, n_batch))
        message_bits = network.profile.input_message_bits
        inputs = Events.empty(chunk, n_steps, n_in, payload_type(message_bits))
        # each stage's output events, reused chunk after chunk
        buffers = {name: Events.empty(chunk, total, plan.sizes[name], _value_type(what)) for name, what in plan.steps}
        while True:
            try:
                b0 = chunks.get_nowait()
            except queue.Empty:
                return
            n = min(chunk, n_batch - b0)
            events = {INPUT: input_events(x[b0 : b0 + n], network.input_frac_bits, message_bits, inputs.head(n))}
            for name, what in plan.steps:
                out = buffers[name].head(n)
                if what[0] == "layer":
                    _, r, source, start = what
                    events[name] = run_layer(plan.layers[r], events[source], start, out, recordings[r], at + b0)
                    counts[r][at + b0 : at + b0 + n] = out.count
                elif what[0] == "neurons":
                    _, r, source, start, n_src, graded_out, params = what
                    events[name] = neuron_values(events[source], n_src, plan.neurons[r], start, params, graded_out,
                                                 out, recordings[r], at + b0)
                    counts[r][at + b0 : at + b0 + n] = 0 if graded_out else out.count
                elif what[0] == "dense":
                    events[name] = dense_values(events[what[1]], what[2], what[3], what[4], out)
                elif what[0] == "glu":
                    ov = None if stage_overflow is None else stage_overflow[name][at + b0 : at + b0 + n]
                    events[name] = glu_values(events[what[1]], what[2], what[3], out, ov)
                else:
                    ov = None if stage_overflow is None else stage_overflow[name][at + b0 : at + b0 + n]
                    events[name] = add_events(events[what[1]], events[what[2]], out, *what[3:7], ov)
            if finish is not None:
                finish(slice(at + b0, at + b0 + n), events)

    threads = min(numba.get_num_threads(), -(-n_batch // CHUNK))
    if threads <= 1:
        work()
        return
    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(work) for _ in range(threads)]:
            done.result()


def event_values(events: Events, size: int, start: int, n_steps: int) -> np.ndarray:
    """The (batch, n_steps, size) int64 values of steps start … start + n_steps − 1 of an event list."""
    n_batch = events.count.shape[0]
    out = np.zeros((n_batch, n_steps, size), np.int64)
    count = events.count[:, start : start + n_steps]
    listed = np.arange(events.index.shape[2])[None, None, :] < count[..., None]
    b, t, k = np.nonzero(listed)
    values = 1 if events.value is None else events.value[:, start : start + n_steps][b, t, k]
    out[b, t, events.index[:, start : start + n_steps][b, t, k]] = values
    return out


class _AlignedOutputs:
    """The aligned outputs of ``n_batch`` samples, filled batch by batch (rows ``at`` onwards)."""

    def __init__(self, network: FixedPointNetwork, plan: _Plan, n_batch: int, n_steps: int, record_states: bool,
                 keep_spikes: bool):
        self.network, self.n_steps, self.record_states, self.keep_spikes = network, n_steps, record_states, keep_spikes
        self.starts = plan.starts
        self.decoder = _host_stage(network)
        self.recordings = []
        n_hidden = len(plan.kinds) - (self.decoder is None)  # every neuron stage but the readout
        for l, (kind, n) in enumerate(zip(plan.kinds, plan.neurons)):
            shape = (n_batch, n_steps, n)
            hidden = l < n_hidden
            # bool rasters, written by the loops as 0/1 bytes through a uint8 view
            spikes = np.zeros(shape, bool).view(np.uint8) if hidden and keep_spikes else NOTHING
            names = KINDS[kind].states
            # every state of a hidden layer when asked for; the readout's v always
            states = tuple(np.zeros(shape, np.int64) if (hidden and record_states) or (not hidden and name == READOUT_STATE)
                           else NO_STATES for name in names)
            self.recordings.append(Recording(self.starts[l], spikes, states, np.zeros(n_batch, np.int64)))
        self.n_hidden = n_hidden
        if self.decoder is None:
            self.readout_v = self.recordings[-1].states[KINDS[READOUT_KIND].states.index(READOUT_STATE)]
            self.readout_scale = float(network.readout.scale)
        else:
            self.decoder_size, self.decoder_start = plan.sizes[self.decoder.source], network.delay
        self.counts = [np.empty((n_batch, n_steps + network.delay), np.int32) for _ in plan.kinds]
        self.stage_overflow = {name: np.zeros(n_batch, np.int64) for name, what in plan.steps if what[0] in ("add", "glu")}
        self.readout_u = np.empty((n_batch, n_steps, network.n_classes))
        self.scores = np.empty((n_batch, network.n_classes))

    def fill(self, plan: _Plan, x: np.ndarray, at: int) -> None:
        _run(self.network, plan, x, self.recordings, self.counts, at, self._finish, self.stage_overflow)

    def _finish(self, rows: slice, events: dict) -> None:
        """Dequantize and score a chunk in its thread, while its rows are in cache (each sample's
        float operations are the same whatever the rows around it)."""
        if self.decoder is None:
            self.readout_u[rows] = self.readout_v[rows] / self.readout_scale
            self.scores[rows] = softmax_sum(self.readout_u[rows])
            return
        d = self.decoder
        values = event_values(events[d.source], self.decoder_size, self.decoder_start, self.n_steps)
        self.readout_u[rows], self.scores[rows] = mean_linear(d, values)

    def result(self) -> RunResult:
        recordings, n_steps, n_hidden = self.recordings, self.n_steps, self.n_hidden
        kinds = [KINDS[n.kind] for n in self.network.neuron_stages]
        states = None
        if self.record_states:
            states = {}
            for l, (kind, r) in enumerate(zip(kinds[:n_hidden], recordings)):
                for name, trajectory in zip(kind.states, r.states):
                    states[f"{name}_{l}"] = trajectory
            if self.decoder is None:
                states["v_readout"] = self.readout_v
        window = [c[:, start : start + n_steps] for start, c in zip(self.starts, self.counts[:n_hidden])]
        no_counts = np.zeros((len(self.scores), 0), np.int64)
        return RunResult(
            scores=self.scores,
            spikes=[r.spikes.view(bool) for r in recordings[:n_hidden]] if self.keep_spikes else [],
            readout_u=self.readout_u,
            states=states,
            diagnostics={
                "overflow_events": np.stack([r.overflow_events for r in recordings], axis=1) if recordings else no_counts,
                "readout_spikes": self.counts[-1].sum(axis=1) if self.decoder is None else np.zeros(len(self.scores), np.int64),
                "spike_counts": np.stack([w.sum(axis=1) for w in window], axis=1) if window else no_counts,
                # (batch, Add and GLU stages in stage order): only networks that have such stages
                **({"stage_overflow_events": np.stack(list(self.stage_overflow.values()), axis=1)}
                   if self.stage_overflow else {}),
            },
        )
