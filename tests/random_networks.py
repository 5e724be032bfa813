"""Random fixed-point and float networks for the bit-accuracy and determinism tests (numpy only).

``fixed_networks`` is a hypothesis strategy that builds a :class:`FixedPointNetwork` directly from
integer parameters drawn over their full ranges (coefficients 0 … 2^F, negative λ, thresholds up
to the 17-bit mantissa, both overflow rules per state, 12- and 24-bit coefficients, 24- and 32-bit
states); ``float_network`` draws a :class:`FloatNetwork` for the quantizer.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import strategies as st

from silif_deploy.converters.float_params import FloatLayer, FloatNetwork
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.network import INPUT, Add, Dense, FixedLayer, FixedPointNetwork, Neurons, SoftmaxSum
from silif_deploy.hw_models.neuron_adaptive import AdaptiveParams
from silif_deploy.hw_models.neuron_cuba import CubaParams
from silif_deploy.hw_models.neuron_kinds import HIDDEN_KINDS
from silif_deploy.hw_models.neuron_resonate import ResonateParams
from silif_deploy.hw_models.profile import HardwareProfile, load_profile

INT32_MAX = 2**31 - 1


def ints(draw, n: int, lo: int, hi: int, edges: tuple[int, ...] = (), only_edges: bool = False) -> np.ndarray:
    """n integers in [lo, hi], with the range ends (and ``edges``) drawn often, or only them."""
    special = st.sampled_from(sorted({lo, hi, *edges}))
    values = special if only_edges else st.one_of(special, st.integers(lo, hi))
    return np.array(draw(st.lists(values, min_size=n, max_size=n)), np.int64)


def profile(state_bits: int = 24, coefficient_bits: int = 12) -> HardwareProfile:
    return dataclasses.replace(load_profile("loihi2"), state_bits=state_bits, coefficient_bits=coefficient_bits)


def _synapse(draw, n_out: int, n_in: int, graded: bool, max_payload: int) -> DenseSynapse:
    """Weights on Lava's grid, any exponent; the exponent is lowered where the largest possible
    Dense output would leave Lava's int32 channel."""
    bits = draw(st.sampled_from([8, 8, 6, 3, 16]))
    if bits <= 8:
        step = 1 << (8 - bits + 1)
        w = step * ints(draw, n_out * n_in, -256 // step, 255 // step, (0,))
    else:
        w = ints(draw, n_out * n_in, -(1 << 15), (1 << 15) - 1, (0,))
    w = w.reshape(n_out, n_in)
    exp = draw(st.integers(-8, 7))
    bound = int(np.abs(w).sum(axis=1).max(initial=0)) * (max_payload if graded else 1)
    while exp > -8 and bound << max(exp, 0) > INT32_MAX:
        exp -= 1
    return DenseSynapse(w, exp, bits, graded)


@st.composite
def hidden_params(draw, kind: str, n: int, frac_bits: int, half: int, extreme: bool = False):
    """A hidden layer's params; ``extreme`` draws coefficients only at ±2^F and 0 (|λ| up to √2:
    growing resonators, perfect integrators), so that states run into their limits."""
    one = 1 << frac_bits
    threshold = draw(st.integers(1, (1 << 17) - 1)) << 6
    bias = ints(draw, n, -(1 << 20), 1 << 20, (0,))
    shift = draw(st.sampled_from([6, 6, 0, 3]))
    if kind in ("csilif", "rf"):
        return ResonateParams(
            lam_re=ints(draw, n, -one, one, (0,), extreme), lam_im=ints(draw, n, -one, one, (0,), extreme),
            gain=ints(draw, n, -one, one, (0,), extreme), bias=bias, threshold=threshold, frac_bits=frac_bits,
            input_shift=shift, half=half, mode=draw(st.integers(0, 1)), reset_first=int(kind == "csilif"),
        )
    alpha = ints(draw, n, 0, one, (), extreme)
    zeros = np.zeros(n, np.int64)
    adaptive = kind != "lif"
    return AdaptiveParams(
        alpha=alpha, gain=one - alpha,
        beta=ints(draw, n, -one, one, (0,), extreme) if adaptive else zeros,
        a=ints(draw, n, -one, one, (0,), extreme) if adaptive else zeros,
        b_spike=ints(draw, n, -4 * threshold, 4 * threshold, (0,)) if adaptive else zeros,
        bias=bias, threshold=threshold, frac_bits=frac_bits, input_shift=shift, half=half,
        u_mode=draw(st.integers(0, 1)), w_mode=draw(st.integers(0, 1)),
    )


@st.composite
def readout_params(draw, n: int, half: int) -> CubaParams:
    return CubaParams(
        du=ints(draw, n, 0, 4095), dv=ints(draw, n, 0, 4095),
        bias_mant=ints(draw, n, -4095, 4095, (0,)), bias_exp=ints(draw, n, -2, 7, (0,)),
        vth=draw(st.sampled_from([0, 1, (1 << 17) - 1]) | st.integers(0, (1 << 17) - 1)),
        input_shift=6, threshold_exponent=6, half=half,
    )


@st.composite
def fixed_networks(draw, max_depth: int = 3, max_width: int = 12, max_steps: int = 25, max_batch: int = 3,
                   kinds: tuple[str, ...] = HIDDEN_KINDS, layer_params=None):
    """(network, x): a random FixedPointNetwork and an input batch for it (counts or real values).

    Hidden kinds are drawn from ``kinds``; ``layer_params(kind, n, frac_bits, half, extreme)`` is
    the strategy of their parameters (default :func:`hidden_params`: the built-in kinds)."""
    layer_params = layer_params or hidden_params
    frac_bits = draw(st.sampled_from([12, 24]))
    state_bits = draw(st.sampled_from([24, 24, 32]))
    half = 1 << (state_bits - 1)
    prof = profile(state_bits, frac_bits)
    depth = draw(st.integers(1, max_depth))
    sizes = [draw(st.integers(1, max_width)) for _ in range(depth + 2)]  # inputs, hidden…, classes
    counts = draw(st.booleans())
    extreme = draw(st.sampled_from([False, False, False, True]))
    in_frac = 0 if counts else draw(st.integers(0, 6))
    payload_max = (1 << prof.input_message_bits) - 1
    layers = []
    for l in range(depth):
        kind = draw(st.sampled_from(kinds))
        syn = _synapse(draw, sizes[l + 1], sizes[l], graded=draw(st.booleans()), max_payload=payload_max)
        params = draw(layer_params(kind, sizes[l + 1], frac_bits, half, extreme))
        layers.append(FixedLayer(kind, syn, params, params.threshold))
    ro_syn = _synapse(draw, sizes[-1], sizes[-2], graded=False, max_payload=1)
    readout = FixedLayer("cuba", ro_syn, draw(readout_params(sizes[-1], half)), 1 << draw(st.integers(0, 22)))
    network = FixedPointNetwork.chain(
        model_type=layers[0].kind, n_inputs=sizes[0], hidden=layers, readout=readout,
        input_frac_bits=in_frac, profile=prof,
    )
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_steps)), sizes[0])
    n = int(np.prod(shape))
    if counts:  # event counts, mostly sparse; a few beyond the 8-bit payload (clipped)
        values = st.one_of(st.just(0), st.just(0), st.integers(0, 255), st.integers(256, 400))
        x = np.array(draw(st.lists(values, min_size=n, max_size=n)), np.float32)
    else:  # real values, including exact half-units of the payload (round half to even)
        halves = st.integers(-2 * payload_max, 2 * payload_max).map(lambda k: (k + 0.5) / (1 << in_frac))
        reals = st.floats(-300.0, 300.0, allow_nan=False, width=32)
        x = np.array(draw(st.lists(st.one_of(st.just(0.0), halves, reals), min_size=n, max_size=n)), np.float64)
    return network, x.reshape(shape)


