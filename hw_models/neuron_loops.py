"""Batched layer loops: Lava's Dense and a neuron kind's kernel fused in one compiled loop.

Layers talk through *event lists*: for every (sample, step), the indices of the non-zero
presynaptic values (and the values themselves for graded input), ``count`` of them. A layer call
runs one layer over a chunk of samples. Per sample and step, the neurons receive what the Dense
accumulated from the previous step's events, then the Dense accumulates this step's events for the
next one, and the layer writes its own spikes as the next layer's event list. Per sample, only a
few rows live at a time (no (batch, time, neurons) current array), and the work is event-driven: a
silent presynaptic neuron costs nothing, a spike costs one pass over a weight row (the spec's
≈8 M synaptic adds per SSC sample, against ≈105 M multiply-adds for dense products).

The loop is compiled per kernel and argument types, releases the GIL (the simulator runs chunks in
threads) and is cached on disk under a key that includes the kernels' sources.

Why this is exact:

- The accumulation is integer arithmetic, as Lava's (``PyDenseModelBitAcc``), so the summation
  order does not matter. It runs in int32 (twice the SIMD lanes of int64) when the largest sum the
  network allows, fan-in × max|weight| × largest payload, is below 2^31, else in int64; weights
  are held as int8 or int16 when they fit, after the power of two that divides all of a layer's
  weights moves into its exponent: Loihi 2's 8-bit weights are even (``loihi2.toml``), and their
  halves fit int8, so a spike streams half as many bytes of weight row. Σ w·x = 2^k·Σ (w/2^k)·x
  exactly, and the exponent shift of the sum (below) takes the 2^k. Both are checked per layer
  from the network, not the data.
  A step of a spike layer with at most ``narrow_rows`` = (2^15 − 1) // max|weight| spikes has every
  sum within int16, and is accumulated in int16 (twice the lanes again), then widened.
- The sum is shifted by the weight exponent once per step after summation (floor for negative
  exponents), as Lava does: in int64 (the shift may leave int32), or in int32 in a chunk whose
  bound (below) keeps the shifted sum inside it.
- The neuron update is the kind's single kernel, inlined, and its integer rules
  (:mod:`.fixed_point`) take the width of their operands. Where the kind declares a ``span`` and
  the layer's record keeps span·M within int32 (``_int32_acc_limit``: the half-range, threshold,
  biases and state-valued fields, and the largest input a_t << input_shift), a chunk of samples
  whose Dense sums are all within that bound (its largest payload times the largest row sum of
  |w|: ``PreparedLayer.narrow_for``) runs with the states, spikes and record (arrays and numbers)
  held in int32 and the int32 forms of the rules: 8 AVX2 lanes instead of 4, a native arithmetic
  shift, minimum and multiply (a SiLIF layer's neuron updates take about half the time). Another
  chunk runs in int64. The width changes no value: every value fits both, and the rules compute
  the same integers in both (``tests/test_int32_arithmetic.py``). Each width is a compiled loop of
  its own, compiled when a chunk first needs it.
- Input payloads are ``FixedPointNetwork.quantize_input`` evaluated per value in the same float64
  operations (round half to even, clip), so the lists hold exactly the values the source sends.
"""

from __future__ import annotations

import hashlib
import inspect
import pickle
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit
from numba.core.caching import FunctionCache
from numba.extending import overload

from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models import fixed_point, glu
from silif_deploy.hw_models.fixed_point import as_state, overflow, shift_left, wide
from silif_deploy.hw_models.neuron_kinds import KINDS

_INT32_LIMIT = 1 << 31
_INT16_LIMIT = 1 << 15


class Events(NamedTuple):
    """Per (sample, step): ``index[b, t, :count[b, t]]`` are the non-zero presynaptic neurons and
    ``value[b, t, k]`` their payloads. Without values (spikes, or any input to a binary synapse),
    every listed neuron counts as 1."""

    index: np.ndarray  # (batch, steps, capacity) int32
    count: np.ndarray  # (batch, steps) int32
    value: np.ndarray | None  # (batch, steps, capacity) int32 (int64 for payloads of 32+ bits)

    @classmethod
    def empty(cls, n_batch: int, n_steps: int, capacity: int, value_type: type | None = None) -> "Events":
        """A buffer for up to ``capacity`` events per (sample, step); filled by the loops below."""
        value = None if value_type is None else np.empty((n_batch, n_steps, capacity), value_type)
        return cls(np.empty((n_batch, n_steps, capacity), np.int32), np.empty((n_batch, n_steps), np.int32), value)

    def head(self, n_batch: int) -> "Events":
        """The first ``n_batch`` samples (a view: a chunk reuses one buffer)."""
        return Events(self.index[:n_batch], self.count[:n_batch], None if self.value is None else self.value[:n_batch])


