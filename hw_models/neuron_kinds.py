"""The fixed-point neuron kinds: each names its parameter record, its scalar kernel and its states.

A kernel is the single definition of a kind's integer update: ``kernel(a, x1, x2, s, params, n)
-> (s_t, x1_t, x2_t, overflow events)`` for neuron ``n``. The simulator's batched loops and the Lava
process models both call it (through :func:`step` and :mod:`.neuron_loops`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
from numba import njit

from silif_deploy.hw_models.neuron_adaptive import AdaptiveParams, adaptive_neuron
from silif_deploy.hw_models.neuron_cuba import CubaParams, cuba_neuron
from silif_deploy.hw_models.neuron_resonate import ResonateParams, resonate_neuron


@dataclass(frozen=True)
class NeuronKind:
    """A fixed-point neuron kind: ``states`` name the kernel's x1 and x2; ``buffers`` counts the
    real states per neuron in the paper's sense (LIF keeps x2 = 0 and counts 1)."""

    name: str
    params_type: type
    kernel: Callable
    states: tuple[str, str]
    buffers: int


KINDS: dict[str, NeuronKind] = {
    "silif": NeuronKind("silif", AdaptiveParams, adaptive_neuron, ("u", "w"), 2),
    "adlif": NeuronKind("adlif", AdaptiveParams, adaptive_neuron, ("u", "w"), 2),
    "cadlif": NeuronKind("cadlif", AdaptiveParams, adaptive_neuron, ("u", "w"), 2),
    "lif": NeuronKind("lif", AdaptiveParams, adaptive_neuron, ("u", "w"), 1),
    "csilif": NeuronKind("csilif", ResonateParams, resonate_neuron, ("p", "q"), 2),
    "rf": NeuronKind("rf", ResonateParams, resonate_neuron, ("p", "q"), 2),
    "cuba": NeuronKind("cuba", CubaParams, cuba_neuron, ("u", "v"), 2),
}

HIDDEN_KINDS = tuple(name for name in KINDS if name != "cuba")
"""The hidden-layer model types (the readout is always ``cuba``)."""


class NeuronState(NamedTuple):
    """Explicit state of a layer: the kind's two states and the previous spike (int64 arrays)."""

    x1: np.ndarray
    x2: np.ndarray
    s: np.ndarray

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> "NeuronState":
        return cls(np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, np.int64))


def _make_step(kernel: Callable) -> Callable:
    @njit(cache=False)  # a closure: numba cannot cache it on disk (see neuron_loops)
    def step_arrays(a, x1, x2, s, params):
        n_neurons = a.shape[0]
        s_out = np.empty(n_neurons, np.int64)
        x1_out = np.empty(n_neurons, np.int64)
        x2_out = np.empty(n_neurons, np.int64)
        events = 0
        for n in range(n_neurons):
            s_out[n], x1_out[n], x2_out[n], ov = kernel(a[n], x1[n], x2[n], s[n], params, n)
            events += ov
        return s_out, x1_out, x2_out, events

    return step_arrays


_STEPS = {kernel: _make_step(kernel) for kernel in {k.kernel for k in KINDS.values()}}


def step(kind: str, a: np.ndarray, state: NeuronState, params: NamedTuple) -> tuple[np.ndarray, NeuronState]:
    """Pure step of one layer: ``(a_t, state_{t−1}, params) -> (s_t, state_t)`` over (N,) arrays.

    ``a`` is the Dense output for this step; the update rule is the kind's kernel docstring.
    """
    s, x1, x2, _ = _STEPS[KINDS[kind].kernel](
        np.ascontiguousarray(a, np.int64), state.x1, state.x2, state.s, params
    )
    return s, NeuronState(x1, x2, s)
