"""The fixed-point network in memory: what the artifact file holds and every engine runs.

A network is a small graph of named stages, listed in the order they run (each stage reads only
the input or stages before it). The stage ``"input"`` is the input source: graded payloads
x_int = round(x · 2^input_frac_bits) (event counts: input_frac_bits = 0, used as they are).

Every stage sends either spikes (0/1: a neuron stage whose kind outputs spikes) or graded
values (the input, a Dense, an Add, a GLU, a neuron stage whose kind outputs its states); each
stage's integer rule is its class docstring here (neuron stages: their kind's record).

Timing (Lava on Loihi): a :class:`Dense` delivers one step after its presynaptic values, every
other stage in the same step (an :class:`Add` may hold a source back ``lags`` steps). A stage's
*delay* is the number of Dense stages (and lags) on its path from the input; a neuron stage of
delay d idles (zero state, no output) before 0-based step d, and its step t + d is aligned with
float step t.

Rules of this format (checked by :func:`graph_problem`): a stage reads earlier stages only;
every stage but the last is read; a Dense takes as many values as its source sends; a neuron
stage reads a Dense of its size, or graded values directly (N a multiple of their number H:
neuron i reads value i // (N/H)); the two sources of an :class:`Add` have the same size and
arrive at the same step; a :class:`Glu` reads an even number of values. The last stage is on the
host: :class:`SoftmaxSum` of the ``cuba`` readout (the last neuron stage, none later), or
:class:`MeanLinear` of graded values. A neuron stage that reads a Dense no other stage reads is
one *layer* with it (:class:`FixedLayer`; the engines fuse the pair).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union

import numpy as np

from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.fixed_point import OVERFLOW_CODES
from silif_deploy.hw_models.glu import GluParams
from silif_deploy.hw_models.neuron_kinds import KINDS, READOUT_KIND, STATES
from silif_deploy.hw_models.profile import HardwareProfile

INPUT = "input"
"""The name of the input source, the first stage's source."""


@dataclass
class FixedLayer:
    """One layer: the Dense synapse feeding it and its neurons.

    ``scale`` is the state scale: the integer that stands for 1.0 of the float state (the
    threshold θ of a hidden layer; the readout's membrane unit).
    """

    kind: str
    synapse: DenseSynapse
    params: NamedTuple
    scale: int

    @property
    def size(self) -> int:
        return self.synapse.fan_out

    @property
    def buffers_per_neuron(self) -> int:
        return KINDS[self.kind].buffers


@dataclass
class Dense:
    """a_t = (Σ_j W[:, j]·x_j(t − 1)) << weight_exp (Lava's Dense: one step later; per row
    weight_exp + row_exp[n] where the synapse has ``row_exp``). Graded (``synapse.graded``): x_j
    is the presynaptic value; binary: any non-zero value counts as 1. Sends graded values."""

    name: str
    source: str
    synapse: DenseSynapse


@dataclass
class Neurons:
    """A layer of neurons of one kind: s_t, state_t = kernel(a_t, state_{t−1}) (the kind's
    record docstring); a_t from the Dense ``source``, or neuron i's a_t = x_{i // (N/H)}(t) of a
    graded source of H values (same step); sends s_t, or its states (the kind's ``output``);
    ``scale`` as :class:`FixedLayer`'s."""

    name: str
    source: str
    kind: str
    params: NamedTuple
    scale: int


@dataclass
class Add:
    """y_t = ovf(x_{t − lags[0]} + x'_{t − lags[1]}) element-wise over the two sources' values
    (spikes count 1; values before step 0 are 0): graded values, no delay of its own. ``bits`` 0:
    exact (no rule); else ``overflow`` ("wrap" or "saturate", as the neuron states') on a
    ``bits``-wide value."""

    name: str
    sources: tuple[str, str]
    bits: int = 0
    overflow: str = "saturate"
    lags: tuple[int, int] = (0, 0)


@dataclass
class Glu:
    """z_t = a_t·σ(g_t) over the 2H values of ``source`` (a the first H, g the last H), in the
    integer rule of :class:`~.glu.GluParams`; sends the H graded values z_t."""

    name: str
    source: str
    params: GluParams


