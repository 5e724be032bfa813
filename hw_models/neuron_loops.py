"""Batched layer loops: Lava's Dense and a neuron kind's kernel fused, compiled once per kernel.

One call runs one layer over a batch: for every sample (in parallel threads: samples share no
state) and every step, the neurons receive what the Dense accumulated from the presynaptic values
of the previous step, then the Dense accumulates this step's values for the next one. Fusing the
two keeps the per-sample working set to a few rows (no (batch, time, neurons) int64 current array),
and the accumulation is event-driven: only non-zero presynaptic values touch the weights.

Why this is exact: the accumulation is integer arithmetic (Lava sums in integers too) in int32
when the largest possible sum, fan-in × max|weight| × max|payload|, is below 2^31 (twice the SIMD
lanes of int64), else in int64; the sum is shifted by the weight exponent once per step after summation (floor for negative
exponents), as ``PyDenseModelBitAcc`` does, and the neuron kernel is the kind's single definition.
The summation order does not matter for integers.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit, prange

from silif_deploy.hw_models.fixed_point import shift_left
from silif_deploy.hw_models.neuron_kinds import KINDS


def _make_runner(kernel: Callable) -> Callable:
    # A closure per kernel lets numba inline the kernel into the loop. numba cannot cache closures
    # on disk, so each process compiles the kinds it uses once (about a second each).
    @njit(parallel=True, cache=False)
    def run(pre, w_t, weight_exp, graded, start, params, acc_rows, spikes, rec_x1, rec_x2, record, overflow_events):
        n_batch, n_steps, n_in = pre.shape
        n_out = w_t.shape[1]
        for b in prange(n_batch):
            acc = acc_rows[b]  # the Dense accumulation of the previous step
            x1 = np.zeros(n_out, np.int64)
            x2 = np.zeros(n_out, np.int64)
            s = np.zeros(n_out, np.int64)
            events = 0
            for t in range(n_steps):
                if t >= start:  # the layer idles (zero state, no spikes) until its first input can arrive
                    for n in range(n_out):
                        a_in = shift_left(np.int64(acc[n]), weight_exp)  # widen first: the shift may leave int32
                        sp, x1[n], x2[n], ov = kernel(a_in, x1[n], x2[n], s[n], params, n)
                        s[n] = sp
                        spikes[b, t, n] = sp
                        events += ov
                    if record:
                        rec_x1[b, t, :] = x1
                        rec_x2[b, t, :] = x2
                acc[:] = 0
                for j in range(n_in):
                    value = pre[b, t, j]
                    if value != 0:
                        if graded:
                            for n in range(n_out):
                                acc[n] += value * w_t[j, n]
                        else:  # binary spikes: any non-zero value counts as 1
                            for n in range(n_out):
                                acc[n] += w_t[j, n]
            overflow_events[b] = events

    return run


_RUNNERS = {kernel: _make_runner(kernel) for kernel in {k.kernel for k in KINDS.values()}}


def run_layer(layer, pre: np.ndarray, start: int, record: bool = False):
    """Run a :class:`~silif_deploy.hw_models.network.FixedLayer` over presynaptic values.

    ``pre`` (batch, steps, fan_in): integer payloads (graded synapse) or spikes. The neurons idle
    until step index ``start``. Returns (spikes uint8 (B, T, N), x1 and x2 trajectories or None,
    overflow events per sample).
    """
    syn = layer.synapse
    n_batch, n_steps, _ = pre.shape
    shape = (n_batch, n_steps, syn.fan_out)
    spikes = np.zeros(shape, np.uint8)
    rec_x1 = np.zeros(shape if record else (1, 1, 1), np.int64)
    rec_x2 = np.zeros_like(rec_x1)
    events = np.zeros(n_batch, np.int64)
    # Weights are read once per presynaptic event: the narrowest exact types keep them in cache.
    max_w = int(np.abs(syn.weights).max(initial=0))
    max_payload = int(np.abs(pre).max(initial=0)) if syn.graded else 1
    w_type = np.int16 if max_w < (1 << 15) else np.int32
    acc_type = np.int32 if syn.fan_in * max_w * max_payload < (1 << 31) else np.int64
    _RUNNERS[KINDS[layer.kind].kernel](
        np.ascontiguousarray(pre), np.ascontiguousarray(syn.weights.T, dtype=w_type), syn.weight_exp,
        syn.graded, start, layer.params, np.zeros((n_batch, syn.fan_out), acc_type),
        spikes, rec_x1, rec_x2, record, events,
    )
    return spikes, (rec_x1 if record else None), (rec_x2 if record else None), events
