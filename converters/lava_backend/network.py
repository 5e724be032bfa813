"""Build a :class:`FixedPointNetwork` as Lava processes, stage by stage, one Lava step per
simulator step (see :mod:`silif_deploy.hw_models.simulator` for timing)::

    RingBuffer (graded input payloads) → Dense → FixedPointNeurons → Dense → … → readout

Each stage maps to one process, in the stages' order, reading its sources' output ports:

- **Dense**: Lava's own ``Dense`` (``PyDenseModelBitAcc``, sign mode MIXED, the artifact's
  ``weight_exp``/``num_weight_bits``, ``num_message_bits`` 24 where graded) wherever it computes
  the stage exactly: weights of at most 8 bits, one exponent for all rows, and a worst-case
  accumulation and output inside int32 (Lava multiplies an int32 payload in int32, and its
  ``a_out`` channel is int32), from the network's ``value_bounds()``. Elsewhere (per-row
  exponents, wider weights, a readout over 24-bit S4D states) our :class:`~.processes.GradedDense`,
  in int64.
- **Neurons** (every kind but the softmax readout): our :class:`~.processes.FixedPointNeurons`,
  calling the kind's hw_models kernel, starting at Lava step d + 1 (d: the stage's delay; l + 2
  in a chain), reading a Dense of its size or graded values directly (an S4D channel fanning out
  to its states) and sending spikes or its states. A hidden CUBA soma (SpikingSSM) is ours too,
  not Lava's ``LIF``: the stage idles before its delay while the GLU biases and the residual
  stream already send values, which Lava's LIF would integrate and spike on (``LIFReset`` zeroes
  the state at its offset but cannot hold back earlier spikes); and Lava's LIF wraps its 24-bit
  current by one subtraction, exact only for |input| < 2^17 (the soma reads a 24-bit Add).
  Our process runs the ``cuba`` kernel that ``tests/test_lava_oracle.py`` proves equal to Intel's
  ``PyLifModelBitAcc`` on the range where that one is defined.
- **Add**: our :class:`~.processes.AddValues` (width, overflow rule, lags); **Glu**: our
  :class:`~.processes.GluValues` (the table sigmoid).
- **SoftmaxSum**: the readout is Lava's own ``LIFReset`` (``PyLifResetModelBitAcc``): Lava keeps
  du and dv per process, so the readout neurons are grouped by their (du, dv) pair, one Dense +
  LIFReset + Monitor (of ``v``) per group; ``reset_offset`` = delay + 1 zeroes the readout at
  the step its first input arrives (the simulator's idle rule), and ``reset_interval`` beyond
  the run never resets it again.
- **MeanLinear** (the SpikingSSM decoder): on the host, as the simulator computes it, from the
  values of its source that a :class:`~.processes.ValueRecorder` keeps.
"""


from dataclasses import dataclass

import numpy as np

from silif_deploy.converters.lava_backend import LAVA_LIF_ARITHMETIC, allow_lava_import

allow_lava_import()  # before Lava's first import

from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.lif.process import LIFReset  # noqa: E402
from lava.proc.monitor.process import Monitor  # noqa: E402
from lava.utils.weightutils import SignMode  # noqa: E402

from silif_deploy.converters.lava_backend.processes import (
    AddValues, FixedPointNeurons, GluValues, GradedDense, SpikeRecorder, ValueRecorder, warm_up_graded,
)
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.fixed_point import OVERFLOW_CODES
from silif_deploy.hw_models.network import (
    INPUT, Add, Dense as DenseStage, FixedPointNetwork, Glu, MeanLinear, Neurons, SoftmaxSum, layer_pairs, neuron_count,
    shifted_bound,
)
from silif_deploy.hw_models.neuron_kinds import KINDS, STATES, NeuronState, step

LAVA_MAX_WEIGHT_BITS = 8
LAVA_VTH_MAX = (1 << 17) - 1
INT32_MAX = (1 << 31) - 1
LAVA_GRADED_MESSAGE_BITS = 24
"""``num_message_bits`` of Lava's Dense on graded values (only a switch in the CPU models, §3.5)."""


@dataclass
class ReadoutGroup:
    """Readout neurons sharing one (du, dv) pair: ``classes`` are their indices in the readout."""

    classes: np.ndarray
    dense: Dense
    lif: LIFReset
    monitor: Monitor


@dataclass
class LavaNetwork:
    """The processes of one network. ``input`` is the source RingBuffer when built with an input,
    else the first Dense (connect your source to ``input.s_in``). ``hidden[l]`` are the neurons
    of hidden neuron stage l (every neuron stage but a softmax readout, in run order),
    ``recorders[l]`` records their spikes (None for a stage that sends its states); each readout
    group's Monitor records its ``v``; ``decoder`` records the values a host decoder reads.

    Unpacks as the issue's ``(input process, output (readout groups), list of processes)``.
    """

    input: AbstractProcess
    hidden: list[FixedPointNeurons]
    recorders: list[SpikeRecorder | None]
    readout: list[ReadoutGroup]
    processes: list[AbstractProcess]
    n_steps: int
    decoder: ValueRecorder | None = None

    def __iter__(self):
        return iter((self.input, self.readout, self.processes))


