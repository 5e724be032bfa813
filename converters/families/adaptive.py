"""The adaptive family: SiLIF, adLIF, cAdLIF (two states u, w) and LIF (one state u), float side.

Each kind: its torch layer (the authors' parametrization and ``state_dict`` keys), the step as a
pure function over typed records, extraction to the numpy float layer, its NIR body (LIs with Scale
couplings, ``nir.md`` §10.2) and reading back, and quantization into
:class:`~silif_deploy.hw_models.neuron_adaptive.AdaptiveParams` (LIF: β = a = b = 0).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Iterator, NamedTuple

import nir
import numpy as np

from silif_deploy.converters.families.family import FloatFamily, NirBody, QuantizedInput
from silif_deploy.converters.nir_body import BodyReader, f32, li, li_tau, payload, threshold
from silif_deploy.converters.nir_interpret import li_step
from silif_deploy.converters.quantize_rules import round_coefficients
from silif_deploy.converters.torch_neurons import HiddenLayer, real_states, spike, torch, uniform
from silif_deploy.hw_models.neuron_adaptive import AdaptiveParams

LIF_RANGE = (math.exp(-1 / 5), math.exp(-1 / 25))


class AdaptiveState(NamedTuple):
    u: torch.Tensor
    w: torch.Tensor
    s: torch.Tensor


class AdaptiveCoefficients(NamedTuple):
    alpha: torch.Tensor
    beta: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor


def adaptive_step(current: torch.Tensor, state: AdaptiveState, p: AdaptiveCoefficients) -> tuple[torch.Tensor, AdaptiveState]:
    """One step of SiLIF / adLIF / cAdLIF, in this order (threshold 1, soft reset of the previous
    potential before the leak)::

        w_t = β·w_{t−1} + a·u_{t−1} + b·s_{t−1}
        u_t = α·(u_{t−1} − s_{t−1}) + (1 − α)·(I_t − w_t)
        s_t = H(u_t − 1)
    """
    w = p.beta * state.w + p.a * state.u + p.b * state.s
    u = p.alpha * (state.u - state.s) + (1 - p.alpha) * (current - w)
    s = spike(u - 1.0)
    return s, AdaptiveState(u, w, s)


class LIFState(NamedTuple):
    u: torch.Tensor
    s: torch.Tensor


class LIFCoefficients(NamedTuple):
    alpha: torch.Tensor


def lif_step(current: torch.Tensor, state: LIFState, p: LIFCoefficients) -> tuple[torch.Tensor, LIFState]:
    """One LIF step::

        u_t = α·(u_{t−1} − s_{t−1}) + (1 − α)·I_t
        s_t = H(u_t − 1)
    """
    u = p.alpha * (state.u - state.s) + (1 - p.alpha) * current
    s = spike(u - 1.0)
    return s, LIFState(u, s)


class SiLIFLayer(HiddenLayer):
    """SiLIF: second-order adaptive LIF with SSM-style log-rate parametrization (paper Algorithm 1);
    step :func:`adaptive_step`. Coefficients (float32, recomputed every forward pass)::

        α = exp(−(exp(p_alpha)·exp(p_dt)))      β = exp(−(exp(p_beta)·exp(p_dt)))
        a = clamp(p_a, 0, 1)                    b = clamp(p_b, 0, 2)
    """

    model_type = "silif"
    state_names = ("u", "w")
    xavier_init = True
    step = staticmethod(adaptive_step)

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        super().__init__(n_in, n_hidden, pdrop)
        self.dt = torch.nn.Parameter(torch.full((n_hidden,), math.log(0.004)))
        self.alpha = uniform(n_hidden, math.log(10.0), math.log(250.0))
        self.beta = uniform(n_hidden, math.log(2.5), math.log(10.0))
        self.a = uniform(n_hidden, 0.0, 1.0)
        self.b = uniform(n_hidden, 0.0, 2.0)

    def coefficients(self) -> dict[str, torch.Tensor]:
        dt = torch.exp(self.dt)
        return {
            "alpha": torch.exp(-(torch.exp(self.alpha) * dt)),
            "beta": torch.exp(-(torch.exp(self.beta) * dt)),
            "a": torch.clamp(self.a, 0.0, 1.0),
            "b": torch.clamp(self.b, 0.0, 2.0),
        }

    def params(self) -> AdaptiveCoefficients:
        return AdaptiveCoefficients(**self.coefficients())

    def initial_state(self, batch, init_state, like) -> AdaptiveState:
        return AdaptiveState(*real_states(3, batch, init_state, like))


class AdLIFLayer(SiLIFLayer):
    """adLIF (sparch): SiLIF's step with discrete, clamped coefficients stored directly.

    ``α ∈ [e^−1/5, e^−1/25]``, ``β ∈ [e^−1/30, e^−1/120]``, ``a ∈ [−1, 1]``, ``b ∈ [0, 2]``
    (initialized uniformly over the same ranges, clamped in every forward pass); step
    :func:`adaptive_step`.
    """

    model_type = "adlif"
    xavier_init = False
    alpha_range = LIF_RANGE
    beta_range = (math.exp(-1 / 30), math.exp(-1 / 120))
    a_range = (-1.0, 1.0)
    b_range = (0.0, 2.0)

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        HiddenLayer.__init__(self, n_in, n_hidden, pdrop)
        self.alpha = uniform(n_hidden, *self.alpha_range)
        self.beta = uniform(n_hidden, *self.beta_range)
        self.a = uniform(n_hidden, *self.a_range)
        self.b = uniform(n_hidden, *self.b_range)

    def coefficients(self) -> dict[str, torch.Tensor]:
        return {
            "alpha": torch.clamp(self.alpha, *self.alpha_range),
            "beta": torch.clamp(self.beta, *self.beta_range),
            "a": torch.clamp(self.a, *self.a_range),
            "b": torch.clamp(self.b, *self.b_range),
        }


class CAdLIFLayer(AdLIFLayer):
    """cAdLIF (constrained adLIF, after Deckers et al. 2024): adLIF's step (:func:`adaptive_step`)
    with the ranges ``α ∈ [0.36, 0.96]``, ``β ∈ [0.96, 0.99]``, ``a ∈ [0, 1]``, ``b ∈ [0, 2]`` and
    Xavier-uniform W.
    """

    model_type = "cadlif"
    xavier_init = True
    alpha_range = (0.36, 0.96)
    beta_range = (0.96, 0.99)
    a_range = (0.0, 1.0)
    b_range = (0.0, 2.0)


class LIFLayer(HiddenLayer):
    """LIF (sparch): ``α = clamp(p_alpha, e^−1/5, e^−1/25)``; step :func:`lif_step`."""

    model_type = "lif"
    state_names = ("u",)
    alpha_range = LIF_RANGE
    step = staticmethod(lif_step)

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        super().__init__(n_in, n_hidden, pdrop)
        self.alpha = uniform(n_hidden, *self.alpha_range)

    def coefficients(self) -> dict[str, torch.Tensor]:
        return {"alpha": torch.clamp(self.alpha, *self.alpha_range)}

    def params(self) -> LIFCoefficients:
        return LIFCoefficients(**self.coefficients())

    def initial_state(self, batch, init_state, like) -> LIFState:
        return LIFState(*real_states(2, batch, init_state, like))


# ----------------------------------------------------------------------------- extraction


def extract(layer: HiddenLayer) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(input gain 1 − α, coefficients α, β, a, b in float64; 0 for those the kind lacks)."""
    c = {k: v.detach() for k, v in layer.coefficients().items()}
    alpha = c["alpha"].double().numpy()
    zeros = np.zeros_like(alpha)
    coeffs = {k: c[k].double().numpy() if k in c else zeros for k in ("beta", "a", "b")}
    return 1.0 - alpha, {"alpha": alpha, **coeffs}


