"""Integer primitives of Loihi-style arithmetic, shared by every fixed-point neuron.

All are scalar functions compiled with numba and inlined, so that the simulator's per-neuron
loops and the Lava process models run the same code. A state of ``bits`` bits lives in
[−(2^(bits−1) − 1), 2^(bits−1) − 1] when it saturates and in (−2^(bits−1), 2^(bits−1)] when it
wraps (Lava's LIF current convention).

Each rule has one definition, compiled for the width of the values it is given. Python and numpy
ints (what Lava's process models pass) are computed in int64. Values held in int32 (where the
simulator proves that every value a layer's kernel computes fits: :mod:`.neuron_loops`) are
computed with 32-bit operations only, the same integers: AVX2 has 8 int32 lanes where it has 4
int64 ones, and for int64 it lacks an arithmetic shift, a minimum and a full multiply (each
emulated with 3–5 instructions). numba widens every integer operation on int32 to 64 bits, so
the int32 forms are written with the 32-bit instructions themselves (:func:`_op32`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

WRAP = 0
SATURATE = 1
OVERFLOW_CODES = {"wrap": WRAP, "saturate": SATURATE}

def _op32(emit):
    """A numba intrinsic (int32, int32) -> int32 that emits ``emit(builder, a, b)``: one 32-bit LLVM
    instruction (two's-complement wrap-around, which the callers' bounds rule out)."""

    @intrinsic
    def op(typingctx, a, b):
        if a != types.int32 or b != types.int32:
            return None
        return types.int32(types.int32, types.int32), lambda context, builder, sig, args: emit(builder, *args)

    return op


_add = _op32(lambda b, x, y: b.add(x, y))
_sub = _op32(lambda b, x, y: b.sub(x, y))
_mul = _op32(lambda b, x, y: b.mul(x, y))
_and = _op32(lambda b, x, y: b.and_(x, y))
_or = _op32(lambda b, x, y: b.or_(x, y))
_xor = _op32(lambda b, x, y: b.xor(x, y))
_shr = _op32(lambda b, x, y: b.ashr(x, y))  # arithmetic (floor) shift, 0 <= y < 32
_shl = _op32(lambda b, x, y: b.shl(x, y))
_min = _op32(lambda b, x, y: b.select(b.icmp_signed("<", x, y), x, y))
_max = _op32(lambda b, x, y: b.select(b.icmp_signed(">", x, y), x, y))
_ONE, _SIGN = np.int32(1), np.int32(31)


def _narrow(*values) -> bool:
    """Whether every value is held in int32 (the compiled form to take)."""
    return all(v == types.int32 for v in values)


def tz_shift(x: int, k: int) -> int:
    """x / 2^k truncated toward zero (sign-magnitude shift, as Loihi decays): tz(x, k) = sign(x)·(|x| >> k)."""
    return -((-x) >> k) if x < 0 else x >> k


@overload(tz_shift, inline="always")
def _tz_shift(x, k):
    if _narrow(x):
        def tz_shift32(x, k):
            k32 = np.int32(k)
            return _shr(_add(x, _and(_shr(x, _SIGN), _sub(_shl(_ONE, k32), _ONE))), k32)
        return tz_shift32

    # Without a branch, so loops over neurons vectorize: for x < 0, adding 2^k − 1 before the
    # arithmetic (floor) shift turns the floor into a ceiling, i.e. truncation toward zero.
    return lambda x, k: (x + ((x >> 63) & ((1 << k) - 1))) >> k


def tz_mul(coef: int, x: int, k: int) -> int:
    """coef·x / 2^k truncated toward zero: the product of a k-fraction-bit coefficient (|coef| ≤ 2^k)
    with a state. The coefficient comes first: the int32 form relies on its bound."""
    return tz_shift(coef * x, k)


@overload(tz_mul, inline="always")
def _tz_mul(coef, x, k):
    if _narrow(coef, x):
        def tz_mul32(coef, x, k):
            # |x| = h·2^k + l: tz(c·x) = sign(c·x)·(|c|·h + (|c|·l >> k)), exactly, with |c|·h ≤ |x|
            # and |c|·l < 2^2k, so both products fit int32 for |c| ≤ 2^k, k ≤ 15 and |x| + 2^k < 2^31
            k32 = np.int32(k)
            sx, sc = _shr(x, _SIGN), _shr(coef, _SIGN)
            ax, ac = _sub(_xor(x, sx), sx), _sub(_xor(coef, sc), sc)
            low = _and(ax, _sub(_shl(_ONE, k32), _ONE))
            r = _add(_mul(ac, _shr(ax, k32)), _shr(_mul(ac, low), k32))
            negative = _shr(_xor(coef, x), _SIGN)  # all ones when the signs differ
            return _sub(_xor(r, negative), negative)
        return tz_mul32
    return lambda coef, x, k: _tz_mul64(coef, x, k)


def shift_left(x: int, k: int) -> int:
    """x·2^k for k ≥ 0, floor(x / 2^−k) for k < 0 (an arithmetic shift, as Lava Dense's weight_exp)."""
    return x << k if k >= 0 else x >> (-k)


@overload(shift_left, inline="always")
def _shift_left(x, k):
    # Without a branch (numba's inliner mis-scopes one inside an overload): a left shift by k⁺ and
    # an arithmetic right shift by k⁻, where k⁺ = max(k, 0) and k⁻ = max(−k, 0) are bit masks.
    if _narrow(x):
        def shift_left32(x, k):
            up, down = k & ~(k >> 63), -k & ~(-k >> 63)
            return _shr(_shl(x, np.int32(up)), np.int32(down))
        return shift_left32
    return lambda x, k: (x << (k & ~(k >> 63))) >> (-k & ~(-k >> 63))


def wrap(x: int, half: int) -> int:
    """Two's-complement wrap into (−half, half], half = 2^(bits−1) (Lava LIF's u convention)."""
    return ((x + half - 1) & (2 * half - 1)) - half + 1


@overload(wrap, inline="always")
def _wrap(x, half):
    # (x + half − 1) mod 2^bits is a bit mask because 2·half is a power of two: no division and no
    # branch, so loops over neurons vectorize
    if _narrow(x):
        def wrap32(x, half):
            h = np.int32(half)
            return _add(_sub(_and(_add(x, _sub(h, _ONE)), _sub(_add(h, h), _ONE)), h), _ONE)
        return wrap32
    return lambda x, half: _wrap64(x, half)


def saturate(x: int, limit: int) -> int:
    """Clip into [−limit, limit], limit = 2^(bits−1) − 1 (Lava LIF's v convention)."""
    return limit if x > limit else (-limit if x < -limit else x)


@overload(saturate, inline="always")
def _saturate(x, limit):
    if _narrow(x):
        def saturate32(x, limit):
            lim = np.int32(limit)
            return _max(_min(x, lim), _sub(np.int32(0), lim))
        return saturate32
    return lambda x, limit: _saturate64(x, limit)


# The int64 forms that are the rules' own Python bodies, compiled (one definition each)
_tz_mul64, _wrap64, _saturate64 = (njit(inline="always")(rule) for rule in (tz_mul, wrap, saturate))


def overflow(x: int, mode: int, half: int) -> tuple[int, int]:
    """Apply a state's overflow rule; return (value, 1 if the rule changed it else 0)."""
    y = wrap(x, half) if mode == WRAP else saturate(x, half - 1)
    return y, int(y != x)


@overload(overflow, inline="always")
def _overflow(x, mode, half):
    # Both rules are computed and one is kept through a mask, without a branch: a layer's mode is a
    # run-time value, and a branch on it kept loops over neurons from vectorizing (twice as slow).
    if _narrow(x):
        def overflow32(x, mode, half):
            keep_wrap = np.int32(-np.int32(mode == WRAP))
            y = _or(_and(wrap(x, half), keep_wrap), _and(saturate(x, half - 1), _xor(keep_wrap, np.int32(-1))))
            return y, np.int32(y != x)
        return overflow32

    def overflow64(x, mode, half):
        keep_wrap = -np.int64(mode == WRAP)  # all ones to keep the wrapped value, else zero
        y = (wrap(x, half) & keep_wrap) | (saturate(x, half - 1) & ~keep_wrap)
        return y, np.int64(y != x)
    return overflow64


def as_state(value: int, x: np.ndarray) -> int:
    """``value`` in the element type of the state array ``x`` (compiled code only).

    For a value within the bound the simulator proves before it holds a layer's states in int32
    (the kind's ``span``: :mod:`.neuron_loops`): the cast is exact there and the identity
    elsewhere. Cast, a value takes the int32 forms of the rules above.
    """
    raise TypeError("as_state is only callable from numba-compiled code")


@overload(as_state, inline="always")
def _as_state(value, x):
    held = x.dtype
    return lambda value, x: held(value)


def wide(record):
    """A parameter record (a NamedTuple) with every array in int64: the rules then take their int64
    forms whatever width the arrays were built in (only the simulator's proven layers hold int32)."""
    return type(record)(*(np.asarray(v, np.int64) if isinstance(v, np.ndarray) else v for v in record))
