"""Lava's bit-accurate Dense synapse (``PyDenseModelBitAcc``): its parameters and weight format.

Per step, with integer weights W (out × in) stored as Lava keeps them::

    acc   = Σ_j W[:, j]·x_j     graded payload (num_message_bits > 0), used as-is
          = Σ_{j: x_j ≠ 0} W[:, j]   binary spikes (any non-zero counts as 1)
    a_out = acc << weight_exp   (weight_exp < 0: arithmetic shift right, i.e. floor)
    a_out[n] = acc[n] << (weight_exp + row_exp[n])   with per-row exponents (not Lava's Dense:
                                                     one Lava Dense per distinct exponent)

Dense sends the accumulation of the previous step: the neuron input at step t is f(x_{t−1}).
The simulator runs it fused with each layer's neurons (:mod:`.neuron_loops`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DenseSynapse:
    """Integer Dense synapse: ``weights`` (out × in) on the grid of :func:`weight_grid`, so that
    Lava's own weight truncation leaves them unchanged; ``row_exp`` (out,), if given, adds a
    per-row exponent to ``weight_exp`` (per-row scales of 8-bit weights, e.g. the S4D readout)."""

    weights: np.ndarray
    weight_exp: int
    num_weight_bits: int
    graded: bool
    row_exp: np.ndarray | None = None

    @property
    def exponents(self) -> np.ndarray:
        """Each row's total exponent, (out,) int64."""
        extra = 0 if self.row_exp is None else np.asarray(self.row_exp, np.int64)
        return np.broadcast_to(np.int64(self.weight_exp) + extra, (self.fan_out,)).astype(np.int64)

    @property
    def fan_in(self) -> int:
        return int(self.weights.shape[1])

    @property
    def fan_out(self) -> int:
        return int(self.weights.shape[0])


def weight_grid(num_weight_bits: int) -> tuple[int, int, int]:
    """(step, min, max) of legal integer weights.

    Up to 8 bits this is Lava Dense's MIXED sign mode: multiples of 2^(8 − bits + 1) in
    [−256, 255]. Wider weights (beyond Lava's Dense) are plain signed integers of that width.
    """
    if num_weight_bits <= 8:
        step = 1 << (8 - num_weight_bits + 1)
        return step, -256, 256 - step
    return 1, -(1 << (num_weight_bits - 1)), (1 << (num_weight_bits - 1)) - 1
