"""Quantize a float network to fixed point under a hardware profile.

Per hidden layer (F = the profile's coefficient bits, S = the state scale, a power of two):

* **State scale.** S = 2^k, the largest power of two with S·R ≤ 2^(bits−1) − 1 for the layer's
  state range R (calibrated max |state| × headroom, else the profile's default range), a legal
  threshold (S = vth_mant << 6), and weights that still fit the weight format at its largest
  exponent. The threshold 1.0 becomes θ = S.
* **Weights.** The synaptic input enters the neuron as A = a << input_shift with
  a = (W_int·x) << weight_exp, and must stand for r·I·S, so
  W_int ≈ r·W'·S / 2^(weight_exp + input_shift + input_frac). The exponent is the smallest that
  fits the largest weight in the profile's weight format; weights round to Lava's legal grid.
  For C-SiLIF (gain 2b) and RF (Δt) each row n has its own stretch r_n, chosen so that every row
  spans the weight format, and the neuron's gain coefficient becomes gain_n / r_n (see
  :func:`_row_scales`). The adaptive kinds keep r = 1: their gain 1 − α also multiplies the
  state w, so it stays the per-neuron coefficient it is.
* **Coefficients** round to k/2^F; α's complement g = 2^F − α keeps α + (1 − α) = 1 exact.
* **Bias** (folded BatchNorm offset, times r) rounds to Loihi's mantissa·2^exponent format.

The readout becomes Loihi's CUBA LIF: du = 4095 (memoryless current), dv = 4096 − round(α·4096),
gain 1 − α folded into each weight row and the bias, threshold at its maximum; its state scale
keeps the range below that threshold (narrower than a wide profile's states), so v never resets.
With ``netx=True`` the readout is put on lava-dl netx's grid (:data:`NETX_READOUT`): weight
exponent 0 (netx reads integer weights and derives its own exponent, losslessly on this grid) and
a bias that is a multiple of 2^6 (netx builds its LIF with bias_exp 6 and the file's integer bias
as the mantissa), so that netx runs the very readout our simulator runs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from silif_deploy.converters.datasets import InputStats
from silif_deploy.converters.float_params import FloatLayer, FloatNetwork
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.dense import DenseSynapse, weight_grid
from silif_deploy.hw_models.fixed_point import OVERFLOW_CODES
from silif_deploy.hw_models.network import FixedLayer, FixedPointNetwork
from silif_deploy.hw_models.neuron_adaptive import AdaptiveParams
from silif_deploy.hw_models.neuron_cuba import DECAY_BITS, CubaParams
from silif_deploy.hw_models.neuron_resonate import ResonateParams
from silif_deploy.hw_models.profile import HardwareProfile

NETX_BIAS_EXP = 6
"""netx's CUBA layers take the file's integer ``bias`` as bias_mant with bias_exp 6 (lava-dl 0.6
``netx/hdf5.py: get_neuron_params``): the effective bias is a multiple of 2^6."""
def state_scale(profile: HardwareProfile, state_range: float, weight_peak: float, input_frac: int = 0,
                ceiling: int | None = None) -> int:
    """S = 2^k with S·range ≤ ceiling (default the state max), 2^threshold_exponent ≤ S ≤ the
    largest threshold, and the largest weight, weight_peak·S / 2^(input_shift + input_frac), within
    the weight format at its largest exponent (a wide profile's states otherwise outgrow it)."""
    k_max = int(math.floor(math.log2(profile.max_threshold)))
    _, _, w_max = weight_grid(profile.weight_bits)
    weight_room = w_max * 2.0 ** (profile.weight_exp_max + profile.input_shift + input_frac) / max(weight_peak, 1e-30)
    k_max = min(k_max, int(math.floor(math.log2(weight_room))))
    limit = profile.state_max if ceiling is None else ceiling
    k = int(math.floor(math.log2(limit / max(state_range, 1e-9))))
    return 1 << min(max(k, profile.threshold_exponent), k_max)


def quantize_weights(target: np.ndarray, profile: HardwareProfile) -> tuple[np.ndarray, int, dict[str, Any]]:
    """Choose the exponent and round ``target`` (real-valued integer-domain weights) to Lava's grid.

    Returns (W_int, weight_exp, diagnostics). W_int·2^weight_exp ≈ target.
    """
    step, w_min, w_max = weight_grid(profile.weight_bits)
    peak = float(np.abs(target).max(initial=0.0))
    exp = profile.weight_exp_min if peak == 0 else math.ceil(math.log2(peak / w_max))
    exp = min(max(exp, profile.weight_exp_min), profile.weight_exp_max)
    scaled = target / 2.0**exp
    rounded = step * np.rint(scaled / step)
    clipped = np.clip(rounded, w_min, w_max)
    w_int = clipped.astype(np.int32)
    diag = {
        "weight_exp": exp,
        "weights": int(target.size),
        "weights_clipped": int(np.count_nonzero(rounded != clipped)),
        "weights_zeroed": int(np.count_nonzero((w_int == 0) & (target != 0))),
        "weights_nonzero": int(np.count_nonzero(w_int)),
        "weight_rms_error": float(np.sqrt(np.mean((w_int * 2.0**exp - target) ** 2)) / max(peak, 1e-30)),
    }
    return w_int, exp, diag


def bias_max(profile: HardwareProfile) -> int:
    """The largest bias magnitude the profile's mantissa·2^exponent format holds."""
    return ((1 << (profile.bias_mantissa_bits - 1)) - 1) << profile.bias_exponent_max


def quantize_bias(bias: np.ndarray, profile: HardwareProfile, exponent_min: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Round to mantissa·2^exponent (signed mantissa of ``bias_mantissa_bits``, exponent ≤ max).

    Returns (mantissa, exponent, integer value, number of biases out of range (clipped)).
    """
    m_max = bias_max(profile) >> profile.bias_exponent_max
    mag = np.abs(bias)
    exp = np.where(mag > m_max, np.ceil(np.log2(np.maximum(mag, 1) / m_max)), 0).astype(np.int64)
    exp = np.maximum(exp, exponent_min)
    out_of_range = int(np.count_nonzero(exp > profile.bias_exponent_max))
    exp = np.minimum(exp, profile.bias_exponent_max)
    mant = np.clip(np.rint(bias / 2.0**exp), -m_max, m_max).astype(np.int64)
    return mant, exp, mant << exp, out_of_range


def _coef(x: np.ndarray, frac_bits: int) -> np.ndarray:
    one = 1 << frac_bits
    return np.clip(np.rint(x * one), -one, one).astype(np.int64)


def _input_scales(layer: FloatLayer) -> tuple[np.ndarray, float]:
    """Row peaks ‖W'_n‖∞ of a resonate layer (1 for a row without weights: it keeps its gain as it
    is) and G = max_n |g_n|·‖W'_n‖∞, the largest input scale, which every row stretches towards."""
    peak = np.abs(layer.weight).max(axis=1, initial=0.0)
    peak = np.where(peak > 0, peak, 1.0)
    return peak, float(np.abs(layer.gain * peak).max(initial=0.0)) or 1.0


def _row_scales(layer: FloatLayer, profile: HardwareProfile, peak: np.ndarray, norm: float, scale: int,
                unit: float) -> np.ndarray:
    """Per-row weight stretches r_n of a resonate layer (``peak``, ``norm``: :func:`_input_scales`).

    Row n of the weights (and its bias) is multiplied by r_n and the neuron's gain coefficient
    becomes g_n / r_n: the neuron's input scale (BatchNorm's γ/σ times its gain 2b or Δt) moves
    from the weights, where one exponent serves the whole layer, into its own coefficient. With
    one shared scale, rows of small γ/σ kept a few bits, and their errors integrate in neurons
    with |λ| close to 1 (C-SiLIF lost 1.7 % spike agreement in L1 to it under ``loihi2-wide``).

    Both roundings count: a row stretched to the full weight range P leaves the gain a
    coefficient c_n = |g_n|·‖W'_n‖∞ / G of the unit, with relative error 1/(2·c_n·2^F). The
    sum step/(2·ρP) + 1/(2·c_n·2^F/ρ) of the two is least at ρ_n = √(step·2^F·c_n / P), so rows
    stretch to that fraction ρ_n ≤ 1 of the range (all of it unless c_n is tiny), and no gain
    rounds to 0; less where the stretched bias would leave the bias format, never below c_n
    (the gain coefficient c_n / ρ_n stays ≤ 1). The range is the largest weight itself, not
    the power of two above the largest row: every row gains up to a bit. r_n = ρ_n·G / ‖W'_n‖∞,
    ``unit`` = integer weight (at exponent 0) per unit of stretched float weight.
    """
    step, _, w_max = weight_grid(profile.weight_bits)
    share = np.abs(layer.gain) * peak / norm
    # rows at full stretch peak at norm·unit = w_max·2^e / fill; a hair below w_max·2^e, so that
    # rounding cannot lift the exponent and halve every row
    fill = w_max * 2.0 ** math.ceil(math.log2(norm * unit / w_max)) / (norm * unit) * (1 - 2.0**-40)
    stretch = fill * np.minimum(1.0, np.sqrt(step * 2.0**profile.coefficient_bits * share / w_max))
    # the stretched bias must stay representable (else it is clipped); the gain must stay ≤ 1
    with np.errstate(divide="ignore"):
        bias_room = bias_max(profile) * peak / (np.abs(layer.bias) * scale * norm)
    stretch = np.maximum(np.minimum(stretch, bias_room), share)
    stretch = np.where(stretch > 0, stretch, 1.0)  # a neuron without gain: nothing to balance
    return stretch * norm / peak


def _hidden_layer(layer: FloatLayer, profile: HardwareProfile, state_range: float, input_frac: int, graded: bool) -> tuple[FixedLayer, dict]:
    f = profile.coefficient_bits
    one = 1 << f
    resonate = layer.kind in ("csilif", "rf")
    if resonate:  # every row stretches towards G, the largest weight per unit of S
        peak, gain_norm = _input_scales(layer)
        weight_peak = gain_norm
    else:
        gain_norm, weight_peak = 1.0, float(np.abs(layer.weight).max(initial=0.0))
    scale = state_scale(profile, state_range, weight_peak, input_frac)
    half = profile.state_max + 1
    unit = scale / 2.0 ** (profile.input_shift + input_frac)
    row_scale = _row_scales(layer, profile, peak, gain_norm, scale, unit) if resonate else np.ones(layer.size)
    target = row_scale[:, None] * layer.weight * unit
    w_int, w_exp, diag = quantize_weights(target, profile)
    mant, exp, bias, bias_out = quantize_bias(row_scale * layer.bias * scale, profile)
    diag.update(
        {"kind": layer.kind, "neurons": layer.size, "state_scale": scale, "state_range": state_range,
         "threshold": scale, "threshold_mantissa": scale >> profile.threshold_exponent,
         "input_gain_folded": gain_norm, "biases_out_of_range": bias_out,
         "biases_zeroed": int(np.count_nonzero((bias == 0) & (layer.bias != 0)))}
    )
    c = layer.coefficients
    if resonate:
        lam_re, lam_im = _coef(c["lam_re"], f), _coef(c["lam_im"], f)
        gain = _coef(layer.gain / row_scale, f)
        params = ResonateParams(
            lam_re=lam_re, lam_im=lam_im, gain=gain, bias=bias, threshold=scale, frac_bits=f,
            input_shift=profile.input_shift, half=half, mode=OVERFLOW_CODES[profile.membrane_overflow],
            reset_first=1 if layer.kind == "csilif" else 0,
        )
        mag = np.hypot(lam_re, lam_im)
        diag.update({
            "lambda_zero": int(np.count_nonzero((lam_re == 0) & (lam_im == 0))),
            "lambda_unit_or_more": int(np.count_nonzero(mag >= one)),
            "gain_zeroed": int(np.count_nonzero((gain == 0) & (layer.gain != 0))),
            "lambda_rms_error": float(np.sqrt(np.mean((lam_re / one - c["lam_re"]) ** 2 + (lam_im / one - c["lam_im"]) ** 2))),
        })
    else:
        alpha = _coef(c["alpha"], f)
        beta, a = _coef(c["beta"], f), _coef(c["a"], f)
        adaptive = layer.kind != "lif"
        params = AdaptiveParams(
            alpha=alpha, gain=one - alpha, beta=beta, a=a, b_spike=np.rint(c["b"] * scale).astype(np.int64),
            bias=bias, threshold=scale, frac_bits=f, input_shift=profile.input_shift, half=half,
            u_mode=OVERFLOW_CODES[profile.membrane_overflow], w_mode=OVERFLOW_CODES[profile.adaptation_overflow],
        )
        diag.update({
            "alpha_zero_memoryless": int(np.count_nonzero(alpha == 0)),
            "alpha_one_no_input": int(np.count_nonzero(alpha == one)),
        })
        if adaptive:
            diag.update({
                "beta_one_perfect_integrator": int(np.count_nonzero(beta == one)),
                "beta_one_in_float": int(np.count_nonzero(c["beta"] == 1.0)),
                "beta_one_with_coupling": int(np.count_nonzero((beta == one) & ((a != 0) | (c["b"] > 0)))),
                "beta_zero": int(np.count_nonzero(beta == 0)),
                "a_zeroed": int(np.count_nonzero((a == 0) & (c["a"] != 0))),
            })
    synapse = DenseSynapse(w_int, w_exp, profile.weight_bits, graded)
    return FixedLayer(layer.kind, synapse, params, scale), diag


def _readout_layer(layer: FloatLayer, profile: HardwareProfile, state_range: float,
                   netx: bool = False) -> tuple[FixedLayer, dict]:
    # the largest threshold, which v must never pass (the CUBA neuron would spike and reset v to 0);
    # it can be narrower than the states (Lava: 2^23 − 64 against 2^23 − 1; so the ceiling)
    vth = (1 << profile.threshold_mantissa_bits) - 1
    if netx:  # netx's grid: integer weights at exponent 0, biases in whole weight units (2^6)
        profile = dataclasses.replace(profile, weight_exp_min=0, weight_exp_max=0)
    gain = layer.gain[:, None]
    scale = state_scale(profile, state_range, float(np.abs(gain * layer.weight).max(initial=0.0)),
                        ceiling=min(profile.state_max, profile.max_threshold))
    one = 1 << DECAY_BITS
    alpha = np.clip(np.rint(layer.coefficients["alpha"] * one), 1, one).astype(np.int64)
    target = gain * layer.weight * scale / 2.0**profile.input_shift
    w_int, w_exp, diag = quantize_weights(target, profile)
    mant, exp, bias, bias_out = quantize_bias(layer.gain * layer.bias * scale, profile,
                                              exponent_min=NETX_BIAS_EXP if netx else 0)
    n = layer.size
    params = CubaParams(
        du=np.full(n, one - 1, np.int64), dv=one - alpha, bias_mant=mant, bias_exp=exp,
        vth=vth, input_shift=profile.input_shift,
        threshold_exponent=profile.threshold_exponent, half=profile.state_max + 1,
    )
    diag.update({"kind": "cuba", "neurons": n, "state_scale": scale, "state_range": state_range,
                 "biases_out_of_range": bias_out, "distinct_decays": int(len(np.unique(params.dv)))})
    return FixedLayer("cuba", DenseSynapse(w_int, w_exp, profile.weight_bits, False), params, scale), diag


def input_frac_bits(profile: HardwareProfile, x: np.ndarray | InputStats | None) -> int:
    """0 for event counts (sent as they are); else the most fraction bits that fit the message width.
    ``x``: the calibration input, or its :class:`InputStats` (from a pass over a streamed input)."""
    stats = None if x is None else x if isinstance(x, InputStats) else InputStats.of(x)
    if stats is None or stats.is_counts or stats.peak == 0:
        return 0
    return int(math.floor(math.log2(((1 << profile.input_message_bits) - 1) / stats.peak)))


def quantize(
    net: FloatNetwork,
    profile: HardwareProfile,
    state_ranges: list[float] | None = None,
    readout_range: float | None = None,
    calibration_input: np.ndarray | InputStats | None = None,
    netx: bool = False,
) -> FixedPointNetwork:
    """Quantize ``net``. ``state_ranges``/``readout_range`` come from a calibration run (else the
    profile's default range); ``calibration_input`` decides whether inputs are counts; ``netx``
    puts the readout on lava-dl netx's grid (module docstring)."""
    if state_ranges is not None and len(state_ranges) != len(net.hidden):
        raise SilifDeployError("calibration gave a state range per layer that does not match the network depth")
    in_frac = input_frac_bits(profile, calibration_input)
    hidden, report = [], []
    for i, layer in enumerate(net.hidden):
        rng = profile.default_state_range if state_ranges is None else max(state_ranges[i] * profile.calibration_headroom, 1.0)
        fixed, diag = _hidden_layer(layer, profile, rng, in_frac if i == 0 else 0, graded=(i == 0))
        hidden.append(fixed)
        report.append(diag)
    ro_range = profile.default_state_range if readout_range is None else max(readout_range * profile.calibration_headroom, 1.0)
    readout, ro_diag = _readout_layer(net.readout, profile, ro_range, netx=netx)
    return FixedPointNetwork.chain(
        model_type=net.model_type, n_inputs=net.n_inputs, hidden=hidden, readout=readout,
        input_frac_bits=in_frac, profile=profile,
        quantization={"layers": report, "readout": ro_diag, "calibrated": state_ranges is not None,
                      "input_frac_bits": in_frac},
    )
