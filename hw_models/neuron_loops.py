"""Batched time loops over a neuron kind's kernel, compiled once per kernel with numba.

Each sample is independent (no state crosses samples), so samples run in parallel threads;
inside a sample the loop is time-major, as the hardware steps every neuron once per step.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit, prange

from silif_deploy.hw_models.neuron_kinds import KINDS


def _make_runner(kernel: Callable) -> Callable:
    @njit(parallel=True, cache=True)
    def run(a_seq, params, x1, x2, s, spikes, rec_x1, rec_x2, record, overflow_events):
        """a_seq (B, T, N) int64 → spikes (B, T, N) uint8; x1, x2, s (B, N) updated in place."""
        n_batch, n_steps, n_neurons = a_seq.shape
        for b in prange(n_batch):
            events = 0
            for t in range(n_steps):
                for n in range(n_neurons):
                    sp, v1, v2, ov = kernel(a_seq[b, t, n], x1[b, n], x2[b, n], s[b, n], params, n)
                    x1[b, n] = v1
                    x2[b, n] = v2
                    s[b, n] = sp
                    spikes[b, t, n] = sp
                    events += ov
                    if record:
                        rec_x1[b, t, n] = v1
                        rec_x2[b, t, n] = v2
            overflow_events[b] = events

    return run


_RUNNERS = {kernel: _make_runner(kernel) for kernel in {k.kernel for k in KINDS.values()}}


def run_layer(kind: str, a_seq: np.ndarray, params, record: bool = False):
    """Run one layer over (batch, time, neurons) inputs from zero state.

    Returns (spikes uint8 (B, T, N), x1 and x2 trajectories or None, overflow events per sample).
    """
    n_batch, n_steps, n_neurons = a_seq.shape
    x1 = np.zeros((n_batch, n_neurons), np.int64)
    x2 = np.zeros_like(x1)
    s = np.zeros_like(x1)
    spikes = np.zeros(a_seq.shape, np.uint8)
    rec_shape = a_seq.shape if record else (1, 1, 1)
    rec_x1 = np.zeros(rec_shape, np.int64)
    rec_x2 = np.zeros(rec_shape, np.int64)
    events = np.zeros(n_batch, np.int64)
    _RUNNERS[KINDS[kind].kernel](
        np.ascontiguousarray(a_seq, np.int64), params, x1, x2, s, spikes, rec_x1, rec_x2, record, events
    )
    return spikes, (rec_x1 if record else None), (rec_x2 if record else None), events
