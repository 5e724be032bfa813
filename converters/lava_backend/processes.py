"""Our hidden neurons as a Lava Process (interface) and its ``fixed_pt`` ProcessModel (behaviour),
and a spike recorder whose record Lava can hand back quickly.

Lava's model discovery executes every ``.py`` file in this folder: keep its siblings cheap to
import (no torch, nothing slow).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

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

from silif_deploy.hw_models.neuron_kinds import KINDS, READOUT_KIND, NeuronState, step


class FixedPointNeurons(AbstractProcess):
    """A layer of ``shape`` fixed-point neurons of one kind (silif, adlif, cadlif, lif, csilif, rf).

    Per Lava step t (1-based): ``(s_t, x_t) = kernel(a_t, x_{t−1}, s_{t−1})``, the kind's integer
    update (:func:`silif_deploy.hw_models.neuron_kinds.step`), once t ≥ ``start_step``; before that
    the layer idles (zero state, no spikes), as the simulator's layers do. Ports: ``a_in`` (the
    Dense output), ``s_out`` (spikes 0/1). Var ``x`` (k, N) holds the kind's k states, row j being
    state ``KINDS[kind].states[j]`` (e.g. u, w); ``s`` the last spikes.
    """

    def __init__(self, *, shape: tuple[int, ...], kind: str, params: NamedTuple, start_step: int,
                 name: str | None = None) -> None:
        if kind not in KINDS or kind == READOUT_KIND:
            raise ValueError(f"FixedPointNeurons takes a hidden kind, not '{kind}'")
        super().__init__(shape=shape, kind=kind, params=params, start_step=start_step, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.x = Var(shape=(len(KINDS[kind].states), *shape), init=0)
        self.s = Var(shape=shape, init=0)


@implements(proc=FixedPointNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFixedPointNeuronsModel(PyLoihiProcessModel):
    """Calls the simulator's own integer step: one definition of every neuron kind."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    # int64: the wide profile's 32-bit states and their intermediate sums exceed int32
    x: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    s: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=1)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.kind = proc_params["kind"]
        self.params = proc_params["params"]
        self.start_step = proc_params["start_step"]

    def run_spk(self) -> None:
        a = self.a_in.recv()
        if self.time_step >= self.start_step:
            s, state = step(self.kind, a, NeuronState(self.x, self.s), self.params)
            self.x[:] = state.states
            self.s[:] = s
        self.s_out.send(self.s.astype(np.int32))


class AddValues(AbstractProcess):
    """The network's Add stage: ``s_out`` = ``a_in`` + ``b_in`` element-wise, sent in the step the
    two sources send (no delay; a spike counts 1)."""

    def __init__(self, *, shape: tuple[int, ...], name: str | None = None) -> None:
        super().__init__(shape=shape, name=name)
        self.a_in = InPort(shape=shape)
        self.b_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)


@implements(proc=AddValues, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyAddValuesModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    b_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        self.s_out.send(self.a_in.recv() + self.b_in.recv())


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


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
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
