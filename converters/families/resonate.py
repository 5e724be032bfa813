"""The resonate family: C-SiLIF and RF (one complex state u per neuron), float side.

Each kind: its torch layer, the step as a pure function over typed records, extraction to the
numpy float layer (λ = p + iq form), its NIR body (the 2×2 real block of λ as two LIs with Scale
self- and cross-couplings) and reading back, and quantization into
:class:`~silif_deploy.hw_models.neuron_resonate.ResonateParams` with per-row weight stretches.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Iterator, NamedTuple

import nir
import numpy as np

from silif_deploy.converters.families.family import FloatFamily, NirBody, QuantizedInput
from silif_deploy.converters.nir_body import BodyReader, f32, li, payload, threshold
from silif_deploy.converters.nir_interpret import li_step
from silif_deploy.converters.quantize_rules import bias_max, round_coefficients
from silif_deploy.converters.torch_neurons import HiddenLayer, complex_states, spike, torch, uniform
from silif_deploy.hw_models.dense import weight_grid
from silif_deploy.hw_models.neuron_resonate import ResonateParams
from silif_deploy.hw_models.profile import HardwareProfile


class ResonateState(NamedTuple):
    u: torch.Tensor  # complex64
    s: torch.Tensor


class CSiLIFCoefficients(NamedTuple):
    lam: torch.Tensor
    b: torch.Tensor


class RFCoefficients(NamedTuple):
    A: torch.Tensor
    dt: float


def csilif_step(current: torch.Tensor, state: ResonateState, p: CSiLIFCoefficients) -> tuple[torch.Tensor, ResonateState]:
    """One C-SiLIF step (half reset before the rotation; the observable is 2·Re u; input gain b, real)::

        u_t = λ·(u_{t−1} − 0.5·s_{t−1}) + b·I_t
        s_t = H(2·Re(u_t) − 1)
    """
    u = p.lam * (state.u - 0.5 * state.s) + p.b * current
    s = spike(2.0 * u.real - 1.0)
    return s, ResonateState(u, s)


def rf_step(current: torch.Tensor, state: ResonateState, p: RFCoefficients) -> tuple[torch.Tensor, ResonateState]:
    """One RF step, forward Euler with Δt (reset after the update)::

        u_t = u_{t−1} + Δt·(A·u_{t−1} + I_t) − s_{t−1}
        s_t = H(Re(u_t) − 1)
    """
    u = state.u + p.dt * (p.A * state.u + current) - state.s
    s = spike(u.real - 1.0)
    return s, ResonateState(u, s)


class CSiLIFLayer(HiddenLayer):
    """C-SiLIF: complex resonate-and-fire neuron with S4D-Lin initialization (paper Algorithm 2);
    step :func:`csilif_step`. Coefficients (complex64 λ, the exact exponential of the transition)::

        A = −exp(p_log_log_alpha) + i·p_alpha_img        λ = exp(A·exp(p_log_dt))
    """

    model_type = "csilif"
    state_names = ("u",)
    step = staticmethod(csilif_step)

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0, dt_min: float = 0.01, dt_max: float = 0.5) -> None:
        super().__init__(n_in, n_hidden, pdrop)
        self.log_dt = uniform(n_hidden, math.log(dt_min), math.log(dt_max))
        self.log_log_alpha = torch.nn.Parameter(torch.full((n_hidden,), math.log(0.5)))
        self.alpha_img = torch.nn.Parameter(torch.full((n_hidden,), math.pi))
        self.b = torch.nn.Parameter(torch.rand(n_hidden))

    def coefficients(self) -> dict[str, torch.Tensor]:
        a = torch.complex(-torch.exp(self.log_log_alpha), self.alpha_img)
        return {"lambda": torch.exp(a * torch.exp(self.log_dt)), "b": self.b}

    def params(self) -> CSiLIFCoefficients:
        c = self.coefficients()
        return CSiLIFCoefficients(c["lambda"], c["b"])

    def initial_state(self, batch, init_state, like) -> ResonateState:
        return ResonateState(*complex_states(batch, init_state, like))


class RFLayer(HiddenLayer):
    """Resonate-and-fire (after Higuchi et al. 2024), forward Euler with Δt = 0.004; step
    :func:`rf_step`. ``A = min(p_alpha_real, −0.1) + i·p_alpha_im`` (λ = 1 + Δt·A for the exporters).
    """

    model_type = "rf"
    state_names = ("u",)
    dt_step = 0.004
    step = staticmethod(rf_step)

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        super().__init__(n_in, n_hidden, pdrop)
        self.alpha_real = uniform(n_hidden, -10.0, -1.0)
        self.alpha_im = uniform(n_hidden, 5.0, 10.0)

    def coefficients(self) -> dict[str, torch.Tensor]:
        a = torch.complex(torch.clamp(self.alpha_real, max=-0.1), self.alpha_im)
        return {"A": a, "lambda": 1 + self.dt_step * a}

    def params(self) -> RFCoefficients:
        return RFCoefficients(self.coefficients()["A"], self.dt_step)

    def initial_state(self, batch, init_state, like) -> ResonateState:
        return ResonateState(*complex_states(batch, init_state, like))


# ----------------------------------------------------------------------------- extraction


def extract_csilif(layer: CSiLIFLayer) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(input gain 2b of the v = 2u form, Re λ and Im λ in float64)."""
    c = layer.coefficients()
    lam = c["lambda"].detach().numpy().astype(np.complex128)
    return 2.0 * c["b"].detach().double().numpy(), {"lam_re": lam.real, "lam_im": lam.imag}


