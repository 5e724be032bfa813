"""Float PyTorch neuron layers: SiLIF, C-SiLIF and the baselines, faithful to the authors' code.

This is the float side's single definition of every neuron (``../shared/spec/neurons.md`` §2–§9):
same parametrization, initialization, update order, reset, clamps, boxcar surrogate and
``state_dict`` key names as the authors' ``models/snns.py``, so their checkpoints load unchanged and
reproduce their spikes. Each hidden layer is ``Linear (no bias) → BatchNorm1d → neuron → Dropout``.

Every layer exposes :meth:`HiddenLayer.coefficients`, the discrete per-neuron coefficients the
recurrence actually uses (clamps applied, computed in float32 exactly as the forward pass does).
The exporters (NIR, fixed point) read those, never the raw trained logs.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

InitState = Literal["zeros", "random"]


class BoxcarSpike(torch.autograd.Function):
    """Heaviside forward ``x > 0``; boxcar surrogate backward: the gradient passes where −0.5 < x ≤ 0.5."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * ((x > -0.5) & (x <= 0.5)).to(grad.dtype)


spike = BoxcarSpike.apply


def _uniform(shape: int, low: float, high: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape).uniform_(low, high))


class HiddenLayer(nn.Module):
    """Shared structure of a hidden layer: ``W`` (Linear, no bias), ``norm`` (BatchNorm1d), neuron, dropout.

    Subclasses define the neuron: its parameters, :meth:`coefficients`, :meth:`initial_state` and
    :meth:`cell` (one time step). States start at zero unless ``init_state="random"`` (the authors'
    fresh U[0, 1) draw on every call, in the order of ``neurons.md`` §8).
    """

    model_type: str = ""
    state_names: tuple[str, ...] = ()
    xavier_init = False

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        super().__init__()
        self.n_in, self.n_hidden = n_in, n_hidden
        self.W = nn.Linear(n_in, n_hidden, bias=False)
        if self.xavier_init:
            nn.init.xavier_uniform_(self.W.weight)
        self.norm = nn.BatchNorm1d(n_hidden, momentum=0.05)
        self.drop = nn.Dropout(p=pdrop)

    def input_current(self, x: torch.Tensor) -> torch.Tensor:
        """I_t = BN(W x_t) for all t at once; BN statistics pool batch and time (``neurons.md`` §3)."""
        b, t, _ = x.shape
        wx = self.W(x)
        return self.norm(wx.reshape(b * t, self.n_hidden)).reshape(b, t, self.n_hidden)

    def coefficients(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def initial_state(self, batch: int, init_state: InitState, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def cell(self, current: torch.Tensor, state: tuple[torch.Tensor, ...], c: dict[str, torch.Tensor]):
        """One step: ``(I_t, state_{t-1}, coefficients) -> (s_t, state_t)``; the state ends with s."""
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, init_state: InitState = "zeros", record_states: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run the layer over (batch, time, n_in); return spikes (batch, time, H) and, on request, states."""
        current = self.input_current(x)
        c = self.coefficients()
        state = self.initial_state(x.shape[0], init_state, current)
        spikes, traces = [], []
        for t in range(current.shape[1]):
            s, state = self.cell(current[:, t], state, c)
            spikes.append(s)
            if record_states:
                traces.append(state[:-1])
        out = self.drop(torch.stack(spikes, dim=1))
        states = {}
        if record_states:
            for i, name in enumerate(self.state_names):
                states[name] = torch.stack([tr[i] for tr in traces], dim=1)
        return out, states


def _real_states(n: int, batch: int, init_state: InitState, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
    shape = (batch, like.shape[-1])
    if init_state == "random":
        return tuple(torch.rand(shape, dtype=like.dtype, device=like.device) for _ in range(n))
    return tuple(torch.zeros(shape, dtype=like.dtype, device=like.device) for _ in range(n))


def _complex_states(batch: int, init_state: InitState, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (batch, like.shape[-1])
    if init_state == "random":
        u0 = torch.rand(shape, dtype=torch.complex64, device=like.device)
        return u0, torch.rand(shape, dtype=like.dtype, device=like.device)
    return (torch.zeros(shape, dtype=torch.complex64, device=like.device),
            torch.zeros(shape, dtype=like.dtype, device=like.device))


class SiLIFLayer(HiddenLayer):
    """SiLIF: second-order adaptive LIF with SSM-style log-rate parametrization (paper Algorithm 1).

    Coefficients (float32, recomputed every forward pass)::

        α = exp(−(exp(p_alpha)·exp(p_dt)))      β = exp(−(exp(p_beta)·exp(p_dt)))
        a = clamp(p_a, 0, 1)                    b = clamp(p_b, 0, 2)

    Step, in this order (threshold 1, soft reset of the previous potential before the leak)::

        w_t = β·w_{t−1} + a·u_{t−1} + b·s_{t−1}
        u_t = α·(u_{t−1} − s_{t−1}) + (1 − α)·(I_t − w_t)
        s_t = H(u_t − 1)
    """

    model_type = "silif"
    state_names = ("u", "w")
    xavier_init = True

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        super().__init__(n_in, n_hidden, pdrop)
        self.dt = nn.Parameter(torch.full((n_hidden,), math.log(0.004)))
        self.alpha = _uniform(n_hidden, math.log(10.0), math.log(250.0))
        self.beta = _uniform(n_hidden, math.log(2.5), math.log(10.0))
        self.a = _uniform(n_hidden, 0.0, 1.0)
        self.b = _uniform(n_hidden, 0.0, 2.0)

    def coefficients(self) -> dict[str, torch.Tensor]:
        dt = torch.exp(self.dt)
        return {
            "alpha": torch.exp(-(torch.exp(self.alpha) * dt)),
            "beta": torch.exp(-(torch.exp(self.beta) * dt)),
            "a": torch.clamp(self.a, 0.0, 1.0),
            "b": torch.clamp(self.b, 0.0, 2.0),
        }

    def initial_state(self, batch, init_state, like):
        return _real_states(3, batch, init_state, like)

    def cell(self, current, state, c):
        u, w, s = state
        w = c["beta"] * w + c["a"] * u + c["b"] * s
        u = c["alpha"] * (u - s) + (1 - c["alpha"]) * (current - w)
        s = spike(u - 1.0)
        return s, (u, w, s)


class AdLIFLayer(SiLIFLayer):
    """adLIF (sparch): SiLIF's step with discrete, clamped coefficients stored directly.

    ``α ∈ [e^−1/5, e^−1/25]``, ``β ∈ [e^−1/30, e^−1/120]``, ``a ∈ [−1, 1]``, ``b ∈ [0, 2]``
    (initialized uniformly over the same ranges, clamped in every forward pass)::

        w_t = β·w_{t−1} + a·u_{t−1} + b·s_{t−1}
        u_t = α·(u_{t−1} − s_{t−1}) + (1 − α)·(I_t − w_t)
        s_t = H(u_t − 1)
    """

    model_type = "adlif"
    xavier_init = False
    alpha_range = (math.exp(-1 / 5), math.exp(-1 / 25))
    beta_range = (math.exp(-1 / 30), math.exp(-1 / 120))
    a_range = (-1.0, 1.0)
    b_range = (0.0, 2.0)

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        HiddenLayer.__init__(self, n_in, n_hidden, pdrop)
        self.alpha = _uniform(n_hidden, *self.alpha_range)
        self.beta = _uniform(n_hidden, *self.beta_range)
        self.a = _uniform(n_hidden, *self.a_range)
        self.b = _uniform(n_hidden, *self.b_range)

    def coefficients(self) -> dict[str, torch.Tensor]:
        return {
            "alpha": torch.clamp(self.alpha, *self.alpha_range),
            "beta": torch.clamp(self.beta, *self.beta_range),
            "a": torch.clamp(self.a, *self.a_range),
            "b": torch.clamp(self.b, *self.b_range),
        }


class CAdLIFLayer(AdLIFLayer):
    """cAdLIF (constrained adLIF, after Deckers et al. 2024): adLIF's step with the ranges

    ``α ∈ [0.36, 0.96]``, ``β ∈ [0.96, 0.99]``, ``a ∈ [0, 1]``, ``b ∈ [0, 2]`` and Xavier-uniform W::

        w_t = β·w_{t−1} + a·u_{t−1} + b·s_{t−1}
        u_t = α·(u_{t−1} − s_{t−1}) + (1 − α)·(I_t − w_t)
        s_t = H(u_t − 1)
    """

    model_type = "cadlif"
    xavier_init = True
    alpha_range = (0.36, 0.96)
    beta_range = (0.96, 0.99)
    a_range = (0.0, 1.0)
    b_range = (0.0, 2.0)


class LIFLayer(HiddenLayer):
    """LIF (sparch): ``α ∈ [e^−1/5, e^−1/25]`` (clamped)::

        u_t = α·(u_{t−1} − s_{t−1}) + (1 − α)·I_t
        s_t = H(u_t − 1)
    """

    model_type = "lif"
    state_names = ("u",)
    alpha_range = (math.exp(-1 / 5), math.exp(-1 / 25))

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        super().__init__(n_in, n_hidden, pdrop)
        self.alpha = _uniform(n_hidden, *self.alpha_range)

    def coefficients(self) -> dict[str, torch.Tensor]:
        return {"alpha": torch.clamp(self.alpha, *self.alpha_range)}

    def initial_state(self, batch, init_state, like):
        return _real_states(2, batch, init_state, like)

    def cell(self, current, state, c):
        u, s = state
        u = c["alpha"] * (u - s) + (1 - c["alpha"]) * current
        s = spike(u - 1.0)
        return s, (u, s)


class CSiLIFLayer(HiddenLayer):
    """C-SiLIF: complex resonate-and-fire neuron with S4D-Lin initialization (paper Algorithm 2).

    Coefficients (complex64 λ, computed as the exact exponential of the transition)::

        A = −exp(p_log_log_alpha) + i·p_alpha_img        λ = exp(A·exp(p_log_dt))

    Step (half reset before the rotation; the observable is 2·Re u; input gain b, real)::

        u_t = λ·(u_{t−1} − 0.5·s_{t−1}) + b·I_t
        s_t = H(2·Re(u_t) − 1)
    """

    model_type = "csilif"
    state_names = ("u",)

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0, dt_min: float = 0.01, dt_max: float = 0.5) -> None:
        super().__init__(n_in, n_hidden, pdrop)
        self.log_dt = _uniform(n_hidden, math.log(dt_min), math.log(dt_max))
        self.log_log_alpha = nn.Parameter(torch.full((n_hidden,), math.log(0.5)))
        self.alpha_img = nn.Parameter(torch.full((n_hidden,), math.pi))
        self.b = nn.Parameter(torch.rand(n_hidden))

    def coefficients(self) -> dict[str, torch.Tensor]:
        a = torch.complex(-torch.exp(self.log_log_alpha), self.alpha_img)
        return {"lambda": torch.exp(a * torch.exp(self.log_dt)), "b": self.b}

    def initial_state(self, batch, init_state, like):
        return _complex_states(batch, init_state, like)

    def cell(self, current, state, c):
        u, s = state
        u = c["lambda"] * (u - 0.5 * s) + c["b"] * current
        s = spike(2.0 * u.real - 1.0)
        return s, (u, s)


class RFLayer(HiddenLayer):
    """Resonate-and-fire (after Higuchi et al. 2024), forward Euler with Δt = 0.004::

        A   = min(p_alpha_real, −0.1) + i·p_alpha_im      (λ = 1 + Δt·A for the exporters)
        u_t = u_{t−1} + Δt·(A·u_{t−1} + I_t) − s_{t−1}    (complex u; reset after the update)
        s_t = H(Re(u_t) − 1)
    """

    model_type = "rf"
    state_names = ("u",)
    dt_step = 0.004

    def __init__(self, n_in: int, n_hidden: int, pdrop: float = 0.0) -> None:
        super().__init__(n_in, n_hidden, pdrop)
        self.alpha_real = _uniform(n_hidden, -10.0, -1.0)
        self.alpha_im = _uniform(n_hidden, 5.0, 10.0)

    def coefficients(self) -> dict[str, torch.Tensor]:
        a = torch.complex(torch.clamp(self.alpha_real, max=-0.1), self.alpha_im)
        return {"A": a, "lambda": 1 + self.dt_step * a}

    def initial_state(self, batch, init_state, like):
        return _complex_states(batch, init_state, like)

    def cell(self, current, state, c):
        u, s = state
        u = u + self.dt_step * (c["A"] * u + current) - s
        s = spike(u.real - 1.0)
        return s, (u, s)


class ReadoutLayer(nn.Module):
    """Leaky-integrator readout; it never spikes. ``α_o = clamp(p_alpha, e^−1/5, e^−1/25)``::

        I_t   = BN(W s_t)
        u_t   = α_o·u_{t−1} + (1 − α_o)·I_t
        score = Σ_t softmax(u_t)              (prediction = argmax score)
    """

    alpha_range = (math.exp(-1 / 5), math.exp(-1 / 25))

    def __init__(self, n_in: int, n_classes: int) -> None:
        super().__init__()
        self.n_in, self.n_classes = n_in, n_classes
        self.W = nn.Linear(n_in, n_classes, bias=False)
        self.norm = nn.BatchNorm1d(n_classes, momentum=0.05)
        self.alpha = _uniform(n_classes, *self.alpha_range)

    def coefficients(self) -> dict[str, torch.Tensor]:
        return {"alpha": torch.clamp(self.alpha, *self.alpha_range)}

    def forward(self, x: torch.Tensor, init_state: InitState = "zeros") -> tuple[torch.Tensor, torch.Tensor]:
        """Return (scores (batch, classes), membrane trajectory u (batch, time, classes))."""
        b, t, _ = x.shape
        current = self.norm(self.W(x).reshape(b * t, self.n_classes)).reshape(b, t, self.n_classes)
        alpha = self.coefficients()["alpha"]
        (u,) = _real_states(1, b, init_state, current)
        trajectory, scores = [], torch.zeros_like(u)
        for step in range(t):
            u = alpha * u + (1 - alpha) * current[:, step]
            trajectory.append(u)
            scores = scores + torch.softmax(u, dim=1)
        return scores, torch.stack(trajectory, dim=1)


HIDDEN_LAYERS: dict[str, type[HiddenLayer]] = {
    cls.model_type: cls for cls in (SiLIFLayer, CSiLIFLayer, CAdLIFLayer, AdLIFLayer, LIFLayer, RFLayer)
}