def softmax_readout(network: FixedPointNetwork) -> Neurons | None:
    """The readout that Lava runs as its own LIF behind its own Dense: the neuron stage a softmax
    sum reads (None for a network that ends in a mean_linear decoder)."""
    return network.neuron_stages[-1] if isinstance(network.stages[-1], SoftmaxSum) else None


def hidden_stages(network: FixedPointNetwork) -> list[Neurons]:
    """The neuron stages Lava runs as our processes, in run order: all but the softmax readout."""
    readout = softmax_readout(network)
    return [stage for stage in network.neuron_stages if stage is not readout]


def check_lava_compatible(network: FixedPointNetwork) -> None:
    """Refuse what the Lava mapping cannot express, with what to do instead. Every stage has a
    process; what remains is the softmax readout, which is Lava's own LIF behind Lava's own Dense."""
    readout = softmax_readout(network)
    if readout is None:
        return
    if readout.name not in {neurons.name for _, neurons in layer_pairs(network.stages)}:
        raise SilifDeployError(
            f"the readout '{readout.name}' reads '{readout.source}' directly, but Lava's LIF readout reads a "
            "Dense of its own: put a Dense before it or use --engine fixed"
        )
    for i, layer in enumerate(network.layers):
        bits = layer.synapse.num_weight_bits
        if bits > LAVA_MAX_WEIGHT_BITS:
            raise SilifDeployError(
                f"layer {i} has {bits}-bit weights but Lava's Dense takes at most {LAVA_MAX_WEIGHT_BITS}; "
                "re-export with an 8-bit profile (--profile loihi2) or use --engine fixed"
            )
    p = network.readout.params
    got = {"half": p.half, "input_shift": p.input_shift, "threshold_exponent": p.threshold_exponent}
    if got != LAVA_LIF_ARITHMETIC or not 0 <= p.vth <= LAVA_VTH_MAX:
        raise SilifDeployError(
            f"the readout's arithmetic {got}, vth {p.vth} is not Lava LIF's {LAVA_LIF_ARITHMETIC}, vth ≤ {LAVA_VTH_MAX}; "
            "re-export with --profile loihi2 or use --engine fixed"
        )


def lava_dense_is_exact(syn: DenseSynapse, rows: slice | np.ndarray, input_bound: int) -> bool:
    """Whether Lava's own Dense computes these rows of ``syn`` exactly on values up to ±``input_bound``:
    weights it keeps as they are, one exponent, and the worst case inside int32 before and after the shift."""
    exps = syn.exponents[rows]
    if syn.num_weight_bits > LAVA_MAX_WEIGHT_BITS or len(np.unique(exps)) > 1:
        return False
    acc = int(np.abs(syn.weights[rows]).sum(axis=1).max(initial=0)) * (input_bound if syn.graded else 1)
    return acc <= INT32_MAX and (len(exps) == 0 or shifted_bound(acc, int(exps[0])) <= INT32_MAX)


def _dense(syn: DenseSynapse, rows: slice | np.ndarray, input_bound: int) -> AbstractProcess:
    """Lava's own Dense for these rows where it is exact, else our int64 GradedDense."""
    if not lava_dense_is_exact(syn, rows, input_bound):
        return GradedDense(weights=syn.weights[rows], exponents=syn.exponents[rows], graded=bool(syn.graded))
    return Dense(
        weights=syn.weights[rows].astype(np.int32), weight_exp=int(syn.exponents[rows][0]) if syn.fan_out else 0,
        num_weight_bits=int(syn.num_weight_bits), sign_mode=SignMode.MIXED,
        num_message_bits=LAVA_GRADED_MESSAGE_BITS if syn.graded else 0,
    )