@dataclass
class SoftmaxSum:
    """On the host: scores = Σ_t softmax over classes of v_t / scale of the readout ``source``."""

    name: str
    source: str


@dataclass
class MeanLinear:
    """On the host, the SpikingSSM decoder: per aligned step logits_t = W·(x_t / scale) + bias
    (float64; x_t the H integer values of ``source``), scores = mean over the T steps of logits_t
    = W·mean_t(x_t)/scale + bias. ``weights`` (classes, H) and ``bias`` (classes,) float64."""

    name: str
    source: str
    weights: np.ndarray
    bias: np.ndarray
    scale: float


Stage = Union[Dense, Neurons, Add, Glu, SoftmaxSum, MeanLinear]
HOST_STAGES = (SoftmaxSum, MeanLinear)
"""Stages the host computes after the run, from the whole run; only the last stage is one."""


def inputs_of(stage: Stage) -> tuple[str, ...]:
    """The names of the stages a stage reads."""
    return tuple(stage.sources) if isinstance(stage, Add) else (stage.source,)


def neuron_count(stage: Neurons, default: int | None = None) -> int | None:
    """N, the number of neurons: the length of the record's per-neuron arrays (``default`` for a
    record without any: a broken record, which the artifact check refuses and the Lava watchdog test feeds Lava)."""
    return next((len(v) for v in stage.params or () if isinstance(v, np.ndarray)), default)


def sends_graded(stage: Stage) -> bool:
    """Whether a stage sends graded values (else 0/1 spikes)."""
    return not isinstance(stage, Neurons) or KINDS[stage.kind].output == STATES


def values_sent(stage: Stage, first: int) -> int:
    """How many values a stage sends per step when its (first) source sends ``first``: a Dense its
    fan-out, a neuron stage N (k·N when it sends its k states), a GLU half of what it reads, a
    mean_linear its classes; an Add and the softmax sum as many as they read."""
    if isinstance(stage, Dense):
        return stage.synapse.fan_out
    if isinstance(stage, Neurons):
        n = neuron_count(stage, first)
        return n * len(KINDS[stage.kind].states) if KINDS[stage.kind].output == STATES else n
    if isinstance(stage, Glu):
        return first // 2
    if isinstance(stage, MeanLinear):
        return int(np.shape(stage.weights)[0])
    return first


def shifted_bound(bound: int, exp: int) -> int:
    """The largest |acc << exp| for |acc| ≤ bound (a right shift floors: −1 >> k is −1)."""
    return bound << exp if exp >= 0 else -((-bound) >> -exp)


def chain_stages(hidden: list[FixedLayer], readout: FixedLayer) -> list[Stage]:
    """Today's models as stages: (Dense, neurons) per hidden layer, the readout, its scores."""
    stages: list[Stage] = []
    source = INPUT
    for name, layer in [*((f"L{l}", layer) for l, layer in enumerate(hidden)), ("readout", readout)]:
        stages += [Dense(f"{name}.dense", source, layer.synapse),
                   Neurons(name, f"{name}.dense", layer.kind, layer.params, layer.scale)]
        source = name
    return [*stages, SoftmaxSum("scores", "readout")]


def _layer_of(dense: Dense, neurons: Neurons) -> FixedLayer:
    return FixedLayer(neurons.kind, dense.synapse, neurons.params, neurons.scale)


def _readers(stages: list[Stage]) -> dict[str, list[str]]:
    readers: dict[str, list[str]] = {}
    for stage in stages:
        for source in inputs_of(stage):
            readers.setdefault(source, []).append(stage.name)
    return readers


def layer_pairs(stages: list[Stage]) -> list[tuple[Dense, Neurons]]:
    """The layers, in run order: each neuron stage that reads a Dense of its size no other stage
    reads, with it."""
    dense = {s.name: s for s in stages if isinstance(s, Dense)}
    readers = _readers(stages)
    return [(dense[s.source], s) for s in stages
            if isinstance(s, Neurons) and s.source in dense and readers[s.source] == [s.name]
            and neuron_count(s, dense[s.source].synapse.fan_out) == dense[s.source].synapse.fan_out]