def float_network(rng: np.random.Generator, kind: str, sizes: list[int], n_classes: int) -> FloatNetwork:
    """A random float network as ``float_params.float_network`` extracts one (BatchNorm folded)."""
    hidden = []
    for n_in, n in zip(sizes[:-1], sizes[1:]):
        weight = rng.normal(0.0, 1.5 / np.sqrt(n_in), (n, n_in))
        bias = rng.normal(0.0, 0.3, n)
        if kind in ("csilif", "rf"):
            mag, phase = rng.uniform(0.85, 1.0, n), rng.uniform(0.0, 0.6, n)
            coeffs = {"lam_re": mag * np.cos(phase), "lam_im": mag * np.sin(phase)}
            gain = 2.0 * rng.uniform(0.01, 0.3, n) if kind == "csilif" else np.full(n, 0.5)
        else:
            alpha = rng.uniform(0.6, 0.99, n)
            adaptive = kind != "lif"
            coeffs = {
                "alpha": alpha,
                # a third of β within 2^-13 of 1, as the shared SiLIF checkpoint has
                "beta": np.where(rng.random(n) < 0.33, 1.0 - rng.uniform(0, 2**-13, n), rng.uniform(0.8, 1.0, n)) if adaptive else np.zeros(n),
                "a": rng.uniform(-0.5, 1.0, n) if adaptive else np.zeros(n),
                "b": rng.uniform(0.0, 2.0, n) if adaptive else np.zeros(n),
            }
            gain = 1.0 - alpha
        hidden.append(FloatLayer(kind, weight, bias, gain, coeffs))
    alpha = rng.uniform(0.8, 0.99, n_classes)
    readout = FloatLayer("cuba", rng.normal(0.0, 1.0 / np.sqrt(sizes[-1]), (n_classes, sizes[-1])),
                         rng.normal(0.0, 0.1, n_classes), 1.0 - alpha, {"alpha": alpha})
    return FloatNetwork(kind, sizes[0], hidden, readout)


