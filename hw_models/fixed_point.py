"""Integer primitives of Loihi-style arithmetic, shared by every fixed-point neuron.

All are scalar functions compiled with numba (``inline="always"``) so that the simulator's
per-neuron loops and the Lava process models run the same code. States are Python/numpy ints
held in int64; a state of ``bits`` bits lives in [−(2^(bits−1) − 1), 2^(bits−1) − 1] when it
saturates and in (−2^(bits−1), 2^(bits−1)] when it wraps (Lava's LIF current convention).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.extending import overload

WRAP = 0
SATURATE = 1
OVERFLOW_CODES = {"wrap": WRAP, "saturate": SATURATE}


@njit(inline="always", cache=True)
def tz_shift(x: int, k: int) -> int:
    """x / 2^k truncated toward zero (sign-magnitude shift, as Loihi decays): tz(x, k) = sign(x)·(|x| >> k).

    Computed without a branch, so loops over neurons vectorize: for x < 0, adding 2^k − 1 before
    the arithmetic (floor) shift turns the floor into a ceiling, i.e. truncation toward zero.
    """
    return (x + ((x >> 63) & ((1 << k) - 1))) >> k


@njit(inline="always", cache=True)
def tz_mul(coef: int, x: int, k: int) -> int:
    """coef·x / 2^k truncated toward zero: the product of a k-fraction-bit coefficient with a state."""
    return tz_shift(coef * x, k)


@njit(inline="always", cache=True)
def shift_left(x: int, k: int) -> int:
    """x·2^k for k ≥ 0, floor(x / 2^−k) for k < 0 (an arithmetic shift, as Lava Dense's weight_exp)."""
    return x << k if k >= 0 else x >> (-k)


@njit(inline="always", cache=True)
def wrap(x: int, half: int) -> int:
    """Two's-complement wrap into (−half, half], half = 2^(bits−1) (Lava LIF's u convention).

    (x + half − 1) mod 2^bits is a bit mask because 2·half is a power of two: no division and no
    branch, so loops over neurons vectorize.
    """
    return ((x + half - 1) & (2 * half - 1)) - half + 1


@njit(inline="always", cache=True)
def saturate(x: int, limit: int) -> int:
    """Clip into [−limit, limit], limit = 2^(bits−1) − 1 (Lava LIF's v convention)."""
    return limit if x > limit else (-limit if x < -limit else x)


@njit(inline="always", cache=True)
def overflow(x: int, mode: int, half: int) -> tuple[int, int]:
    """Apply a state's overflow rule; return (value, 1 if the rule changed it else 0).

    Both rules are computed and one is kept through a mask, without a branch: a layer's mode is a
    run-time value, and a branch on it kept loops over neurons from vectorizing (twice as slow).
    """
    keep_wrap = -np.int64(mode == WRAP)  # all ones to keep the wrapped value, else zero
    y = (wrap(x, half) & keep_wrap) | (saturate(x, half - 1) & ~keep_wrap)
    return y, 1 if y != x else 0


def as_state(value: int, x: np.ndarray) -> int:
    """``value`` in the element type of the state array ``x`` (compiled code only).

    For a value known to lie within twice a state's range (a state minus the threshold): the
    simulator holds bounded states in int32 only where twice their range fits (see
    :mod:`.neuron_loops`), so the cast is exact there and the identity elsewhere. A product of two
    values held in int32 is one native multiply where a full int64 product is emulated with three.
    """
    raise TypeError("as_state is only callable from numba-compiled code")


@overload(as_state, inline="always")
def _as_state(value, x):
    held = x.dtype
    return lambda value, x: held(value)
