"""Fixed-point gated linear unit (SpikingSSM's and binary S4D's feature mixing): z = a·σ(g).

The 2H values a stage of this type reads are the output of one binary Dense H → 2H on the
block's spikes (``spiking_ssm.md`` §8.5): values 0 … H−1 are the value half a, H … 2H−1 the gate
half g. σ is a lookup table over a clipped input range; no multiply-free rule exists for the
product, which needs a two-input neuron (Loihi 2 microcode) or the host.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from silif_deploy.hw_models.fixed_point import overflow, shift_left, tz_mul

SIGMOID_BITS = 12
"""σ is held as k/2^12, k in 0 … 4096."""
GATE_STEP_BITS = 5
"""The table's input step is 2^−5 = 1/32 of the gate's real unit."""
GATE_RANGE = 8
"""The table covers real gates in [−8, 8); beyond, the end entries hold."""
_HALF_TABLE = GATE_RANGE << GATE_STEP_BITS  # 256 entries on each side of 0

SIGMOID_TABLE = np.array(
    [round((1 << SIGMOID_BITS) / (1.0 + math.exp(-(i + 0.5) / (1 << GATE_STEP_BITS))))
     for i in range(-_HALF_TABLE, _HALF_TABLE)], np.int64)
"""SIGMOID_TABLE[i + 256] = round(2^12·σ((i + 0.5)/32)) for i in −256 … 255 (Python's round,
half to even; math.exp)."""

SIGMOID_MAX_ERROR = 0.00403
"""Bound on |σ_int(g)/2^12 − σ(g/2^gate_frac)| over every integer g (``tests/test_ssm_stages.py``
measures it): inside the table's range, half a step (1/64) times σ's largest slope (1/4) is
1/256 = 0.00391, plus half an output LSB (2^−13 = 0.00012); beyond |g| ≥ 8 the end entries are
within σ(−7.98) = 0.00034 of 0 and 1."""


class GluParams(NamedTuple):
    """Integer parameters of a GLU stage reading 2H graded values v (the Conv1d's biases added here).

    The gate's real value is g / 2^``gate_frac``; per h and step::

        a_h  = v[h] + bias_a[h];   g_h = v[H + h] + bias_g[h]
        i    = clip( shift(g_h, 5 − gate_frac), −256, 255 )     # floor(g·32 / 2^gate_frac)
        σ_h  = SIGMOID_TABLE[i + 256]                            # round(2^12·σ((i + 0.5)/32))
        z_h  = ovf( tz(a_h·σ_h, 12) )

    shift is :func:`~.fixed_point.shift_left` (arithmetic: floor for a right shift); ``mode``
    the overflow rule (0 wrap, 1 saturate) of a ``2·half``-wide value. z is in a's unit; σ's
    error against float is at most :data:`SIGMOID_MAX_ERROR`.
    """

    bias_a: np.ndarray
    bias_g: np.ndarray
    gate_frac: int
    half: int
    mode: int


@njit(inline="always", cache=True)
def sigmoid_int(g, gate_frac, table):
    """σ(g / 2^gate_frac) as k/2^12, from ``table`` (:data:`SIGMOID_TABLE`)."""
    i = shift_left(g, GATE_STEP_BITS - gate_frac)
    i = min(max(i, -_HALF_TABLE), _HALF_TABLE - 1)
    return table[i + _HALF_TABLE]


@njit(inline="always", cache=True)
def glu_value(v, h, i, p, table):
    """z for channel i of the 2h values ``v``: (z, overflow events) (the rule: :class:`GluParams`)."""
    a, g = v[i] + p.bias_a[i], v[h + i] + p.bias_g[i]
    return overflow(tz_mul(a, sigmoid_int(g, p.gate_frac, table), SIGMOID_BITS), p.mode, p.half)
