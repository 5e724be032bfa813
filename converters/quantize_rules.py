"""The rounding rules every layer's quantization shares (the reasoning is in :mod:`.quantize`).

State scale S = 2^k; weights on Lava's grid with one exponent per layer; biases in Loihi's
mantissa·2^exponent format; coefficients to k/2^F. The family modules
(:mod:`silif_deploy.converters.families`) and :mod:`.quantize` use them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from silif_deploy.hw_models.dense import weight_grid
from silif_deploy.hw_models.profile import HardwareProfile


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
        "weights": int(np.count_nonzero(target)),  # the non-zero float weights (a block-sparse readout has many zeros)
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


def round_coefficients(x: np.ndarray, frac_bits: int) -> np.ndarray:
    one = 1 << frac_bits
    return np.clip(np.rint(x * one), -one, one).astype(np.int64)
