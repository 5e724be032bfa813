"""Lava's bit-accurate Dense synapse (``PyDenseModelBitAcc``), batched over samples and time.

Per step, with integer weights W (out × in) stored as Lava keeps them::

    acc   = Σ_j W[:, j]·x_j     graded payload (num_message_bits > 0), used as-is
          = Σ_{j: x_j ≠ 0} W[:, j]   binary spikes (any non-zero counts as 1)
    a_out = acc << weight_exp   (weight_exp < 0: arithmetic shift right, i.e. floor)

Dense sends the accumulation of the previous step: the neuron input at step t is f(x_{t−1}).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# float32 adds integers exactly while every partial sum stays below 2^24; float64 below 2^53.
_FLOAT32_EXACT = 1 << 24
_FLOAT64_EXACT = 1 << 53


@dataclass
class DenseSynapse:
    """Integer Dense synapse: ``weights`` (out × in) on the grid of :func:`weight_grid`, so that
    Lava's own weight truncation leaves them unchanged."""

    weights: np.ndarray
    weight_exp: int
    num_weight_bits: int
    graded: bool

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


def accumulate(x: np.ndarray, syn: DenseSynapse) -> np.ndarray:
    """a_out for every (sample, step): x (batch, time, in) → (batch, time, out) int64, no delay.

    Why a floating-point GEMM is exact here: the operands are integers, and the bound on the
    largest partial sum (Σ_j |x_j| · max|W|) is checked first; below 2^24 float32 is exact, below
    2^53 float64 is, whatever the summation order.
    """
    values = x if syn.graded else (x != 0)
    max_w = int(np.abs(syn.weights).max(initial=0))
    flat = values.reshape(-1, values.shape[-1])
    bound = int(np.abs(flat).sum(axis=1).max(initial=0)) * max_w
    if bound < _FLOAT32_EXACT:
        acc = flat.astype(np.float32) @ syn.weights.T.astype(np.float32)
    elif bound < _FLOAT64_EXACT:
        acc = flat.astype(np.float64) @ syn.weights.T.astype(np.float64)
    else:  # pragma: no cover - needs payloads beyond 2^45
        acc = flat.astype(object) @ syn.weights.T.astype(object)
    acc = acc.astype(np.int64).reshape(values.shape[:-1] + (syn.fan_out,))
    return acc << syn.weight_exp if syn.weight_exp >= 0 else acc >> (-syn.weight_exp)


def delayed(a: np.ndarray) -> np.ndarray:
    """Shift (batch, time, n) one step later along time: Dense delivers at t what it computed at t − 1."""
    out = np.zeros_like(a)
    out[:, 1:] = a[:, :-1]
    return out