def graph_problem(stages: list[Stage], n_inputs: int) -> str | None:
    """What is wrong with a list of stages, in one sentence, or None (the rules: module docstring)."""
    size: dict[str, int] = {INPUT: n_inputs}
    delay: dict[str, int] = {INPUT: 0}
    graded: dict[str, bool] = {INPUT: True}
    kinds = {Dense: "dense", Neurons: "neurons", Add: "add", Glu: "glu", SoftmaxSum: "softmax_sum",
             MeanLinear: "mean_linear"}
    if not stages or not isinstance(stages[-1], HOST_STAGES):
        return "the last stage must be a softmax_sum of the readout or a mean_linear decoder"
    for i, stage in enumerate(stages):
        if type(stage) not in kinds:
            return f"stage {i} is a {type(stage).__name__}, not one of {', '.join(kinds.values())}"
        if stage.name in size:
            return f"stage {i} is named '{stage.name}' like an earlier one; names are unique"
        if isinstance(stage, HOST_STAGES) and i != len(stages) - 1:
            return f"stage {i} is a {kinds[type(stage)]}; it can only be the last stage"
        for source in inputs_of(stage):
            if source not in size:
                return f"stage '{stage.name}' reads '{source}', which is no earlier stage"
        first = inputs_of(stage)[0]
        d = delay[first]
        if isinstance(stage, Dense):
            syn = stage.synapse
            if syn.fan_in != size[first]:
                return f"Dense '{stage.name}' takes {syn.fan_in} inputs but '{first}' sends {size[first]}"
            if syn.row_exp is not None and np.shape(syn.row_exp) != (syn.fan_out,):
                return f"Dense '{stage.name}' has {np.size(syn.row_exp)} row exponents for {syn.fan_out} rows"
            d += 1
        elif isinstance(stage, Neurons):
            if stage.kind not in KINDS:
                return f"neuron stage '{stage.name}' has the unknown kind '{stage.kind}'"
            n = neuron_count(stage)
            if not graded[first]:
                return (f"neuron stage '{stage.name}' reads the spikes of '{first}'; neurons read a Dense "
                        "or graded values")
            if n % size[first]:
                return (f"neuron stage '{stage.name}' has {n} neurons, not a multiple of the {size[first]} "
                        f"values of '{first}' it reads")
        elif isinstance(stage, Add):
            (a, b), lags = stage.sources, stage.lags
            if size[a] != size[b]:
                return f"Add '{stage.name}' adds '{a}' ({size[a]} values) and '{b}' ({size[b]}): sizes differ"
            if min(lags) < 0:
                return f"Add '{stage.name}' has lags {tuple(lags)}; lags are steps ≥ 0"
            if delay[a] + lags[0] != delay[b] + lags[1]:
                return (f"Add '{stage.name}' adds '{a}' (delay {delay[a] + lags[0]} steps) and '{b}' "
                        f"(delay {delay[b] + lags[1]}): the sources of an Add must arrive at the same step")
            if stage.bits != 0 and not 2 <= stage.bits <= 63:
                return f"Add '{stage.name}' is {stage.bits} bits wide; 0 (exact) or 2 … 63"
            if stage.overflow not in OVERFLOW_CODES:
                return f"Add '{stage.name}' has overflow rule '{stage.overflow}', not one of {', '.join(OVERFLOW_CODES)}"
            d += lags[0]
        elif isinstance(stage, Glu):
            if size[first] % 2:
                return f"GLU '{stage.name}' reads {size[first]} values; it needs 2H (value half, gate half)"
            h = size[first] // 2
            if np.shape(stage.params.bias_a) != (h,) or np.shape(stage.params.bias_g) != (h,):
                return f"GLU '{stage.name}' has biases of shapes {np.shape(stage.params.bias_a)}, " \
                       f"{np.shape(stage.params.bias_g)}; it needs ({h},) each"
        elif isinstance(stage, MeanLinear):
            if not graded[first]:
                return f"mean_linear '{stage.name}' reads the spikes of '{first}'; it decodes graded values"
            if np.ndim(stage.weights) != 2 or np.shape(stage.weights)[1] != size[first] or \
                    np.shape(stage.bias) != (np.shape(stage.weights)[0],):
                return (f"mean_linear '{stage.name}' has weights {np.shape(stage.weights)} and bias "
                        f"{np.shape(stage.bias)}; it needs (classes, {size[first]}) and (classes,)")
        size[stage.name], delay[stage.name], graded[stage.name] = values_sent(stage, size[first]), d, sends_graded(stage)
    if isinstance(stages[-1], SoftmaxSum):
        neurons = [s for s in stages if isinstance(s, Neurons)]
        if len(neurons) < 2:
            return f"{len(neurons)} neuron stages; a network holds hidden layers and a readout"
        if stages[-1].source != neurons[-1].name or neurons[-1].kind != READOUT_KIND:
            return (f"softmax_sum '{stages[-1].name}' reads '{stages[-1].source}', not the last neuron stage "
                    f"(the '{READOUT_KIND}' readout)")
        late = [s.name for s in neurons if delay[s.name] > delay[neurons[-1].name]]
        if late:
            return f"neuron stage '{late[0]}' runs later than the readout, whose outputs end the run"
    readers = _readers(stages)
    unread = [s for s in stages[:-1] if s.name not in readers]
    if unread:
        what = "Dense" if isinstance(unread[0], Dense) else "stage"
        return f"{what} '{unread[0].name}' feeds no stage"
    return None


