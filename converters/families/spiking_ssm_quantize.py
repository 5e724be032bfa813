"""Quantize a SpikingSSM / binary-S4D float network (:class:`~.spiking_ssm.SpikingSSMArrays`) into
the fixed-point stage graph (``hw_models/network.py``; integer rules ``spiking_ssm.md`` §8; the
measured precision: ``docs/quantization_ssm.md``).

The graph, per block i, on the residual stream x (integers, one scale S_x for the whole stream)::

    input → enc (Dense d_in → H, per-row exponents)
    block i:  b{i}.s4d   s4d states reading x directly: p + i·q = σ_n·ξ_n (below)
              b{i}.C     Dense over (p, q) → H: rows 2·Re C′/(θ_h σ_n), −2·Im C′/(θ_h σ_n) in y units
              b{i}.D     Dense x → H, diagonal D_h·a_h/θ_h
              b{i}.y     Add(C, D), 18 bits (loihi2), saturating: y_int·64 never wraps the soma's 24-bit current
              b{i}.lif   cuba soma (du 4095, dv 3584, bias = D_h·b'_h/θ_h, reset 0, vth with Θ − 1 = vth << 6)
                or b{i}.heaviside  (binary S4D: y + bias > −1, i.e. [y ≥ 0])
              b{i}.mix   binary Dense H → 2H on the spikes: value rows W_a·S_x, gate rows W_b·2^gate_frac
              b{i}.glu   z = (a + b_a)·σ(g + b_g), in S_x units (``hw_models/glu.py``)
              b{i}.res   Add(x held back 2 steps, z), 24 bits, saturating
    decoder   mean_linear on the host: logits = W_dec·mean_t(x_t / S_x) + b_dec + W_dec·c

**Scales.** The stream integer x_int stands for (x − c)·S_x, c the encoder bias: no stage adds a
constant to the stream, so c is folded into its readers (the S4D biases, the soma biases, the
decoder bias); S_x = 2^k. A block's input u = a·x + b (pre-norm BatchNorm folded, a = 1, b = 0
post-norm) is a·x_int/S_x + b', b' = a·c + b. The S4D state of mode n is held at its own scale
σ_n, p + i·q = σ_n·ξ_n: the per-state gain g_n = σ_n·a_h·2^F/(64·S_x) (|g_n| ≤ 2^F) multiplies the
input A = x_int << 6 and the bias 64·S_x·b'/a_h. σ_n is as large as three limits allow: the
calibrated max |ξ_n| × headroom within the 24-bit state, |g_n| ≤ 2^F, and readout weights of at
least :data:`READOUT_WEIGHT_FLOOR` at their row's exponent (the profile's exponent floor, −8 on
loihi2, is the reason: states far above the soma's scale would need readout weights below 2^−8, so
the gain g ≈ k·(1 − |λ|) keeps slow modes' states near their readout's scale; the readout row
divides by σ_n exactly, with the rounded g_n). The soma's unit is V = 64·vth + 1 (its ``≥ Θ`` as
``> Θ − 1 = vth << 6``), y_int = y/θ·U_y with U_y = V/64, vth the largest that keeps the
calibrated max |y/θ| × headroom within 17 bits (u = y_int << 6 wraps at 24 on loihi2) and D·b'/θ
within the bias format. S_x is the largest power of two with the stream's range × headroom in 24
bits, S_x ≤ U_y (:data:`STREAM_PER_SOMA_UNIT`: D·u's rows keep their bits) and the S4D biases
within the bias format. Without calibration every range is the profile's ``default_state_range``
(the S4D state's |u|/(1 − |λ|)) and inputs are taken as event counts.

**Time alignment (pipeline delays).** Every Dense delivers one step later, nothing else delays
(``hw_models/network.py``): the encoder puts float frame t on the stream at step t + 1; block i's
S4D state sees frame t at step 1 + 2i, its soma (after the C/D Dense) at step 2 + 2i, its GLU and
residual (after the mix Dense) at step 3 + 2i, where the stream is held back 2 steps to meet it.
The simulator already aligns every neuron stage by its delay (``RunResult.spikes[l][:, t]`` is
stage l's step t + delay): :func:`soma_stage_indices` says which entries of the fixed-point
``spikes`` list are the blocks' somas (the float model's ``spikes[i]``); the s4d stages in
between send states, never spikes. :meth:`FixedPointNetwork.delays` gives the delay of every
stage. The decoder reads the last residual stream at steps delay … delay + T − 1, the T steps aligned with
float frames 0 … T − 1 (the simulator runs T + delay steps, feeding zero input after the last
frame to flush the pipeline), so its mean covers exactly the float model's frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from silif_deploy.converters.datasets import InputStats
from silif_deploy.converters.families.spiking_ssm import (
    FAMILY_BINARY_S4D, LIF_TAU, SpikingSSMArrays, require_streamable,
)
from silif_deploy.converters.quantize import input_frac_bits
from silif_deploy.converters.quantize_rules import bias_max, quantize_bias, quantize_weights, round_coefficients
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.dense import DenseSynapse, weight_grid
from silif_deploy.hw_models.glu import GluParams
from silif_deploy.hw_models.network import INPUT, Add, Dense, FixedPointNetwork, Glu, MeanLinear, Neurons
from silif_deploy.hw_models.neuron_cuba import CubaParams
from silif_deploy.hw_models.neuron_s4d import HeavisideParams, S4dParams
from silif_deploy.hw_models.profile import HardwareProfile

READOUT_WEIGHT_FLOOR = 127
"""The smallest integer readout weight a state's scale σ_n may leave at its row's exponent (7 bits;
half the 8-bit format's range): a larger σ_n holds the state more precisely (the rotation truncates
each product toward zero) but leaves its weight fewer bits."""
STREAM_PER_SOMA_UNIT = 1.0
"""S_x ≤ this × U_y (U_y: the soma input's integer for y/θ = 1): keeps D·u's diagonal weights D·a/θ·U_y/S_x
near or above 1, where the weight format's exponent floor leaves them their bits (measured on the
load_digits fixtures: 1 beat 1/4 and 4 on spike and prediction agreement)."""
GATE_FRAC = 12
"""The GLU gate's fraction bits (its table steps by 2^−5, so 12 leaves the rounding to the table)."""
LIF_DU, LIF_DV = 4095, 3584
"""Loihi's CUBA LIF as the authors' LIF: du 4095 (memoryless current), dv 3584 (v decays by 512/4096 = τ 0.125)."""
assert (4096 - LIF_DV) / 4096 == LIF_TAU


