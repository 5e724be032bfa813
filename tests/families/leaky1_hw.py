"""leaky1, hardware side: its integer parameter record (the hardware side's version replaces this
file at the merge: record, numba kernel and registration)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LeakyParams(NamedTuple):
    alpha: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    threshold: int
    frac_bits: int
    input_shift: int
    half: int
    mode: int
