"""Our Lava Processes (interfaces), each with its ``fixed_pt`` ProcessModel (behaviour): the neuron
stages of every kind, the graded-value stages of SpikingSSM and binary S4D (a Dense with per-row
exponents in int64, the Add of a declared width with lags, the GLU), and recorders whose record
Lava can hand back quickly.

Every integer rule is the hw_models kernel's, called here (the kinds' ``step``, ``glu_value``,
``overflow``): the stage docstrings of :mod:`silif_deploy.hw_models.network` state them once.

Lava's model discovery executes every ``.py`` file in this folder: keep its siblings cheap to
import (no torch, nothing slow).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from numba import njit

from silif_deploy.converters.lava_backend import allow_lava_import

allow_lava_import()  # before Lava's first import

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

from silif_deploy.hw_models.fixed_point import overflow, wide
from silif_deploy.hw_models.glu import SIGMOID_TABLE, glu_value
from silif_deploy.hw_models.neuron_kinds import KINDS, STATES, NeuronState, step


# int64 channels and Vars: 32-bit states (wrapping to +2^31), their sums and graded values exceed int32
IN_VALUES = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=32)
OUT_VALUES = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=32)
VAR_VALUES = LavaPyType(np.ndarray, np.int64, precision=32)


def fixed_pt_model(proc: type) -> Callable[[type], type]:
    """``@implements(proc, LoihiProtocol) @requires(CPU) @tag("fixed_pt")``: how every model here is declared."""
    def declare(model: type) -> type:
        return implements(proc=proc, protocol=LoihiProtocol)(requires(CPU)(tag("fixed_pt")(model)))

    return declare


class FixedPointNeurons(AbstractProcess):
    """A stage of ``shape`` = (N,) fixed-point neurons of one registered kind (silif, adlif, cadlif,
    lif, csilif, rf; s4d, heaviside; cuba as a hidden soma).

    Per Lava step t (1-based): ``(s_t, x_t) = kernel(a_t, x_{t−1}, s_{t−1})``, the kind's integer
    update (:func:`silif_deploy.hw_models.neuron_kinds.step`), once t ≥ ``start_step``; before that
    the stage idles (zero state, no output), as the simulator's do. ``a_in`` takes ``n_src`` values
    (default N: a Dense of the stage's size), neuron i reading value i // (N / n_src) (an S4D
    channel fanning out to its states). ``s_out`` sends the spikes (0/1), or, for a kind whose
    ``output`` is its states, the k·N values x (state j of neuron n is value j·N + n). Var ``x``
    (k, N) holds the kind's k states, row j being state ``KINDS[kind].states[j]``; ``s`` the last
    spikes; ``trace`` (``n_record``, k·N) the states after each of the first ``n_record`` steps.
    """

    def __init__(self, *, shape: tuple[int], kind: str, params: NamedTuple, start_step: int,
                 n_src: int | None = None, n_record: int = 0, name: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"FixedPointNeurons takes a registered kind, not '{kind}'")
        n_src = shape[0] if n_src is None else n_src
        k = len(KINDS[kind].states)
        super().__init__(shape=shape, kind=kind, params=params, start_step=start_step, n_src=n_src,
                         n_record=n_record, name=name)
        self.a_in = InPort(shape=(n_src,))
        self.s_out = OutPort(shape=(k * shape[0],) if KINDS[kind].output == STATES else shape)
        self.x = Var(shape=(k, *shape), init=0)
        self.s = Var(shape=shape, init=0)
        self.trace = Var(shape=(max(n_record, 1), k * shape[0]), init=0)


@fixed_pt_model(FixedPointNeurons)
class PyFixedPointNeuronsModel(PyLoihiProcessModel):
    """Calls the simulator's own integer step: one definition of every neuron kind."""

    a_in: PyInPort = IN_VALUES
    s_out: PyOutPort = OUT_VALUES
    x: np.ndarray = VAR_VALUES
    s: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=1)
    trace: np.ndarray = VAR_VALUES

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.kind = proc_params["kind"]
        self.params = proc_params["params"]
        self.start_step = proc_params["start_step"]
        self.n_record = proc_params["n_record"]
        self.sends_states = KINDS[self.kind].output == STATES
        self.fan = proc_params["shape"][0] // proc_params["n_src"]  # neuron i reads value i // fan

    def run_spk(self) -> None:
        a = self.a_in.recv()
        if self.fan > 1:
            a = np.repeat(a, self.fan)
        if self.time_step >= self.start_step:
            s, state = step(self.kind, a, NeuronState(self.x, self.s), self.params)
            self.x[:] = state.states
            self.s[:] = s
        if self.time_step <= self.n_record:
            self.trace[self.time_step - 1] = self.x.reshape(-1)
        self.s_out.send(self.x.reshape(-1) if self.sends_states else self.s)