# ----------------------------------------------------------------------------------- NIR body

ADAPTIVE_BODY = (
    ("in", "Input", ()),
    ("w", "LI", ("u2w", "s2w")),          # back-edges: u_{t-1}, s_{t-1}
    ("w2u", "Scale", ("w",)),             # w_t, same step
    ("u", "LI", ("in", "w2u", "s2u")),    # s2u is a back-edge: the reset uses s_{t-1}
    ("spk", "Threshold", ("u",)),
    ("s2u", "Scale", ("spk",)),
    ("u2w", "Scale", ("u",)),
    ("s2w", "Scale", ("spk",)),
    ("out", "Output", ("spk",)),
)
LIF_BODY = (
    ("in", "Input", ()),
    ("u", "LI", ("in", "s2u")),
    ("spk", "Threshold", ("u",)),
    ("s2u", "Scale", ("spk",)),
    ("out", "Output", ("spk",)),
)
ADAPTIVE_EQUATIONS = ("w_t = beta*w_{t-1} + a*u_{t-1} + b*s_{t-1}; u_t = alpha*(u_{t-1} - s_{t-1}) + "
                      "(1-alpha)*(I_t - w_t); s_t = H(u_t - 1)")
LIF_EQUATIONS = "u_t = alpha*(u_{t-1} - s_{t-1}) + (1-alpha)*I_t; s_t = H(u_t - 1)"


