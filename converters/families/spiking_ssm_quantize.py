"""Quantize a SpikingSSM / binary-S4D float network (:class:`~.spiking_ssm.SpikingSSMArrays`) into
the fixed-point stage graph (``hw_models/network.py``; integer rules ``spiking_ssm.md`` §8).

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
calibrated max |ξ_n| × headroom within the 24-bit state, g_n ≤ 2^F, and readout weights at
least half the range of their row's exponent (the profile's exponent floor, −8 on loihi2, is
the reason: states far above the soma's scale would need readout weights below 2^−8, so the gain
keeps slow modes' states near their readout's scale; the readout row divides by σ_n exactly,
with the rounded g_n). The soma's unit is V = 64·vth + 1 (its ``≥ Θ`` as ``> Θ − 1 = vth << 6``),
y_int = y/θ·V/64, vth the largest that keeps the calibrated max |y/θ| × headroom within 17 bits
(u = y_int << 6 wraps at 24 on loihi2) and D·b'/θ within the bias format. S_x is the largest power of two
with the stream's range × headroom in 24 bits, S_x ≤ V/256 (D·u rows on the weight grid) and the
S4D biases within the bias format. Without calibration every range is the profile's
``default_state_range`` (and the S4D state's |u|/(1 − |λ|)).

**Time alignment (pipeline delays).** Every Dense delivers one step later, nothing else delays
(``hw_models/network.py``): the encoder puts float frame t on the stream at step t + 1; block i's
S4D state sees frame t at step 1 + 2i, its soma (after the C/D Dense) at step 2 + 2i, its GLU and
residual (after the mix Dense) at step 3 + 2i, where the stream is held back 2 steps to meet it.
The simulator already aligns every neuron stage by its delay (``RunResult.spikes[l][:, t]`` is
stage l's step t + delay): :func:`soma_stage_indices` says which entries of the fixed-point
``spikes`` list are the blocks' somas (the float model's ``spikes[i]``); the s4d stages in
between send states, never spikes. :func:`stage_delays` gives the delay of every stage. The
decoder reads the last residual stream at steps delay … delay + T − 1, the T steps aligned with
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


def quantize_spiking_ssm(
    arrays: SpikingSSMArrays, hw: HardwareProfile, calibration: np.ndarray | FloatRanges | None = None,
) -> FixedPointNetwork:
    """The fixed-point network of ``arrays`` under ``hw`` (module docstring). ``calibration``: a
    (batch, time, channels) float input (or the :class:`FloatRanges` of one, from :func:`calibrate`)
    whose float64 pass sets every scale; None: the profile's default ranges."""
    cfg = arrays.config
    require_streamable(cfg, f"the {hw.name} target")
    if cfg.neuron == "sdn":
        raise SilifDeployError("the SDN is a training surrogate: hardware runs the exact LIF; load the model with "
                               "neuron 'lif' (drop --neuron sdn)")
    ranges = calibration if isinstance(calibration, FloatRanges) or calibration is None else \
        float_trace(arrays, calibration)[1]
    headroom = hw.calibration_headroom
    default = hw.default_state_range
    half, state_max = hw.state_max + 1, hw.state_max
    one = 1 << hw.coefficient_bits
    shift = hw.input_shift
    _, _, w_max = weight_grid(hw.weight_bits)
    floor = min(READOUT_WEIGHT_FLOOR, w_max)
    b_limit = bias_max(hw)
    in_frac = input_frac_bits(hw, None if ranges is None else ranges.stats)
    c = arrays.encoder_b
    binary = cfg.family == FAMILY_BINARY_S4D
    n_blocks = len(arrays.blocks)
    stream_range = (default if ranges is None else max(ranges.stream, 1e-6)) * headroom
    y_ranges = [(default if ranges is None else max(r, 1e-6)) * headroom
                for r in (ranges.y if ranges is not None else [default] * n_blocks)]

    # the soma unit V = 64·vth + 1 per block (y_int = y/θ · V/64 within y_bits, D·b'/θ·V a bias)
    # the soma takes u = y_int << input_shift into a current that wraps at the state width: y_int saturates
    # in its Add at state_bits − input_shift bits, so a large y never wraps into a spike
    y_bits = hw.state_bits - shift
    y_max = (1 << (y_bits - 1)) - 1
    offsets = [blk.norm_scale * c + blk.norm_shift for blk in arrays.blocks]  # b' of each block
    vths = []
    for blk, r, b in zip(arrays.blocks, y_ranges, offsets):
        vth = y_max / r
        db = float(np.abs(blk.d * b / blk.theta).max(initial=0.0))
        if db > 0:
            vth = min(vth, (b_limit / db - 1) / 64)
        vths.append(int(min(max(math.floor(vth), 1), (1 << hw.threshold_mantissa_bits) - 1)))
    units = [(64 * v + 1) / 64 for v in vths]  # U_y: the y_int of y/θ = 1

    # the stream scale S_x = 2^k
    s_limit = min(state_max / stream_range, min(units) / 4)
    for blk, b in zip(arrays.blocks, offsets):
        ratio = float(np.abs(b / np.where(blk.norm_scale != 0, blk.norm_scale, np.inf)).max(initial=0.0))
        if ratio > 0:
            s_limit = min(s_limit, b_limit / (64 * ratio))
    s_x = _pow2_floor(s_limit)

    stages: list = []
    enc, enc_diag = _rows(arrays.encoder_w * s_x / 2.0**in_frac, hw)
    stages.append(Dense("enc", INPUT, enc))
    diags: list[dict[str, Any]] = []
    x = "enc"
    for i, (blk, b_off, vth, u_y) in enumerate(zip(arrays.blocks, offsets, vths, units)):
        h, modes = blk.lam.shape
        a = np.where(blk.norm_scale != 0, blk.norm_scale, 1e-30)
        # per-state scale σ: as large as the 24-bit state, g ≤ 2^F and the readout row's exponent allow
        xi_peak = (ranges.xi[i] if ranges is not None else
                   (np.abs(a) * default + np.abs(b_off))[:, None] / np.maximum(1 - np.abs(blk.lam), 1e-6))
        cap = np.minimum(state_max / (headroom * np.maximum(xi_peak, 1e-12)), (64 * s_x / np.abs(a))[:, None])
        per_sigma = 2 * np.maximum(np.abs(blk.c.real), np.abs(blk.c.imag)) * u_y / blk.theta[:, None]  # W = per_sigma/σ
        sigma = np.minimum(cap, np.where(per_sigma > 0, per_sigma, np.inf) / (2.0**hw.weight_exp_min * floor))
        row_peak = (per_sigma / sigma).max(axis=1)
        row_exp = np.clip(np.ceil(np.log2(np.maximum(row_peak, 1e-300) / w_max)), hw.weight_exp_min, hw.weight_exp_max)
        sigma = np.minimum(cap, np.where(per_sigma > 0, per_sigma, np.inf) / (2.0**row_exp * floor)[:, None])
        g_real = sigma * np.abs(a)[:, None] * one / (64 * s_x)
        g = np.clip(np.rint(g_real), 1, one).astype(np.int64) * np.where(a < 0, -1, 1)[:, None]
        sigma = g / one * 64 * s_x / a[:, None]  # the exact state scale of the rounded gain (> 0)
        lam_re, lam_im = (round_coefficients(part, hw.coefficient_bits) for part in (blk.lam.real, blk.lam.imag))
        s4d_bias_real = np.repeat(64 * s_x * b_off / a, modes)
        s4d_bias = np.clip(np.rint(s4d_bias_real), -b_limit, b_limit).astype(np.int64)
        s4d = S4dParams(lam_re.reshape(-1), lam_im.reshape(-1), g.reshape(-1), s4d_bias, hw.coefficient_bits,
                        shift, half, hw.overflow_codes["membrane"])
        # readout rows over (p, q): y_int = Σ (2Re C′·p − 2Im C′·q)/(θσ)·U_y
        n = h * modes
        read = np.zeros((h, 2 * n))
        cols = np.arange(n).reshape(h, modes)
        rows = np.arange(h)[:, None]
        read[rows, cols] = 2 * blk.c.real / (blk.theta[:, None] * sigma) * u_y
        read[rows, n + cols] = -2 * blk.c.imag / (blk.theta[:, None] * sigma) * u_y
        c_syn, c_diag = _rows(read, hw)
        d_syn, d_diag = _rows(np.diag(blk.d * blk.norm_scale / blk.theta * u_y / s_x), hw)
        soma_bias = blk.d * b_off / blk.theta * (64 * u_y)  # in v units (V per 1.0 of y/θ)
        name = f"b{i}"
        stages += [Neurons(f"{name}.s4d", x, "s4d", s4d, 64 * s_x),
                   Dense(f"{name}.C", f"{name}.s4d", c_syn),
                   Dense(f"{name}.D", x, d_syn),
                   Add(f"{name}.y", (f"{name}.C", f"{name}.D"), y_bits, "saturate")]
        if binary:
            hb = np.clip(np.rint(soma_bias), -b_limit, b_limit).astype(np.int64)
            stages.append(Neurons(f"{name}.heaviside", f"{name}.y", "heaviside", HeavisideParams(hb, -1, shift),
                                  64 * vth + 1))
            soma, bias_out = f"{name}.heaviside", int(np.count_nonzero(np.abs(soma_bias) > b_limit))
        else:
            mant, bexp, _, bias_out = quantize_bias(soma_bias, hw)
            lif = CubaParams(np.full(h, LIF_DU), np.full(h, LIF_DV), mant, bexp, vth, shift, hw.threshold_exponent, half)
            stages.append(Neurons(f"{name}.lif", f"{name}.y", "cuba", lif, 64 * vth + 1))
            soma = f"{name}.lif"
        mix_target = np.concatenate([blk.glu_w[:h] * s_x, blk.glu_w[h:] * 2.0**GATE_FRAC])
        mix, mix_diag = _rows(mix_target, hw)
        mix.graded = False
        glu = GluParams(np.clip(np.rint(blk.glu_b[:h] * s_x), -state_max, state_max).astype(np.int64),
                        np.clip(np.rint(blk.glu_b[h:] * 2.0**GATE_FRAC), -state_max, state_max).astype(np.int64),
                        GATE_FRAC, half, hw.overflow_codes["membrane"])
        stages += [Dense(f"{name}.mix", soma, mix), Glu(f"{name}.glu", f"{name}.mix", glu),
                   Add(f"{name}.res", (x, f"{name}.glu"), hw.state_bits, hw.membrane_overflow, (2, 0))]
        x = f"{name}.res"
        diags.append({
            "block": i, "h": h, "modes": modes, "soma": "heaviside" if binary else "cuba",
            "vth": vth, "soma_unit": 64 * vth + 1, "y_range": y_ranges[i],
            "state_scale_min": float(sigma.min()), "state_scale_max": float(sigma.max()),
            "gain_at_one": int(np.count_nonzero(np.abs(g) == 1)),
            "gain_at_max": int(np.count_nonzero(np.abs(g) == one)),
            "lambda_zero": int(np.count_nonzero((lam_re == 0) & (lam_im == 0))),
            "lambda_unit_or_more": int(np.count_nonzero(lam_re.astype(float) ** 2 + lam_im.astype(float) ** 2 >= one**2)),
            "s4d_biases_out_of_range": int(np.count_nonzero(np.abs(s4d_bias_real) > b_limit)),
            "soma_biases_out_of_range": bias_out,
            "readout": c_diag, "skip": d_diag, "mix": mix_diag,
        })
    decoder = MeanLinear("decoder", x, arrays.decoder_w.copy(), arrays.decoder_b + arrays.decoder_w @ c, float(s_x))
    stages.append(decoder)
    quantization = {
        "family": cfg.family, "calibrated": ranges is not None, "input_frac_bits": in_frac,
        "stream_scale": s_x, "stream_range": stream_range, "encoder": enc_diag, "blocks": diags,
        "alignment": "fixed-point step t + delay is float step t; block i's soma has delay 2 + 2i "
                     "(spiking_ssm_quantize module docstring)",
    }
    return FixedPointNetwork(cfg.family, cfg.d_input, stages, in_frac, hw, quantization=quantization)


# ---------------------------------------------------------------------------------------------------
# Float vs fixed alignment
# ---------------------------------------------------------------------------------------------------
def stage_delays(network: FixedPointNetwork) -> dict[str, int]:
    """Steps from an input frame to each stage (one per Dense, plus the residual lags): fixed-point
    step t + delay of a stage is float step t."""
    return network.delays()


def soma_stage_indices(network: FixedPointNetwork) -> list[int]:
    """Indices, into the fixed-point ``RunResult.spikes`` (one entry per neuron stage, in run order),
    of the blocks' somas: entry ``soma_stage_indices(net)[i]`` is the float model's ``spikes[i]``,
    both aligned to float steps (the s4d stages between them send states, no spikes)."""
    return [i for i, st in enumerate(network.neuron_stages) if st.kind in ("cuba", "heaviside")]
