"""synlif, hardware side: its integer parameter record (the hardware side's version replaces this
file at the merge: record, numba kernel and registration)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class SynLifParams(NamedTuple):
    alpha: np.ndarray
    gain: np.ndarray
    beta: np.ndarray
    bias: np.ndarray
    threshold: int
    frac_bits: int
    input_shift: int
    half: int
    i_mode: int
    v_mode: int
