"""synlif, float side: a current-based LIF with two states, the synaptic current i and the membrane v.

Everything the float side needs, in this module alone: the torch layer (trained keys ``alpha``,
``beta``), the step, extraction, the NIR body and its reading back, quantization into
:class:`SynLifParams`, and the registration line.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import nir
import numpy as np
import torch

from silif_deploy.converters.families import register
from silif_deploy.converters.families.family import FloatFamily, NirBody, QuantizedInput
from silif_deploy.converters.nir_body import BodyReader, f32, li, li_tau, payload, threshold
from silif_deploy.converters.nir_interpret import li_step
from silif_deploy.converters.quantize_rules import round_coefficients
from silif_deploy.converters.torch_neurons import HiddenLayer, real_states, spike, uniform

from families.synlif_hw import SynLifParams

ALPHA_RANGE = (math.exp(-1 / 5), math.exp(-1 / 25))
BETA_RANGE = (math.exp(-1 / 30), math.exp(-1 / 120))


class SynLifState(NamedTuple):
    i: torch.Tensor
    v: torch.Tensor
    s: torch.Tensor


class SynLifCoefficients(NamedTuple):
    alpha: torch.Tensor
    beta: torch.Tensor


def step(current: torch.Tensor, state: SynLifState, p: SynLifCoefficients) -> tuple[torch.Tensor, SynLifState]:
    """One synlif step::

        i_t = β·i_{t−1} + I_t
        v_t = α·(v_{t−1} − s_{t−1}) + (1 − α)·i_t
        s_t = H(v_t − 1)
    """
    i = p.beta * state.i + current
    v = p.alpha * (state.v - state.s) + (1 - p.alpha) * i
    s = spike(v - 1.0)
    return s, SynLifState(i, v, s)


class SynLifLayer(HiddenLayer):
    """synlif: ``α = clamp(p_alpha, e^−1/5, e^−1/25)``, ``β = clamp(p_beta, e^−1/30, e^−1/120)``;
    step :func:`step`."""

    model_type = "synlif"
    state_names = ("i", "v")
    step = staticmethod(step)

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        super().__init__(n_in, n_hidden, pdrop)
        self.alpha = uniform(n_hidden, *ALPHA_RANGE)
        self.beta = uniform(n_hidden, *BETA_RANGE)

    def coefficients(self) -> dict[str, torch.Tensor]:
        return {"alpha": torch.clamp(self.alpha, *ALPHA_RANGE), "beta": torch.clamp(self.beta, *BETA_RANGE)}

    def params(self) -> SynLifCoefficients:
        return SynLifCoefficients(**self.coefficients())

    def initial_state(self, batch, init_state, like) -> SynLifState:
        return SynLifState(*real_states(3, batch, init_state, like))


def extract(layer: SynLifLayer) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    c = layer.coefficients()
    alpha = c["alpha"].detach().double().numpy()
    return 1.0 - alpha, {"alpha": alpha, "beta": c["beta"].detach().double().numpy()}


# i is an LI too: i_t = β·i_{t−1} + I_t, its input entering times (1 − d_i), so in2i = 1/(1 − d_i);
# v reads i_t in the same step (i comes first) with the coupling (1 − α)/(1 − d_v) = 1
BODY = (
    ("in", "Input", ()),
    ("in2i", "Scale", ("in",)),
    ("i", "LI", ("in2i",)),
    ("v", "LI", ("i", "s2v")),
    ("spk", "Threshold", ("v",)),
    ("s2v", "Scale", ("spk",)),
    ("out", "Output", ("spk",)),
)


def build_body(c: dict[str, np.ndarray], dt: float, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    alpha = c["alpha"].astype(np.float64)
    tau_v, degenerate_alpha = li_tau(alpha, dt, f"{what} alpha")
    tau_i, degenerate_beta = li_tau(c["beta"], dt, f"{what} beta")
    h = alpha.shape[0]
    return {
        "in": nir.Input(np.array([h])), "in2i": nir.Scale(f32(1.0 / li_step(tau_i, dt)[1])),
        "i": li(tau_i), "v": li(tau_v), "spk": threshold(h),
        "s2v": nir.Scale(f32(-alpha / li_step(tau_v, dt)[1])), "out": nir.Output(np.array([h])),
    }, {"degenerate_alpha": degenerate_alpha, "degenerate_beta": degenerate_beta}


def read_body(body: BodyReader, meta: dict[str, Any]):
    d_i, weight_i = body.li("i")
    yield "beta (i time constant)", d_i, payload(meta, "beta", body.label)
    yield "input into i (in2i)", weight_i * body.scale("in2i"), np.ones_like(d_i)
    d_v, weight_v = body.li("v")
    alpha = payload(meta, "alpha", body.label)
    yield "alpha (v time constant)", d_v, alpha
    yield "alpha (reset s2v)", -weight_v * body.scale("s2v"), alpha


def quantize(layer, q: QuantizedInput) -> tuple[SynLifParams, dict[str, int]]:
    """α, β to k/2^F, g = 2^F − α; i takes the second state's overflow rule (as w does), v the membrane's."""
    one = 1 << q.frac_bits
    c = layer.coefficients
    alpha, beta = round_coefficients(c["alpha"], q.frac_bits), round_coefficients(c["beta"], q.frac_bits)
    params = SynLifParams(alpha=alpha, gain=one - alpha, beta=beta, bias=q.bias, threshold=q.threshold,
                          frac_bits=q.frac_bits, input_shift=q.input_shift, half=q.half,
                          i_mode=q.overflow["current"], v_mode=q.overflow["membrane"])
    return params, {"alpha_zero_memoryless": int(np.count_nonzero(alpha == 0)),
                    "alpha_one_no_input": int(np.count_nonzero(alpha == one)),
                    "beta_one_perfect_integrator": int(np.count_nonzero(beta == one))}


EQUATIONS = "i_t = beta*i_{t-1} + I_t; v_t = alpha*(v_{t-1} - s_{t-1}) + (1-alpha)*i_t; s_t = H(v_t - 1)"
SYNLIF = register(FloatFamily("synlif", SynLifLayer, extract, NirBody(BODY, EQUATIONS, build_body, read_body),
                              quantize))
