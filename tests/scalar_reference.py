"""A slow scalar reference of the fixed-point network, written straight from the integer spec.

Sources: ``loihi_lava.md`` §2 (Dense delivers one step later), §3.1 (Dense), §3.2 (LIF),
``spiking_ssm.md`` §8 (S4D state, LIF soma, GLU), and the docstrings of
``hw_models/{neuron_adaptive,neuron_resonate,neuron_s4d,neuron_cuba,glu,dense,network,simulator}.py``.
Python ints only, one neuron and one step at a time, a Lava-style process loop (every Dense keeps
the accumulation of the previous step and sends it first), walking the network's stages in their
order (an Add sums its two sources' values of the same step). It shares no code with the
simulator: it reads a ``FixedPointNetwork``'s stages only as plain lists and ints, and takes from
the kind registry only how many states each kind declares and whether it sends spikes or states
(the GLU's sigmoid table is computed here again from its docstring).

Every arithmetic step is checked to stay inside the domain the spec is written for: Dense
outputs travel on Lava's int32 channel, and every product fits a 64-bit register (what Loihi's
microcode and the simulator's kernels compute in).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from silif_deploy.hw_models.neuron_kinds import KINDS  # only the number of states each kind declares

DECAY_ONE = 4096  # Lava LIF: 12-bit decays, unity = 2^12
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def tz(x: int, k: int) -> int:
    """Divide by 2^k truncating toward zero: sign(x)·(|x| >> k)."""
    _in_int64(x)
    magnitude = abs(x) >> k
    return magnitude if x >= 0 else -magnitude


def arithmetic_shift(x: int, e: int) -> int:
    """x << e for e ≥ 0, else x >> −e, which floors for negative x (Python's >> is arithmetic)."""
    return x << e if e >= 0 else x >> -e


def wrap(x: int, half: int) -> int:
    """Two's-complement wrap into (−half, half] (Lava LIF's u: u − 2^24 if u > 2^23, + 2^24 if u ≤ −2^23)."""
    r = x % (2 * half)  # in [0, 2·half)
    return r - 2 * half if r > half else r


def saturate(x: int, half: int) -> int:
    """Clip into [−(half − 1), half − 1]."""
    limit = half - 1
    return max(-limit, min(limit, x))


def _in_int64(x: int) -> None:
    if abs(x) > INT64_MAX:
        raise OverflowError(f"intermediate {x} does not fit 64 bits: outside the spec's domain")


@dataclass
class Events:
    """What overflow rules did, counted per (kind, state, rule); ``changed`` counts as the simulator's
    per-sample overflow events (a rule that changed the value)."""

    by_state: Counter = field(default_factory=Counter)

    def apply(self, x: int, rule: int, half: int, kind: str, state: str) -> int:
        y = wrap(x, half) if rule == 0 else saturate(x, half)
        if y != x:
            self.by_state[(kind, state, "wrap" if rule == 0 else "saturate")] += 1
        return y

    @property
    def changed(self) -> int:
        return sum(self.by_state.values())


# ------------------------------------------------------------------------------------ Dense


def lava_weights(rows: list[list[int]], num_weight_bits: int) -> list[list[int]]:
    """Dense weights as Lava keeps them (§3.1, sign mode MIXED as ``weight_grid`` states):
    clip to [−256, 255], then drop k = 8 − bits + 1 low bits (floor). Wider weights are plain ints."""
    if num_weight_bits > 8:
        limit = 2 ** (num_weight_bits - 1)
        assert all(-limit <= w < limit for row in rows for w in row), "weight outside its width"
        return rows
    k = 8 - num_weight_bits + 1
    return [[(max(-256, min(255, w)) >> k) << k for w in row] for row in rows]


class Dense:
    """Lava's ``PyDenseModelBitAcc`` per step: send the previous accumulation, then accumulate
    (row n shifted by weight_exp + row_exp[n] where the Dense has per-row exponents)."""

    def __init__(self, weights: list[list[int]], weight_exp: int, graded: bool, row_exp: list[int] | None = None):
        self.weights = weights
        self.exps = [weight_exp + (0 if row_exp is None else row_exp[n]) for n in range(len(weights))]
        self.graded = graded
        self.buffer = [0] * len(weights)

    def step(self, s_in: list[int]) -> list[int]:
        out = self.buffer
        acc = []
        for row, exp in zip(self.weights, self.exps):
            total = 0
            for w, s in zip(row, s_in):
                if self.graded:
                    total += w * s  # graded payload used as-is
                elif s != 0:
                    total += w  # any non-zero input counts as one spike
            a = arithmetic_shift(total, exp)
            if abs(a) > INT32_MAX:
                raise OverflowError(f"Dense output {a} exceeds Lava's int32 channel: outside the spec's domain")
            acc.append(a)
        self.buffer = acc
        return out


# ---------------------------------------------------------------------------------- neurons


def adaptive_step(a: int, x: list[int], s: int, p: dict, n: int, kind: str, ev: Events):
    """``AdaptiveParams``: w first (from u_{t−1}, s_{t−1}), then u from the new w."""
    u, w = x
    f, theta = p["frac_bits"], p["threshold"]
    w_new = tz(p["beta"][n] * w, f) + tz(p["a"][n] * u, f) + p["b_spike"][n] * s
    w_new = ev.apply(w_new, p["w_mode"], p["half"], kind, "w")
    drive = (a << p["input_shift"]) + p["bias"][n] - w_new
    u_new = tz(p["alpha"][n] * (u - theta * s), f) + tz(p["gain"][n] * drive, f)
    u_new = ev.apply(u_new, p["u_mode"], p["half"], kind, "u")
    return int(u_new > theta), [u_new, w_new]


def resonate_step(a: int, x: list[int], s: int, p: dict, n: int, kind: str, ev: Events):
    """``ResonateParams``: C-SiLIF resets p before the rotation, RF after it."""
    re, im = x
    f, theta = p["frac_bits"], p["threshold"]
    lr, li = p["lam_re"][n], p["lam_im"][n]
    drive = tz(p["gain"][n] * ((a << p["input_shift"]) + p["bias"][n]), f)
    if p["reset_first"] == 1:
        r = re - theta * s
        re_new = tz(lr * r, f) - tz(li * im, f) + drive
        im_new = tz(li * r, f) + tz(lr * im, f)
    else:
        re_new = tz(lr * re, f) - tz(li * im, f) + drive - theta * s
        im_new = tz(li * re, f) + tz(lr * im, f)
    re_new = ev.apply(re_new, p["mode"], p["half"], kind, "p")
    im_new = ev.apply(im_new, p["mode"], p["half"], kind, "q")
    return int(re_new > theta), [re_new, im_new]


def cuba_step(a: int, x: list[int], s: int, p: dict, n: int, kind: str, ev: Events):
    """Lava ``PyLifModelBitAcc`` (§3.2): u wraps, v saturates, strict compare, v reset to 0."""
    u, v = x
    bias = arithmetic_shift(p["bias_mant"][n], p["bias_exp"][n])
    u_new = tz(u * (DECAY_ONE - (p["du"][n] + 1)), 12) + (a << p["input_shift"])
    u_new = ev.apply(u_new, 0, p["half"], kind, "u")
    v_new = tz(v * (DECAY_ONE - p["dv"][n]), 12) + u_new + bias
    v_new = ev.apply(v_new, 1, p["half"], kind, "v")
    spike = int(v_new > (p["vth"] << p["threshold_exponent"]))
    return spike, [u_new, 0 if spike else v_new]


def s4d_step(a: int, x: list[int], s: int, p: dict, n: int, kind: str, ev: Events):
    """``S4dParams`` (spiking_ssm.md §8.1): x ← λ·x + g·(A + bias) in the real 2×2 form, no spike."""
    re, im = x
    f = p["frac_bits"]
    lr, li = p["lam_re"][n], p["lam_im"][n]
    re_new = tz(lr * re, f) - tz(li * im, f) + tz(p["gain"][n] * ((a << p["input_shift"]) + p["bias"][n]), f)
    im_new = tz(li * re, f) + tz(lr * im, f)
    re_new = ev.apply(re_new, p["mode"], p["half"], kind, "p")
    im_new = ev.apply(im_new, p["mode"], p["half"], kind, "q")
    return 0, [re_new, im_new]


def heaviside_step(a: int, x: list[int], s: int, p: dict, n: int, kind: str, ev: Events):
    """``HeavisideParams``: y = A + bias, spike where y > threshold; y is not read back."""
    y = (a << p["input_shift"]) + p["bias"][n]
    return int(y > p["threshold"]), [y]


STEPS = {
    "silif": adaptive_step, "adlif": adaptive_step, "cadlif": adaptive_step, "lif": adaptive_step,
    "csilif": resonate_step, "rf": resonate_step, "cuba": cuba_step, "s4d": s4d_step, "heaviside": heaviside_step,
}
"""Per kind: ``step(a, states, s, params, n, kind, events) -> (s_t, states_t)`` with the kind's
states as a list. A test family adds its own rule here (``STEPS[name] = rule``), written from its
docstring in the test."""


# ------------------------------------------------------------------------------ graded stages


def sigmoid_q12(g: int, gate_frac: int) -> int:
    """``GluParams``: i = clip(floor(g·32 / 2^gate_frac), −256, 255); round(2^12·σ((i + 0.5)/32))."""
    i = g * 32 >> gate_frac if gate_frac >= 0 else g * 32 << -gate_frac  # floor: Python's >> on ints
    i = max(-256, min(255, i))
    return round(4096 / (1 + math.exp(-(i + 0.5) / 32)))


def glu(values: list[int], p: dict) -> tuple[list[int], int]:
    """z_h = ovf(tz(a_h·σ(g_h), 12)), a = the first half of the values + bias_a, g the second + bias_g;
    and how many z_h the overflow rule changed."""
    h = len(values) // 2
    a = [values[i] + p["bias_a"][i] for i in range(h)]
    g = [values[h + i] + p["bias_g"][i] for i in range(h)]
    z = [tz(a[i] * sigmoid_q12(g[i], p["gate_frac"]), 12) for i in range(h)]
    out = [wrap(v, p["half"]) if p["mode"] == 0 else saturate(v, p["half"]) for v in z]
    return out, sum(u != v for u, v in zip(z, out))


# ---------------------------------------------------------------------------------- network


@dataclass
class LayerTrace:
    """One neuron stage of one sample over the whole unaligned run (T + delay steps)."""

    spikes: list[list[int]]  # [step][neuron]
    states: list[list[list[int]]]  # [state][step][neuron]
    events: Events


@dataclass
class ReferenceRun:
    """Per sample: unaligned traces per neuron stage (hidden, then readout), and the aligned outputs."""

    traces: list[list[LayerTrace]]  # [sample][layer]
    spikes: list[list[list[list[int]]]]  # [layer][sample][t][neuron], aligned
    readout_v: list[list[list[int]]]  # [sample][t][class], aligned
    readout_u: list[list[list[float]]]
    scores: list[list[float]]
    final_states: list[list[tuple[list[list[int]], list[int]]]]  # [sample][layer] (states, s)
    delays: list[int]  # per neuron stage: steps from the input (one per Dense on the way)
    stage_overflow: list[dict[str, int]] = field(default_factory=list)  # [sample]: per Add / GLU stage, values its rule changed

    def events(self) -> Counter:
        total: Counter = Counter()
        for sample in self.traces:
            for trace in sample:
                total.update(trace.events.by_state)
        return total


def input_payload(x: float, frac_bits: int, message_bits: int) -> int:
    """round(x·2^f) (half to even), clipped to ±(2^message_bits − 1)."""
    limit = 2**message_bits - 1
    return max(-limit, min(limit, round(float(x) * 2.0**frac_bits)))


def _params(stage) -> dict:
    return {k: (v.tolist() if hasattr(v, "tolist") else int(v)) for k, v in stage.params._asdict().items()}


def _graph(network) -> list[tuple]:
    """The stages as plain data, in run order: ("dense", name, source, Dense), ("neurons", name,
    source, kind, params, n), ("add", name, a, b, lags, half, rule), ("glu", name, source, params).
    With a softmax_sum, the readout is the last neuron stage."""
    out = []
    for stage in network.stages:
        kind = type(stage).__name__
        if kind == "Dense":
            syn = stage.synapse
            row_exp = None if syn.row_exp is None else [int(e) for e in syn.row_exp]
            dense = Dense(lava_weights(syn.weights.tolist(), syn.num_weight_bits), int(syn.weight_exp), bool(syn.graded), row_exp)
            out.append(("dense", stage.name, stage.source, dense))
        elif kind == "Neurons":
            p = _params(stage)
            n = len(next(v for v in p.values() if isinstance(v, list)))
            out.append(("neurons", stage.name, stage.source, stage.kind, p, n))
        elif kind == "Add":
            half = 0 if stage.bits == 0 else 2 ** (stage.bits - 1)
            out.append(("add", stage.name, *stage.sources, [int(v) for v in stage.lags], half, stage.overflow))
        elif kind == "Glu":
            out.append(("glu", stage.name, stage.source, _params(stage)))
        else:
            assert kind in ("SoftmaxSum", "MeanLinear") and stage is network.stages[-1], kind
    return out


def _delays(graph: list[tuple]) -> dict[str, int]:
    """Steps from the input to each stage: one per Dense, plus an Add's lag of its first source."""
    delay = {"input": 0}
    for stage in graph:
        delay[stage[1]] = delay[stage[2]] + (stage[0] == "dense") + (stage[4][0] if stage[0] == "add" else 0)
    return delay


def run(network, x) -> ReferenceRun:
    """Run (batch, T, channels) input ``x`` through ``network`` one neuron and one step at a time.

    With a ``mean_linear`` decoder every neuron stage is hidden; ``readout_v`` is then empty and
    ``readout_u`` holds the per-step logits W·(x_t / scale) + bias, ``scores`` their mean."""
    graph = _graph(network)
    delay = _delays(graph)
    last = network.stages[-1]
    decoder = type(last).__name__ == "MeanLinear"
    neurons = [stage for stage in graph if stage[0] == "neurons"]
    delays = [delay[stage[1]] for stage in neurons]
    depth = delay[last.source]
    samples = x.tolist() if hasattr(x, "tolist") else x
    runs = [_run_sample(network, frames, depth) for frames in samples]
    traces = [r[0] for r in runs]
    n_steps = len(samples[0]) if samples else 0

    hidden = delays if decoder else delays[:-1]
    spikes = [[tr[l].spikes[d : d + n_steps] for tr in traces] for l, d in enumerate(hidden)]
    if decoder:
        weights, bias, scale = last.weights.tolist(), last.bias.tolist(), float(last.scale)
        readout_v = []
        readout_u = [[[sum(w * (v / scale) for w, v in zip(row, values)) + b for row, b in zip(weights, bias)]
                      for values in r[1][depth : depth + n_steps]] for r in runs]
        scores = [[sum(step[c] for step in sample) / len(sample) for c in range(len(bias))] for sample in readout_u]
    else:
        readout_v = [tr[-1].states[1][depth : depth + n_steps] for tr in traces]  # cuba: (u, v)
        scale = network.readout.scale
        readout_u = [[[v / scale for v in row] for row in sample] for sample in readout_v]
        scores = [_softmax_sum(sample) for sample in readout_u]
    finals = [[([x_j[-1] for x_j in t.states], t.spikes[-1]) for t in tr] for tr in traces]
    return ReferenceRun(traces, spikes, readout_v, readout_u, scores, finals, delays, [r[2] for r in runs])


def _run_sample(network, frames, depth: int) -> tuple[list[LayerTrace], list[list[int]], dict[str, int]]:
    """The traces of every neuron stage, the values the last stage reads, per step, and each Add and
    GLU stage's count of values its overflow rule changed."""
    graph = _graph(network)  # fresh Dense buffers per sample
    n_steps = len(frames)
    total = n_steps + depth
    f_in, msg_bits = network.input_frac_bits, network.profile.input_message_bits
    n_in = network.n_inputs
    delay = _delays(graph)
    state, traces = {}, {}
    for _, name, _, kind, _, n in (stage for stage in graph if stage[0] == "neurons"):
        k = len(KINDS[kind].states)  # the kind's declared number of states, all zero before the first update
        state[name] = ([[0] * n for _ in range(k)], [0] * n)
        traces[name] = LayerTrace([], [[] for _ in range(k)], Events())
    history: dict[str, list[list[int]]] = {}  # every stage's values at every step so far (an Add's lags)
    overflow = {stage[1]: 0 for stage in graph if stage[0] in ("add", "glu")}
    for t in range(total):
        values = {"input": [input_payload(v, f_in, msg_bits) for v in frames[t]] if t < n_steps else [0] * n_in}
        for stage in graph:
            if stage[0] == "dense":
                values[stage[1]] = stage[3].step(values[stage[2]])
            elif stage[0] == "add":
                _, name, a, b, lags, half, rule = stage
                xa = history[a][t - lags[0]] if t >= lags[0] else [0] * len(values[a])
                xb = history[b][t - lags[1]] if t >= lags[1] else [0] * len(values[b])
                y = [u + v for u, v in zip(xa, xb)]
                if half:
                    exact, y = y, [wrap(v, half) if rule == "wrap" else saturate(v, half) for v in y]
                    overflow[name] += sum(u != v for u, v in zip(exact, y))
                values[name] = y
            elif stage[0] == "glu":
                values[stage[1]], changed = glu(values[stage[2]], stage[3])
                overflow[stage[1]] += changed
            else:
                _, name, source, kind, p, n = stage
                a_src, trace = values[source], traces[name]
                fan = n // len(a_src)  # a Dense of n values: 1; graded values of H channels: neuron i reads i // fan
                x, s = state[name]
                if t >= delay[name]:  # a neuron stage idles (zero state, no spikes) before its delay
                    updated = [STEPS[kind](a_src[i // fan], [x_j[i] for x_j in x], s[i], p, i, kind, trace.events)
                               for i in range(n)]
                    s = [u[0] for u in updated]
                    x = [[u[1][j] for u in updated] for j in range(len(x))]
                    state[name] = (x, s)
                trace.spikes.append(s)
                for j, x_j in enumerate(x):
                    trace.states[j].append(x_j)
                values[name] = [v for x_j in x for v in x_j] if KINDS[kind].output == "states" else s
            history.setdefault(stage[1], []).append(values[stage[1]])
    read = history[network.stages[-1].source]
    return [traces[stage[1]] for stage in graph if stage[0] == "neurons"], read, overflow


def _softmax_sum(rows: list[list[float]]) -> list[float]:
    if not rows:
        return []
    total = [0.0] * len(rows[0])
    for row in rows:
        top = max(row)
        e = [math.exp(v - top) for v in row]
        z = sum(e)
        total = [acc + v / z for acc, v in zip(total, e)]
    return total