class Recording(NamedTuple):
    """What a layer call keeps, for steps ``offset`` … ``offset + length − 1`` (zero while the layer
    idles): spikes (batch, length, N) uint8 (a bool array's uint8 view) and one trajectory
    (batch, length, N) int64 per state of the kind (``states[j]``: the kind's state j). A (1, 0, 1)
    array keeps nothing. ``overflow_events`` (batch,) receives each sample's count of values an
    overflow rule changed, over all steps."""

    offset: int
    spikes: np.ndarray
    states: tuple[np.ndarray, ...]
    overflow_events: np.ndarray


NOTHING = np.zeros((1, 0, 1), np.uint8)
NO_STATES = np.zeros((1, 0, 1), np.int64)


def payload_type(message_bits: int) -> type:
    """The narrowest integer type holding the input source's payloads (int32 multiplies vectorize
    twice as wide as int64)."""
    return np.int32 if message_bits < 32 else np.int64


@njit(cache=True, nogil=True)
def _input_events(x, scale, limit, out_index, out_count, out_value):
    """List the non-zero payloads round(x·scale) clipped to ±limit: numpy's float64 rint (half to
    even) and clip, value by value. Returns False on NaN."""
    n_batch, n_steps, n_in = x.shape
    for b in range(n_batch):
        for t in range(n_steps):
            k = 0
            for j in range(n_in):
                v = x[b, t, j]
                if v != 0:  # zero quantizes to zero: only non-zero values need the float path
                    q = np.rint(np.float64(v) * scale)
                    if q != q:
                        return False
                    q = min(max(q, -limit), limit)
                    if q != 0:
                        out_index[b, t, k] = j
                        out_value[b, t, k] = q
                        k += 1
            out_count[b, t] = k
    return True


def input_events(x: np.ndarray, input_frac_bits: int, message_bits: int, out: Events) -> Events:
    """Fill ``out`` (``Events.empty(..., payload_type(message_bits))``) with the payloads the input
    source sends for (batch, T, channels) ``x``: those of ``FixedPointNetwork.quantize_input``."""
    limit = float((1 << message_bits) - 1)
    if not _input_events(np.ascontiguousarray(x), 2.0**input_frac_bits, limit, out.index, out.count, out.value):
        raise SilifDeployError("the input contains NaN: clean or impute it before simulating")
    return out


@njit(inline="always")
def _accumulate(acc, index, value, count):
    """acc[index[k]] += value[k] (1 for spikes: ``value`` None) for the listed events."""
    for k in range(count):
        acc[index[k]] += 1 if value is None else value[k]


@njit(cache=True, nogil=True)
def _add_events(a_index, a_count, a_value, b_index, b_count, b_value, lag_a, lag_b, half, mode,
                out_index, out_count, out_value, overflow_events):
    n_batch, n_steps = out_count.shape
    acc = np.zeros(out_index.shape[2], np.int64)
    for b in range(n_batch):
        events = 0
        for t in range(n_steps):
            ta, tb = t - lag_a, t - lag_b
            if 0 <= ta < a_count.shape[1]:
                _accumulate(acc, a_index[b, ta], None if a_value is None else a_value[b, ta], a_count[b, ta])
            if 0 <= tb < b_count.shape[1]:
                _accumulate(acc, b_index[b, tb], None if b_value is None else b_value[b, tb], b_count[b, tb])
            k = 0
            for n in range(acc.shape[0]):
                if half != 0:
                    acc[n], ov = overflow(acc[n], mode, half)
                    events += ov
                if acc[n] != 0:
                    out_index[b, t, k] = n
                    out_value[b, t, k] = acc[n]
                    k += 1
                    acc[n] = 0
            out_count[b, t] = k
        overflow_events[b] = events


def add_events(a: Events, b: Events, out: Events, lag_a: int = 0, lag_b: int = 0, half: int = 0,
               mode: int = 0, overflow_events: np.ndarray | None = None) -> Events:
    """The element-wise sum of two event lists (a spike counts 1) as graded events in ``out``
    (``out.value``'s type holds the largest sum), list a held back ``lag_a`` steps and b ``lag_b``;
    steps beyond a list's length (or before 0) are silent. ``half`` 0: exact; else the overflow
    rule ``mode`` on a ``2·half``-wide value; ``overflow_events`` (batch,) int64, when given,
    receives each sample's count of sums the rule changed."""
    if overflow_events is None:
        overflow_events = np.zeros(out.count.shape[0], np.int64)
    _add_events(a.index, a.count, a.value, b.index, b.count, b.value, lag_a, lag_b, half, mode,
                out.index, out.count, out.value, overflow_events)
    return out


