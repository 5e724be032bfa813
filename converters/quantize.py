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
  :func:`~silif_deploy.converters.families.resonate.row_scales`). The adaptive kinds keep r = 1: their gain 1 − α also multiplies the
  state w, so it stays the per-neuron coefficient it is.
* **Coefficients** round to k/2^F; α's complement g = 2^F − α keeps α + (1 − α) = 1 exact. Each
  family turns them into its integer record, with its diagnostics (``quantize`` of its
  :class:`~silif_deploy.converters.families.family.FloatFamily`); the per-row stretches are
  :func:`silif_deploy.converters.families.resonate.row_scales`.
* **Bias** (folded BatchNorm offset, times r) rounds to Loihi's mantissa·2^exponent format; the
  state scale halves until every bias fits that format (a clipped bias would change what the
  neuron computes; a smaller scale costs only resolution).

The readout becomes Loihi's CUBA LIF: du = 4095 (memoryless current), dv = 4096 − round(α·4096),
gain 1 − α folded into each weight row and the bias, threshold at its maximum; its state scale
keeps the range below that threshold (narrower than a wide profile's states), so v never resets.
With ``netx=True`` the readout is put on lava-dl netx's grid (:data:`NETX_READOUT`): weight
exponent 0 (netx reads integer weights and derives its own exponent, losslessly on this grid) and
a bias that is a multiple of 2^6 (netx builds its LIF with bias_exp 6 and the file's integer bias
as the mantissa), so that netx runs the very readout our simulator runs.
"""

from __future__ import annotations

import math

import numpy as np

from silif_deploy.converters.datasets import InputStats
from silif_deploy.converters.families import family, readout
from silif_deploy.converters.families.family import QuantizedInput
from silif_deploy.converters.float_params import FloatLayer, FloatNetwork
from silif_deploy.converters.quantize_rules import bias_max, quantize_bias, quantize_weights, state_scale
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.network import FixedLayer, FixedPointNetwork
from silif_deploy.hw_models.profile import HardwareProfile


def _hidden_layer(layer: FloatLayer, profile: HardwareProfile, state_range: float, input_frac: int, graded: bool) -> tuple[FixedLayer, dict]:
    kind = family(layer.kind)
    stretched = kind.row_scales is not None
    if stretched:  # every row stretches towards G, the largest weight per unit of S
        gain_norm = kind.input_norm(layer)
        weight_peak = gain_norm
    else:
        gain_norm, weight_peak = 1.0, float(np.abs(layer.weight).max(initial=0.0))
    scale = state_scale(profile, state_range, weight_peak, input_frac)
    while True:
        unit = scale / 2.0 ** (profile.input_shift + input_frac)
        row_scale = kind.row_scales(layer, profile, gain_norm, scale, unit) if stretched else np.ones(layer.size)
        # a clipped bias changes what the neuron computes; a halved scale only costs a bit of resolution
        if scale <= 1 << profile.threshold_exponent or np.abs(row_scale * layer.bias * scale).max(initial=0.0) <= bias_max(profile):
            break
        scale >>= 1
    target = row_scale[:, None] * layer.weight * unit
    w_int, w_exp, diag = quantize_weights(target, profile)
    mant, exp, bias, bias_out = quantize_bias(row_scale * layer.bias * scale, profile)
    diag.update(
        {"kind": layer.kind, "neurons": layer.size, "state_scale": scale, "state_range": state_range,
         "threshold": scale, "threshold_mantissa": scale >> profile.threshold_exponent,
         "input_gain_folded": gain_norm, "biases_out_of_range": bias_out,
         "biases_zeroed": int(np.count_nonzero((bias == 0) & (layer.bias != 0)))}
    )
    params, kind_diag = kind.quantize(layer, QuantizedInput(
        bias=bias, threshold=scale, row_scale=row_scale, half=profile.state_max + 1,
        frac_bits=profile.coefficient_bits, input_shift=profile.input_shift,
        overflow=profile.overflow_codes,
    ))
    diag.update(kind_diag)
    synapse = DenseSynapse(w_int, w_exp, profile.weight_bits, graded)
    return FixedLayer(layer.kind, synapse, params, scale), diag


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
    readout_layer, ro_diag = readout.quantize(net.readout, profile, ro_range, netx=netx)
    return FixedPointNetwork.chain(
        model_type=net.model_type, n_inputs=net.n_inputs, hidden=hidden, readout=readout_layer,
        input_frac_bits=in_frac, profile=profile,
        quantization={"layers": report, "readout": ro_diag, "calibrated": state_ranges is not None,
                      "input_frac_bits": in_frac},
    )
