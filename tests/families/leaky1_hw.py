"""Test family ``leaky1``, hardware side: a leaky integrate-and-fire neuron with one state.

LIF with one state instead of two (the built-in ``lif`` kind carries the adaptive kernel's w = 0).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from silif_deploy.hw_models.fixed_point import overflow, tz_mul
from silif_deploy.hw_models.neuron_adaptive import DIAGNOSTICS
from silif_deploy.hw_models.neuron_kinds import NeuronKind, register


class LeakyParams(NamedTuple):
    """Integer parameters of a leaky1 layer (arrays hold one entry per neuron).

    F = ``frac_bits``, tz = truncation toward zero, A_t = a_t << ``input_shift``, θ = ``threshold``::

        v_t = ovf( tz(α·(v_{t−1} − θ·s_{t−1}), F) + tz(g·(A_t + bias), F) )
        s_t = v_t > θ

    with g = 2^F − α; ``mode`` the overflow rule of v (0 wrap, 1 saturate) for a ``2·half``-wide state.
    """

    alpha: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    threshold: int
    frac_bits: int
    input_shift: int
    half: int
    mode: int


@njit(inline="always", cache=True)
def leaky_neuron(a_in, x, s, p, n):
    """One step of neuron ``n``: column n of the states ``x`` = (v,) to (v_t,), returns
    ``(s_t, overflow events)``."""
    drive = (a_in << p.input_shift) + p.bias[n]
    v = tz_mul(p.alpha[n], x[0, n] - (p.threshold & -s), p.frac_bits) + tz_mul(p.gain[n], drive, p.frac_bits)
    v, ov = overflow(v, p.mode, p.half)
    x[0, n] = v
    return (1 if v > p.threshold else 0), ov


KIND = register(NeuronKind(
    "leaky1", LeakyParams, leaky_neuron, states=("v",), buffers=1,
    diagnostics=tuple(d for d in DIAGNOSTICS if d[0].startswith("alpha")),
    coefficients=("alpha", "gain"), overflow_rules=(("mode", "membrane"),),
))