# ---------------------------------------------------------------------------------------------------
# The float64 streaming form of the arrays (what calibration and the error measurements read)
# ---------------------------------------------------------------------------------------------------
@dataclass
class FloatRanges:
    """What a float64 pass over an input learned, per block: the largest |ξ_n| per state (H, N/2),
    |y/θ| (the soma input) and |x − c| (the residual stream without the encoder bias, every
    block's input and output). :meth:`add` folds in another batch of the same pass."""

    xi: list[np.ndarray]
    y: list[float]
    stream: float
    stats: InputStats = field(default_factory=InputStats)

    def add(self, other: "FloatRanges") -> None:
        self.xi = [np.maximum(a, b) for a, b in zip(self.xi, other.xi)]
        self.y = [max(a, b) for a, b in zip(self.y, other.y)]
        self.stream = max(self.stream, other.stream)
        self.stats.add(other.stats)


def float_trace(arrays: SpikingSSMArrays, x: np.ndarray, record: bool = False) -> tuple[np.ndarray, FloatRanges, dict]:
    """Run the network in float64, step by step (spec §2–§4 streaming form; the model's own soma:
    exact LIF or Heaviside): (logits (B, classes), the ranges, and with ``record`` the time series
    ``xi_<i>`` (B, T, H, N/2) complex, ``y_<i>`` (y/θ), ``spikes_<i>``, ``stream_<i>`` (block i's
    output x) as (B, T, H))."""
    if arrays.config.neuron == "sdn":
        raise SilifDeployError("the SDN is a training surrogate with no streaming integer form; quantize the exact "
                               "LIF (load the model with neuron 'lif')")
    x = np.asarray(x, np.float64)
    batch, steps, _ = x.shape
    h = x @ arrays.encoder_w.T + arrays.encoder_b  # (B, T, H)
    c = arrays.encoder_b
    stream_peak = float(np.abs(h - c).max(initial=0.0))
    xi_peak, y_peak, rec = [], [], {}
    for i, blk in enumerate(arrays.blocks):
        u = h * blk.norm_scale + blk.norm_shift
        xi = np.zeros((batch, *blk.lam.shape), np.complex128)
        v = np.zeros((batch, blk.d.size))
        peak = np.zeros(blk.lam.shape)
        ys, ss, xis = np.empty_like(h), np.empty_like(h), []
        for t in range(steps):
            xi = blk.lam * xi + u[:, t, :, None]
            peak = np.maximum(peak, np.abs(xi).max(axis=0))
            y = (2.0 * (blk.c * xi).sum(-1).real + blk.d * u[:, t]) / blk.theta
            if arrays.config.neuron == "heaviside":
                s = (y >= 0).astype(np.float64)
            else:
                v = LIF_TAU * v + y
                s = (v >= 1.0).astype(np.float64)
                v = v * (1.0 - s)
            ys[:, t], ss[:, t] = y, s
            if record:
                xis.append(xi)
        hh = blk.d.size
        a = ss @ blk.glu_w[:hh].T + blk.glu_b[:hh]
        g = ss @ blk.glu_w[hh:].T + blk.glu_b[hh:]
        h = h + a / (1.0 + np.exp(-g))
        xi_peak.append(peak)
        y_peak.append(float(np.abs(ys).max(initial=0.0)))
        stream_peak = max(stream_peak, float(np.abs(h - c).max(initial=0.0)))
        if record:
            rec.update({f"xi_{i}": np.stack(xis, axis=1), f"y_{i}": ys, f"spikes_{i}": ss, f"stream_{i}": h})
    logits = h.mean(axis=1) @ arrays.decoder_w.T + arrays.decoder_b
    return logits, FloatRanges(xi_peak, y_peak, stream_peak, InputStats.of(x)), rec