@st.composite
def residual_networks(draw, max_width: int = 10, max_steps: int = 20, max_batch: int = 2):
    """(network, x): a residual-style graph of stages. Two branches of neurons read the input
    (each through its own Dense, or twins with equal weights and parameters), their spikes are added (values 0, 1, 2), a graded Dense reads
    the sum; the readout reads either that layer or, through a second Add, the sum of that layer
    and a parallel one (so Adds of Adds and graded Dense on sums are both drawn)."""
    frac_bits, state_bits = draw(st.sampled_from([12, 24])), draw(st.sampled_from([24, 32]))
    half = 1 << (state_bits - 1)
    prof = profile(state_bits, frac_bits)
    n_in, n, m, n_classes = (draw(st.integers(1, max_width)) for _ in range(4))
    payload_max = (1 << prof.input_message_bits) - 1
    stages: list = []

    def neurons(name: str, source: str, size: int, fan_in: int, graded: bool, max_payload: int) -> None:
        kind = draw(st.sampled_from(HIDDEN_KINDS))
        params = draw(hidden_params(kind, size, frac_bits, half))
        stages.extend([Dense(f"{name}.dense", source, _synapse(draw, size, fan_in, graded, max_payload)),
                       Neurons(name, f"{name}.dense", kind, params, params.threshold)])

    neurons("A", INPUT, n, n_in, draw(st.booleans()), payload_max)
    if draw(st.booleans()):  # twins spike together, so the sum surely carries 2s in some cases
        dense, a = stages
        stages.extend([Dense("B.dense", INPUT, dense.synapse), Neurons("B", "B.dense", a.kind, a.params, a.scale)])
    else:
        neurons("B", INPUT, n, n_in, draw(st.booleans()), payload_max)
    stages.append(Add("A+B", ("A", "B")))
    neurons("C", "A+B", m, n, True, 2)
    last = "C"
    if draw(st.booleans()):
        neurons("D", "A+B", m, n, draw(st.booleans()), 2)
        stages.append(Add("C+D", ("C", "D")))
        last = "C+D"
    ro_graded = draw(st.booleans())
    ro_syn = _synapse(draw, n_classes, m, graded=ro_graded, max_payload=2 if last == "C+D" else 1)
    stages += [Dense("readout.dense", last, ro_syn),
               Neurons("readout", "readout.dense", "cuba", draw(readout_params(n_classes, half)), 1 << draw(st.integers(0, 22))),
               SoftmaxSum("scores", "readout")]
    network = FixedPointNetwork("residual", n_in, stages, 0, prof)
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_steps)), n_in)
    values = st.one_of(st.just(0), st.just(0), st.integers(0, 255), st.integers(256, 400))
    x = np.array(draw(st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))), np.float32)
    return network, x.reshape(shape)


def _graded_synapse(draw, n_out: int, n_in: int, graded: bool, max_payload: int, limit: int,
                    row_exps: bool = False) -> DenseSynapse:
    """Any weights on Lava's grid, the exponent (and per-row exponents) drawn and then lowered
    until every row's largest output stays within ±``limit``."""
    syn = _synapse(draw, n_out, n_in, graded, max_payload)
    row_exp = ints(draw, n_out, -3, 3, (0,)) if row_exps else np.zeros(n_out, np.int64)
    bound = np.abs(syn.weights).sum(axis=1) * (max_payload if graded else 1)
    exp = syn.weight_exp
    while exp > -40 and any(int(b) * 2.0 ** (exp + int(e)) > limit for b, e in zip(bound, row_exp)):
        exp -= 1
    return DenseSynapse(syn.weights, exp, syn.num_weight_bits, graded, row_exp if row_exps else None)