def extract_rf(layer: RFLayer) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(input gain Δt, Re λ and Im λ of the float32 λ = 1 + Δt·A, in float64)."""
    lam = layer.coefficients()["lambda"].detach().numpy().astype(np.complex128)
    return np.full(layer.n_hidden, layer.dt_step), {"lam_re": lam.real, "lam_im": lam.imag}


# ----------------------------------------------------------------------------------- NIR body

CSILIF_BODY = (
    ("in", "Input", ()),
    ("in2p", "Scale", ("in",)),
    ("p", "LI", ("in2p", "p2p", "q2p", "s2p")),
    ("q", "LI", ("p2q", "q2q", "s2q")),
    ("spk", "Threshold", ("p",)),
    ("p2p", "Scale", ("p",)),
    ("q2p", "Scale", ("q",)),
    ("p2q", "Scale", ("p",)),
    ("q2q", "Scale", ("q",)),
    ("s2p", "Scale", ("spk",)),
    ("s2q", "Scale", ("spk",)),
    ("out", "Output", ("spk",)),
)
# RF's reset touches p only: no s2q node.
RF_BODY = tuple(
    (role, kind, tuple(i for i in inputs if i != "s2q")) for role, kind, inputs in CSILIF_BODY if role != "s2q"
)
CSILIF_EQUATIONS = ("u_t = lambda*(u_{t-1} - 0.5*s_{t-1}) + b*I_t (complex u); s_t = H(2*Re(u_t) - 1); "
                    "body state p = 2*Re(u), q = 2*Im(u)")
RF_EQUATIONS = ("u_t = u_{t-1} + euler_dt*(A*u_{t-1} + I_t) - s_{t-1} (complex u, lambda = 1 + euler_dt*A); "
                "s_t = H(Re(u_t) - 1); body state p = Re(u), q = Im(u)")


def csilif_terms(c: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(λ, input gain, spike kick into p + i·q) in the v = 2u form: p + iq ← λ·(p + iq − s) + 2b·I."""
    lam = np.asarray(c["lambda"]).astype(np.complex128)
    return lam, 2.0 * np.asarray(c["b"]).astype(np.float64), -lam


def rf_terms(c: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(λ, Δt, −1): p + iq ← λ·(p + iq) + Δt·I − s, λ = 1 + Δt·A in float64 from the trained A."""
    euler_dt = float(c["euler_dt"])
    lam = 1.0 + euler_dt * np.asarray(c["A"]).astype(np.complex128)
    return lam, np.full(lam.shape, euler_dt), np.full(lam.shape, -1.0 + 0j)


def rotation_body(lam: np.ndarray, dt: float) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The 2×2 real block of λ as primitives, written once for C-SiLIF, RF and SpikingSSM's S4D.

    Returns the nodes ``p``, ``q`` (LIs decaying by d = |λ|) and the Scale self- and cross-couplings
    (back-edges) ``p2p = q2q = (Re λ − d)·k``, ``q2p = −Im λ·k``, ``p2q = Im λ·k``, with k = 1/(1 − d)
    the gain an input into p must also carry, and the mask of degenerate |λ| (outside (0, 1): decay
    by 1/2, the couplings carry the rest). Under the per-step reading, p + iq ← λ·(p + iq) + input.
    """
    magnitude = np.abs(lam)
    degenerate = (magnitude <= 0) | (magnitude >= 1)
    tau = f32(-dt / np.log(np.where(degenerate, 0.5, magnitude)))
    d, weight = li_step(tau, dt)
    k = 1.0 / weight
    nodes = {
        "p": li(tau),
        "q": li(tau.copy()),
        "p2p": nir.Scale(f32((lam.real - d) * k)),
        "q2p": nir.Scale(f32(-lam.imag * k)),
        "p2q": nir.Scale(f32(lam.imag * k)),
        "q2q": nir.Scale(f32((lam.real - d) * k)),
    }
    return nodes, k, degenerate


def read_rotation(body: BodyReader, lam: np.ndarray) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], np.ndarray]:
    """What :func:`rotation_body` states, read from the primitives, beside λ: (the (what, stated,
    expected) pairs, the LI input weight 1 − d that the caller's input gains are read with)."""
    body.li("p")
    body.li("q")
    d, weight = li_step(body.tau("p"), body.dt)
    return [
        ("q time constant", body.tau("q"), body.tau("p")),
        ("Re lambda (p self-coupling)", d + weight * body.scale("p2p"), lam.real),
        ("Re lambda (q self-coupling)", d + weight * body.scale("q2q"), lam.real),
        ("Im lambda (q to p)", -weight * body.scale("q2p"), lam.imag),
        ("Im lambda (p to q)", weight * body.scale("p2q"), lam.imag),
    ], weight


