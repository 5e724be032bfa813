"""Loihi's standard CUBA LIF neuron, bit for bit as Lava's ``PyLifModelBitAcc`` computes it.

The readout leaky integrator maps onto it (du = 4095: a memoryless current; dv from the readout
decay; a threshold it never reaches), so Intel's own model can check our arithmetic.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from silif_deploy.hw_models.fixed_point import WRAP, SATURATE, overflow, shift_left, tz_mul

DECAY_BITS = 12


class CubaParams(NamedTuple):
    """Integer parameters of a CUBA LIF layer (arrays hold one entry per neuron).

    Per step, in this order (Lava 0.10 ``PyLifModelBitAcc``; A_t = a_t << 6)::

        bias = bias_mant << bias_exp
        u_t  = wrap24( tz(u_{t−1}·(4096 − (du + 1)), 12) + A_t )
        v_t  = sat24( tz(v_{t−1}·(4096 − dv), 12) + u_t + bias )
        s_t  = v_t > (vth << 6);   v_t = 0 where s_t

    Lava holds du and dv per process; here they are per neuron, and the Lava mapping groups
    neurons that share them.
    """

    du: np.ndarray
    dv: np.ndarray
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    vth: int
    input_shift: int
    threshold_exponent: int
    half: int


@njit(inline="always", cache=True)
def cuba_neuron(a_in, x, s, p, n):
    """One step of neuron ``n``: column n of the states ``x`` = (u, v) to (u_t, v_t), returns
    ``(s_t, overflow events)``."""
    u, v = x[0, n], x[1, n]
    bias = shift_left(p.bias_mant[n], p.bias_exp[n])
    u_new = tz_mul(u, (1 << DECAY_BITS) - (p.du[n] + 1), DECAY_BITS) + (a_in << p.input_shift)
    u_new, ou = overflow(u_new, WRAP, p.half)
    v_new = tz_mul(v, (1 << DECAY_BITS) - p.dv[n], DECAY_BITS) + u_new + bias
    v_new, ov = overflow(v_new, SATURATE, p.half)
    spike = v_new > (p.vth << p.threshold_exponent)
    x[0, n], x[1, n] = u_new, (0 if spike else v_new)
    return (1 if spike else 0), ou + ov
