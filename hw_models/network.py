"""The fixed-point network in memory: what the artifact file holds and every engine runs.

A network is a small graph of named stages, listed in the order they run (each stage reads only
the input or stages before it). The stage ``"input"`` is the input source: graded payloads
x_int = round(x · 2^input_frac_bits) (event counts: input_frac_bits = 0, used as they are).

Timing (Lava on Loihi): a :class:`Dense` delivers one step after its presynaptic values, every
other stage in the same step. A stage's *delay* is the number of Dense stages on its path from
the input; a neuron stage of delay d idles (zero state, no spikes) before 0-based step d, and
its step t + d is aligned with float step t.

Rules of this format (checked by :func:`graph_problem`): every Dense feeds exactly one neuron
stage and every neuron stage is fed by a Dense (the engines run the pair as one layer, a
:class:`FixedLayer`); the two sources of an :class:`Add` have the same size and the same delay;
the last neuron stage is the ``cuba`` readout, the one the last stage, :class:`SoftmaxSum`, reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union

import numpy as np

from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.neuron_kinds import KINDS
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
    """a_t = (Σ_j W[:, j]·x_j(t − 1)) << weight_exp (Lava's Dense: one step later). Graded
    (``synapse.graded``): x_j is the presynaptic value; binary: any non-zero value counts as 1."""

    name: str
    source: str
    synapse: DenseSynapse


@dataclass
class Neurons:
    """A layer of neurons of one kind: s_t, state_t = kernel(a_t, state_{t−1}) (the kind's
    record docstring), a_t from the Dense ``source``; ``scale`` as :class:`FixedLayer`'s."""

    name: str
    source: str
    kind: str
    params: NamedTuple
    scale: int


@dataclass
class Add:
    """y_t = x_t + x'_t element-wise over the two sources' values (spikes count 1): graded values,
    no delay."""

    name: str
    sources: tuple[str, str]


@dataclass
class SoftmaxSum:
    """On the host: scores = Σ_t softmax over classes of v_t / scale of the readout ``source``."""

    name: str
    source: str


Stage = Union[Dense, Neurons, Add, SoftmaxSum]


def inputs_of(stage: Stage) -> tuple[str, ...]:
    """The names of the stages a stage reads."""
    return tuple(stage.sources) if isinstance(stage, Add) else (stage.source,)


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


def graph_problem(stages: list[Stage], n_inputs: int) -> str | None:
    """What is wrong with a list of stages, in one sentence, or None (the rules: module docstring)."""
    size: dict[str, int] = {INPUT: n_inputs}
    delay: dict[str, int] = {INPUT: 0}
    fed: dict[str, str] = {}
    kinds = {Dense: "dense", Neurons: "neurons", Add: "add", SoftmaxSum: "softmax_sum"}
    if not stages or not isinstance(stages[-1], SoftmaxSum):
        return "the last stage must be a softmax_sum of the readout"
    for i, stage in enumerate(stages):
        if type(stage) not in kinds:
            return f"stage {i} is a {type(stage).__name__}, not one of {', '.join(kinds.values())}"
        if stage.name in size:
            return f"stage {i} is named '{stage.name}' like an earlier one; names are unique"
        if isinstance(stage, SoftmaxSum) and i != len(stages) - 1:
            return f"stage {i} is a softmax_sum; it can only be the last stage"
        for source in inputs_of(stage):
            if source not in size:
                return f"stage '{stage.name}' reads '{source}', which is no earlier stage"
            if source in fed and not isinstance(stage, Neurons):
                return f"stage '{stage.name}' reads the Dense '{source}'; only a neuron stage reads a Dense"
            if fed.get(source):
                return f"stage '{stage.name}' reads the Dense '{source}', which already feeds '{fed[source]}'"
        if isinstance(stage, Dense):
            if stage.synapse.fan_in != size[stage.source]:
                return (f"Dense '{stage.name}' takes {stage.synapse.fan_in} inputs but '{stage.source}' "
                        f"sends {size[stage.source]}")
            size[stage.name], delay[stage.name] = stage.synapse.fan_out, delay[stage.source] + 1
            fed[stage.name] = ""
            continue
        if isinstance(stage, Neurons):
            if stage.source not in fed:
                return f"neuron stage '{stage.name}' reads '{stage.source}'; neurons read a Dense of their own"
            fed[stage.source] = stage.name
        elif isinstance(stage, Add):
            a, b = stage.sources
            if size[a] != size[b]:
                return f"Add '{stage.name}' adds '{a}' ({size[a]} values) and '{b}' ({size[b]}): sizes differ"
            if delay[a] != delay[b]:
                return (f"Add '{stage.name}' adds '{a}' (delay {delay[a]} steps) and '{b}' (delay {delay[b]}): "
                        "the sources of an Add must arrive at the same step")
        size[stage.name], delay[stage.name] = size[inputs_of(stage)[0]], delay[inputs_of(stage)[0]]
    unfed = [name for name, by in fed.items() if by == ""]
    if unfed:
        return f"Dense '{unfed[0]}' feeds no neuron stage"
    neurons = [s for s in stages if isinstance(s, Neurons)]
    if len(neurons) < 2:
        return f"{len(neurons)} neuron stages; a network holds hidden layers and a readout"
    if stages[-1].source != neurons[-1].name:
        return f"softmax_sum '{stages[-1].name}' reads '{stages[-1].source}', not the last neuron stage (the readout)"
    late = [s.name for s in neurons if delay[s.name] > delay[neurons[-1].name]]
    if late:
        return f"neuron stage '{late[0]}' runs later than the readout, whose outputs end the run"
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
        """Every neuron stage with its Dense, in run order: the hidden layers, then the readout."""
        return [_layer_of(self.stage(n.source), n) for n in self.neuron_stages]  # type: ignore[arg-type]

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

        return shape(self.stages) == shape(chain_stages(self.hidden, self.readout))

    def _require_chain(self, what: str) -> None:
        if not self.is_chain:
            raise ValueError(f"'{what}' can be replaced on a chain network only; build the stages instead")

    def delays(self) -> dict[str, int]:
        """Steps from an input frame to each stage: one per Dense on the way (module docstring)."""
        delay = {INPUT: 0}
        for stage in self.stages:
            delay[stage.name] = delay[inputs_of(stage)[0]] + isinstance(stage, Dense)
        return delay

    @property
    def delay(self) -> int:
        """Steps between an input frame and the readout step it drives: one per Dense on the way."""
        return self.delays()[self.neuron_stages[-1].name]

    @property
    def n_classes(self) -> int:
        return self.readout.size

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """The graded payload the input source sends: round(x·2^f), clipped to the message width."""
        limit = (1 << self.profile.input_message_bits) - 1
        # 2.0**f, not 1 << f: f < 0 when real inputs peak above the payload width
        scaled = np.rint(np.asarray(x, np.float64) * 2.0**self.input_frac_bits)
        return np.clip(scaled, -limit, limit).astype(np.int64)

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
