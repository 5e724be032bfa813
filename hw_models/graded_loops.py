"""Batched loops of the graded-value stages: a Dense read by a graded stage, a neuron stage reading
graded values, the GLU.

Stages talk through the event lists of :mod:`.neuron_loops` (per (sample, step) the non-zero
values and their indices), so a graded stage and a spiking one plug into each other; the values
are int64. Each loop runs one stage over a chunk of samples for every step its output holds;
steps beyond an input list's length are silent. The integer rules are those of the stages'
docstrings (:mod:`.network`) and the kinds' kernels, called here as in the fused layer loop.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from silif_deploy.hw_models.fixed_point import shift_left
from silif_deploy.hw_models.glu import SIGMOID_TABLE, glu_value
from silif_deploy.hw_models.neuron_loops import Events, Recording, _cached, neuron_update, record


@njit(inline="always")
def _emit(values, out_index, out_value, b, t):
    """Write the non-zero ``values`` as the event list of (b, t); return their count."""
    k = 0
    for n in range(values.shape[0]):
        if values[n] != 0:
            out_index[b, t, k] = n
            out_value[b, t, k] = values[n]
            k += 1
    return k


@_cached  # the on-disk cache keyed by the integer primitives' sources too (neuron_loops)
@njit(nogil=True)
def _dense_values(pre_index, pre_count, pre_value, w_t, exps, out_index, out_count, out_value):
    n_batch, n_steps = out_count.shape
    n_out = w_t.shape[1]
    acc = np.zeros(n_out, np.int64)
    a = np.zeros(n_out, np.int64)
    for b in range(n_batch):
        acc[:] = 0  # the accumulation of the previous step (none before step 0)
        for t in range(n_steps):
            for n in range(n_out):
                a[n] = shift_left(acc[n], exps[n])
            out_count[b, t] = _emit(a, out_index, out_value, b, t)
            acc[:] = 0
            if t < pre_count.shape[1]:
                for k in range(pre_count[b, t]):
                    w = w_t[pre_index[b, t, k]]
                    v = 1 if pre_value is None else pre_value[b, t, k]
                    for n in range(n_out):
                        acc[n] += v * w[n]


def dense_values(pre: Events, w_t: np.ndarray, exps: np.ndarray, graded: bool, out: Events) -> Events:
    """A Dense as a stage of its own: ``out`` (int64 values) gets a_t = (Σ_j W[:, j]·x_j(t − 1))
    << exps (per row); ``w_t`` (fan_in, fan_out) int64; binary: any event counts as 1."""
    _dense_values(pre.index, pre.count, pre.value if graded else None, w_t, exps, out.index, out.count, out.value)
    return out


@_cached
@njit(nogil=True)
def _neuron_values(pre_index, pre_count, pre_value, n_src, n, start, params,
                   out_index, out_count, out_value, b0, offset, spikes, rec_states, overflow_events):
    n_batch, n_steps = out_count.shape
    k = len(rec_states)
    fan = n // n_src  # neuron i reads source value i // fan: kron(I, 1_fan)
    src = np.zeros(n_src, np.int64)
    for b in range(n_batch):
        x = np.zeros((k, n), np.int64)
        s = np.zeros(n, np.int64)
        events = 0
        for t in range(n_steps):
            src[:] = 0
            if t < pre_count.shape[1]:
                for e in range(pre_count[b, t]):
                    src[pre_index[b, t, e]] = 1 if pre_value is None else pre_value[b, t, e]
            if t >= start:  # idle (zero state, no output) before the stage's delay
                for i in range(n):
                    s[i], ov = neuron_update(src[i // fan], x, s[i], params, i)
                    events += ov
            c = 0
            if out_value is not None:  # the states as values (numba prunes the branch by type): j·n + i
                for j in range(k):
                    for i in range(n):
                        if x[j, i] != 0:
                            out_index[b, t, c] = j * n + i
                            out_value[b, t, c] = x[j, i]
                            c += 1
            else:
                for i in range(n):
                    out_index[b, t, c] = i
                    c += s[i]
            out_count[b, t] = c
            record(spikes, rec_states, s, x, b0 + b, t - offset)
        overflow_events[b0 + b] = events


def neuron_values(pre: Events, n_src: int, n: int, start: int, params, graded_out: bool, out: Events,
                  recording: Recording, b0: int) -> Events:
    """A neuron stage reading a stage's values directly (no Dense, no delay): neuron i of ``n``
    gets value i // (n / n_src) of step t. ``out`` gets its spikes, or (``graded_out``) its k
    states as k·n values; ``recording`` as in :func:`.neuron_loops.run_layer`."""
    _neuron_values(pre.index, pre.count, pre.value, n_src, n, start, params, out.index, out.count,
                   out.value if graded_out else None, b0, recording.offset, recording.spikes, tuple(recording.states), recording.overflow_events)
    return out


@_cached
@njit(nogil=True)
def _glu_values(pre_index, pre_count, pre_value, h, params, table, out_index, out_count, out_value, overflow_events):
    n_batch, n_steps = out_count.shape
    v = np.zeros(2 * h, np.int64)
    z = np.zeros(h, np.int64)
    for b in range(n_batch):
        events = 0
        for t in range(n_steps):
            v[:] = 0
            if t < pre_count.shape[1]:
                for e in range(pre_count[b, t]):
                    v[pre_index[b, t, e]] = 1 if pre_value is None else pre_value[b, t, e]
            for i in range(h):
                z[i], ov = glu_value(v, h, i, params, table)
                events += ov
            out_count[b, t] = _emit(z, out_index, out_value, b, t)
        overflow_events[b] = events


def glu_values(pre: Events, h: int, params, out: Events, overflow_events: np.ndarray | None = None) -> Events:
    """z_t = a_t·σ(g_t) over the 2h values of step t (:class:`.glu.GluParams`); ``overflow_events``
    (batch,) int64, when given, receives each sample's count of products the overflow rule changed."""
    if overflow_events is None:
        overflow_events = np.zeros(out.count.shape[0], np.int64)
    _glu_values(pre.index, pre.count, pre.value, h, params, SIGMOID_TABLE, out.index, out.count, out.value,
                overflow_events)
    return out