@njit(cache=True)
def _overflow_values(values: np.ndarray, mode: int, half: int) -> np.ndarray:
    """:func:`~silif_deploy.hw_models.fixed_point.overflow` on each value, in place."""
    for n in range(values.shape[0]):
        values[n], _ = overflow(values[n], mode, half)
    return values


@njit(cache=True)
def _glu_step(v: np.ndarray, h: int, params, table: np.ndarray) -> np.ndarray:
    """The h values z of one step (:func:`~silif_deploy.hw_models.glu.glu_value`)."""
    z = np.empty(h, np.int64)
    for i in range(h):
        z[i], _ = glu_value(v, h, i, params, table)
    return z


def warm_up_graded(params) -> None:
    """Compile the graded stages' loops here, before Lava forks its process models (each then
    inherits them instead of loading them again); ``params`` a GluParams, or None."""
    _overflow_values(np.zeros(1, np.int64), 1, 1 << 23)
    if params is not None:
        _glu_step(np.zeros(2 * len(params.bias_a), np.int64), len(params.bias_a), wide(params), SIGMOID_TABLE)


class GradedDense(AbstractProcess):
    """A Dense stage in int64: per Lava step, sends a_t = (Σ_j W[:, j]·x_j(t − 1)) << exponents[n]
    per row (``exponents`` = weight_exp + row_exp; a negative one an arithmetic shift right,
    i.e. floor), then accumulates this step's input. ``graded``: x_j is the value; else any
    non-zero value counts 1. Lava's own Dense has one exponent, and multiplies, accumulates and
    sends in int32 (its a_out channel wraps there); the network builder uses it where the stage's
    worst case fits int32, this one elsewhere (``network.py``)."""

    def __init__(self, *, weights: np.ndarray, exponents: np.ndarray, graded: bool, name: str | None = None) -> None:
        weights = np.asarray(weights, np.int64)
        super().__init__(weights=weights, exponents=np.asarray(exponents, np.int64), graded=graded, name=name)
        self.s_in = InPort(shape=(weights.shape[1],))
        self.a_out = OutPort(shape=(weights.shape[0],))
        self.a_buff = Var(shape=(weights.shape[0],), init=0)


@fixed_pt_model(GradedDense)
class PyGradedDenseModel(PyLoihiProcessModel):
    s_in: PyInPort = IN_VALUES
    a_out: PyOutPort = OUT_VALUES
    a_buff: np.ndarray = VAR_VALUES

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.weights = proc_params["weights"]
        exps = proc_params["exponents"]
        self.left, self.right = np.maximum(exps, 0), np.maximum(-exps, 0)  # shift_left per row
        self.graded = proc_params["graded"]

    def run_spk(self) -> None:
        self.a_out.send(self.a_buff)  # the previous step's accumulation: one step of delay
        x = self.s_in.recv()
        acc = self.weights @ (x.astype(np.int64) if self.graded else (x != 0).astype(np.int64))
        self.a_buff[:] = (acc << self.left) >> self.right


class AddValues(AbstractProcess):
    """The network's Add stage: ``s_out`` = ovf(a_{t − lags[0]} + b_{t − lags[1]}) element-wise over
    the values arriving at ``a_in`` and ``b_in`` (a spike counts 1; values before the run are 0),
    sent in the same step (no delay of its own). ``half`` 0: exact; else the overflow rule
    ``mode`` (0 wrap, 1 saturate) of a 2·``half``-wide value."""

    def __init__(self, *, shape: tuple[int, ...], half: int = 0, mode: int = 0, lags: tuple[int, int] = (0, 0),
                 name: str | None = None) -> None:
        super().__init__(shape=shape, half=half, mode=mode, lags=tuple(lags), name=name)
        self.a_in = InPort(shape=shape)
        self.b_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)


