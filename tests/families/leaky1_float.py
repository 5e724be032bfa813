"""leaky1, float side: a one-state leaky integrate-and-fire family (LIF with one state instead of two).

Everything the float side needs, in this module alone: the torch layer (trained key ``alpha``), the
step, extraction, the NIR body and its reading back, quantization into :class:`LeakyParams`, and the
registration line.
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

from families.leaky1_hw import LeakyParams

ALPHA_RANGE = (math.exp(-1 / 5), math.exp(-1 / 25))


class Leaky1State(NamedTuple):
    v: torch.Tensor
    s: torch.Tensor


class Leaky1Coefficients(NamedTuple):
    alpha: torch.Tensor


def step(current: torch.Tensor, state: Leaky1State, p: Leaky1Coefficients) -> tuple[torch.Tensor, Leaky1State]:
    """One leaky1 step::

        v_t = α·(v_{t−1} − s_{t−1}) + (1 − α)·I_t
        s_t = H(v_t − 1)
    """
    v = p.alpha * (state.v - state.s) + (1 - p.alpha) * current
    s = spike(v - 1.0)
    return s, Leaky1State(v, s)


class Leaky1Layer(HiddenLayer):
    """leaky1: ``α = clamp(p_alpha, e^−1/5, e^−1/25)``; step :func:`step`."""

    model_type = "leaky1"
    state_names = ("v",)
    step = staticmethod(step)

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        super().__init__(n_in, n_hidden, pdrop)
        self.alpha = uniform(n_hidden, *ALPHA_RANGE)

    def coefficients(self) -> dict[str, torch.Tensor]:
        return {"alpha": torch.clamp(self.alpha, *ALPHA_RANGE)}

    def params(self) -> Leaky1Coefficients:
        return Leaky1Coefficients(**self.coefficients())

    def initial_state(self, batch, init_state, like) -> Leaky1State:
        return Leaky1State(*real_states(2, batch, init_state, like))


def extract(layer: Leaky1Layer) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    alpha = layer.coefficients()["alpha"].detach().double().numpy()
    return 1.0 - alpha, {"alpha": alpha}


BODY = (
    ("in", "Input", ()),
    ("v", "LI", ("in", "s2v")),
    ("spk", "Threshold", ("v",)),
    ("s2v", "Scale", ("spk",)),
    ("out", "Output", ("spk",)),
)


def build_body(c: dict[str, np.ndarray], dt: float, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    alpha = c["alpha"].astype(np.float64)
    tau, degenerate = li_tau(alpha, dt, f"{what} alpha")
    h = alpha.shape[0]
    return {
        "in": nir.Input(np.array([h])), "v": li(tau), "spk": threshold(h),
        "s2v": nir.Scale(f32(-alpha / li_step(tau, dt)[1])), "out": nir.Output(np.array([h])),
    }, {"degenerate_alpha": degenerate}


def read_body(body: BodyReader, meta: dict[str, Any]):
    d, weight = body.li("v")
    alpha = payload(meta, "alpha", body.label)
    yield "alpha (v time constant)", d, alpha
    yield "alpha (reset s2v)", -weight * body.scale("s2v"), alpha


def quantize(layer, q: QuantizedInput) -> tuple[LeakyParams, dict[str, int]]:
    one = 1 << q.frac_bits
    alpha = round_coefficients(layer.coefficients["alpha"], q.frac_bits)
    params = LeakyParams(alpha=alpha, gain=one - alpha, bias=q.bias, threshold=q.threshold, frac_bits=q.frac_bits,
                         input_shift=q.input_shift, half=q.half, mode=q.overflow["membrane"])
    return params, {"alpha_zero_memoryless": int(np.count_nonzero(alpha == 0)),
                    "alpha_one_no_input": int(np.count_nonzero(alpha == one))}


EQUATIONS = "v_t = alpha*(v_{t-1} - s_{t-1}) + (1-alpha)*I_t; s_t = H(v_t - 1)"
# LIF has the same keys (alpha): a leaky1 checkpoint is named, never detected
LEAKY1 = register(FloatFamily("leaky1", Leaky1Layer, extract, NirBody(BODY, EQUATIONS, build_body, read_body),
                              quantize, detect=False))
