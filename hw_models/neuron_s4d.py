"""Fixed-point S4D state (SpikingSSM, binary S4D): the C-SiLIF rotation-decay without spike and reset.

Per (channel h, mode n) one complex state x = p + i·q (``spiking_ssm.md`` §8.1); the rotation is
the same code as C-SiLIF's and RF's (:func:`.neuron_resonate.rotate`). The layer outputs its
states as graded values (the kind declares ``output="states"``): the readout y = 2·Re(C′x) + D·u
is a graded Dense over them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from silif_deploy.hw_models.fixed_point import overflow, tz_mul
from silif_deploy.hw_models.neuron_resonate import rotate


class S4dParams(NamedTuple):
    """Integer parameters of an S4D layer (arrays hold one entry per complex state).

    λ = λr + i·λi as k/2^F integers (F = ``frac_bits``), g the input gain (k/2^F, |g| ≤ 1), bias
    the folded pre-norm BatchNorm offset (0 without), A_t = a_t << ``input_shift``, a_t the value
    the state reads (its channel's residual-stream value)::

        p_t = ovf( tz(λr·p_{t−1}, F) − tz(λi·q_{t−1}, F) + tz(g·(A_t + bias), F) )
        q_t = ovf( tz(λi·p_{t−1}, F) + tz(λr·q_{t−1}, F) )

    No threshold, no spike, no reset. ``mode`` is the overflow rule (0 wrap, 1 saturate) of a
    ``2·half``-wide state. Output: the graded values (p_t[0 … N−1], q_t[0 … N−1]).
    """

    lam_re: np.ndarray
    lam_im: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    frac_bits: int
    input_shift: int
    half: int
    mode: int


DIAGNOSTICS = (
    ("lambda_zero", "λ rounded to 0 (memoryless)"),
    ("lambda_unit_or_more", "|λ| rounded to ≥ 1 (an integrator: no decay)"),
    ("gain_zeroed", "input gain below ½ LSB, held at 1 (the state runs above its calibrated scale)"),
)
"""The quantizer's counts of states whose dynamics rounding changed in kind, with the warning each implies
(a gain is never rounded to 0: a deaf state would silence its mode, a gain of 1 keeps it, larger)."""


@njit(inline="always", cache=True)
def s4d_state(a_in, x, s, p, n):
    """One step of state ``n``: column n of the states ``x`` = (p, q) to (p_t, q_t); returns
    ``(0, overflow events)`` (no spike: the states are the output)."""
    f = p.frac_bits
    drive = tz_mul(p.gain[n], (a_in << p.input_shift) + p.bias[n], f)
    rot_p, rot_q = rotate(p.lam_re[n], p.lam_im[n], x[0, n], x[1, n], f)
    p_new, op = overflow(rot_p + drive, p.mode, p.half)
    q_new, oq = overflow(rot_q, p.mode, p.half)
    x[0, n], x[1, n] = p_new, q_new
    return 0, op + oq


class HeavisideParams(NamedTuple):
    """Integer parameters of binary S4D's spike (``spiking_ssm.md`` §8.5): a stateless comparator.

    With A_t = a_t << ``input_shift``::

        y_t = A_t + bias
        s_t = y_t > threshold          # the reconstruction's [y ≥ 0] is threshold = −1

    y is recorded as the kind's one state but never read back: no buffer, no memory, no reset.
    """

    bias: np.ndarray
    threshold: int
    input_shift: int


@njit(inline="always", cache=True)
def heaviside_neuron(a_in, x, s, p, n):
    """One step of neuron ``n``: writes y_t to column n of ``x``; returns ``(s_t, 0)``."""
    y = (a_in << p.input_shift) + p.bias[n]
    x[0, n] = y
    return (1 if y > p.threshold else 0), 0