@fixed_pt_model(AddValues)
class PyAddValuesModel(PyLoihiProcessModel):
    a_in: PyInPort = IN_VALUES
    b_in: PyInPort = IN_VALUES
    s_out: PyOutPort = OUT_VALUES

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.shape, self.half, self.mode = proc_params["shape"], proc_params["half"], proc_params["mode"]
        # the values each source sent in its last ``lag`` steps, oldest first
        self.held = [[np.zeros(proc_params["shape"], np.int64)] * lag for lag in proc_params["lags"]]

    def run_spk(self) -> None:
        total = np.zeros(self.shape, np.int64)
        for held, port in zip(self.held, (self.a_in, self.b_in)):
            held.append(port.recv().astype(np.int64))
            total += held.pop(0)
        if self.half:
            _overflow_values(total, self.mode, self.half)
        self.s_out.send(total)


class GluValues(AbstractProcess):
    """The network's GLU stage: ``s_out`` = the h values z_t = a_t·σ(g_t) of the 2h values at
    ``a_in`` (a the first h, g the last h), in the integer rule of
    :class:`~silif_deploy.hw_models.glu.GluParams`, sent in the same step."""

    def __init__(self, *, shape: tuple[int], params: NamedTuple, name: str | None = None) -> None:
        super().__init__(shape=shape, params=params, name=name)
        self.a_in = InPort(shape=(2 * shape[0],))
        self.s_out = OutPort(shape=shape)


@fixed_pt_model(GluValues)
class PyGluValuesModel(PyLoihiProcessModel):
    a_in: PyInPort = IN_VALUES
    s_out: PyOutPort = OUT_VALUES

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.params, self.h = wide(proc_params["params"]), proc_params["shape"][0]

    def run_spk(self) -> None:
        v = self.a_in.recv().astype(np.int64)
        self.s_out.send(_glu_step(v, self.h, self.params, SIGMOID_TABLE))


class ValueRecorder(AbstractProcess):
    """Records the graded values arriving at ``a_in`` during Lava steps 1 … ``n_steps``: Var
    ``values`` (n_steps, N) (e.g. what the host's decoder reads)."""

    def __init__(self, *, shape: tuple[int], n_steps: int, name: str | None = None) -> None:
        super().__init__(shape=shape, n_steps=n_steps, name=name)
        self.a_in = InPort(shape=shape)
        self.values = Var(shape=(n_steps, shape[0]), init=0)


@fixed_pt_model(ValueRecorder)
class PyValueRecorderModel(PyLoihiProcessModel):
    a_in: PyInPort = IN_VALUES
    values: np.ndarray = VAR_VALUES

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.n_steps = proc_params["n_steps"]

    def run_spk(self) -> None:
        v = self.a_in.recv()
        if self.time_step <= self.n_steps:
            self.values[self.time_step - 1] = v


PACKED_BITS = 48
"""Spikes per recorded value. Lava's ``Var.get`` sends a Var's values one by one as float64
(≈15 µs each), exact up to 2^53: 48 spikes travel as one value."""


class SpikeRecorder(AbstractProcess):
    """Records the spikes (0/1) arriving at ``a_in`` during Lava steps 1 … ``n_steps``, packed:
    bit j of ``packed[k]`` is element 48·k + j of the (n_steps, N) raster in C order
    (:func:`unpack_spikes` restores it)."""

    def __init__(self, *, shape: tuple[int], n_steps: int, name: str | None = None) -> None:
        super().__init__(shape=shape, n_steps=n_steps, name=name)
        self.a_in = InPort(shape=shape)
        self.packed = Var(shape=(-(-n_steps * shape[0] // PACKED_BITS),), init=0)


@fixed_pt_model(SpikeRecorder)
class PySpikeRecorderModel(PyLoihiProcessModel):
    """Sets the bits of this step's spikes: a silent neuron costs nothing."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    packed: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=PACKED_BITS)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.n_steps = proc_params["n_steps"]

    def run_spk(self) -> None:
        s = self.a_in.recv()
        if self.time_step <= self.n_steps:
            at = (self.time_step - 1) * s.size + np.flatnonzero(s)
            np.bitwise_or.at(self.packed, at // PACKED_BITS, np.left_shift(1, at % PACKED_BITS))


def unpack_spikes(packed: np.ndarray, n_steps: int, size: int) -> np.ndarray:
    """The (n_steps, size) uint8 raster from a :class:`SpikeRecorder`'s ``packed`` values."""
    words = np.asarray(packed).astype(np.int64)  # Var.get returns float64: exact below 2^53
    bits = (words[:, None] >> np.arange(PACKED_BITS)) & 1
    return bits.reshape(-1)[: n_steps * size].reshape(n_steps, size).astype(np.uint8)