@njit(inline="always")
def _add_rows(acc, w_t, index, count):
    """acc += Σ_k w_t[index[k]]. Four rows per pass: a quarter of the loads and stores of acc."""
    k = 0
    while k + 4 <= count:
        w0, w1, w2, w3 = w_t[index[k]], w_t[index[k + 1]], w_t[index[k + 2]], w_t[index[k + 3]]
        for n in range(acc.shape[0]):
            acc[n] += (w0[n] + w1[n]) + (w2[n] + w3[n])
        k += 4
    for k in range(k, count):
        w = w_t[index[k]]
        for n in range(acc.shape[0]):
            acc[n] += w[n]


@njit(inline="always")
def _add_scaled_rows(acc, w_t, index, value, count):
    """acc += Σ_k value[k]·w_t[index[k]], four rows per pass."""
    k = 0
    while k + 4 <= count:
        w0, w1, w2, w3 = w_t[index[k]], w_t[index[k + 1]], w_t[index[k + 2]], w_t[index[k + 3]]
        v0, v1, v2, v3 = value[k], value[k + 1], value[k + 2], value[k + 3]
        for n in range(acc.shape[0]):
            acc[n] += (v0 * w0[n] + v1 * w1[n]) + (v2 * w2[n] + v3 * w3[n])
        k += 4
    for k in range(k, count):
        v, w = value[k], w_t[index[k]]
        for n in range(acc.shape[0]):
            acc[n] += v * w[n]


@njit(inline="always")
def record(spikes, rec_states, s, x, row, r):
    """Keep step ``r`` of sample ``row`` where it is recorded: the spikes ``s`` and each state row of ``x``."""
    if 0 <= r < spikes.shape[1]:
        for n in range(s.shape[0]):
            spikes[row, r, n] = s[n]
    for j in range(len(rec_states)):
        if 0 <= r < rec_states[j].shape[1]:
            rec_states[j][row, r, :] = x[j]


def neuron_update(a_in, x, s, params, n):
    """The kernel of the kind whose parameter record ``params`` is (compiled code only): numba
    picks it from the record's type when it compiles the caller."""
    raise TypeError("neuron_update is only callable from numba-compiled code")


@overload(neuron_update, inline="always")
def _neuron_update(a_in, x, s, params, n):
    kernel = {k.params_type: k.kernel for k in KINDS.values()}[params.instance_class]
    return lambda a_in, x, s, params, n: kernel(a_in, x, s, params, n)


def _in_package(obj) -> bool:
    """Whether ``obj`` (a kernel, a record type) is defined in this package, not, say, in a test family."""
    return obj.__module__.startswith("silif_deploy.")


class _KernelSources:
    """The source files of this package's kernels (each of its kinds', the integer primitives', the
    GLU's), read when asked. A kind defined elsewhere (a test family) is left out: its signatures
    are never cached, and the kernel in a signature is its record type's, so its source cannot
    change a cached one (with it, registering a family would recompile every cached signature)."""

    def __get__(self, obj, owner) -> list[str]:
        own = {inspect.getfile(k.kernel.py_func) for k in KINDS.values() if _in_package(k.kernel.py_func)}
        return sorted(own | {inspect.getfile(fixed_point), inspect.getfile(glu)})


class _KernelSourceCache(FunctionCache):
    """numba's on-disk cache, also keyed by the sources of the kernels compiled into the cached
    function: numba itself only checks the file the function is in, and a kernel edited elsewhere
    would otherwise run stale from the cache. Signatures with a kind defined outside this package
    (a test family) are compiled but not cached: the index entry would not load in a process that
    has not imported that kind."""

    _sources = _KernelSources()

    def _foreign(self, sig) -> bool:
        classes = {getattr(t, "instance_class", None) for t in getattr(sig, "args", sig)}
        return any(not _in_package(c) for c in classes if c is not None)

    def _index_key(self, sig, codegen):
        digest = hashlib.sha256(b"".join(Path(f).read_bytes() for f in self._sources)).hexdigest()
        return (*super()._index_key(sig, codegen), digest)

    def load_overload(self, sig, target_context):
        if self._foreign(sig):
            return None
        try:
            return super().load_overload(sig, target_context)
        except (ImportError, AttributeError, EOFError, pickle.UnpicklingError):
            # an index this process cannot read (written with a kind it lacks): start it afresh
            Path(self._cache_file._index_path).unlink(missing_ok=True)
            return None

    def save_overload(self, sig, data):
        if not self._foreign(sig):
            super().save_overload(sig, data)