def build_body(c: dict[str, np.ndarray], dt: float, what: str, terms, reset_q: bool) -> tuple[dict, dict]:
    """The rotation (:func:`rotation_body`), the input gain into p, the threshold and the spike kicks."""
    lam, gain, kick = terms(c)
    rotation, k, degenerate = rotation_body(lam, dt)
    h = lam.shape[0]
    nodes = {
        "in": nir.Input(np.array([h])),
        "in2p": nir.Scale(f32(gain * k)),
        "spk": threshold(h),
        **rotation,
        "s2p": nir.Scale(f32(kick.real * k)),
        "out": nir.Output(np.array([h])),
    }
    if reset_q:
        nodes["s2q"] = nir.Scale(f32(kick.imag * k))
    return nodes, {"degenerate_lambda": degenerate}


def read_body(body: BodyReader, meta: dict[str, Any], terms, keys: tuple[str, ...], reset_q: bool) -> Iterator:
    """What :func:`build_body` states, read from the primitives, beside the payload's values."""
    lam, gain, kick = terms({k: payload(meta, k, body.label) for k in keys})
    checks, weight = read_rotation(body, lam)
    yield from checks
    yield "input gain", weight * body.scale("in2p"), gain
    yield "reset into p", weight * body.scale("s2p"), kick.real
    if reset_q:
        yield "reset into q", weight * body.scale("s2q"), kick.imag


CSILIF_NIR = NirBody(CSILIF_BODY, CSILIF_EQUATIONS, partial(build_body, terms=csilif_terms, reset_q=True),
                     partial(read_body, terms=csilif_terms, keys=("lambda", "b"), reset_q=True))
RF_NIR = NirBody(RF_BODY, RF_EQUATIONS, partial(build_body, terms=rf_terms, reset_q=False),
                 partial(read_body, terms=rf_terms, keys=("A", "lambda", "euler_dt"), reset_q=False),
                 reset_timing="after_update", payload_extra=lambda layer: {"euler_dt": float(layer.dt_step)})


# ------------------------------------------------------------------------------ quantization


def input_norm(layer) -> float:
    """G = max_n |g_n|·‖W'_n‖∞, the largest input scale, which every row stretches towards (a row
    without weights keeps its gain as it is)."""
    return float(np.abs(layer.gain * _row_peaks(layer)).max(initial=0.0)) or 1.0


def _row_peaks(layer) -> np.ndarray:
    peak = np.abs(layer.weight).max(axis=1, initial=0.0)
    return np.where(peak > 0, peak, 1.0)


def row_scales(layer, profile: HardwareProfile, norm: float, scale: int, unit: float) -> np.ndarray:
    """Per-row weight stretches r_n (``norm``: :func:`input_norm`).

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
    peak = _row_peaks(layer)
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


def quantize(layer, q: QuantizedInput, reset_first: int) -> tuple[ResonateParams, dict[str, int | float]]:
    """Re λ, Im λ and the gain over its row stretch, g_n / r_n, to k/2^F."""
    f = q.frac_bits
    one = 1 << f
    c = layer.coefficients
    lam_re, lam_im = round_coefficients(c["lam_re"], f), round_coefficients(c["lam_im"], f)
    gain = round_coefficients(layer.gain / q.row_scale, f)
    params = ResonateParams(
        lam_re=lam_re, lam_im=lam_im, gain=gain, bias=q.bias, threshold=q.threshold, frac_bits=f,
        input_shift=q.input_shift, half=q.half, mode=q.overflow["membrane"], reset_first=reset_first,
    )
    mag = np.hypot(lam_re, lam_im)
    return params, {
        "lambda_zero": int(np.count_nonzero((lam_re == 0) & (lam_im == 0))),
        "lambda_unit_or_more": int(np.count_nonzero(mag >= one)),
        "gain_zeroed": int(np.count_nonzero((gain == 0) & (layer.gain != 0))),
        "lambda_rms_error": float(np.sqrt(np.mean((lam_re / one - c["lam_re"]) ** 2 + (lam_im / one - c["lam_im"]) ** 2))),
    }


CSILIF = FloatFamily("csilif", CSiLIFLayer, extract_csilif, CSILIF_NIR, partial(quantize, reset_first=1),
                     input_norm=input_norm, row_scales=row_scales, config_args=("dt_min", "dt_max"), state_unit=2.0)
RF = FloatFamily("rf", RFLayer, extract_rf, RF_NIR, partial(quantize, reset_first=0),
                 input_norm=input_norm, row_scales=row_scales)
