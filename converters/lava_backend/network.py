"""Build a :class:`FixedPointNetwork` as Lava processes.

Chain, one Lava step per simulator step (see :mod:`silif_deploy.hw_models.simulator` for timing)::

    RingBuffer (graded input payloads) → Dense → FixedPointNeurons → Dense → … → readout

A graph of stages maps stage by stage: a residual Add is our :class:`~.processes.AddValues`
(the element-wise sum of its two sources, in the same step), feeding the Dense that reads it.

Synapses are Lava's own ``Dense`` (``PyDenseModelBitAcc``, sign mode MIXED, the artifact's
``weight_exp``/``num_weight_bits``; graded where the artifact's synapse is). Hidden layers are our
:class:`~.processes.FixedPointNeurons`, starting at Lava step d + 1 (d: the stage's delay; l + 2
in a chain). The readout is Lava's own
``LIFReset`` (``PyLifResetModelBitAcc``): Lava keeps du and dv per process, so the readout
neurons are grouped by their (du, dv) pair, one Dense + LIFReset + Monitor (of ``v``) per group;
``reset_offset`` = L + 2 zeroes the readout at the step its first input arrives (the simulator's
idle rule), and ``reset_interval`` beyond the run never resets it again.
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

from silif_deploy.converters.lava_backend.processes import AddValues, FixedPointNeurons, SpikeRecorder
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.network import INPUT, Add, FixedPointNetwork, Neurons, SoftmaxSum, layer_pairs
from silif_deploy.hw_models.neuron_kinds import KINDS, NeuronState, step

LAVA_MAX_WEIGHT_BITS = 8
LAVA_VTH_MAX = (1 << 17) - 1


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
    else the first Dense (connect your source to ``input.s_in``). ``recorders[l]`` records hidden
    layer l's spikes, ``hidden[l]`` its neurons; each readout group's Monitor records its ``v``.

    Unpacks as the issue's ``(input process, output (readout groups), list of processes)``.
    """

    input: AbstractProcess
    hidden: list[FixedPointNeurons]
    recorders: list[SpikeRecorder]
    readout: list[ReadoutGroup]
    processes: list[AbstractProcess]
    n_steps: int

    def __iter__(self):
        return iter((self.input, self.readout, self.processes))


def check_lava_compatible(network: FixedPointNetwork) -> None:
    """Refuse what Lava's own Dense and LIF cannot express, with what to do instead."""
    paired = {st.name for pair in layer_pairs(network.stages) for st in pair}
    for stage in network.stages:
        plain_add = isinstance(stage, Add) and stage.bits == 0 and tuple(stage.lags) == (0, 0)
        row_exp = isinstance(stage, Neurons) and stage.name in paired and network.stage(stage.source).synapse.row_exp is not None
        if row_exp or not (stage.name in paired or plain_add or isinstance(stage, SoftmaxSum)):
            raise SilifDeployError(
                f"stage '{stage.name}' ({type(stage).__name__}) has no Lava process yet (the graded-value stages of "
                "SpikingSSM and binary S4D run in the bit-accurate simulator only): use --engine fixed"
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


def _dense(syn: DenseSynapse, rows: slice | np.ndarray, message_bits: int) -> Dense:
    return Dense(
        weights=syn.weights[rows].astype(np.int32), weight_exp=int(syn.weight_exp),
        num_weight_bits=int(syn.num_weight_bits), sign_mode=SignMode.MIXED,
        num_message_bits=message_bits if syn.graded else 0,
    )


def to_lava(network: FixedPointNetwork, x_int: np.ndarray | None = None, n_steps: int | None = None) -> LavaNetwork:
    """Lava processes for ``network``. ``x_int`` (channels, T) are the integer input payloads
    (``network.quantize_input``), sent from a RingBuffer followed by ``network.delay`` zero frames;
    the run then lasts ``n_steps`` = T + delay steps. Without ``x_int``, give ``n_steps`` (the
    length of the recorders and monitors) and connect your own source to the returned ``input``.
    """
    check_lava_compatible(network)
    if x_int is not None:
        n_steps = x_int.shape[1] + network.delay
    if n_steps is None:
        raise ValueError("to_lava needs x_int or n_steps")
    message_bits = network.profile.input_message_bits
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
    # each stage's output port, by name (spikes of a neuron stage, sums of an Add)
    ports = {INPUT: source.s_out} if source is not None else {}
    delays = network.delays()
    first_dense = None
    readout_stage = network.neuron_stages[-1]
    for stage in network.stages:
        if isinstance(stage, Add):
            add = AddValues(shape=(_size(network, stage.name),))
            ports[stage.sources[0]].connect(add.a_in)
            ports[stage.sources[1]].connect(add.b_in)
            ports[stage.name] = add.s_out
            processes.append(add)
        if not isinstance(stage, Neurons) or stage is readout_stage:
            continue
        syn = network.stage(stage.source).synapse
        dense = _dense(syn, slice(None), message_bits)
        _warm_up(stage.kind, stage.params, syn.fan_out)
        neurons = FixedPointNeurons(shape=(syn.fan_out,), kind=stage.kind, params=stage.params,
                                    start_step=delays[stage.name] + 1)
        recorder = SpikeRecorder(shape=(syn.fan_out,), n_steps=n_steps)
        upstream = ports.get(network.stage(stage.source).source)
        if upstream is not None:
            upstream.connect(dense.s_in)
        dense.a_out.connect(neurons.a_in)
        neurons.s_out.connect(recorder.a_in)
        ports[stage.name] = neurons.s_out
        first_dense = first_dense or dense
        hidden.append(neurons)
        recorders.append(recorder)
        processes += [dense, neurons, recorder]
    upstream = ports.get(network.stage(readout_stage.source).source)
    readout = []
    ro = network.readout
    p = ro.params
    pairs = np.stack([p.du, p.dv], axis=1)
    for du, dv in np.unique(pairs, axis=0):
        classes = np.flatnonzero((pairs[:, 0] == du) & (pairs[:, 1] == dv))
        dense = _dense(ro.synapse, classes, message_bits)
        lif = LIFReset(
            shape=(len(classes),), du=int(du), dv=int(dv), bias_mant=p.bias_mant[classes].astype(np.int32),
            bias_exp=p.bias_exp[classes].astype(np.int32), vth=int(p.vth),
            reset_interval=n_steps + 1, reset_offset=delays[readout_stage.name] + 1,
        )
        monitor = Monitor()
        monitor.probe(target=lif.v, num_steps=n_steps)
        if upstream is not None:
            upstream.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        readout.append(ReadoutGroup(classes, dense, lif, monitor))
        processes += [dense, lif, monitor]
    return LavaNetwork(source if source is not None else first_dense, hidden, recorders, readout, processes, n_steps)


def _size(network: FixedPointNetwork, name: str) -> int:
    """How many values stage ``name`` sends (an Add: as many as its first source)."""
    stage = network.stage(name)
    if isinstance(stage, Add):
        return _size(network, stage.sources[0])
    return network.stage(stage.source).synapse.fan_out if isinstance(stage, Neurons) else network.n_inputs


def _warm_up(kind: str, params, size: int) -> None:
    """Compile the kind's step here: Lava forks its process models from this process, so each
    inherits the compiled function instead of loading it again."""
    step(kind, np.zeros(size, np.int64), NeuronState.zeros(len(KINDS[kind].states), size), params)