def _cached(dispatcher):
    dispatcher._cache = _KernelSourceCache(dispatcher.py_func)  # what njit(cache=True) does, with our key
    return dispatcher


@_cached
@njit(nogil=True)  # the GIL is released: threads run chunks of samples side by side
def _run_layer(pre_index, pre_count, pre_value, w_t, weight_exp, acc_type, narrow_rows, state_type, start, params,
               out_index, out_count, b0, offset, spikes, rec_states, overflow_events):
    n_batch, n_steps = out_count.shape
    n_pre_steps = pre_count.shape[1]
    n_out = w_t.shape[1]
    k = len(rec_states)  # the kind's number of states (a compile-time constant: one loop per k)
    for b in range(n_batch):
        acc = np.zeros(n_out, acc_type.dtype)  # the Dense accumulation of the previous step
        acc16 = np.zeros(n_out, np.int16)
        x = np.zeros((k, n_out), state_type.dtype)  # int32 where the chunk's values are proven to fit
        s = np.zeros(n_out, np.int32)
        events = 0
        for t in range(n_steps):
            n_spikes = 0
            if t >= start:  # the layer idles (zero state, no spikes) until its first input can arrive
                step_events = as_state(0, x)  # counted in the states' width: an int64 sum would halve the lanes
                for n in range(n_out):  # no branch and no early exit: this loop vectorizes
                    a_in = shift_left(as_state(acc[n], x), weight_exp)
                    s[n], ov = neuron_update(a_in, x, s[n], params, n)
                    step_events = as_state(step_events + ov, x)
                events += step_events
                for n in range(n_out):  # the spikes as the next layer's event list, branch-free
                    out_index[b, t, n_spikes] = n
                    n_spikes += s[n]
                record(spikes, rec_states, s, x, b0 + b, t - offset)
            out_count[b, t] = n_spikes
            acc[:] = 0
            if t < n_pre_steps:
                # numba compiles the two cases apart (pre_value is None or an array): the spike
                # layers' loop carries no multiply
                if pre_value is None:
                    count = pre_count[b, t]
                    if count <= narrow_rows:  # the sums fit in int16: twice the lanes per add
                        acc16[:] = 0
                        _add_rows(acc16, w_t, pre_index[b, t], count)
                        for n in range(n_out):
                            acc[n] = acc16[n]
                    else:
                        _add_rows(acc, w_t, pre_index[b, t], count)
                else:
                    _add_scaled_rows(acc, w_t, pre_index[b, t], pre_value[b, t], pre_count[b, t])
        overflow_events[b0 + b] = events


class PreparedLayer(NamedTuple):
    """A layer with its weights transposed to (fan_in, fan_out) in the narrowest exact type, its
    accumulator type, its parameter record in int64 and, where the kind's span allows, in int32
    with the largest Dense sum under which a chunk runs in int32 arithmetic (module docstring)."""

    layer: object  # FixedLayer
    w_t: np.ndarray  # the weights over 2^k, transposed
    weight_exp: int  # the synapse's weight exponent + k
    acc_type: np.ndarray  # a zero of the accumulator's type: numba reads the type from it
    narrow_rows: int  # up to this many spikes in a step, their sums fit in int16
    row_sum: int  # the largest Σ_i |w_t[i, n]|: a Dense sum's bound per unit of payload
    acc_limit: int  # a chunk whose Dense sums are all within ±acc_limit runs in int32 (−1: none does)
    params: NamedTuple  # int64 arrays
    narrow_params: NamedTuple | None  # int32 arrays and numbers, where acc_limit ≥ 0

    @classmethod
    def of(cls, layer, max_payload: int) -> "PreparedLayer":
        """``max_payload``: the largest |value| the layer's input sends (1 for spikes)."""
        syn = layer.synapse
        weights, k = _common_power_of_two(syn.weights)
        max_w = int(np.abs(weights).max(initial=0))
        w_type = np.int8 if max_w < (1 << 7) else np.int16 if max_w < (1 << 15) else np.int32
        payload = max_payload if syn.graded else 1
        acc_type = np.int32 if syn.fan_in * max_w * payload < _INT32_LIMIT else np.int64
        narrow_rows = (_INT16_LIMIT - 1) // max(max_w, 1) if w_type != np.int32 and not syn.graded else 0
        p = layer.params
        acc_limit = _int32_acc_limit(KINDS[layer.kind], p, syn.weight_exp + k)
        narrow = None
        if acc_limit >= 0:  # the record's arrays and numbers in int32 too: every operand of the rules narrow
            narrow = type(p)(*(np.asarray(v, np.int32) if isinstance(v, np.ndarray) else np.int32(v) for v in p))
        return cls(layer, np.ascontiguousarray(weights.T, dtype=w_type), syn.weight_exp + k, np.zeros(1, acc_type),
                   narrow_rows, int(np.abs(weights).sum(axis=1).max(initial=0)), acc_limit, wide(p), narrow)

    def narrow_for(self, pre: "Events") -> bool:
        """Whether every Dense sum of this input chunk lies within ±``acc_limit`` (its largest
        payload times ``row_sum``): the chunk then runs in int32 arithmetic."""
        if self.acc_limit < 0:
            return False
        graded = self.layer.synapse.graded and pre.value is not None  # else every event counts 1
        peak = _peak_value(pre.value, pre.count) if graded else 1
        return self.row_sum * peak <= self.acc_limit