def to_lava(network: FixedPointNetwork, x_int: np.ndarray | None = None, n_steps: int | None = None,
            record_states: bool = False) -> LavaNetwork:
    """Lava processes for ``network``. ``x_int`` (channels, T) are the integer input payloads
    (``network.quantize_input``), sent from a RingBuffer followed by ``network.delay`` zero frames;
    the run then lasts ``n_steps`` = T + delay steps. Without ``x_int``, give ``n_steps`` (the
    length of the recorders and monitors) and connect your own source to the returned ``input``.
    ``record_states``: every hidden neuron stage keeps its states after each step (``trace``).
    """
    check_lava_compatible(network)
    if x_int is not None:
        n_steps = x_int.shape[1] + network.delay
    if n_steps is None:
        raise ValueError("to_lava needs x_int or n_steps")
    processes: list[AbstractProcess] = []
    hidden, recorders = [], []
    source = None
    if x_int is not None:
        data = np.zeros((network.n_inputs, n_steps), np.int32)
        data[:, : x_int.shape[1]] = x_int
        source = RingBuffer(data=data)
        processes.append(source)
    elif not network.is_chain:
        raise ValueError("to_lava builds a graph of stages with its input (x_int) only")
    # each stage's output port, by name (spikes of a neuron stage, values of the others)
    ports = {INPUT: source.s_out} if source is not None else {}

    def connect(name: str, in_port) -> None:
        if name in ports:
            ports[name].connect(in_port)

    delays, sizes, bounds = network.delays(), network.sizes(), network.value_bounds()
    readout_stage = softmax_readout(network)
    first_dense, decoder = None, None
    for stage in network.stages:
        if stage is readout_stage or isinstance(stage, SoftmaxSum) or \
                (readout_stage is not None and stage.name == readout_stage.source):
            continue  # the readout groups build their own Dense rows
        if isinstance(stage, DenseStage):
            process = _dense(stage.synapse, slice(None), bounds[stage.source])
            connect(stage.source, process.s_in)
            ports[stage.name] = process.a_out
            first_dense = first_dense or process
        elif isinstance(stage, Neurons):
            n_src, n = sizes[stage.source], neuron_count(stage, sizes[stage.source])
            _warm_up(stage.kind, stage.params, n)
            neurons = FixedPointNeurons(shape=(n,), kind=stage.kind, params=stage.params, start_step=delays[stage.name] + 1,
                                        n_src=n_src, n_record=n_steps if record_states else 0)
            connect(stage.source, neurons.a_in)
            ports[stage.name] = neurons.s_out
            recorder = None
            if KINDS[stage.kind].output != STATES:
                recorder = SpikeRecorder(shape=(n,), n_steps=n_steps)
                neurons.s_out.connect(recorder.a_in)
                processes.append(recorder)
            hidden.append(neurons)
            recorders.append(recorder)
            process = neurons
        elif isinstance(stage, Add):
            warm_up_graded(None)
            process = AddValues(shape=(sizes[stage.name],), half=1 << (stage.bits - 1) if stage.bits else 0,
                                mode=OVERFLOW_CODES[stage.overflow], lags=tuple(stage.lags))
            connect(stage.sources[0], process.a_in)
            connect(stage.sources[1], process.b_in)
            ports[stage.name] = process.s_out
        elif isinstance(stage, Glu):
            warm_up_graded(stage.params)
            process = GluValues(shape=(sizes[stage.name],), params=stage.params)
            connect(stage.source, process.a_in)
            ports[stage.name] = process.s_out
        elif isinstance(stage, MeanLinear):
            process = decoder = ValueRecorder(shape=(sizes[stage.source],), n_steps=n_steps)
            connect(stage.source, process.a_in)
        processes.append(process)
    readout = [] if readout_stage is None else _readout_groups(network, readout_stage, ports, bounds, delays, n_steps)
    processes += [p for group in readout for p in (group.dense, group.lif, group.monitor)]
    return LavaNetwork(source if source is not None else first_dense, hidden, recorders, readout, processes, n_steps,
                       decoder)


def _readout_groups(network: FixedPointNetwork, stage: Neurons, ports: dict, bounds: dict[str, int],
                    delays: dict[str, int], n_steps: int) -> list[ReadoutGroup]:
    """One Dense + LIFReset + Monitor of ``v`` per (du, dv) pair of the readout (module docstring)."""
    upstream = ports.get(network.stage(stage.source).source)
    ro = network.readout
    p = ro.params
    pairs = np.stack([p.du, p.dv], axis=1)
    groups = []
    for du, dv in np.unique(pairs, axis=0):
        classes = np.flatnonzero((pairs[:, 0] == du) & (pairs[:, 1] == dv))
        dense = _dense(ro.synapse, classes, bounds[network.stage(stage.source).source])
        lif = LIFReset(
            shape=(len(classes),), du=int(du), dv=int(dv), bias_mant=p.bias_mant[classes].astype(np.int32),
            bias_exp=p.bias_exp[classes].astype(np.int32), vth=int(p.vth),
            reset_interval=n_steps + 1, reset_offset=delays[stage.name] + 1,
        )
        monitor = Monitor()
        monitor.probe(target=lif.v, num_steps=n_steps)
        if upstream is not None:
            upstream.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        groups.append(ReadoutGroup(classes, dense, lif, monitor))
    return groups


def _warm_up(kind: str, params, size: int) -> None:
    """Compile the kind's step here: Lava forks its process models from this process, so each
    inherits the compiled function instead of loading it again."""
    step(kind, np.zeros(size, np.int64), NeuronState.zeros(len(KINDS[kind].states), size), params)
