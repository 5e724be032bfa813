"""Per-layer work, memory and fidelity of one run: the numbers of the per-layer report (schema v1).

Definitions (``metrics_energy.md`` §1, ``neurons.md`` §15), all **per sample**, averaged over
samples with each sample weighted equally (no ÷(n − 1), no per-batch means):

* A *layer* is a weight matrix and the neurons it feeds: L0 … L(L−1), then the readout. Its
  presynaptic side is the network input (L0) or the previous layer's spikes.
* **presynaptic_events**: non-zero presynaptic activations over all steps; a bin holding several
  events counts once. **sop** = presynaptic_events × neurons (the paper's fan-out), input and
  readout synapses included. **effective_sop**: each activation counts only the non-zero entries
  of its weight column (after quantization in a fixed-point run).
* **spikes**: output spikes; **sparsity** (hidden layers): 1 − spikes / (steps × neurons), i.e. the
  mean fraction of silent steps per neuron. The total is the mean over all hidden neurons; the
  input's activity is reported apart (``input``), never mixed in.
* **buffers** (paper A.3): neurons × real states per neuron, hidden layers only (the readout has 0).
  **dynamic_memory_bits**: neurons × states × state bits, readout included (what the core stores).
* **parameters**: trainable parameters of the float layer (``neurons.md`` §11: W, BatchNorm γ and
  β, the neuron's own parameters); **synapses**: fan-in × neurons; **weights**: the non-zero ones.
* **steps**: the steps the engine runs. The float model runs the T input steps; the fixed-point
  network runs T + L + 1 (one step per Dense, so that the last frame reaches the readout; see
  :mod:`~silif_deploy.hw_models.simulator`), and every neuron is updated on every one of them,
  idle start-up steps included: **neuron_updates** = steps × neurons.
* Event counts (sop, spikes, ...) are taken on the T steps aligned to the float model. In a
  fixed-point run layer l also steps L − l times after the last input frame; what it emits then
  reaches no output and is not counted.
* **overflow_events** (fixed point): states changed by their overflow rule (wrap or saturate, per
  the profile) per sample.

A network that is not a chain of layers (SpikingSSM, binary S4D: a graph of stages) is described
stage by stage instead (:mod:`.stage_metrics`: one row per stage, graded MACs, graded messages and
SOPs apart); the tallies and the report's sections are the same.

Counting is split into additive integer tallies (:class:`RunTally`, :class:`FidelityTally`) so that
inputs of any size are processed batch by batch; :func:`build_report` turns them into the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from silif_deploy.hw_models.network import FixedPointNetwork
from silif_deploy.hw_models.neuron_kinds import KINDS
from silif_deploy.hw_models.run_result import RunResult
from silif_deploy.hw_models.stage_metrics import (
    GraphDescription, compared_spikes, describe_graph, stage_metrics, stage_totals, tally_graph_run,
)

SCHEMA = "silif-deploy/report"
SCHEMA_VERSION = 1
FLOAT_BITS = 32


@dataclass(frozen=True)
class LayerDescription:
    """One layer as the metrics see it: the weight matrix feeding it, as the engine runs it
    (float W for a float run, integer Dense weights for a fixed-point run), and its neurons.
    ``graded``: the presynaptic values are multi-valued payloads (the network input), not spikes."""

    name: str
    kind: str
    weights: np.ndarray
    states_per_neuron: int
    state_bits: int
    weight_bits: int
    parameters: int | None
    hidden: bool
    graded: bool
    fixed_point: dict[str, int] = field(default_factory=dict)

    @property
    def neurons(self) -> int:
        return int(self.weights.shape[0])

    @property
    def fan_in(self) -> int:
        return int(self.weights.shape[1])


@dataclass(frozen=True)
class NetworkDescription:
    """What a run's metrics need to know about the network that produced it.

    ``extra_steps``: steps the engine runs beyond the input length. ``input_sent``: where the
    input source sends a message for an input (fixed point: a non-zero payload); None: where the
    input is non-zero.
    """

    engine: str
    model_type: str
    layers: list[LayerDescription]
    extra_steps: int = 0
    input_sent: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def hidden(self) -> list[LayerDescription]:
        return [layer for layer in self.layers if layer.hidden]


def layer_names(n_hidden: int) -> list[str]:
    return [f"L{i}" for i in range(n_hidden)] + ["readout"]


def describe_fixed(network: FixedPointNetwork) -> NetworkDescription | GraphDescription:
    """Description of a fixed-point network (parameter counts from the float model it carries); a
    network that is not a chain: its stages (:func:`.stage_metrics.describe_graph`)."""
    if not network.is_chain:
        parameters = None
        if network.float_model is not None:
            from silif_deploy.converters.float_description import graph_parameter_count

            parameters = graph_parameter_count(network.float_model["state_dict"])
        return describe_graph(network, parameters=parameters)
    n_layers = len(network.layers)
    params: list[int | None] = [None] * n_layers
    if network.float_model is not None:
        from silif_deploy.converters.float_description import parameter_counts  # the float side reads torch keys

        params = list(parameter_counts(network.float_model["state_dict"], n_layers))
    layers = []
    for i, (name, layer) in enumerate(zip(layer_names(len(network.hidden)), network.layers)):
        syn = layer.synapse
        layers.append(LayerDescription(
            name=name, kind=layer.kind, weights=syn.weights, states_per_neuron=KINDS[layer.kind].buffers,
            state_bits=network.profile.state_bits, weight_bits=syn.num_weight_bits, parameters=params[i],
            hidden=i < len(network.hidden), graded=syn.graded,
            fixed_point={"weight_exp": syn.weight_exp, "state_scale": layer.scale},
        ))
    return NetworkDescription("fixed", network.model_type, layers, extra_steps=network.delay,
                              input_sent=network.sends)


# --------------------------------------------------------------------------------------------
# Tallies: integer sums over samples, additive across batches.


@dataclass
class RunTally:
    """Sums over the samples seen so far of one run's event counts.

    ``active[l]`` (fan_in,): per presynaptic channel of layer l, the number of (sample, step) with a
    non-zero activation; ``spikes[l]``: output spikes (the readout's own spikes, 0 when not known).
    """

    samples: int
    steps: int
    input_nonzero: int
    input_sum: float
    input_max: float
    active: list[np.ndarray]
    spikes: list[int]
    overflow_events: list[int] | None
    correct: int | None
    stage_overflow_events: list[int] | None = None
    """A graph network's Add and GLU stages' overflow events (None: a chain, or not counted)."""

    def __add__(self, other: "RunTally") -> "RunTally":
        if other.steps != self.steps:
            raise ValueError("tallies of inputs with different numbers of steps cannot be added")
        return RunTally(
            samples=self.samples + other.samples, steps=self.steps,
            input_nonzero=self.input_nonzero + other.input_nonzero,
            input_sum=self.input_sum + other.input_sum, input_max=max(self.input_max, other.input_max),
            active=[a + b for a, b in zip(self.active, other.active)],
            spikes=[a + b for a, b in zip(self.spikes, other.spikes)],
            overflow_events=_add_optional(self.overflow_events, other.overflow_events),
            correct=None if self.correct is None or other.correct is None else self.correct + other.correct,
            stage_overflow_events=_add_optional(self.stage_overflow_events, other.stage_overflow_events),
        )


def _add_optional(a: list[int] | None, b: list[int] | None) -> list[int] | None:
    return None if a is None or b is None else [x + y for x, y in zip(a, b)]


def column_counts(z: np.ndarray) -> np.ndarray:
    """The number of non-zero entries of ``z`` (..., N) at each index of its last axis, as int64.

    Summed as uint8 over blocks of 255 rows, where no count can wrap, then widened: numpy's
    ``count_nonzero`` over axes casts every entry to intp, five times slower on a spike raster."""
    counts = np.zeros(z.shape[-1], np.int64)
    if z.size:
        rows = np.ascontiguousarray(z if z.dtype == bool else z != 0).reshape(-1, z.shape[-1]).view(np.uint8)
        for start in range(0, rows.shape[0], 255):
            counts += rows[start : start + 255].sum(axis=0, dtype=np.uint8)
    return counts


def input_abs_sum(x: np.ndarray) -> float:
    """Σ|x| in float64. Unsigned integers are summed as integers, exactly, without a float64 copy:
    numpy's float64 sum of integers is exact too while the total stays below 2^53, so it is the same number."""
    if np.issubdtype(x.dtype, np.unsignedinteger):
        return float(x.sum(dtype=np.uint64))
    return float(np.abs(np.asarray(x, np.float64)).sum())


def tally_run(description: NetworkDescription, x: np.ndarray, result: RunResult,
              labels: np.ndarray | None = None) -> RunTally:
    """Count one batch: ``x`` (batch, T, channels) as given to the engine, ``result`` its outputs."""
    if isinstance(description, GraphDescription):
        return tally_graph_run(description, x, result, labels)
    spikes = [int(np.count_nonzero(s)) for s in result.spikes]
    readout_spikes = (result.diagnostics or {}).get("readout_spikes")
    spikes.append(int(np.sum(readout_spikes)) if readout_spikes is not None else 0)
    return batch_tally(description, x, result, labels, result.spikes, spikes)


def batch_tally(description: NetworkDescription | GraphDescription, x: np.ndarray, result: RunResult,
                labels: np.ndarray | None, presynaptic: Sequence[np.ndarray], spikes: list[int],
                **extra: Any) -> RunTally:
    """The :class:`RunTally` of one batch whose spike rasters feeding binary synapses are
    ``presynaptic`` and whose spiking layers fired ``spikes``: ``active`` is the input's per-channel
    counts of messages sent, then each raster's per-neuron spike counts; ``extra``: more fields."""
    sent = description.input_sent(x) if description.input_sent is not None else x
    events = (result.diagnostics or {}).get("overflow_events")
    return RunTally(
        samples=int(x.shape[0]), steps=int(x.shape[1]), input_nonzero=int(np.count_nonzero(x)),
        input_sum=input_abs_sum(x), input_max=float(np.max(x, initial=0)),
        active=[column_counts(z) for z in (sent, *presynaptic)], spikes=spikes,
        overflow_events=None if events is None else [int(v) for v in np.asarray(events).sum(axis=0)],
        correct=None if labels is None else int(np.count_nonzero(result.prediction == labels)), **extra,
    )


@dataclass
class FidelityTally:
    """Sums comparing a fixed-point run with its float reference on the same samples (aligned steps)."""

    samples: int
    entries: list[int]
    equal: list[int]
    both: list[int]
    either: list[int]
    spikes_fixed: list[int]
    spikes_float: list[int]
    readout_abs_sum: float
    readout_abs_max: float
    readout_entries: int
    predictions_equal: int

    def __add__(self, other: "FidelityTally") -> "FidelityTally":
        def add(a, b):
            return [x + y for x, y in zip(a, b)]

        return FidelityTally(
            samples=self.samples + other.samples, entries=add(self.entries, other.entries),
            equal=add(self.equal, other.equal), both=add(self.both, other.both),
            either=add(self.either, other.either), spikes_fixed=add(self.spikes_fixed, other.spikes_fixed),
            spikes_float=add(self.spikes_float, other.spikes_float),
            readout_abs_sum=self.readout_abs_sum + other.readout_abs_sum,
            readout_abs_max=max(self.readout_abs_max, other.readout_abs_max),
            readout_entries=self.readout_entries + other.readout_entries,
            predictions_equal=self.predictions_equal + other.predictions_equal,
        )


def tally_fidelity(fixed: RunResult, reference: RunResult, description: GraphDescription | None = None) -> FidelityTally:
    """Compare a fixed-point run with the float run on the same input (both aligned to float steps);
    of a graph network (``description``): its spiking stages' spikes with the float blocks'."""
    fixed_spikes = fixed.spikes if description is None else compared_spikes(description, fixed)
    if len(fixed_spikes) != len(reference.spikes):
        raise ValueError("the two runs have different numbers of hidden layers")
    f = [np.asarray(s, bool) for s in fixed_spikes]
    r = [np.asarray(s, bool) for s in reference.spikes]
    err = np.abs(np.asarray(fixed.readout_u, np.float64) - np.asarray(reference.readout_u, np.float64))
    return FidelityTally(
        samples=int(fixed.scores.shape[0]),
        entries=[int(a.size) for a in f],
        equal=[int(a.size - np.count_nonzero(a ^ b)) for a, b in zip(f, r)],
        both=[int(np.count_nonzero(a & b)) for a, b in zip(f, r)],
        either=[int(np.count_nonzero(a | b)) for a, b in zip(f, r)],
        spikes_fixed=[int(np.count_nonzero(a)) for a in f],
        spikes_float=[int(np.count_nonzero(b)) for b in r],
        readout_abs_sum=float(err.sum()), readout_abs_max=float(err.max(initial=0.0)),
        readout_entries=int(err.size),
        predictions_equal=int(np.count_nonzero(fixed.prediction == reference.prediction)),
    )


# --------------------------------------------------------------------------------------------
# Metrics from tallies.


def layer_metrics(description: NetworkDescription, tally: RunTally) -> list[dict[str, Any]]:
    """The report's ``layers`` entries (module docstring for every definition)."""
    n, steps_hw = tally.samples, tally.steps + description.extra_steps
    out = []
    for i, layer in enumerate(description.layers):
        nonzero_per_column = np.count_nonzero(layer.weights, axis=0).astype(np.int64)
        active = tally.active[i]
        entry: dict[str, Any] = {
            "name": layer.name,
            "kind": layer.kind,
            "fan_in": layer.fan_in,
            "neurons": layer.neurons,
            "states_per_neuron": layer.states_per_neuron,
            "buffers": layer.neurons * layer.states_per_neuron if layer.hidden else 0,
            "state_bits": layer.state_bits,
            "dynamic_memory_bits": layer.neurons * layer.states_per_neuron * layer.state_bits,
            "parameters": layer.parameters,
            "synapses": layer.fan_in * layer.neurons,
            "weights": int(nonzero_per_column.sum()),
            "weight_bits": layer.weight_bits,
            "graded": layer.graded,
            "steps": steps_hw,
            "neuron_updates": steps_hw * layer.neurons,
            "presynaptic_events": int(active.sum()) / n,
            "sop": int(active.sum()) * layer.neurons / n,
            "effective_sop": int(active @ nonzero_per_column) / n,
            "spikes": tally.spikes[i] / n,
            "sparsity": 1.0 - tally.spikes[i] / (n * tally.steps * layer.neurons) if layer.hidden else None,
            "overflow_events": None if tally.overflow_events is None else tally.overflow_events[i] / n,
        }
        entry.update(layer.fixed_point)
        out.append(entry)
    return out


def totals(description: NetworkDescription, tally: RunTally, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over layers (sparsity: the mean over all hidden neurons), from the integer tallies."""
    n = tally.samples
    hidden = [layer for layer in layers if layer["sparsity"] is not None]
    hidden_neurons = sum(layer["neurons"] for layer in hidden)
    hidden_spikes = sum(tally.spikes[i] for i, d in enumerate(description.layers) if d.hidden)

    def total(key: str) -> Any:
        values = [layer[key] for layer in layers]
        return None if any(v is None for v in values) else sum(values)

    active_total = sum(int(a.sum()) for a in tally.active)
    sop_total = sum(int(a.sum()) * d.neurons for a, d in zip(tally.active, description.layers))
    eff_total = sum(int(a @ np.count_nonzero(d.weights, axis=0)) for a, d in zip(tally.active, description.layers))
    return {
        "samples": n,
        "input_steps": tally.steps,
        "steps": tally.steps + description.extra_steps,
        "neurons": total("neurons"),
        "hidden_neurons": hidden_neurons,
        "buffers": total("buffers"),
        "dynamic_memory_bits": total("dynamic_memory_bits"),
        "parameters": total("parameters"),
        "synapses": total("synapses"),
        "weights": total("weights"),
        "neuron_updates": total("neuron_updates"),
        "presynaptic_events": active_total / n,
        "sop": sop_total / n,
        "effective_sop": eff_total / n,
        "spikes": hidden_spikes / n,
        "sparsity": 1.0 - hidden_spikes / (n * tally.steps * hidden_neurons) if hidden_neurons else None,
        "overflow_events": total("overflow_events"),
        "accuracy": None if tally.correct is None else tally.correct / n,
    }


def input_metrics(tally: RunTally, channels: int, is_counts: bool) -> dict[str, Any]:
    """The input's own activity (kept out of the hidden-layer sparsity)."""
    n, bins = tally.samples, tally.steps * channels
    return {
        "samples": n, "steps": tally.steps, "channels": channels, "is_counts": is_counts,
        "nonzero_bins": tally.input_nonzero / n,
        "activity": tally.input_nonzero / (n * bins),
        "sparsity": 1.0 - tally.input_nonzero / (n * bins),
        "events": tally.input_sum / n if is_counts else None,
        "max_value": tally.input_max,
    }


def fidelity_metrics(description: NetworkDescription, tally: FidelityTally) -> dict[str, Any]:
    """Fixed vs float on the aligned steps: per hidden layer the fraction of equal (sample, step,
    neuron) entries (``spike_agreement``) and matched spikes over spikes of either (``spike_jaccard``);
    readout membrane error in threshold units; the fraction of equal predictions."""
    n = tally.samples
    layers = []
    names = [name for name, _ in description.spiking] if isinstance(description, GraphDescription) \
        else [layer.name for layer in description.hidden]
    for i, name in enumerate(names):
        layers.append({
            "name": name,
            "spike_agreement": tally.equal[i] / tally.entries[i],
            "spike_jaccard": tally.both[i] / tally.either[i] if tally.either[i] else 1.0,
            "spikes_fixed": tally.spikes_fixed[i] / n,
            "spikes_float": tally.spikes_float[i] / n,
        })
    alignment = ("each spiking stage at step t + its delay (one step per Dense and lag on its path) compared with "
                 "float step t; the decoder's per-step logits likewise") if isinstance(description, GraphDescription) \
        else "fixed-point layer l at step t + l + 1 and the readout at t + L + 1 compared with float step t"
    return {
        "samples": n,
        "alignment": alignment,
        "layers": layers,
        "readout_max_abs_error": tally.readout_abs_max,
        "readout_mean_abs_error": tally.readout_abs_sum / tally.readout_entries,
        "prediction_agreement": tally.predictions_equal / n,
        "prediction_disagreements": n - tally.predictions_equal,
    }


# --------------------------------------------------------------------------------------------
# Quantization diagnostics.

_SYNAPSE_WARNINGS = (
    ("weights_clipped", "weights clipped to the weight range"),
    ("biases_out_of_range", "biases out of the bias range (clipped)"),
)


def _all_degeneracies() -> tuple[tuple[str, str], ...]:
    """Every kind's degeneracy diagnostics, in registration order, each key once."""
    seen: dict[str, str] = {}
    for kind in KINDS.values():
        for key, text in kind.diagnostics:
            seen.setdefault(key, text)
    return tuple(seen.items())


def _kind_degeneracies(kind: str | None) -> tuple[tuple[str, str], ...]:
    """(key, warning) pairs of a kind's degeneracy diagnostics; every kind's when it is not known."""
    return KINDS[kind].diagnostics if kind in KINDS else _all_degeneracies()


def _layer_warnings(kind: str | None) -> tuple[tuple[str, str], ...]:
    """The (key, warning) pairs of a layer's quantization diagnostics: its kind's degeneracies,
    then those of its synapse."""
    return (*_kind_degeneracies(kind), *_SYNAPSE_WARNINGS)


def neuron_degeneracies(kind: str | None) -> tuple[str, ...]:
    """The quantization diagnostics of a layer of ``kind`` that count neurons whose dynamics rounding
    changed in kind (each hardware kind declares its own: ``NeuronKind.diagnostics``; every kind's
    when the kind is not known)."""
    return tuple(key for key, _ in _kind_degeneracies(kind))


def quantization_section(quantization: Mapping[str, Any], stages: bool = False) -> dict[str, Any]:
    """The artifact's quantization diagnostics, per layer with names, and the warnings they imply; of
    a graph network (``stages``): its ``stages`` entries, {stage name: diagnostics} or a list of
    diagnostics with their ``name``."""
    if stages:
        layers = graph_quantization_rows(quantization)
    else:
        hidden = list(quantization.get("layers", []))
        names = layer_names(len(hidden))
        layers = [{"name": name, **diag} for name, diag in zip(names, [*hidden, quantization.get("readout", {})])]
    return {
        "calibrated": bool(quantization.get("calibrated", False)),
        "input_frac_bits": quantization.get("input_frac_bits", 0),
        "layers": layers,
        "warnings": quantization_warnings(layers),
    }


def graph_quantization_rows(quantization: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-stage diagnostics rows of a graph network's quantization record: its ``stages`` ({stage
    name: diagnostics}), or the SpikingSSM quantizer's ``encoder`` and per-block ``blocks`` records
    (the S4D states with their degeneracies, the readout C, the skip D, the soma and the GLU mix)."""
    if "stages" in quantization:
        return [{"name": k, **v} for k, v in quantization["stages"].items()]
    rows = [{"name": "enc", **quantization["encoder"]}] if "encoder" in quantization else []
    for block in quantization.get("blocks", []):
        b, soma = f"b{block['block']}", block.get("soma", "cuba")
        rows.append({"name": f"{b}.s4d", "kind": "s4d", "neurons": block["h"] * block["modes"],
                     **{k: block.get(k, 0) for k, _ in KINDS["s4d"].diagnostics},
                     "biases_out_of_range": block.get("s4d_biases_out_of_range", 0)})
        rows += [{"name": f"{b}.{stage}", **block[key]} for stage, key in (("C", "readout"), ("D", "skip")) if key in block]
        rows.append({"name": f"{b}.{'lif' if soma == 'cuba' else soma}", "kind": soma, "neurons": block["h"],
                     "biases_out_of_range": block.get("soma_biases_out_of_range", 0)})
        if "mix" in block:
            rows.append({"name": f"{b}.mix", **block["mix"]})
    return rows


def quantization_warnings(layers: list[Mapping[str, Any]]) -> list[str]:
    """One line per (layer, problem) with a non-zero count; zeroed weights as a fraction."""
    lines = []
    for diag in layers:
        name = diag["name"]
        for key, text in _layer_warnings(diag.get("kind")):
            count = diag.get(key, 0)
            if not count:
                continue
            of = diag["weights"] if key.startswith("weights") else diag.get("neurons")
            line = f"{name}: {count:,}{f' of {of:,}' if of else ''} {text}"
            if key == "beta_one_perfect_integrator" and "beta_one_in_float" in diag:
                exact = diag["beta_one_in_float"]
                line += (f"; {exact:,} are exactly 1 in float already" if exact else "")
                line += (f"; wider coefficients (e.g. profile loihi2-wide) keep the other {count - exact:,}"
                         if count > exact else "")
            lines.append(line)
        zeroed, total = diag.get("weights_zeroed", 0), diag.get("weights", 0)
        if zeroed and total:
            lines.append(f"{name}: {zeroed:,} of {total:,} non-zero float weights became 0 ({100.0 * zeroed / total:.1f} %)")
    return lines


# --------------------------------------------------------------------------------------------
# The report.


def build_report(
    description: NetworkDescription,
    tally: RunTally,
    *,
    input_info: Mapping[str, Any],
    provenance: Mapping[str, Any],
    profile: Mapping[str, Any] | None = None,
    fidelity: FidelityTally | None = None,
    quantization: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the report (schema ``silif-deploy/report`` v1, documented in ``docs/report.md``).

    ``input_info`` adds to the input section (kind, path, sha256, probe settings); ``is_counts`` in it
    decides whether ``input.events`` is reported.
    """
    graph = isinstance(description, GraphDescription)
    layers = stage_metrics(description, tally) if graph else layer_metrics(description, tally)
    channels = description.n_inputs if graph else description.layers[0].fan_in
    info = dict(input_info)
    report = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "provenance": dict(provenance),
        "engine": description.engine,
        "model": {"model_type": description.model_type, **(model or {})},
        "profile": None if profile is None else dict(profile),
        "input": {**info, **input_metrics(tally, channels, bool(info.get("is_counts", True)))},
        **({"rows": "stages"} if graph else {}),
        "layers": layers,
        "totals": stage_totals(description, tally, layers) if graph else totals(description, tally, layers),
        "fidelity": None if fidelity is None else fidelity_metrics(description, fidelity),
        "quantization": None if quantization is None else quantization_section(quantization, graph),
    }
    return json_safe(report)


def json_safe(obj: Any) -> Any:
    """numpy scalars → Python numbers, non-finite floats → None, tuples → lists (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
