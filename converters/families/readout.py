"""The leaky-integrator readout, float side: torch layer, step, extraction, NIR node, quantization.

It never spikes; the host scores its trajectory (``score = Σ_t softmax(u_t)``). In NIR it is one
``LI`` (``nir_ext = "readout"``); in fixed point Loihi's CUBA LIF with a memoryless current and its
threshold at the maximum (:class:`~silif_deploy.hw_models.neuron_cuba.CubaParams`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import nir
import numpy as np

from silif_deploy.converters.nir_body import agree, li_tau, payload
from silif_deploy.converters.netx_export import NETX_BIAS_EXP
from silif_deploy.converters.nir_interpret import PER_STEP_READING, li_step
from silif_deploy.converters.quantize_rules import quantize_bias, quantize_weights, state_scale
from silif_deploy.converters.torch_neurons import InitState, Module, real_states, torch, uniform
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.network import FixedLayer
from silif_deploy.hw_models.neuron_cuba import DECAY_BITS, CubaParams
from silif_deploy.hw_models.neuron_kinds import READOUT_KIND
from silif_deploy.hw_models.profile import HardwareProfile

NIR_EXT = "readout"
EQUATIONS = "u_t = alpha*u_{t-1} + (1-alpha)*I_t"


class ReadoutCoefficients(NamedTuple):
    alpha: torch.Tensor


def readout_step(current: torch.Tensor, u: torch.Tensor, p: ReadoutCoefficients) -> tuple[torch.Tensor, torch.Tensor]:
    """One readout step (the output is the state itself)::

        u_t = α_o·u_{t−1} + (1 − α_o)·I_t
    """
    u = p.alpha * u + (1 - p.alpha) * current
    return u, u


class ReadoutLayer(Module):
    """Leaky-integrator readout ``I_t = BN(W s_t)``, step :func:`readout_step`,
    ``α_o = clamp(p_alpha, e^−1/5, e^−1/25)``; ``score = Σ_t softmax(u_t)`` (prediction = argmax score).
    """

    alpha_range = (math.exp(-1 / 5), math.exp(-1 / 25))

    def __init__(self, n_in: int, n_classes: int) -> None:
        super().__init__()
        self.n_in, self.n_classes = n_in, n_classes
        self.W = torch.nn.Linear(n_in, n_classes, bias=False)
        self.norm = torch.nn.BatchNorm1d(n_classes, momentum=0.05)
        self.alpha = uniform(n_classes, *self.alpha_range)

    def coefficients(self) -> dict[str, torch.Tensor]:
        return {"alpha": torch.clamp(self.alpha, *self.alpha_range)}

    def forward(self, x: torch.Tensor, init_state: InitState = "zeros") -> tuple[torch.Tensor, torch.Tensor]:
        """Return (scores (batch, classes), membrane trajectory u (batch, time, classes))."""
        b, t, _ = x.shape
        current = self.norm(self.W(x).reshape(b * t, self.n_classes)).reshape(b, t, self.n_classes)
        params = ReadoutCoefficients(**self.coefficients())
        (u,) = real_states(1, b, init_state, current)
        trajectory, scores = [], torch.zeros_like(u)
        for step in range(t):
            _, u = readout_step(current[:, step], u, params)
            trajectory.append(u)
            scores = scores + torch.softmax(u, dim=1)
        return scores, torch.stack(trajectory, dim=1)


def extract(layer: ReadoutLayer) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(input gain 1 − α_o, {α_o}) in float64."""
    alpha = layer.coefficients()["alpha"].detach().double().numpy()
    return 1.0 - alpha, {"alpha": alpha}


# -------------------------------------------------------------------------------------- NIR


def to_nir(folded, trained_alpha: np.ndarray, index: int, dt: float, header: dict[str, Any]) -> nir.LI:
    """The readout as one LI whose payload holds α_o (the float network's ``stated`` α, float32)
    and the trained p_alpha (``header``: the fields every neuron payload starts with)."""
    alpha = folded.stated["alpha"]
    tau, _ = li_tau(alpha, dt, "readout alpha")  # the clamp keeps α inside (0, 1)
    return nir.LI(tau=tau, r=np.ones_like(tau), v_leak=np.zeros_like(tau), metadata={
        **header, "layer": index, "dt": dt, "discretization": PER_STEP_READING, "equations": EQUATIONS, "alpha": alpha,
        "trained_alpha": trained_alpha,
    })


def check_nir(node: nir.LI, label: str) -> None:
    """The LI states the payload's α_o (r = 1, v_leak = 0)."""
    meta = node.metadata
    dt = float(payload(meta, "dt", label))
    agree(label, "r", node.r, np.ones_like(node.r))
    agree(label, "v_leak", node.v_leak, np.zeros_like(node.v_leak))
    agree(label, "alpha (time constant)", li_step(node.tau, dt)[0], payload(meta, "alpha", label))


# ------------------------------------------------------------------------------ quantization


def quantize(layer, profile: HardwareProfile, state_range: float, netx: bool = False) -> tuple[FixedLayer, dict]:
    """Loihi's CUBA LIF: du = 4095 (memoryless current), dv = 4096 − round(α·4096), gain 1 − α
    folded into each weight row and the bias, threshold at its maximum; with ``netx`` on lava-dl
    netx's grid (:data:`~silif_deploy.converters.netx_export.NETX_BIAS_EXP`, :mod:`~silif_deploy.converters.quantize`)."""
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
    diag.update({"kind": READOUT_KIND, "neurons": n, "state_scale": scale, "state_range": state_range,
                 "biases_out_of_range": bias_out, "distinct_decays": int(len(np.unique(params.dv)))})
    return FixedLayer(READOUT_KIND, DenseSynapse(w_int, w_exp, profile.weight_bits, False), params, scale), diag