@dataclass
class FixedPointNetwork:
    """A graph of named stages (module docstring). Chain models (hidden layers, then the CUBA
    readout) are built with :meth:`chain`; ``layers``, ``hidden`` and ``readout`` are views of the
    stages (a neuron stage with the Dense that feeds it) for every network."""

    model_type: str
    n_inputs: int
    stages: list[Stage]
    input_frac_bits: int
    profile: HardwareProfile
    provenance: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    float_model: dict[str, Any] | None = None

    @classmethod
    def chain(cls, model_type: str, n_inputs: int, hidden: list[FixedLayer], readout: FixedLayer,
              input_frac_bits: int, profile: HardwareProfile, provenance: dict[str, Any] | None = None,
              quantization: dict[str, Any] | None = None, float_model: dict[str, Any] | None = None,
              ) -> "FixedPointNetwork":
        """The chain every SiLIF-style model is: (Dense, neurons) per hidden layer, then the readout."""
        return cls(model_type, n_inputs, chain_stages(hidden, readout), input_frac_bits, profile, provenance or {},
                   quantization or {}, float_model)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage named '{name}'")

    @property
    def neuron_stages(self) -> list[Neurons]:
        return [s for s in self.stages if isinstance(s, Neurons)]

    @property
    def layers(self) -> list[FixedLayer]:
        """Every neuron stage fed by a Dense of its own, with it, in run order (:func:`layer_pairs`;
        in a chain: the hidden layers, then the readout)."""
        return [_layer_of(dense, neurons) for dense, neurons in layer_pairs(self.stages)]

    @property
    def hidden(self) -> list[FixedLayer]:
        return self.layers[:-1]

    @hidden.setter
    def hidden(self, layers: list[FixedLayer]) -> None:
        self._require_chain("hidden")
        self.stages = chain_stages(layers, self.readout)

    @property
    def readout(self) -> FixedLayer:
        return self.layers[-1]

    @readout.setter
    def readout(self, layer: FixedLayer) -> None:
        neurons = self.neuron_stages[-1]
        dense = self.stage(neurons.source)
        dense.synapse = layer.synapse  # type: ignore[union-attr]
        neurons.kind, neurons.params, neurons.scale = layer.kind, layer.params, layer.scale

    @property
    def is_chain(self) -> bool:
        """Whether the stages are :func:`chain_stages` of the layers (today's models): the same
        types, names and sources (the parameters are the layers' by construction)."""
        def shape(stages: list[Stage]) -> list[tuple]:
            return [(type(s), s.name, inputs_of(s)) for s in stages]

        if len(self.layers) < 2 or not isinstance(self.stages[-1], SoftmaxSum):
            return False
        return shape(self.stages) == shape(chain_stages(self.hidden, self.readout))

    def _require_chain(self, what: str) -> None:
        if not self.is_chain:
            raise ValueError(f"'{what}' can be replaced on a chain network only; build the stages instead")

    def sizes(self) -> dict[str, int]:
        """How many values each stage sends per step (the input: its channels)."""
        size = {INPUT: self.n_inputs}
        for stage in self.stages:
            size[stage.name] = values_sent(stage, size[inputs_of(stage)[0]])
        return size

    def value_bounds(self) -> dict[str, int]:
        """The largest |value| each stage but the host's can send (spikes: 1), from the input's
        payload width, the weights, and the declared widths of states, Adds and GLUs (the stages'
        docstrings). Python ints: a bound may pass int64."""
        bound = {INPUT: (1 << self.profile.input_message_bits) - 1}
        for stage in self.stages:
            if isinstance(stage, Dense):
                syn = stage.synapse
                x = bound[stage.source] if syn.graded else 1
                acc = [int(a) * x for a in np.abs(syn.weights).sum(axis=1)]
                bound[stage.name] = max((shifted_bound(a, int(e)) for a, e in zip(acc, syn.exponents)), default=0)
            elif isinstance(stage, Neurons):
                sends_states = KINDS[stage.kind].output == STATES
                bound[stage.name] = (getattr(stage.params, "half", None) or 1 << 62) if sends_states else 1
            elif isinstance(stage, Add):
                a, b = stage.sources
                bound[stage.name] = 1 << (stage.bits - 1) if stage.bits else bound[a] + bound[b]
            elif isinstance(stage, Glu):
                bound[stage.name] = stage.params.half
        return bound

    def delays(self) -> dict[str, int]:
        """Steps from an input frame to each stage: one per Dense on the way (module docstring)."""
        delay = {INPUT: 0}
        for stage in self.stages:
            lag = stage.lags[0] if isinstance(stage, Add) else 0
            delay[stage.name] = delay[inputs_of(stage)[0]] + isinstance(stage, Dense) + lag
        return delay

    @property
    def delay(self) -> int:
        """Steps between an input frame and the readout step it drives (the step the host stage
        reads): one per Dense (and lag) on the way."""
        return self.delays()[self.stages[-1].source]

    @property
    def n_classes(self) -> int:
        last = self.stages[-1]
        return int(last.weights.shape[0]) if isinstance(last, MeanLinear) else self.readout.size

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """The graded payload the input source sends: round(x·2^f), clipped to the message width."""
        limit = (1 << self.profile.input_message_bits) - 1
        # 2.0**f, not 1 << f: f < 0 when real inputs peak above the payload width
        scaled = np.rint(np.asarray(x, np.float64) * 2.0**self.input_frac_bits)
        return np.clip(scaled, -limit, limit).astype(np.int64)

    def sends(self, x: np.ndarray) -> np.ndarray:
        """Where the input source sends a payload, ``quantize_input(x) != 0`` for finite ``x``,
        without computing the payloads: round(x·2^f) is non-zero exactly where |x·2^f| > ½ (numpy
        rounds ½ to 0) and the clip keeps it non-zero; an integer with f ≥ 0 exactly where it is."""
        if np.issubdtype(x.dtype, np.integer) and self.input_frac_bits >= 0:
            return x != 0
        return np.abs(np.asarray(x, np.float64) * 2.0**self.input_frac_bits) > 0.5

    def replace(self, hidden: list[FixedLayer] | None = None, readout: FixedLayer | None = None,
                **changes: Any) -> "FixedPointNetwork":
        """A copy with ``changes`` to its fields (as ``dataclasses.replace``; the stages are copied,
        the arrays shared), and new ``hidden`` layers or ``readout`` (as the setters)."""
        copy = dataclasses.replace(self, **changes)
        copy.stages = [dataclasses.replace(s) for s in copy.stages]
        if hidden is not None:
            copy.hidden = hidden
        if readout is not None:
            copy.readout = readout
        return copy
