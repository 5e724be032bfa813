"""The fixed-point neuron kinds: each names its parameter record, its scalar kernel and its states.

A kernel is the single definition of a kind's integer update. For neuron ``n`` of a layer whose
``k`` states are the rows of a (k, N) int64 array ``x``: ``kernel(a, x, s, params, n) -> (s_t,
overflow events)`` reads column n (the states at t − 1), writes the states at t there, and returns
the spike and how many values an overflow rule changed. The simulator's batched loops and the Lava
process models both call it (through :func:`step` and :mod:`.neuron_loops`); the number of states
is the kind's data (``states``), not the callers'.

A kind is registered with one line, ``register(NeuronKind(...))``, here or from any module
imported before the network is run (the test families in ``tests/families`` do so).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
from numba import njit

from silif_deploy.hw_models import neuron_adaptive, neuron_resonate, neuron_s4d
from silif_deploy.hw_models.fixed_point import wide
from silif_deploy.hw_models.neuron_adaptive import AdaptiveParams, adaptive_neuron
from silif_deploy.hw_models.neuron_cuba import CubaParams, cuba_neuron
from silif_deploy.hw_models.neuron_resonate import ResonateParams, resonate_neuron
from silif_deploy.hw_models.neuron_s4d import HeavisideParams, S4dParams, heaviside_neuron, s4d_state

SPIKES = "spikes"
STATES = "states"


@dataclass(frozen=True)
class NeuronKind:
    """A fixed-point neuron kind.

    ``states`` name the kernel's k state rows (any k ≥ 1); ``buffers`` counts the real states per
    neuron in the paper's sense (LIF keeps w = 0 and counts 1). ``diagnostics`` are the
    quantizer's counts of degenerate neurons this kind reports, (key, the warning it implies).
    What the artifact check needs besides the fields every hidden kind has (``threshold``,
    ``frac_bits``, ``input_shift``, ``half``, ``bias``): ``coefficients``, fields that are k/2^F
    coefficients (|k| ≤ 2^F); ``state_valued``, fields within ± the state maximum;
    ``overflow_rules``, (field, the profile's rule it must be: "membrane", "adaptation" or "current");
    ``fixed``, (field, the value the kind fixes, why). ``output``: what the layer sends,
    :data:`SPIKES` (0/1 per neuron) or :data:`STATES` (its k states as k·N graded values, state j
    of neuron n being value j·N + n; the kernel's spike is then 0). ``bounded``: every state the
    kernel writes has passed an overflow rule of the record's ``half`` (it lies within ±half).
    ``span`` (0: none declared): every value the kernel computes, the overflow rules' inner sums
    included, lies within ±span·M, where M is the largest of ``half``, |``threshold``|, the largest
    |``bias``| and |``state_valued``| fields, and the largest |A_t| = |a_t << ``input_shift``|,
    given that its ``coefficients`` are k/2^``frac_bits`` with |k| ≤ 2^``frac_bits`` and its first
    ``tz_mul`` operand is one. With it, a bounded kind's layers run in int32 arithmetic where
    span·M + 2^F < 2^31 (F ≤ 15), chunk of samples by chunk (:mod:`.neuron_loops`).
    """

    name: str
    params_type: type
    kernel: Callable
    states: tuple[str, ...]
    buffers: int
    diagnostics: tuple[tuple[str, str], ...] = ()
    coefficients: tuple[str, ...] = ()
    state_valued: tuple[str, ...] = ()
    overflow_rules: tuple[tuple[str, str], ...] = ()
    fixed: tuple[tuple[str, int, str], ...] = ()
    output: str = SPIKES
    bounded: bool = False
    span: int = 0


KINDS: dict[str, NeuronKind] = {}


def register(kind: NeuronKind) -> NeuronKind:
    """Make ``kind`` known to the simulator, the artifact, Lava and the reports, by its name."""
    if len(kind.states) < 1:
        raise ValueError(f"neuron kind '{kind.name}' declares no state")
    if kind.output not in (SPIKES, STATES):
        raise ValueError(f"neuron kind '{kind.name}' outputs '{kind.output}', not '{SPIKES}' or '{STATES}'")
    KINDS[kind.name] = kind
    return kind


def _adaptive(name: str, buffers: int) -> NeuronKind:
    # span 6 (AdaptiveParams): w_t before its rule ≤ 3M (|tz(c·v)| ≤ |v| for |c| ≤ 1), its rule's
    # inner sum ≤ 4M; the drive A + bias − w ≤ 3M; u_t before its rule ≤ 2M + 3M, inner sum ≤ 6M
    return NeuronKind(name, AdaptiveParams, adaptive_neuron, ("u", "w"), buffers, neuron_adaptive.DIAGNOSTICS,
                      ("alpha", "gain", "beta", "a"), ("b_spike",), (("u_mode", "membrane"), ("w_mode", "adaptation")),
                      bounded=True, span=6)


def _resonate(name: str, reset_first: int) -> NeuronKind:
    # span 7 (ResonateParams): the drive ≤ 2M, r = p − θ·s ≤ 2M, the rotation ≤ 3M; p_t before its
    # rule ≤ 3M + 2M + M, inner sum ≤ 7M
    return NeuronKind(name, ResonateParams, resonate_neuron, ("p", "q"), 2, neuron_resonate.DIAGNOSTICS,
                      ("lam_re", "lam_im", "gain"), (), (("mode", "membrane"),),
                      (("reset_first", reset_first, f"{name}'s reset order"),), bounded=True, span=7)


READOUT_KIND = "cuba"
"""The readout's kind: Loihi's CUBA LIF, in every network (the float side's leaky-integrator readout)."""

for _kind in (_adaptive("silif", 2), _adaptive("adlif", 2), _adaptive("cadlif", 2), _adaptive("lif", 1),
              _resonate("csilif", 1), _resonate("rf", 0), NeuronKind(READOUT_KIND, CubaParams, cuba_neuron, ("u", "v"), 2, bounded=True)):
    register(_kind)

HIDDEN_KINDS = tuple(name for name in KINDS if name != READOUT_KIND)
"""The built-in hidden-layer model types of the chains (the readout is always ``cuba``)."""

S4D_KIND = register(NeuronKind("s4d", S4dParams, s4d_state, ("p", "q"), 2, neuron_s4d.DIAGNOSTICS,
                               ("lam_re", "lam_im", "gain"), (), (("mode", "membrane"),), output=STATES,
                               bounded=True)).name
"""The S4D state (SpikingSSM, binary S4D): registered after ``HIDDEN_KINDS``, it is no chain's hidden kind."""
HEAVISIDE_KIND = register(NeuronKind("heaviside", HeavisideParams, heaviside_neuron, ("y",), 0,
                                     state_valued=("threshold",))).name
"""Binary S4D's stateless spike (its one recorded state y is no buffer)."""


class NeuronState(NamedTuple):
    """Explicit state of a layer: the kind's k states as the rows of a (k, N) array, and the
    previous spike (N,) (int64 arrays)."""

    states: np.ndarray
    s: np.ndarray

    @classmethod
    def zeros(cls, k: int, n: int) -> "NeuronState":
        return cls(np.zeros((k, n), np.int64), np.zeros(n, np.int64))


@functools.cache
def _step_arrays(kernel: Callable) -> Callable:
    @njit(cache=False)  # a closure: numba cannot cache it on disk (see neuron_loops)
    def step_arrays(a, x, s, params):
        s_out = np.empty(a.shape[0], np.int64)
        events = 0
        for n in range(a.shape[0]):
            s_out[n], ov = kernel(a[n], x, s[n], params, n)
            events += ov
        return s_out, events

    return step_arrays


def step(kind: str, a: np.ndarray, state: NeuronState, params: NamedTuple) -> tuple[np.ndarray, NeuronState]:
    """Pure step of one layer: ``(a_t, state_{t−1}, params) -> (s_t, state_t)`` over (N,) arrays.

    ``a`` is the Dense output for this step; the update rule is the kind's kernel docstring.
    """
    x = np.array(state.states, np.int64, order="C", copy=True)  # the kernel writes the new states here
    s, _ = _step_arrays(KINDS[kind].kernel)(np.ascontiguousarray(a, np.int64), x, np.ascontiguousarray(state.s, np.int64),
                                            wide(params))
    return s, NeuronState(x, s)