def calibrate(arrays: SpikingSSMArrays, batches) -> FloatRanges:
    """The ranges of a float64 pass over ``batches`` (an iterable of (batch, T, channels) arrays)."""
    ranges = None
    for xb in batches:
        got = float_trace(arrays, xb)[1]
        if ranges is None:
            ranges = got
        else:
            ranges.add(got)
    if ranges is None:
        raise SilifDeployError("the calibration input holds no samples")
    return ranges


# ---------------------------------------------------------------------------------------------------
# Quantization
# ---------------------------------------------------------------------------------------------------
def _rows(target: np.ndarray, hw: HardwareProfile) -> tuple[DenseSynapse, dict[str, Any]]:
    """A graded-or-binary Dense with one exponent per row (each row spans the weight format)."""
    ints, exps, clipped, zeroed = [], [], 0, 0
    for row in np.atleast_2d(target):
        w, e, d = quantize_weights(row[None, :], hw)
        ints.append(w[0])
        exps.append(e)
        clipped += d["weights_clipped"]
        zeroed += d["weights_zeroed"]
    w_int = np.array(ints, np.int32).reshape(target.shape)
    exps = np.array(exps, np.int64)
    base = int(exps.min(initial=0))
    approx = w_int * 2.0 ** exps[:, None]
    peak = np.abs(target).max(axis=1, keepdims=True)
    err = np.sqrt(np.mean(((approx - target) / np.where(peak > 0, peak, 1.0)) ** 2))
    syn = DenseSynapse(w_int, base, hw.weight_bits, True, exps - base)
    return syn, {"weights": int(target.size), "weights_clipped": clipped, "weights_zeroed": zeroed,
                 "row_exp_range": [int(exps.min(initial=0)), int(exps.max(initial=0))],
                 "weight_rms_error_per_row": float(err)}


def _pow2_floor(value: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(value, 1.0)))))


@dataclass(frozen=True)
class _Scales:
    """The scales every block shares: the stream's S_x, the profile's limits, the calibrated ranges."""

    hw: HardwareProfile
    s_x: int
    ranges: FloatRanges | None
    y_bits: int

    @property
    def one(self) -> int:
        return 1 << self.hw.coefficient_bits

    @property
    def bias_limit(self) -> int:
        return bias_max(self.hw)


