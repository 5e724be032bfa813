"""Fixed-point SiLIF / adLIF / cAdLIF neuron (and LIF, its reduction with no adaptation).

The float step (``neurons.md`` §4.4) with every coefficient a k/2^F integer and every product
truncated toward zero, as Loihi's decays are. States are in threshold units: θ ↔ 1.0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from silif_deploy.hw_models.fixed_point import as_state, overflow, shift_left, tz_mul


class AdaptiveParams(NamedTuple):
    """Integer parameters of an adaptive LIF layer (arrays hold one entry per neuron).

    Integer update, F = ``frac_bits``, tz = truncation toward zero, A_t = a_t << ``input_shift``
    (a_t: the Dense output), θ = ``threshold``::

        w_t = ovf_w( tz(β·w_{t−1}, F) + tz(a·u_{t−1}, F) + b_spike·s_{t−1} )
        u_t = ovf_u( tz(α·(u_{t−1} − θ·s_{t−1}), F) + tz(g·(A_t + bias − w_t), F) )
        s_t = u_t > θ

    with α = round(α_f·2^F), g = 2^F − α (so α + g is exactly 1), β = round(β_f·2^F),
    a = round(a_f·2^F), b_spike = round(b_f·θ), bias = round(c·θ) for the folded BatchNorm offset c.
    LIF is the case β = a = b_spike = 0 (w stays 0). ``u_mode``/``w_mode`` are the overflow rules
    (0 wrap, 1 saturate) for a ``2·half``-wide state.
    """

    alpha: np.ndarray
    gain: np.ndarray
    beta: np.ndarray
    a: np.ndarray
    b_spike: np.ndarray
    bias: np.ndarray
    threshold: int
    frac_bits: int
    input_shift: int
    half: int
    u_mode: int
    w_mode: int


DIAGNOSTICS = (
    ("beta_one_perfect_integrator", "β rounded to exactly 1 (perfect integrators)"),
    ("alpha_zero_memoryless", "α rounded to 0 (memoryless)"),
    ("alpha_one_no_input", "α rounded to 1 (input gain 0: deaf)"),
)
"""The quantizer's counts of neurons whose dynamics rounding changed in kind, with the warning each implies."""


@njit(inline="always", cache=True)
def adaptive_neuron(a_in, x, s, p, n):
    """One step of neuron ``n``: column n of the states ``x`` = (u, w) to (u_t, w_t), returns
    ``(s_t, overflow events)``."""
    f = p.frac_bits
    u, w = x[0, n], x[1, n]
    spiked = -s  # s is 0 or 1: c·s is c & −s, a mask instead of a 64-bit multiply (emulated in AVX2)
    w_new = tz_mul(p.beta[n], w, f) + tz_mul(p.a[n], u, f) + (p.b_spike[n] & spiked)
    w_new, ow = overflow(as_state(w_new, x), p.w_mode, p.half)
    drive = as_state(shift_left(a_in, p.input_shift) + p.bias[n] - w_new, x)
    u_new = tz_mul(p.alpha[n], as_state(u - (p.threshold & spiked), x), f) + tz_mul(p.gain[n], drive, f)
    u_new, ou = overflow(as_state(u_new, x), p.u_mode, p.half)
    x[0, n], x[1, n] = u_new, w_new
    return (1 if u_new > p.threshold else 0), ow + ou
