"""Per-stage work, memory and traffic of a network that is not a chain of layers (SpikingSSM, binary
S4D): the report's rows, one per stage of the graph (:mod:`.network`).

Definitions (``spiking_ssm.md`` §11, extending ``metrics_energy.md`` §1 without changing it), all
**per sample**, on the T input steps (each stage's step t + its delay is float step t) unless said:

* **sop** (the paper's meaning): only synapses with **binary** presynaptic activity, a Dense fed by
  spikes (in these models the GLU mixing Dense on the soma spikes): spikes × fan-out.
  **effective_sop**: each spike counts only the non-zero weights of its column. (A binary Dense on
  graded values, which these models do not have, counts every value every step: the run does not
  list them.)
* **graded_macs**: multiply-accumulates on graded values, counted apart from SOPs. A graded Dense:
  its non-zero weights every step (``dense_every_step``: its source, an S4D state or the residual
  stream, is dense), except a Dense reading the input, which counts each non-zero input value's
  non-zero weights (the encoder: d_in·H per step on dense input). An ``s4d`` stage: 4 multiplies of
  the rotation and 1 of the real input gain per complex state per step (5·H·N/2). A GLU: H
  products per step; its H sigmoids are **sigmoid_lookups**. The host's mean_linear decoder: H·classes
  MACs once (``host``).
* **graded_adds**: an Add stage's H adds per step (the readout's C + D sum, the residual); the
  decoder's H·T pooling adds (host).
* **graded_messages**: graded values a stage sends to each stage reading it, every step, of
  ``message_bits`` each (24-bit payloads, not 1-bit spikes): the input (its non-zero values only),
  the S4D states (H·N per step to the readout), Adds and GLUs. A Dense's sum lands in the
  compartments it feeds and is no message. Spikes travel as ``presynaptic_events`` of the Dense they
  drive (1 bit each).
* **buffers** (paper A.3): real states a stage keeps: an ``s4d`` stage H·N (N/2 complex states × 2);
  a ``cuba`` soma H (its current is memoryless when du = 4095, so only v is state; 2·H otherwise);
  ``heaviside`` 0. **neuron_updates**: steps × neurons of every neuron stage (all engine steps).
* **spikes**, **sparsity**: of the spiking neuron stages (the somas). **overflow_events**: values an
  overflow rule changed (wrapped or saturated), over all engine steps: a neuron stage's states, an
  Add's sums, a GLU's products (the simulator's ``stage_overflow_events``; ``overflow_counted`` is
  False and the count None where the engine does not report them).

:func:`describe_graph` makes the description; the tallies are :class:`.metrics.RunTally` (additive),
counted by :func:`tally_graph_run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from silif_deploy.hw_models.network import (
    INPUT, Add, Dense, FixedPointNetwork, Glu, MeanLinear, Neurons, SoftmaxSum, inputs_of, neuron_count, sends_graded,
)
from silif_deploy.hw_models.neuron_kinds import KINDS, STATES
from silif_deploy.hw_models.run_result import RunResult

S4D_MULTIPLIES_PER_STATE = 4 + 1
"""Per complex state per step: the rotation λ·x (4 real multiplies) and the real input gain g·A."""
MEMORYLESS_DU = 4095
"""A CUBA current with du = 4095 decays by (4096 − (du + 1))/4096 = 0: u is not a state."""


@dataclass(frozen=True)
class StageDescription:
    """One stage as the metrics see it (module docstring for each count)."""

    name: str
    stage: str
    kind: str
    size: int
    neurons: int = 0
    buffers: int = 0
    state_bits: int = 0
    weights: np.ndarray | None = None
    weight_bits: int | None = None
    binary_source: int | None = None
    """Index in the tally's ``active`` of this Dense's presynaptic spikes (binary Dense only)."""
    dense_events_per_step: int = 0
    """A binary Dense reading graded values the run does not list: events counted as every value every step."""
    input_driven: bool = False
    spike_index: int | None = None
    """Index in the tally's ``spikes`` of this stage's own spikes (spiking neuron stages)."""
    overflow_index: int | None = None
    """Index in the tally's ``overflow_events`` (neuron stages) or, for an Add or GLU, its
    ``stage_overflow_events``."""
    macs_per_step: int = 0
    adds_per_step: int = 0
    lookups_per_step: int = 0
    messages_per_step: int = 0
    message_bits: int = 0
    host_macs: int = 0
    host: bool = False
    fixed_point: dict[str, Any] = field(default_factory=dict)

    @property
    def fan_in(self) -> int:
        return 0 if self.weights is None else int(self.weights.shape[1])


@dataclass(frozen=True)
class GraphDescription:
    """What a run's per-stage metrics need to know about a graph network.

    ``spike_sources``: for each binary Dense (in stage order), the index in ``RunResult.spikes`` of the
    stage it reads; ``spiking``: the names of the spiking neuron stages and their ``RunResult.spikes``
    indices, in run order (the float model's blocks, for the fidelity figures).
    """

    engine: str
    model_type: str
    n_inputs: int
    stages: list[StageDescription]
    spike_sources: list[int]
    spiking: list[tuple[str, int]]
    extra_steps: int = 0
    input_sent: Callable[[np.ndarray], np.ndarray] | None = None
    parameters: int | None = None


def _buffers(stage: Neurons, n: int) -> int:
    if stage.kind == "cuba" and np.all(np.asarray(stage.params.du) == MEMORYLESS_DU):
        return n  # Loihi's CUBA LIF with a memoryless current: v is its one state
    return n * KINDS[stage.kind].buffers


def describe_graph(network: FixedPointNetwork, engine: str = "fixed", parameters: int | None = None) -> GraphDescription:
    """The per-stage description of a fixed-point graph network (module docstring)."""
    prof = network.profile
    readers: dict[str, int] = {}
    for stage in network.stages:
        for source in inputs_of(stage):
            readers[source] = readers.get(source, 0) + 1
    neuron_index = {s.name: i for i, s in enumerate(network.neuron_stages)}
    size: dict[str, int] = {INPUT: network.n_inputs}
    readout = network.neuron_stages[-1].name if isinstance(network.stages[-1], SoftmaxSum) else None
    stages, spike_sources, spiking = [], [], []
    graded_index = {s.name: i for i, s in enumerate(st for st in network.stages if isinstance(st, (Add, Glu)))}
    spiking_names = {s.name for s in network.neuron_stages if KINDS[s.kind].output != STATES and s.name != readout}
    for stage in network.stages:
        name, src = stage.name, inputs_of(stage)[0]
        row: dict[str, Any] = {}
        if isinstance(stage, Dense):
            syn = stage.synapse
            out = syn.fan_out
            row = dict(stage="dense", kind="graded" if syn.graded else "binary", weights=syn.weights,
                       weight_bits=syn.num_weight_bits, input_driven=syn.graded and src == INPUT,
                       macs_per_step=int(np.count_nonzero(syn.weights)) if syn.graded else 0,
                       fixed_point={"weight_exp": syn.weight_exp,
                                    **({} if syn.row_exp is None else {"row_exp": [int(e) for e in syn.row_exp]})})
            if not syn.graded and src == INPUT:  # any non-zero input value counts 1
                row["binary_source"] = 0
            elif not syn.graded and src in spiking_names:
                row["binary_source"] = len(spike_sources) + 1  # active[0] is the input
                spike_sources.append(neuron_index[src])
            elif not syn.graded:  # binary synapses on graded values the run does not list: every value, every step
                row["dense_events_per_step"] = size[src]
        elif isinstance(stage, Neurons):
            kind = KINDS[stage.kind]
            n = neuron_count(stage)
            out = n * len(kind.states) if kind.output == STATES else n
            row = dict(stage="neurons", kind=stage.kind, neurons=n, buffers=_buffers(stage, n), state_bits=prof.state_bits,
                       overflow_index=neuron_index[name], fixed_point={"state_scale": stage.scale})
            if stage.kind == "s4d":
                row["macs_per_step"] = S4D_MULTIPLIES_PER_STATE * n
            if kind.output != STATES and name != readout:
                row["spike_index"] = len(spiking)
                spiking.append((name, neuron_index[name]))
        elif isinstance(stage, Add):
            out = size[src]
            row = dict(stage="add", kind="add", adds_per_step=out, overflow_index=graded_index[name],
                       fixed_point={"bits": stage.bits, "lags": list(stage.lags)})
        elif isinstance(stage, Glu):
            out = size[src] // 2
            row = dict(stage="glu", kind="glu", macs_per_step=out, lookups_per_step=out, overflow_index=graded_index[name])
        elif isinstance(stage, MeanLinear):
            out = int(stage.weights.shape[0])
            row = dict(stage="decoder", kind="mean_linear", adds_per_step=size[src], host_macs=int(stage.weights.size),
                       host=True)
        else:  # the softmax_sum of a readout
            out = size[src]
            row = dict(stage="scores", kind="softmax_sum", host=True)
        size[name] = out
        if not isinstance(stage, Dense) and sends_graded(stage) and name in readers:
            row.update(messages_per_step=out * readers[name], message_bits=prof.state_bits)
        stages.append(StageDescription(name=name, size=out, **row))
    if INPUT in readers:
        stages.insert(0, StageDescription(name=INPUT, stage="input", kind="input", size=network.n_inputs,
                                          messages_per_step=network.n_inputs * readers[INPUT],
                                          message_bits=prof.input_message_bits))
    return GraphDescription(engine, network.model_type, network.n_inputs, stages, spike_sources, spiking,
                            extra_steps=network.delay, input_sent=network.sends, parameters=parameters)


def tally_graph_run(description: GraphDescription, x: np.ndarray, result: RunResult, labels: np.ndarray | None):
    """Count one batch of a graph network's run (:class:`.metrics.RunTally`): ``active`` is the input's
    per-channel non-zero counts, then each binary Dense's per-presynaptic-neuron spike counts; ``spikes``
    each spiking stage's; ``overflow_events`` each neuron stage's and ``stage_overflow_events`` each Add
    and GLU stage's (when the engine counts them)."""
    from silif_deploy.hw_models.metrics import batch_tally

    graded_events = (result.diagnostics or {}).get("stage_overflow_events")
    return batch_tally(
        description, x, result, labels, [result.spikes[i] for i in description.spike_sources],
        [int(np.count_nonzero(result.spikes[i])) for _, i in description.spiking],
        stage_overflow_events=None if graded_events is None else [int(v) for v in np.asarray(graded_events).sum(axis=0)],
    )


def compared_spikes(description: GraphDescription, result: RunResult) -> list[np.ndarray]:
    """The spiking stages' aligned spikes of a run, in run order (a float run: its blocks' spikes)."""
    return [result.spikes[i] for _, i in description.spiking]


def stage_metrics(description: GraphDescription, tally) -> list[dict[str, Any]]:
    """The report's ``layers`` entries of a graph network: one per stage (module docstring)."""
    n, steps, steps_hw = tally.samples, tally.steps, tally.steps + description.extra_steps
    input_active = tally.active[0]
    rows = []
    for d in description.stages:
        synapses = 0 if d.weights is None else int(d.weights.size)
        nonzero = None if d.weights is None else np.count_nonzero(d.weights, axis=0).astype(np.int64)
        events = sop = eff = 0
        macs = d.macs_per_step * steps * n
        if d.input_driven:
            macs = int(input_active @ nonzero)
        if d.binary_source is not None:
            active = tally.active[d.binary_source]
            events, sop, eff = int(active.sum()), int(active.sum()) * d.weights.shape[0], int(active @ nonzero)
        elif d.dense_events_per_step:
            events, sop, eff = (n * steps * v for v in (d.dense_events_per_step, d.weights.size, int(nonzero.sum())))
        messages = d.messages_per_step * steps * n
        if d.stage == "input":  # only its non-zero payloads are sent, to each reader
            messages = int(input_active.sum()) * (d.messages_per_step // d.size)
        spikes = tally.spikes[d.spike_index] if d.spike_index is not None else 0
        counted = tally.stage_overflow_events if d.stage in ("add", "glu") else tally.overflow_events
        overflow = None if d.overflow_index is None or counted is None else counted[d.overflow_index] / n
        row: dict[str, Any] = {
            "name": d.name, "stage": d.stage, "kind": d.kind, "fan_in": d.fan_in,
            "neurons": d.neurons, "values": d.size, "states_per_neuron": d.buffers // d.neurons if d.neurons else 0,
            "buffers": d.buffers, "state_bits": d.state_bits, "dynamic_memory_bits": d.buffers * d.state_bits,
            "parameters": None, "synapses": synapses, "weights": 0 if nonzero is None else int(nonzero.sum()),
            "weight_bits": d.weight_bits, "graded": False, "steps": steps_hw,
            "neuron_updates": steps_hw * d.neurons,
            "presynaptic_events": events / n, "sop": sop / n, "effective_sop": eff / n,
            "graded_macs": macs / n + d.host_macs, "graded_adds": d.adds_per_step * steps,
            "sigmoid_lookups": d.lookups_per_step * steps,
            "dense_every_step": bool(d.macs_per_step or d.adds_per_step or d.dense_events_per_step) and not d.input_driven,
            "graded_messages": messages / n, "message_bits": d.message_bits,
            "graded_message_bits": messages / n * d.message_bits,
            "spikes": spikes / n,
            "sparsity": 1.0 - spikes / (n * steps * d.neurons) if d.spike_index is not None else None,
            "overflow_events": overflow,
            "overflow_counted": d.overflow_index is None or counted is not None,
            "host": d.host,
        }
        row.update(d.fixed_point)
        rows.append(row)
    return rows


SUMMED = ("neurons", "buffers", "dynamic_memory_bits", "synapses", "weights", "neuron_updates", "presynaptic_events",
          "sop", "effective_sop", "graded_macs", "graded_adds", "sigmoid_lookups", "graded_messages", "graded_message_bits",
          "spikes")


def stage_totals(description: GraphDescription, tally, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over the stages; sparsity is the mean over the spiking stages' neurons."""
    n = tally.samples
    spiking = [r for r in rows if r["sparsity"] is not None]
    spiking_neurons = sum(r["neurons"] for r in spiking)
    spikes = sum(tally.spikes)
    overflow = [r["overflow_events"] for r in rows if r["overflow_counted"] and r["overflow_events"] is not None]
    totals = {key: sum(r[key] for r in rows) for key in SUMMED}
    return {
        "samples": n, "input_steps": tally.steps, "steps": tally.steps + description.extra_steps,
        **totals,
        "hidden_neurons": spiking_neurons,
        "spike_message_bits": totals["presynaptic_events"],
        "parameters": description.parameters,
        "sparsity": 1.0 - spikes / (n * tally.steps * spiking_neurons) if spiking_neurons else None,
        "overflow_events": sum(overflow) if overflow else None,
        "overflow_not_counted": [r["name"] for r in rows if not r["overflow_counted"]],
        "accuracy": None if tally.correct is None else tally.correct / n,
    }


COMPARTMENT_STAGES = (Neurons, Add, Glu)
"""The stages that hold compartments on a core; a Dense's synapses sit in the cores of the stage it feeds."""


def compartment_shapes(network: FixedPointNetwork) -> list:
    """What core mapping needs of a graph network (:class:`.core_mapping.LayerShape` per compartment
    stage, in run order): its size; its fan-in, the Dense stages it reads (their synapses are stored
    with it) or one input per graded source read directly (an identity or kron expansion); the
    widest weight; per compartment its real states and per-neuron parameter arrays in state-width
    words, plus the spike bit (the same assumption as for a layer)."""
    from silif_deploy.hw_models.core_mapping import LayerShape  # core_mapping reads the metrics

    by_name = {s.name: s for s in network.stages}
    values = {d.name: d.size for d in describe_graph(network).stages}
    shapes = []
    for stage in network.stages:
        if not isinstance(stage, COMPARTMENT_STAGES):
            continue
        dense = [by_name[s] for s in inputs_of(stage) if isinstance(by_name.get(s), Dense)]
        fan_in = sum(d.synapse.fan_in for d in dense) + len(inputs_of(stage)) - len(dense)
        bits = max([d.synapse.num_weight_bits for d in dense], default=network.profile.weight_bits)
        words = 0
        if isinstance(stage, Neurons):
            n = neuron_count(stage)
            words = _buffers(stage, n) // n + sum(1 for v in stage.params if isinstance(v, np.ndarray))
        size = neuron_count(stage) if isinstance(stage, Neurons) else values[stage.name]
        shapes.append(LayerShape(stage.name, size, fan_in, bits, words * network.profile.state_bits + 1))
    return shapes


def cores_per_row(network: FixedPointNetwork, rows: list[dict[str, Any]], placed: dict[str, int]) -> list[int]:
    """Cores of each report row: a compartment stage's own (``placed``), a Dense's those of the stage
    it feeds, the input and host stages 1."""
    feeds: dict[str, str] = {}
    for stage in network.stages:
        for source in inputs_of(stage):
            if stage.name in placed:
                feeds.setdefault(source, stage.name)
    return [placed.get(r["name"], placed.get(feeds.get(r["name"], ""), 1)) for r in rows]
