"""Fixed-point C-SiLIF and resonate-and-fire neurons: a real 2×2 rotation-decay per neuron.

C-SiLIF in its exact real form (``neurons.md`` §5.5, v = 2u = p + i·q) and the Euler RF (§7) differ
only in when the reset acts: C-SiLIF subtracts the threshold from p before the rotation, RF after.
The rotation itself (:func:`rotate`) is also the S4D state's (:mod:`.neuron_s4d`): one rule for all three.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from silif_deploy.hw_models.fixed_point import as_state, overflow, shift_left, tz_mul


class ResonateParams(NamedTuple):
    """Integer parameters of a resonate layer (arrays hold one entry per neuron).

    λ = λr + i·λi as k/2^F integers, g the input gain (k/2^F, |g| ≤ 1: the quantizer stretches
    each neuron's weight row and bias by the rest), A_t = a_t << ``input_shift``, θ = ``threshold``.

    ``reset_first = 1`` (C-SiLIF: reset before the rotation)::

        r   = p_{t−1} − θ·s_{t−1}
        p_t = ovf( tz(λr·r, F) − tz(λi·q_{t−1}, F) + tz(g·(A_t + bias), F) )
        q_t = ovf( tz(λi·r, F) + tz(λr·q_{t−1}, F) )
        s_t = p_t > θ

    ``reset_first = 0`` (RF: reset after the update)::

        p_t = ovf( tz(λr·p_{t−1}, F) − tz(λi·q_{t−1}, F) + tz(g·(A_t + bias), F) − θ·s_{t−1} )
        q_t = ovf( tz(λi·p_{t−1}, F) + tz(λr·q_{t−1}, F) )
        s_t = p_t > θ
    """

    lam_re: np.ndarray
    lam_im: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    threshold: int
    frac_bits: int
    input_shift: int
    half: int
    mode: int
    reset_first: int


DIAGNOSTICS = (
    ("lambda_zero", "λ rounded to 0 (memoryless)"),
    ("lambda_unit_or_more", "|λ| rounded to ≥ 1 (no decay)"),
    ("gain_zeroed", "input gain rounded to 0 (deaf)"),
)
"""The quantizer's counts of neurons whose dynamics rounding changed in kind, with the warning each implies."""


@njit(inline="always", cache=True)
def rotate(lam_re, lam_im, p, q, f):
    """The rotation-decay λ·(p + i·q) in k/2^F integers: (tz(λr·p, F) − tz(λi·q, F), tz(λi·p, F) + tz(λr·q, F))."""
    return tz_mul(lam_re, p, f) - tz_mul(lam_im, q, f), tz_mul(lam_im, p, f) + tz_mul(lam_re, q, f)


@njit(inline="always", cache=True)
def resonate_neuron(a_in, x, s, p, n):
    """One step of neuron ``n``: column n of the states ``x`` = (p, q) to (p_t, q_t), returns
    ``(s_t, overflow events)``."""
    f = p.frac_bits
    p_re, q_im = x[0, n], x[1, n]
    drive = tz_mul(p.gain[n], as_state(shift_left(a_in, p.input_shift) + p.bias[n], x), f)
    # Both reset orders in one branch-free form (reset_first is 0 or 1): a branch here kept loops
    # over neurons from vectorizing and made them 5 times slower. s and reset_first are 0 or 1, so
    # θ·s is θ & −s (masks, not 64-bit multiplies, which AVX2 emulates).
    reset = p.threshold & -s
    r = as_state(p_re - (reset & -p.reset_first), x)  # C-SiLIF: the reset acts before the rotation…
    rot_p, q_new = rotate(p.lam_re[n], p.lam_im[n], r, q_im, f)
    p_new = rot_p + drive - (reset & (p.reset_first - 1))  # …RF: after
    p_new, op = overflow(as_state(p_new, x), p.mode, p.half)
    q_new, oq = overflow(as_state(q_new, x), p.mode, p.half)
    x[0, n], x[1, n] = p_new, q_new
    return (1 if p_new > p.threshold else 0), op + oq
