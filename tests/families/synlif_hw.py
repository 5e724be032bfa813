"""Test family ``synlif``, hardware side: a LIF neuron with a synaptic current, two states."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from silif_deploy.hw_models.fixed_point import overflow, tz_mul
from silif_deploy.hw_models.neuron_adaptive import DIAGNOSTICS
from silif_deploy.hw_models.neuron_kinds import NeuronKind, register


class SynLifParams(NamedTuple):
    """Integer parameters of a synlif layer (arrays hold one entry per neuron).

    F = ``frac_bits``, tz = truncation toward zero, A_t = a_t << ``input_shift``, θ = ``threshold``::

        i_t = ovf_i( tz(β·i_{t−1}, F) + A_t + bias )
        v_t = ovf_v( tz(α·(v_{t−1} − θ·s_{t−1}), F) + tz(g·i_t, F) )
        s_t = v_t > θ

    with g = 2^F − α; ``i_mode``/``v_mode`` the overflow rules (0 wrap, 1 saturate) for a
    ``2·half``-wide state.
    """

    alpha: np.ndarray
    gain: np.ndarray
    beta: np.ndarray
    bias: np.ndarray
    threshold: int
    frac_bits: int
    input_shift: int
    half: int
    i_mode: int
    v_mode: int


@njit(inline="always", cache=True)
def synlif_neuron(a_in, x, s, p, n):
    """One step of neuron ``n``: column n of the states ``x`` = (i, v) to (i_t, v_t), returns
    ``(s_t, overflow events)``."""
    f = p.frac_bits
    i_new, oi = overflow(tz_mul(p.beta[n], x[0, n], f) + (a_in << p.input_shift) + p.bias[n], p.i_mode, p.half)
    v_new = tz_mul(p.alpha[n], x[1, n] - (p.threshold & -s), f) + tz_mul(p.gain[n], i_new, f)
    v_new, ov = overflow(v_new, p.v_mode, p.half)
    x[0, n], x[1, n] = i_new, v_new
    return (1 if v_new > p.threshold else 0), oi + ov


KIND = register(NeuronKind(
    "synlif", SynLifParams, synlif_neuron, states=("i", "v"), buffers=2,
    diagnostics=tuple(d for d in DIAGNOSTICS if d[0].startswith("alpha")),
    coefficients=("alpha", "gain", "beta"), overflow_rules=(("i_mode", "current"), ("v_mode", "membrane")),
))