def _bias_ratio(blk, offset: np.ndarray) -> float:
    """max |b'/a| over the channels whose input gain a (the folded BatchNorm's scale; 1 post-norm) is at
    least 5 % of the largest: a near-dead channel must not set the stream's scale (its S4D bias is then
    clipped, and counted)."""
    a = np.abs(blk.norm_scale)
    live = a >= 0.05 * float(a.max(initial=0.0))
    return float(np.abs(offset[live] / a[live]).max(initial=0.0))


def _nonzero(a: np.ndarray) -> np.ndarray:
    return np.where(a != 0, a, 1e-30)  # a dead channel (a = 0): its states' scale is unbounded, its readout 0


def _soma_vth(hw: HardwareProfile, d_offset: np.ndarray, y_range: float, y_bits: int) -> int:
    """vth of a block's soma (unit V = 64·vth + 1): the calibrated |y/θ| range within ``y_bits`` and
    the constant D·b'/θ (``d_offset``) within the bias format."""
    vth = ((1 << (y_bits - 1)) - 1) / y_range
    peak = float(np.abs(d_offset).max(initial=0.0))
    if peak > 0:
        vth = min(vth, (bias_max(hw) / peak - 1) / 64)
    return int(min(max(math.floor(vth), 1), (1 << hw.threshold_mantissa_bits) - 1))


