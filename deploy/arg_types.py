"""argparse ``type=`` helpers for numbers: a value out of range is one line naming the legal range.

argparse reports the ``ArgumentTypeError`` message as ``<prog>: error: argument --x: <message>``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, text: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def _ranged(kind: type, low: float | None, high: float | None, low_open: bool = False,
            high_open: bool = False) -> Callable[[str], int | float]:
    lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
    legal = " and ".join(part for part in (lo, hi) if part)

    def parse(text: str) -> int | float:
        value = _number(kind, text)
        if (low is not None and (value <= low if low_open else value < low)) or \
           (high is not None and (value >= high if high_open else value > high)):
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {legal}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in "invalid <name> value" messages
    return parse


positive_int = _ranged(int, 1, None)
"""An integer ≥ 1 (batch sizes, counts of layers, neurons, threads)."""
nonnegative_int = _ranged(int, 0, None)
positive_float = _ranged(float, 0, None, low_open=True)
"""A finite number > 0 (learning rates, durations)."""
nonnegative_float = _ranged(float, 0, None)
"""A finite number >= 0 (a budget: NaN would pass every comparison, inf any drop, a negative one no model)."""
fraction = _ranged(float, 0, 1, high_open=True)
"""A finite number in [0, 1) (dropout, validation share)."""
open_fraction = _ranged(float, 0, 1, low_open=True, high_open=True)
"""A finite number in (0, 1) (learning-rate decay factors)."""


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer ≥ ``low``."""
    return _ranged(int, low, None)  # type: ignore[return-value]