@st.composite
def ssm_networks(draw, max_h: int = 4, max_modes: int = 3, max_blocks: int = 2, max_steps: int = 14, max_batch: int = 2):
    """(network, x): a random SpikingSSM / binary-S4D shaped graph of stages (``spiking_ssm.md``
    §8): a graded encoder Dense, then per block the S4D states reading the residual stream x
    directly (H channels × m modes), the graded readout Dense over the states (per-row
    exponents or not), optionally plus a graded D·u Dense through an Add, a soma (the CUBA LIF or
    the Heaviside) reading that sum or the readout Dense, a binary Dense H → 2H on the spikes, the
    GLU, and the residual Add (x held back 2 steps; exact or of a declared width and rule), then the
    host's mean_linear decoder. Parameters over their full ranges (λ up to |λ| = √2, both
    overflow rules), values bounded where the spec's int32 Dense channel requires it."""
    from silif_deploy.hw_models.glu import GluParams
    from silif_deploy.hw_models.network import Glu, MeanLinear
    from silif_deploy.hw_models.neuron_s4d import HeavisideParams, S4dParams

    frac_bits, state_bits = draw(st.sampled_from([12, 24])), draw(st.sampled_from([24, 32]))
    half = 1 << (state_bits - 1)
    prof = profile(state_bits, frac_bits)
    one = 1 << frac_bits
    n_in, h, m = draw(st.integers(1, 3)), draw(st.integers(1, max_h)), draw(st.integers(1, max_modes))
    n_classes = draw(st.integers(1, 4))
    payload_max = (1 << prof.input_message_bits) - 1
    limit = 1 << 24  # graded values the Dense stages send stay well inside Lava's int32 channel
    extreme = draw(st.sampled_from([False, False, True]))
    stages: list = [Dense("enc", INPUT, _graded_synapse(draw, h, n_in, True, payload_max, limit))]
    x, x_max = "enc", limit
    for b in range(draw(st.integers(1, max_blocks))):
        n = h * m
        s4d = S4dParams(lam_re=ints(draw, n, -one, one, (0,), extreme), lam_im=ints(draw, n, -one, one, (0,), extreme),
                        gain=ints(draw, n, -one, one, (0,), extreme), bias=ints(draw, n, -(1 << 20), 1 << 20, (0,)),
                        frac_bits=frac_bits, input_shift=draw(st.sampled_from([6, 0, 3])), half=half,
                        mode=draw(st.integers(0, 1)))
        stages.append(Neurons(f"b{b}.s4d", x, "s4d", s4d, 1))
        readout = _graded_synapse(draw, h, 2 * n, True, half, limit, row_exps=draw(st.booleans()))
        stages.append(Dense(f"b{b}.C", f"b{b}.s4d", readout))
        y = f"b{b}.C"
        if draw(st.booleans()):  # + D·u: a graded diagonal Dense on x, added
            d = _graded_synapse(draw, h, h, True, x_max, limit, row_exps=draw(st.booleans()))
            d.weights[~np.eye(h, dtype=bool)] = 0
            stages += [Dense(f"b{b}.D", x, d), Add(f"b{b}.y", (f"b{b}.C", f"b{b}.D"))]
            y = f"b{b}.y"
        if draw(st.booleans()):
            soma = draw(readout_params(h, half))
            stages.append(Neurons(f"b{b}.lif", y, "cuba", soma, 1))
        else:
            soma = HeavisideParams(bias=ints(draw, h, -(1 << 20), 1 << 20, (0,)),
                                   threshold=draw(st.integers(-(1 << 20), 1 << 20)), input_shift=draw(st.sampled_from([0, 6])))
            stages.append(Neurons(f"b{b}.lif", y, "heaviside", soma, 1))
        glu_half = 1 << (draw(st.sampled_from([24, 32])) - 1)
        stages += [Dense(f"b{b}.mix", f"b{b}.lif", _graded_synapse(draw, 2 * h, h, False, 1, limit)),
                   Glu(f"b{b}.glu", f"b{b}.mix", GluParams(ints(draw, h, -(1 << 20), 1 << 20, (0,)),
                                                           ints(draw, h, -(1 << 20), 1 << 20, (0,)),
                                                           draw(st.integers(0, 16)), glu_half, draw(st.integers(0, 1))))]
        bits = draw(st.sampled_from([0, 24, 25]))
        stages.append(Add(f"b{b}.res", (x, f"b{b}.glu"), bits, draw(st.sampled_from(["wrap", "saturate"])), (2, 0)))
        x = f"b{b}.res"
        x_max = 1 << (bits - 1) if bits else x_max + min(glu_half, limit)
        limit = max(limit, x_max)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    stages.append(MeanLinear("decoder", x, rng.normal(0, 1, (n_classes, h)), rng.normal(0, 1, n_classes),
                             float(2 ** draw(st.integers(0, 20)))))
    network = FixedPointNetwork("spiking_ssm", n_in, stages, draw(st.integers(0, 6)), prof)
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_steps)), n_in)
    reals = st.floats(-300.0, 300.0, allow_nan=False, width=32)
    x_in = np.array(draw(st.lists(st.one_of(st.just(0.0), reals), min_size=int(np.prod(shape)),
                                  max_size=int(np.prod(shape)))), np.float64)
    return network, x_in.reshape(shape)