def _state_gains(blk, sc: _Scales, xi_peak: np.ndarray, u_y: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(g (H, N/2) integers, σ (H, N/2) the exact state scales of the rounded gains, g before rounding):
    σ as large as the 24-bit state, |g| ≤ 2^F and readout weights ≥ the floor at their row's exponent allow."""
    hw = sc.hw
    a = _nonzero(blk.norm_scale)
    _, _, w_max = weight_grid(hw.weight_bits)
    floor = min(READOUT_WEIGHT_FLOOR, w_max)
    cap = np.minimum(hw.state_max / (hw.calibration_headroom * np.maximum(xi_peak, 1e-12)),
                     (64 * sc.s_x / np.abs(a))[:, None])
    per_sigma = 2 * np.maximum(np.abs(blk.c.real), np.abs(blk.c.imag)) * u_y / blk.theta[:, None]  # weight × σ
    per_sigma = np.where(per_sigma > 0, per_sigma, np.inf)
    sigma = np.minimum(cap, per_sigma / (2.0**hw.weight_exp_min * floor))
    # the row's exponent is its largest weight's: the other states may then grow until their weights reach the floor
    row_exp = np.clip(np.ceil(np.log2(np.maximum((per_sigma / sigma).max(axis=1), 1e-300) / w_max)),
                      hw.weight_exp_min, hw.weight_exp_max)
    sigma = np.minimum(cap, per_sigma / (2.0**row_exp * floor)[:, None])
    g_real = sigma * np.abs(a)[:, None] * sc.one / (64 * sc.s_x)
    g = np.clip(np.rint(g_real), 1, sc.one).astype(np.int64) * np.where(a < 0, -1, 1)[:, None]
    return g, g / sc.one * 64 * sc.s_x / a[:, None], g_real


def _block(i: int, blk, source: str, sc: _Scales, binary: bool, offset: np.ndarray, vth: int,
           xi_peak: np.ndarray) -> tuple[list, dict[str, Any]]:
    """The stages of block i reading the stream ``source`` (module docstring), and its diagnostics."""
    hw, s_x, b_limit = sc.hw, sc.s_x, sc.bias_limit
    half, shift = hw.state_max + 1, hw.input_shift
    h, modes = blk.lam.shape
    u_y = (64 * vth + 1) / 64  # y_int of y/θ = 1
    g, sigma, g_real = _state_gains(blk, sc, xi_peak, u_y)
    lam_re, lam_im = (round_coefficients(part, hw.coefficient_bits) for part in (blk.lam.real, blk.lam.imag))
    s4d_bias_real = np.repeat(64 * s_x * offset / _nonzero(blk.norm_scale), modes)
    s4d_bias = np.clip(np.rint(s4d_bias_real), -b_limit, b_limit).astype(np.int64)
    s4d = S4dParams(lam_re.reshape(-1), lam_im.reshape(-1), g.reshape(-1), s4d_bias, hw.coefficient_bits,
                    shift, half, hw.overflow_codes["membrane"])
    # readout rows over (p, q): y_int = Σ (2·Re C′·p − 2·Im C′·q)/(θσ)·U_y
    n = h * modes
    read = np.zeros((h, 2 * n))
    cols, rows = np.arange(n).reshape(h, modes), np.arange(h)[:, None]
    read[rows, cols] = 2 * blk.c.real / (blk.theta[:, None] * sigma) * u_y
    read[rows, n + cols] = -2 * blk.c.imag / (blk.theta[:, None] * sigma) * u_y
    c_syn, c_diag = _rows(read, hw)
    d_syn, d_diag = _rows(np.diag(blk.d * blk.norm_scale / blk.theta * u_y / s_x), hw)
    soma_bias = blk.d * offset / blk.theta * (64 * u_y)  # in v units (V per 1.0 of y/θ)
    name = f"b{i}"
    stages: list = [Neurons(f"{name}.s4d", source, "s4d", s4d, 64 * s_x),
                    Dense(f"{name}.C", f"{name}.s4d", c_syn),
                    Dense(f"{name}.D", source, d_syn),
                    Add(f"{name}.y", (f"{name}.C", f"{name}.D"), sc.y_bits, "saturate")]
    if binary:
        bias = np.clip(np.rint(soma_bias), -b_limit, b_limit).astype(np.int64)
        soma = Neurons(f"{name}.heaviside", f"{name}.y", "heaviside", HeavisideParams(bias, -1, shift), 64 * vth + 1)
        bias_out = int(np.count_nonzero(np.abs(soma_bias) > b_limit))
    else:
        mant, bexp, _, bias_out = quantize_bias(soma_bias, hw)
        lif = CubaParams(np.full(h, LIF_DU), np.full(h, LIF_DV), mant, bexp, vth, shift, hw.threshold_exponent, half)
        soma = Neurons(f"{name}.lif", f"{name}.y", "cuba", lif, 64 * vth + 1)
    mix, mix_diag = _rows(np.concatenate([blk.glu_w[:h] * s_x, blk.glu_w[h:] * 2.0**GATE_FRAC]), hw)
    mix.graded = False  # it reads the spikes
    glu = GluParams(np.clip(np.rint(blk.glu_b[:h] * s_x), -hw.state_max, hw.state_max).astype(np.int64),
                    np.clip(np.rint(blk.glu_b[h:] * 2.0**GATE_FRAC), -hw.state_max, hw.state_max).astype(np.int64),
                    GATE_FRAC, half, hw.overflow_codes["membrane"])
    stages += [soma, Dense(f"{name}.mix", soma.name, mix), Glu(f"{name}.glu", f"{name}.mix", glu),
               Add(f"{name}.res", (source, f"{name}.glu"), hw.state_bits, hw.membrane_overflow, (2, 0))]
    one = sc.one
    diag = {
        "block": i, "h": h, "modes": modes, "soma": soma.kind, "vth": vth, "soma_unit": 64 * vth + 1,
        "state_scale_min": float(sigma.min()), "state_scale_max": float(sigma.max()),
        "gain_zeroed": int(np.count_nonzero(g_real < 0.5)),  # held at 1 (its state scale follows it exactly)
        "gain_at_one": int(np.count_nonzero(np.abs(g) == 1)),
        "gain_at_max": int(np.count_nonzero(np.abs(g) == one)),
        "lambda_zero": int(np.count_nonzero((lam_re == 0) & (lam_im == 0))),
        "lambda_unit_or_more": int(np.count_nonzero(lam_re.astype(float) ** 2 + lam_im.astype(float) ** 2 >= one**2)),
        "s4d_biases_out_of_range": int(np.count_nonzero(np.abs(s4d_bias_real) > b_limit)),
        "soma_biases_out_of_range": bias_out,
        "readout": c_diag, "skip": d_diag, "mix": mix_diag,
    }
    return stages, diag


def quantize_spiking_ssm(
    arrays: SpikingSSMArrays, hw: HardwareProfile, calibration: np.ndarray | FloatRanges | None = None,
) -> FixedPointNetwork:
    """The fixed-point network of ``arrays`` under ``hw`` (module docstring). ``calibration``: a
    (batch, time, channels) float input (or the :class:`FloatRanges` of one, from :func:`calibrate`)
    whose float64 pass sets every scale; None: the profile's default ranges, inputs taken as counts."""
    cfg = arrays.config
    require_streamable(cfg, f"the {hw.name} target")
    if cfg.neuron == "sdn":
        raise SilifDeployError("the SDN is a training surrogate: hardware runs the exact LIF; load the model with "
                               "neuron 'lif' (drop --neuron sdn)")
    ranges = calibration if isinstance(calibration, FloatRanges) or calibration is None else \
        float_trace(arrays, calibration)[1]
    headroom, default = hw.calibration_headroom, hw.default_state_range
    in_frac = input_frac_bits(hw, None if ranges is None else ranges.stats)
    c = arrays.encoder_b
    offsets = [blk.norm_scale * c + blk.norm_shift for blk in arrays.blocks]  # b' of each block
    # the soma takes u = y_int << input_shift into a current that wraps at the state width: y_int saturates
    # in its Add at state_bits − input_shift bits, so a large y never wraps into a spike
    y_bits = hw.state_bits - hw.input_shift
    y_ranges = [headroom * (default if ranges is None else max(ranges.y[i], 1e-6)) for i in range(len(arrays.blocks))]
    vths = [_soma_vth(hw, blk.d * b / blk.theta, r, y_bits) for blk, b, r in zip(arrays.blocks, offsets, y_ranges)]
    # the stream scale S_x = 2^k
    stream_range = headroom * (default if ranges is None else max(ranges.stream, 1e-6))
    s_limit = min(hw.state_max / stream_range, STREAM_PER_SOMA_UNIT * min((64 * v + 1) / 64 for v in vths))
    for blk, b in zip(arrays.blocks, offsets):
        ratio = _bias_ratio(blk, b)
        if ratio > 0:
            s_limit = min(s_limit, bias_max(hw) / (64 * ratio))
    sc = _Scales(hw, _pow2_floor(s_limit), ranges, y_bits)

    enc, enc_diag = _rows(arrays.encoder_w * sc.s_x / 2.0**in_frac, hw)
    stages: list = [Dense("enc", INPUT, enc)]
    diags: list[dict[str, Any]] = []
    source = "enc"
    for i, (blk, b, vth) in enumerate(zip(arrays.blocks, offsets, vths)):
        xi_peak = (ranges.xi[i] if ranges is not None else  # uncalibrated: a constant input at the default range
                   (np.abs(blk.norm_scale) * default + np.abs(b))[:, None] / np.maximum(1 - np.abs(blk.lam), 1e-6))
        block, diag = _block(i, blk, source, sc, cfg.family == FAMILY_BINARY_S4D, b, vth, xi_peak)
        stages += block
        diags.append({**diag, "y_range": y_ranges[i]})
        source = block[-1].name
    stages.append(MeanLinear("decoder", source, arrays.decoder_w.copy(), arrays.decoder_b + arrays.decoder_w @ c,
                             float(sc.s_x)))
    quantization = {
        "family": cfg.family, "calibrated": ranges is not None, "input_frac_bits": in_frac,
        "stream_scale": sc.s_x, "stream_range": stream_range, "encoder": enc_diag, "blocks": diags,
        "alignment": "fixed-point step t + delay is float step t; block i's soma has delay 2 + 2i "
                     "(spiking_ssm_quantize module docstring)",
    }
    return FixedPointNetwork(cfg.family, cfg.d_input, stages, in_frac, hw, quantization=quantization)


# ---------------------------------------------------------------------------------------------------
# Float vs fixed alignment
# ---------------------------------------------------------------------------------------------------
def soma_stage_indices(network: FixedPointNetwork) -> list[int]:
    """Indices, into the fixed-point ``RunResult.spikes`` (one entry per neuron stage, in run order),
    of the blocks' somas: entry ``soma_stage_indices(net)[i]`` is the float model's ``spikes[i]``,
    both aligned to float steps (the s4d stages between them send states, no spikes)."""
    return [i for i, st in enumerate(network.neuron_stages) if st.kind in ("cuba", "heaviside")]