@njit(cache=True, nogil=True)
def _peak_value(value, count):
    """The largest |payload| of an event list."""
    peak = 0
    for b in range(count.shape[0]):
        for t in range(count.shape[1]):
            for j in range(count[b, t]):
                peak = max(peak, abs(np.int64(value[b, t, j])))
    return peak


def _int32_acc_limit(kind, p: NamedTuple, weight_exp: int) -> int:
    """The largest |Dense sum| under which every value the kernel computes fits int32, by the kind's
    ``span`` (:class:`~.neuron_kinds.NeuronKind`); −1 where the layer never runs in int32."""
    if not (kind.bounded and kind.span) or not 0 <= p.frac_bits <= 15 or p.input_shift < 0:
        return -1
    if any(np.abs(getattr(p, c)).max(initial=0) > 1 << p.frac_bits for c in kind.coefficients):
        return -1  # the artifact check refuses these; a network built in memory may hold them
    if any(isinstance(v, np.ndarray) and np.abs(v).max(initial=0) >= _INT32_LIMIT for v in p):
        return -1
    room = (_INT32_LIMIT - 1 - (1 << p.frac_bits)) // kind.span  # the largest M
    valued = [int(np.abs(getattr(p, f)).max(initial=0)) for f in ("bias", *kind.state_valued)]
    if max(p.half, abs(getattr(p, "threshold", 0)), *valued) > room:
        return -1
    a_max = room >> p.input_shift  # the largest |a_in|; the largest |acc| gives it after the weight exponent
    limit = a_max >> weight_exp if weight_exp >= 0 else a_max << -weight_exp
    return min(limit, _INT32_LIMIT - 1)  # acc itself is cast to int32


def _common_power_of_two(w: np.ndarray) -> tuple[np.ndarray, int]:
    """(w / 2^k, k) for the largest k (at most 16) with 2^k dividing every entry of ``w``."""
    nonzero = w[w != 0]
    if not nonzero.size:
        return w, 0
    low_bits = np.bitwise_or.reduce(nonzero & -nonzero)  # the lowest set bit of each, or-ed together
    k = min(int(low_bits & -low_bits).bit_length() - 1, 16)
    return w >> k, k


_INT32_STATES, _INT64_STATES = np.zeros(1, np.int32), np.zeros(1, np.int64)  # the states' type, as numba reads it


def run_layer(prepared: PreparedLayer, pre: Events, start: int, out: Events, recording: Recording, b0: int) -> Events:
    """Run a layer over a chunk of samples for as many steps as ``out`` holds; return ``out``
    filled with the layer's spikes.

    ``pre`` holds the presynaptic events (steps beyond its length are silent). The neurons idle
    until step index ``start``. Sample ``b`` of the chunk is sample ``b0 + b`` of ``recording``.
    """
    layer = prepared.layer
    narrow = prepared.narrow_for(pre)
    _run_layer(
        pre.index, pre.count, pre.value if layer.synapse.graded else None, prepared.w_t,
        prepared.weight_exp, prepared.acc_type, prepared.narrow_rows, _INT32_STATES if narrow else _INT64_STATES, start,
        prepared.narrow_params if narrow else prepared.params,
        out.index, out.count, b0,
        recording.offset, recording.spikes, tuple(recording.states), recording.overflow_events,
    )
    return out