def build_body(c: dict[str, np.ndarray], dt: float, what: str, adaptive: bool = True) -> tuple[dict, dict]:
    """u (and w) as LIs: an LI's input enters times (1 − d), so each coupling into it is divided by that."""
    alpha = c["alpha"].astype(np.float64)
    tau_u, degenerate_alpha = li_tau(alpha, dt, f"{what} alpha")
    gain_u = 1.0 / li_step(tau_u, dt)[1]
    h = alpha.shape[0]
    nodes: dict[str, Any] = {
        "in": nir.Input(np.array([h])),
        "u": li(tau_u),
        "spk": threshold(h),
        "s2u": nir.Scale(f32(-alpha * gain_u)),
        "out": nir.Output(np.array([h])),
    }
    flags = {"degenerate_alpha": degenerate_alpha}
    if adaptive:
        tau_w, degenerate_beta = li_tau(c["beta"], dt, f"{what} beta")
        gain_w = 1.0 / li_step(tau_w, dt)[1]
        nodes |= {
            "w": li(tau_w),
            "w2u": nir.Scale(np.full(h, -1.0, dtype=np.float32)),
            "u2w": nir.Scale(f32(c["a"].astype(np.float64) * gain_w)),
            "s2w": nir.Scale(f32(c["b"].astype(np.float64) * gain_w)),
        }
        flags["degenerate_beta"] = degenerate_beta
    return nodes, flags


def read_body(body: BodyReader, meta: dict[str, Any], adaptive: bool = True) -> Iterator[tuple[str, Any, Any]]:
    """What :func:`build_body` states, read from the primitives, beside the payload's values."""
    d_u, weight_u = body.li("u")
    alpha = payload(meta, "alpha", body.label)
    yield "alpha (u time constant)", d_u, alpha
    yield "alpha (reset s2u)", -weight_u * body.scale("s2u"), alpha
    if adaptive:
        d_w, weight_w = body.li("w")
        yield "beta (w time constant)", d_w, payload(meta, "beta", body.label)
        yield "w to u coupling", body.scale("w2u"), -np.ones_like(d_w)
        yield "a (u2w)", weight_w * body.scale("u2w"), payload(meta, "a", body.label)
        yield "b (s2w)", weight_w * body.scale("s2w"), payload(meta, "b", body.label)


ADAPTIVE_NIR = NirBody(ADAPTIVE_BODY, ADAPTIVE_EQUATIONS, build_body, read_body)
LIF_NIR = NirBody(LIF_BODY, LIF_EQUATIONS, partial(build_body, adaptive=False), partial(read_body, adaptive=False))


# ------------------------------------------------------------------------------ quantization


def quantize(layer, q: QuantizedInput, adaptive: bool = True) -> tuple[AdaptiveParams, dict[str, int]]:
    """α, β, a to k/2^F, g = 2^F − α (so α + g = 1 exactly), b in state units (b·θ)."""
    f = q.frac_bits
    one = 1 << f
    c = layer.coefficients
    alpha = round_coefficients(c["alpha"], f)
    beta, a = round_coefficients(c["beta"], f), round_coefficients(c["a"], f)
    params = AdaptiveParams(
        alpha=alpha, gain=one - alpha, beta=beta, a=a, b_spike=np.rint(c["b"] * q.threshold).astype(np.int64),
        bias=q.bias, threshold=q.threshold, frac_bits=f, input_shift=q.input_shift, half=q.half,
        u_mode=q.overflow["membrane"], w_mode=q.overflow["adaptation"],
    )
    diag = {
        "alpha_zero_memoryless": int(np.count_nonzero(alpha == 0)),
        "alpha_one_no_input": int(np.count_nonzero(alpha == one)),
    }
    if adaptive:
        diag.update({
            "beta_one_perfect_integrator": int(np.count_nonzero(beta == one)),
            "beta_one_in_float": int(np.count_nonzero(c["beta"] == 1.0)),
            "beta_one_with_coupling": int(np.count_nonzero((beta == one) & ((a != 0) | (c["b"] > 0)))),
            "beta_zero": int(np.count_nonzero(beta == 0)),
            "a_zeroed": int(np.count_nonzero((a == 0) & (c["a"] != 0))),
        })
    return params, diag


def _family(layer: type, nir_body: NirBody, adaptive: bool = True, **kwargs: Any) -> FloatFamily:
    return FloatFamily(layer.model_type, layer, extract, nir_body, partial(quantize, adaptive=adaptive), **kwargs)


SILIF = _family(SiLIFLayer, ADAPTIVE_NIR)
ADLIF = _family(AdLIFLayer, ADAPTIVE_NIR)
CADLIF = _family(CAdLIFLayer, ADAPTIVE_NIR)
LIF = _family(LIFLayer, LIF_NIR, adaptive=False)
