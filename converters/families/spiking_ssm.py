"""SpikingSSM (Shen et al., AAAI 2025) and binary S4D (Stan & Rhodes, a reconstruction): float models.

The float side's one definition of the spiking state space models (``../shared/spec/spiking_ssm.md``),
faithful to the authors' code (``shenshuaijie/SDN`` @ 709640e ``models/spike/ss4d.py`` inside
``state-spaces/s4`` @ e757cef): the same parametrizations, update order, ``>=`` spike test, quirks and
``state_dict`` key names, so the authors' checkpoints load unchanged and reproduce their spikes::

    x (B, L, d_input) -> encoder Linear(d_input, H) -> n_layers x block -> mean over L -> Linear(H, classes)

    block i, residual stream x:
        u = norm_i(x) if prenorm else x
        y = (S4D(u)) / exp(ln_vth)          # S4D: causal convolution with K plus D*u (spec §3)
        s = neuron(y)                       # exact LIF (default), the authors' SDN, or Heaviside (binary S4D)
        z = GLU(Conv1d(H, 2H, k=1)(s))
        x = z + x
        (not prenorm: norm_i(z) is computed and discarded by the authors' code, so no norm acts)

Two forms compute the same network: the **kernel form** (``form="kernel"``: the S4D as an FFT
convolution with its materialized kernel, as the authors train and evaluate) and the **streaming form**
(``form="stream"``: every stage one time step at a time through the pure step functions below, what the
hardware runs). The step functions follow the norse convention ``step(input, state, params) ->
(output, state)`` over NamedTuple records; each docstring states its float update rule once.

**Binary S4D is a reconstruction**: its authors' code could not be obtained; this model follows the
third-party reproductions (spec §7): the same S4D, a Heaviside [y >= 0] on its output (no membrane,
no reset, no learnable threshold), then the same GLU mixing and residual.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import asdict, dataclass, replace
from dataclasses import fields as dataclass_fields
from typing import Any, Literal, Mapping, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from silif_deploy.converters.families.sdn_weights import SDN_WEIGHTS
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.run_result import RunResult

Neuron = Literal["lif", "sdn", "heaviside"]
Form = Literal["kernel", "stream"]
FAMILY_SPIKING_SSM = "spiking_ssm"
FAMILY_BINARY_S4D = "binary_s4d"
BINARY_S4D_LABEL = "binary S4D (reconstruction: the authors' code is unpublished; spec spiking_ssm.md §7)"
LIF_TAU = 0.125  # the authors' BPTTNueron default; the shipped SDN was fitted to it (spec §4.1)
SDN_TAPS = SDN_WEIGHTS["conv1.weight"][0][-1]  # FusedSDN's Conv1d(1 -> 8, k = 8): m_t sees 8 past inputs
_BLOCK_KEY = re.compile(r"^backbone\.s4_layers\.(\d+)\.(.+)$")


# ---------------------------------------------------------------------------------------------------
# Surrogate spike
# ---------------------------------------------------------------------------------------------------
class PiecewiseQuadraticSpike(torch.autograd.Function):
    """Heaviside forward ``[x >= 0]`` (non-strict, as the authors); backward ``grad * (1 - |x|)`` for |x| <= 1."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return (grad * (1.0 - x.abs())).masked_fill(x.abs() > 1, 0.0)


spike = PiecewiseQuadraticSpike.apply


# ---------------------------------------------------------------------------------------------------
# Stages as pure step functions
# ---------------------------------------------------------------------------------------------------
class S4DParams(NamedTuple):
    """Discrete S4D of one layer: ``lam`` λ (H, N/2) complex, ``c`` C′ (H, N/2) complex with B and the
    zero-order hold folded in, ``d`` D (H,), ``theta`` θ = exp(ln_vth) (H,) (ones for binary S4D)."""

    lam: torch.Tensor
    c: torch.Tensor
    d: torch.Tensor
    theta: torch.Tensor


class S4DState(NamedTuple):
    """``xi`` ξ (batch, H, N/2) complex: N/2 complex modes per channel (conjugate symmetry)."""

    xi: torch.Tensor


def s4d_step(u: torch.Tensor, state: S4DState, p: S4DParams) -> tuple[torch.Tensor, S4DState]:
    """S4D, streaming: ξ_t = λ ⊙ ξ_{t−1} + u_t;  y_t = (2·Re Σ_n C′_n ξ_{t,n} + D·u_t) / θ;  ξ_{−1} = 0."""
    xi = p.lam * state.xi + u.unsqueeze(-1)
    y = 2.0 * (p.c * xi).sum(-1).real + p.d * u
    return y / p.theta, S4DState(xi)


class LIFParams(NamedTuple):
    """Exact LIF soma (the authors' ``BPTTNueron``): decay ``tau`` and threshold ``v_th`` on y/θ."""

    tau: float = LIF_TAU
    v_th: float = 1.0


class LIFState(NamedTuple):
    """``v`` membrane after reset (batch, H)."""

    v: torch.Tensor


def lif_step(y: torch.Tensor, state: LIFState, p: LIFParams) -> tuple[torch.Tensor, LIFState]:
    """Exact LIF: v′_t = τ·v_{t−1} + y_t;  s_t = [v′_t − v_th ≥ 0];  v_t = (1 − s_t)·v′_t (reset to 0)."""
    v = state.v * p.tau + y
    s = spike(v - p.v_th)
    return s, LIFState((1.0 - s.detach()) * v)


class SDNParams(NamedTuple):
    """The authors' frozen surrogate dynamic network (153 weights): ``w1`` (8, 8) [channel, tap oldest first],
    ``b1`` (8,), ``w2`` (8, 8), ``b2`` (8,), ``w3`` (8,), ``b3`` ()."""

    w1: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor
    b2: torch.Tensor
    w3: torch.Tensor
    b3: torch.Tensor


class SDNState(NamedTuple):
    """``window`` (batch, H, 8): the neuron inputs y_{t−8} … y_{t−1}, oldest first (zeros before t = 0)."""

    window: torch.Tensor


def sdn_step(y: torch.Tensor, state: SDNState, p: SDNParams) -> tuple[torch.Tensor, SDNState]:
    """SDN neuron: h = ReLU(W1·[y_{t−8} … y_{t−1}] + b1); g = ReLU(W2·h + b2 + h); m_t = w3·g + b3;
    s_t = [m_t + y_t − 1 ≥ 0]. m_t (the predicted after-reset membrane τ·v_{t−1}) carries no gradient."""
    with torch.no_grad():
        h = torch.relu(state.window @ p.w1.T + p.b1)
        g = torch.relu(h @ p.w2.T + p.b2 + h)
        m = g @ p.w3 + p.b3
    s = spike(m + y - 1.0)
    return s, SDNState(torch.cat([state.window[..., 1:], y.detach().unsqueeze(-1)], dim=-1))


def heaviside_step(y: torch.Tensor, state: None, p: None = None) -> tuple[torch.Tensor, None]:
    """Binary S4D spike (reconstruction): s_t = [y_t ≥ 0]; stateless (no membrane, no reset)."""
    return spike(y), None


class GLUParams(NamedTuple):
    """Feature mixing ``Conv1d(H, 2H, k=1)`` + GLU: ``w_a, b_a`` value rows 0…H−1, ``w_b, b_b`` gate
    rows H…2H−1."""

    w_a: torch.Tensor
    b_a: torch.Tensor
    w_b: torch.Tensor
    b_b: torch.Tensor


def glu_step(s: torch.Tensor, state: None, p: GLUParams) -> tuple[torch.Tensor, None]:
    """GLU on spikes: z_t = (W_a·s_t + b_a) ⊙ σ(W_b·s_t + b_b); stateless."""
    return (s @ p.w_a.T + p.b_a) * torch.sigmoid(s @ p.w_b.T + p.b_b), None


# ---------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpikingSSMConfig:
    """What a SpikingSSM / binary-S4D network is, beyond its tensors' shapes.

    ``prenorm`` is not in the authors' flat ``state_dict`` (it comes with their experiment config);
    ``neuron`` is a choice at load time: ``lif`` (exact LIF, the default, what export deploys), ``sdn``
    (the authors' training neuron: reproduces their numbers) or ``heaviside`` (binary S4D).
    """

    d_input: int
    d_model: int
    d_state: int
    n_layers: int
    n_classes: int
    prenorm: bool
    norm: Literal["batch", "layer"] = "batch"
    trainable_B: bool = False
    bidirectional: bool = False
    shared_vth: bool = False
    neuron: Neuron = "lif"
    dropout: float = 0.0
    dt_min: float = 0.001
    dt_max: float = 0.1
    ssm_lr: float = 0.001

    def __post_init__(self) -> None:
        if self.d_state % 2:
            raise SilifDeployError(f"d_state must be even (N/2 complex modes), got {self.d_state}")
        if self.neuron not in ("lif", "sdn", "heaviside"):
            raise SilifDeployError(f"neuron must be lif, sdn or heaviside, got {self.neuron!r}")

    @property
    def family(self) -> str:
        return FAMILY_BINARY_S4D if self.neuron == "heaviside" else FAMILY_SPIKING_SSM

    # the sizes under the names every command reads from a model's config (NetworkConfig's)
    @property
    def model_type(self) -> str:
        return self.family

    @property
    def n_inputs(self) -> int:
        return self.d_input

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.d_model] * self.n_layers

    def to_dict(self) -> dict[str, Any]:
        """Every field, and ``model_type`` (the family), as our checkpoints record it: the flat
        ``state_dict`` loses ``prenorm`` and the neuron mode, so these travel beside it."""
        return {"model_type": self.family, **asdict(self)}

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> "SpikingSSMConfig":
        fields = {f.name for f in dataclass_fields(cls)}
        try:
            return cls(**{k: v for k, v in saved.items() if k in fields})
        except TypeError as err:
            raise SilifDeployError(f"the recorded SpikingSSM config is incomplete ({err})") from None


def require_streamable(config: SpikingSSMConfig, target: str) -> None:
    """Refuse a bidirectional model for a streaming target: it looks ahead in time."""
    if config.bidirectional:
        raise SilifDeployError(
            f"this {config.family} model is bidirectional (kernel.C has 2 channels): it convolves with "
            f"future inputs, so {target} cannot run it step by step; train it with bidirectional: false"
        )


# ---------------------------------------------------------------------------------------------------
# Modules (attribute names = the authors' state_dict keys)
# ---------------------------------------------------------------------------------------------------
def _vandermonde(c: torch.Tensor, dtA: torch.Tensor, length: int) -> torch.Tensor:
    """K[c, h, l] = 2·Re Σ_n C′[c, h, n]·exp(dtA[h, n]·l), as S4's ``log_vandermonde_naive``."""
    powers = torch.exp(dtA.unsqueeze(-1) * torch.arange(length, device=dtA.device))
    return 2 * torch.einsum("chn, hnl -> chl", c, powers).real


class S4DKernel(nn.Module):
    """``trainable_B: false`` (the authors' ``S4DKernel``): dt = exp(log_dt); A = −exp(log_A_real) + i·A_imag;
    λ = exp(dt·A); C′ = C·(λ − 1)/A (B = 1 folded, zero-order hold)."""

    def __init__(self, cfg: SpikingSSMConfig, channels: int) -> None:
        super().__init__()
        h, n2 = cfg.d_model, cfg.d_state // 2
        log_dt = torch.rand(h) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min)
        self.C = nn.Parameter(torch.view_as_real(torch.randn(channels, h, n2, dtype=torch.cfloat)))
        self.log_dt = _ssm_parameter(log_dt, cfg.ssm_lr)
        self.log_A_real = _ssm_parameter(torch.log(0.5 * torch.ones(h, n2)), cfg.ssm_lr)
        self.A_imag = _ssm_parameter(math.pi * torch.arange(n2).repeat(h, 1).to(torch.float32), cfg.ssm_lr)

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dt·A (H, N/2), λ (H, N/2), C′ (channels, H, N/2)), complex."""
        dt = torch.exp(self.log_dt)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag
        dtA = A * dt.unsqueeze(-1)
        lam = torch.exp(dtA)
        return dtA, lam, torch.view_as_complex(self.C) * (lam - 1.0) / A


class SSMKernelDiag(nn.Module):
    """``trainable_B: true`` (S4's ``SSMKernelDiag``, init diag-lin, disc zoh, transforms exp): dt = exp(inv_dt);
    A = −exp(A_real) − i·A_imag (Im A of opposite sign to S4DKernel's); λ = exp(dt·A);
    C′ = B·C·(λ − 1)/A."""

    def __init__(self, cfg: SpikingSSMConfig, channels: int) -> None:
        super().__init__()
        h, n2 = cfg.d_model, cfg.d_state // 2
        inv_dt = torch.rand(h, 1) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min)
        b = torch.ones(1, h, n2, dtype=torch.cfloat)
        c = torch.randn(channels, h, n2, dtype=torch.cfloat)
        # S4 passes the layer's float lr to every kernel tensor (C included); weight decay 0 except on C
        self.inv_dt = _ssm_parameter(inv_dt, cfg.ssm_lr)
        self.C = _ssm_parameter(torch.view_as_real(c), cfg.ssm_lr, weight_decay=None)
        self.B = _ssm_parameter(torch.view_as_real(b), cfg.ssm_lr)
        self.A_real = _ssm_parameter(torch.log(0.5 * torch.ones(h, n2)), cfg.ssm_lr)
        self.A_imag = _ssm_parameter(math.pi * torch.arange(n2).repeat(h, 1).to(torch.float32), cfg.ssm_lr)

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dt·A (H, N/2), λ (H, N/2), C′ (channels, H, N/2)), complex."""
        dt = torch.exp(self.inv_dt)
        A = -torch.exp(self.A_real) - 1j * self.A_imag
        dtA = dt * A
        lam = torch.exp(dtA)
        c = torch.view_as_complex(self.B).unsqueeze(1) * torch.view_as_complex(self.C)  # (1, channels, H, N/2)
        return dtA, lam, c.reshape(-1, *A.shape) * (lam - 1.0) / A


def _ssm_parameter(tensor: torch.Tensor, lr: float, weight_decay: float | None = 0.0) -> nn.Parameter:
    """A kernel parameter tagged, as the authors do, with its optimizer overrides (``_optim``)."""
    p = nn.Parameter(tensor)
    optim = {"lr": lr} if weight_decay is None else {"lr": lr, "weight_decay": weight_decay}
    p._optim = optim  # type: ignore[attr-defined]
    return p


class _FrozenConv1d(nn.Module):
    """One SDN Conv1d, weight and bias as buffers (the SDN never trains and is no model parameter),
    initialized with the authors' trained values (``sdn_weights.py``)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        for attr in ("weight", "bias"):
            shape, values = SDN_WEIGHTS[f"{name}.{attr}"]
            self.register_buffer(attr, torch.tensor(values, dtype=torch.float32).reshape(shape))


class SDNPredictor(nn.Module):
    """The authors' FusedSDN membrane predictor: Conv1d(1→8, k=8, pad 8, first L kept) → ReLU →
    (1×1 8→8) + skip → ReLU → 1×1 8→1. Sequence form of :func:`sdn_step`'s m_t."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.conv3 = (_FrozenConv1d(f"conv{k}") for k in (1, 2, 3))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """m (B, H, L) from y (B, H, L); m_t sees y_{t−8} … y_{t−1} only."""
        shape, length = y.shape, y.shape[-1]
        x = y.detach().reshape(-1, 1, length)
        h = torch.relu(F.conv1d(x, self.conv1.weight, self.conv1.bias, padding=SDN_TAPS)[..., :length])
        g = torch.relu(F.conv1d(h, self.conv2.weight, self.conv2.bias) + h)
        return F.conv1d(g, self.conv3.weight, self.conv3.bias).reshape(shape)

    def params(self) -> SDNParams:
        return SDNParams(self.conv1.weight[:, 0, :], self.conv1.bias, self.conv2.weight[..., 0],
                         self.conv2.bias, self.conv3.weight[0, :, 0], self.conv3.bias[0])


class Soma(nn.Module):
    """The neuron of one block; in ``sdn`` mode it holds the SDN as ``model`` (key ``neuron.model.*``)."""

    def __init__(self, kind: Neuron) -> None:
        super().__init__()
        self.kind = kind
        if kind == "sdn":
            self.model = SDNPredictor()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Spikes (B, H, L) from the neuron input y (B, H, L), zero initial state."""
        if self.kind == "heaviside":
            return spike(y)
        if self.kind == "sdn":
            with torch.no_grad():
                m = self.model(y)
            return spike(m + y - 1.0)
        state, p, out = LIFState(torch.zeros_like(y[..., 0])), LIFParams(), []
        for t in range(y.shape[-1]):
            s, state = lif_step(y[..., t], state, p)
            out.append(s)
        return torch.stack(out, -1)

    def initial_state(self, like: torch.Tensor) -> LIFState | SDNState | None:
        if self.kind == "lif":
            return LIFState(torch.zeros_like(like))
        if self.kind == "sdn":
            return SDNState(like.new_zeros(*like.shape, SDN_TAPS))
        return None

    def step(self, y: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        if self.kind == "lif":
            return lif_step(y, state, LIFParams())
        if self.kind == "sdn":
            return sdn_step(y, state, self.model.params())
        return heaviside_step(y, state)


class DropoutNd(nn.Module):
    """S4's ``DropoutNd`` (tie=True): one Bernoulli mask per (batch, channel), shared over time."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, H, L)
        if not self.training or self.p == 0.0:
            return x
        mask = torch.rand(*x.shape[:2], 1, device=x.device) < 1.0 - self.p
        return x * mask / (1.0 - self.p)


class SS4D(nn.Module):
    """One block's S4D + threshold + neuron + GLU (the authors' ``SS4D``), on (B, H, L)."""

    def __init__(self, cfg: SpikingSSMConfig) -> None:
        super().__init__()
        h = cfg.d_model
        self.bidirectional = cfg.bidirectional
        self.D = nn.Parameter(torch.randn(1, h))
        if cfg.neuron != "heaviside":
            self.ln_vth = nn.Parameter(torch.zeros(1) if cfg.shared_vth else torch.zeros(h, 1))
        channels = 2 if cfg.bidirectional else 1
        self.kernel = (SSMKernelDiag if cfg.trainable_B else S4DKernel)(cfg, channels)
        self.neuron = Soma(cfg.neuron)
        self.dropout = DropoutNd(cfg.dropout)
        self.output_linear = nn.Sequential(nn.Conv1d(h, 2 * h, kernel_size=1), nn.GLU(dim=-2))

    def threshold_scale(self, y: torch.Tensor) -> torch.Tensor:
        """y / exp(ln_vth); binary S4D has no threshold."""
        return y / torch.exp(self.ln_vth) if hasattr(self, "ln_vth") else y

    def neuron_input(self, u: torch.Tensor) -> torch.Tensor:
        """Kernel form: y = causal_conv(u, K) + D·u (FFT of length 2L, first L kept), divided by θ."""
        length = u.shape[-1]
        dtA, _, c = self.kernel.discrete()
        k = _vandermonde(c, dtA, length)
        if self.bidirectional:  # anti-causal second channel (float only: refused for streaming targets)
            k = F.pad(k[:1], (0, length)) + F.pad(k[1:].flip(-1), (length, 0))
        y = torch.fft.irfft(torch.einsum("bhl,chl->bchl", torch.fft.rfft(u, n=2 * length),
                                         torch.fft.rfft(k, n=2 * length)), n=2 * length)[..., :length]
        y = (y + torch.einsum("bhl,ch->bchl", u, self.D))[:, 0]
        return self.threshold_scale(y)

    def s4d_params(self) -> S4DParams:
        """The streaming form's parameters (causal models only: see :func:`require_streamable`)."""
        _, lam, c = self.kernel.discrete()
        d = self.D[0]
        theta = torch.exp(self.ln_vth).reshape(-1).expand_as(d) if hasattr(self, "ln_vth") else torch.ones_like(d)
        return S4DParams(lam, c[0], d, theta)

    def glu_params(self) -> GLUParams:
        w, b = self.output_linear[0].weight[..., 0], self.output_linear[0].bias
        h = w.shape[1]
        return GLUParams(w[:h], b[:h], w[h:], b[h:])


class SpikingSSMBackbone(nn.Module):
    """The authors' ``SpikingSSM`` (``s4_layers``, ``norms``); the block loop is in :class:`SpikingSSMNet`."""

    def __init__(self, cfg: SpikingSSMConfig) -> None:
        super().__init__()
        self.s4_layers = nn.ModuleList(SS4D(cfg) for _ in range(cfg.n_layers))
        norm = (lambda: nn.BatchNorm1d(cfg.d_model)) if cfg.norm == "batch" else (lambda: nn.LayerNorm(cfg.d_model))
        self.norms = nn.ModuleList(norm() for _ in range(cfg.n_layers))
        self.dropouts = nn.ModuleList(DropoutNd(cfg.dropout) for _ in range(cfg.n_layers))


class SpikingSSMNet(nn.Module):
    """Encoder Linear → SpikingSSM blocks → mean over time → decoder Linear (S4's ``sequence``/``pool``).

    :meth:`forward` returns logits (B, classes) from x (B, L, d_input); :meth:`run` also returns the
    per-block recordings under the goldens' names (time series as (B, L, H)).
    """

    def __init__(self, cfg: SpikingSSMConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = nn.Linear(cfg.d_input, cfg.d_model)
        self.backbone = SpikingSSMBackbone(cfg)
        self.decoder = nn.Linear(cfg.d_model, cfg.n_classes)

    def forward(self, x: torch.Tensor, form: Form = "kernel") -> torch.Tensor:
        return self.trace(x, form)[0]

    @torch.no_grad()
    def run(self, x: np.ndarray | torch.Tensor, record_states: bool = False, form: Form = "kernel") -> RunResult:
        """Run on (batch, time, channels) and return the engines' common :class:`RunResult`.

        What the fields mean for this family (it has no leaky-integrator readout):

        * ``scores`` (batch, classes): **the decoder's output, the logits** (mean over time of the last
          block's residual stream, then the decoder Linear); not SiLIF's time sum of softmaxes. The
          prediction, argmax, is the authors'.
        * ``readout_u`` (batch, time, classes): the decoder applied to each step's residual stream;
          the decoder is affine, so its time mean is ``scores`` (up to float rounding).
        * ``spikes[i]`` (batch, time, H): block i's spikes (the GLU's binary input).
        * ``states`` (``record_states``): ``ssm_in_<i>``, ``neuron_in_<i>``, ``mix_out_<i>``,
          ``block_out_<i>`` (batch, time, H), under the goldens' names.
        """
        xt = torch.as_tensor(np.asarray(x), dtype=self.encoder.weight.dtype)
        logits, rec = self.trace(xt, form, record=True)
        n = self.config.n_layers
        last = rec[f"block_out_{n - 1}"]
        states = None
        if record_states:
            names = ("ssm_in", "neuron_in", "mix_out", "block_out")
            states = {f"{name}_{i}": rec[f"{name}_{i}"].numpy() for i in range(n) for name in names}
        return RunResult(
            scores=logits.numpy(),
            spikes=[rec[f"spikes_{i}"].numpy() > 0 for i in range(n)],
            readout_u=self.decoder(last).numpy(),
            states=states,
        )

    def trace(
        self, x: torch.Tensor, form: Form = "kernel", record: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and, with ``record``, the time series (B, L, H) ``encoder_out``, ``ssm_in_<i>``,
        ``neuron_in_<i>``, ``spikes_<i>``, ``mix_out_<i>``, ``block_out_<i>`` and ``pooled`` (B, H)."""
        if form == "stream":
            return self._run_stream(x, record)
        if form != "kernel":
            raise ValueError(f"form must be 'kernel' or 'stream', got {form!r}")
        rec: dict[str, torch.Tensor] = {}
        h = self.encoder(x)
        if record:
            rec["encoder_out"] = h
        h = h.transpose(-1, -2)  # (B, H, L), the authors' layout
        bb = self.backbone
        for i, (layer, norm, drop) in enumerate(zip(bb.s4_layers, bb.norms, bb.dropouts)):
            u = self._norm(norm, h) if self.config.prenorm else h
            y = layer.neuron_input(u)
            s = layer.dropout(layer.neuron(y))
            z = drop(layer.output_linear(s))
            h = z + h  # post-norm: the authors' norm(z) here is discarded, so it is not computed
            if record:
                for name, value in (("ssm_in", u), ("neuron_in", y), ("spikes", s), ("mix_out", z), ("block_out", h)):
                    rec[f"{name}_{i}"] = value.transpose(-1, -2)
        pooled = h.transpose(-1, -2).sum(dim=-2) / h.shape[-1]
        if record:
            rec["pooled"] = pooled
        return self.decoder(pooled), rec

    def _norm(self, norm: nn.Module, h: torch.Tensor) -> torch.Tensor:
        return norm(h) if self.config.norm == "batch" else norm(h.transpose(-1, -2)).transpose(-1, -2)

    @torch.no_grad()
    def _run_stream(self, x: torch.Tensor, record: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Streaming form: all blocks advance one step at a time through the step functions (eval only)."""
        if self.training:
            raise SilifDeployError("the streaming form runs in eval mode (BatchNorm with running statistics)")
        require_streamable(self.config, "the streaming form")
        layers, norms = list(self.backbone.s4_layers), list(self.backbone.norms)
        s4d = [layer.s4d_params() for layer in layers]
        glu = [layer.glu_params() for layer in layers]
        enc = self.encoder(x)  # per step: a Linear on each x_t
        batch, length = x.shape[:2]
        s4d_state = [S4DState(enc.new_zeros(batch, p.lam.shape[0], p.lam.shape[1], dtype=p.lam.dtype)) for p in s4d]
        soma_state = [layer.neuron.initial_state(enc[:, 0]) for layer in layers]
        names = ("ssm_in", "neuron_in", "spikes", "mix_out", "block_out")
        traces: dict[str, list[torch.Tensor]] = {f"{n}_{i}": [] for i in range(len(layers)) for n in names}
        total = torch.zeros_like(enc[:, 0])
        for t in range(length):
            h = enc[:, t]
            for i, layer in enumerate(layers):
                u = norms[i](h) if self.config.prenorm else h
                y, s4d_state[i] = s4d_step(u, s4d_state[i], s4d[i])
                s, soma_state[i] = layer.neuron.step(y, soma_state[i])
                z, _ = glu_step(s, None, glu[i])
                h = z + h
                if record:
                    for name, value in zip(names, (u, y, s, z, h)):
                        traces[f"{name}_{i}"].append(value)
            total = total + h
        pooled = total / length
        rec: dict[str, torch.Tensor] = {}
        if record:
            rec = {k: torch.stack(v, dim=1) for k, v in traces.items()}
            rec["encoder_out"], rec["pooled"] = enc, pooled
        return self.decoder(pooled), rec


def build_model(config: SpikingSSMConfig, seed: int | None = None) -> SpikingSSMNet:
    """A freshly initialized model (the authors' init; ``sdn`` gets the authors' trained SDN)."""
    if seed is not None:
        torch.manual_seed(seed)
    return SpikingSSMNet(config)


# ---------------------------------------------------------------------------------------------------
# The authors' checkpoints
# ---------------------------------------------------------------------------------------------------
_LIGHTNING_KEYS = {
    "encoder.0.weight": "encoder.weight",
    "encoder.0.bias": "encoder.bias",
    "decoder.0.output_transform.weight": "decoder.weight",
    "decoder.0.output_transform.bias": "decoder.bias",
}


def flat_state(obj: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(flat state_dict, hyper-parameters or None) from the authors' flat layout (``encoder.*``,
    ``backbone.*``, ``decoder.*``) or S4's Lightning layout (``{"state_dict": {model.*, encoder.0.*,
    decoder.0.output_transform.*}, "hyper_parameters": ...}``)."""
    if not isinstance(obj, Mapping):
        raise SilifDeployError(f"holds a {type(obj).__name__}, not a state_dict")
    if isinstance(obj.get("state_dict"), Mapping):
        hyper = obj.get("hyper_parameters")
        state = {}
        for key, value in obj["state_dict"].items():
            if key.startswith("model."):
                state["backbone." + key[len("model."):]] = value
            else:
                state[_LIGHTNING_KEYS.get(key, key)] = value
        return state, dict(hyper) if isinstance(hyper, Mapping) else None
    return dict(obj), None


def is_spiking_ssm_state(state: Mapping[str, Any]) -> bool:
    """Key-based family test (spec §5.1): an S4D kernel under ``backbone.s4_layers.<i>.kernel``."""
    return any(_BLOCK_KEY.match(k) and ".kernel." in k for k in state)


def _blocks(state: Mapping[str, Any]) -> dict[int, set[str]]:
    blocks: dict[int, set[str]] = {}
    for key in state:
        m = _BLOCK_KEY.match(key)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(m.group(2))
    return blocks


def _shape(state: Mapping[str, Any], key: str, ndim: int) -> tuple[int, ...]:
    value = state.get(key)
    if value is None:
        raise SilifDeployError(f"missing key {key}")
    shape = tuple(getattr(value, "shape", ()))
    if len(shape) != ndim:
        raise SilifDeployError(f"'{key}' has shape {shape}; expected a {ndim}-D tensor")
    return shape


def infer_config(
    state: Mapping[str, Any], neuron: Neuron = "lif", prenorm: bool | None = None,
    hyper: Mapping[str, Any] | None = None,
) -> SpikingSSMConfig:
    """The configuration from the keys and shapes (spec §5.1). ``prenorm`` is not in the tensors: it
    comes from the argument, else from the Lightning ``hyper_parameters``; a state without ``ln_vth``
    is binary S4D (its neuron is the Heaviside, whatever ``neuron`` says unless it asks for the SDN)."""
    blocks = _blocks(state)
    if not blocks:
        raise SilifDeployError("no 'backbone.s4_layers.<i>.' keys: not a SpikingSSM state_dict")
    if sorted(blocks) != list(range(len(blocks))):
        raise SilifDeployError(f"block indices are not contiguous from 0: s4_layers.{sorted(blocks)}")
    keys = blocks[0]
    _, h = _shape(state, "backbone.s4_layers.0.D", 2)
    channels, _, n2, _ = _shape(state, "backbone.s4_layers.0.kernel.C", 4)
    if "kernel.inv_dt" in keys:
        trainable_b = True
    elif "kernel.log_dt" in keys:
        trainable_b = False
    else:
        raise SilifDeployError("backbone.s4_layers.0.kernel has neither log_dt (S4DKernel) nor inv_dt (SSMKernelDiag)")
    if "ln_vth" not in keys:
        if neuron == "sdn":
            raise SilifDeployError("a binary-S4D state_dict (no ln_vth) has no SDN neuron: drop --neuron sdn")
        neuron = "heaviside"
    elif neuron == "heaviside":
        raise SilifDeployError("this is a SpikingSSM state_dict (it has ln_vth): its neuron is lif or sdn")
    if neuron == "sdn" and "neuron.model.conv1.weight" not in keys:
        raise SilifDeployError(
            "the checkpoint holds no SDN weights (backbone.s4_layers.<i>.neuron.model.*): it was built with "
            "neuron='bptt'; use the exact LIF (neuron 'lif')"
        )
    if prenorm is None:
        model_hp = (hyper or {}).get("model") if isinstance(hyper, Mapping) else None
        if not isinstance(model_hp, Mapping) or not isinstance(model_hp.get("prenorm"), bool):
            raise SilifDeployError(
                "a flat SpikingSSM state_dict does not say where its norms act: give prenorm=True (CLI: "
                "--norm-placement pre; the authors' sc, aan, imdb, pathfinder, pathx configs) or prenorm=False "
                "(--norm-placement post; minst, pminst, cifar, listops, dvs128gesture: the norms are computed "
                "and discarded)"
            )
        prenorm = model_hp["prenorm"]
    if "norms.0.weight" not in {k[len("backbone."):] for k in state if k.startswith("backbone.norms.")}:
        raise SilifDeployError("missing key backbone.norms.0.weight (the authors' SpikingSSM always builds its norms)")
    vth = state.get("backbone.s4_layers.0.ln_vth")
    return SpikingSSMConfig(
        d_input=_shape(state, "encoder.weight", 2)[1],
        d_model=h,
        d_state=2 * n2,
        n_layers=len(blocks),
        n_classes=_shape(state, "decoder.weight", 2)[0],
        prenorm=prenorm,
        norm="batch" if "backbone.norms.0.running_mean" in state else "layer",
        trainable_B=trainable_b,
        bidirectional=channels == 2,
        shared_vth=vth is not None and tuple(vth.shape) == (1,),
        neuron=neuron,
    )


def model_from_state(
    state: Mapping[str, Any], config: SpikingSSMConfig
) -> SpikingSSMNet:
    """An eval-mode model holding ``state`` (the SDN copies are dropped unless the neuron is the SDN)."""
    model = SpikingSSMNet(config)
    if config.neuron != "sdn":
        state = {k: v for k, v in state.items() if ".neuron.model." not in k}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        text = " ".join(str(err).split())
        raise SilifDeployError(
            f"the SpikingSSM state_dict does not fit its detected configuration: {text[:300]}"
        ) from None
    return model.eval()


class SpikingSSMCheckpoint(NamedTuple):
    """What :func:`detect_checkpoint` finds: the flat ``state_dict``, the Lightning ``hyper_parameters``
    (or None) and the configuration our own checkpoints record (or None)."""

    state: dict[str, Any]
    hyper: dict[str, Any] | None
    saved: dict[str, Any] | None


def detect_checkpoint(obj: Any) -> SpikingSSMCheckpoint | None:
    """The detection hook :func:`silif_deploy.converters.checkpoint.load_model` calls on every loaded
    checkpoint: a SpikingSSM / binary-S4D checkpoint, told from its keys, in the authors' flat layout,
    S4's Lightning layout, or ours (``{"format": "silif-deploy-checkpoint", "config": {"model_type":
    "spiking_ssm" | "binary_s4d", ...}, "state_dict": ...}``); None for anything else."""
    from silif_deploy.converters.checkpoint import CHECKPOINT_FORMAT

    if not isinstance(obj, Mapping):
        return None
    if obj.get("format") == CHECKPOINT_FORMAT:
        config = obj.get("config")
        if not isinstance(config, Mapping) or config.get("model_type") not in (FAMILY_SPIKING_SSM, FAMILY_BINARY_S4D):
            return None
        state = obj.get("state_dict")
        if not isinstance(state, Mapping):
            raise SilifDeployError("a damaged silif-deploy checkpoint (no state_dict)")
        return SpikingSSMCheckpoint(dict(state), None, dict(config))
    state, hyper = flat_state(obj)
    return SpikingSSMCheckpoint(state, hyper, None) if is_spiking_ssm_state(state) else None


def model_from_checkpoint(
    found: SpikingSSMCheckpoint, source: str, neuron: Neuron | None = None, prenorm: bool | None = None,
    target: str | None = None, model_type: str | None = None, deploy: bool = False,
) -> SpikingSSMNet:
    """The eval-mode model of a detected checkpoint. ``neuron`` None: the recorded one (ours), else
    ``lif``, and ``lif`` with ``deploy`` (what a deployment format holds, whatever the network
    trained through); ``prenorm`` None: the recorded one (ours, or Lightning's
    ``hyper_parameters``); ``target``: a hardware target, which refuses bidirectional models;
    ``model_type``, when given, must be the family found. The model's ``trained_neuron`` is the
    recorded neuron."""
    saved = found.saved or {}
    recorded_neuron = saved.get("neuron", "lif")
    hyper_model = (found.hyper or {}).get("model")
    recorded = saved.get("prenorm", hyper_model.get("prenorm") if isinstance(hyper_model, Mapping) else None)
    try:
        if prenorm is not None and isinstance(recorded, bool) and prenorm != recorded:
            raise SilifDeployError(f"it records prenorm={recorded}; drop the norm placement option")
        config = infer_config(found.state, neuron=neuron or ("lif" if deploy else recorded_neuron),
                              prenorm=saved.get("prenorm", prenorm), hyper=found.hyper)
        if saved:  # what the tensors do not say (training settings, the norm kind) comes from the record
            trained = SpikingSSMConfig.from_dict({**saved, "neuron": config.neuron})
            config = replace(config, **{k: getattr(trained, k) for k in _TRAINING_FIELDS})
        if model_type is not None and model_type != config.family:
            raise SilifDeployError(f"it holds a {config.family} network, not {model_type}")
        if target is not None:
            require_streamable(config, target)
    except SilifDeployError as err:
        raise SilifDeployError(f"{source}: {err}") from None
    model = model_from_state(found.state, config)
    model.trained_neuron = recorded_neuron
    return model


def peek_config(found: SpikingSSMCheckpoint) -> SpikingSSMConfig:
    """The family and sizes of a detected checkpoint without building it (for refusals): where the
    norms act changes neither, so a file that does not say is read as post-norm here."""
    prenorm = (found.saved or {}).get("prenorm")
    hyper_model = (found.hyper or {}).get("model")
    if prenorm is None and not (isinstance(hyper_model, Mapping) and isinstance(hyper_model.get("prenorm"), bool)):
        prenorm = False
    return infer_config(found.state, prenorm=prenorm, hyper=found.hyper)


_TRAINING_FIELDS = ("norm", "dropout", "dt_min", "dt_max", "ssm_lr")
"""Config fields our checkpoints record that the tensors' keys and shapes do not determine."""


def read_checkpoint(path: str | os.PathLike) -> SpikingSSMCheckpoint:
    """The detected checkpoint in a ``.pt`` file (the authors' flat or Lightning layout, or ours with
    its recorded config), loaded through the checkpoint module's one ``weights_only=True`` loader."""
    from silif_deploy.converters.checkpoint import load_weights

    p, obj = load_weights(path)
    try:
        found = detect_checkpoint(obj)
    except SilifDeployError as err:
        raise SilifDeployError(f"'{p}' {err}") from None
    if found is None:
        raise SilifDeployError(f"'{p}' has no 'backbone.s4_layers.<i>.kernel' keys: not a SpikingSSM checkpoint")
    return found


def read_state(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(flat state_dict, hyper-parameters) of :func:`read_checkpoint`."""
    found = read_checkpoint(path)
    return found.state, found.hyper


def load_spiking_ssm(
    path: str | os.PathLike, neuron: Neuron | None = None, prenorm: bool | None = None, target: str | None = None
) -> SpikingSSMNet:
    """Load a SpikingSSM / binary-S4D checkpoint (the authors' flat or Lightning layout, or ours) as an
    eval-mode float model.

    ``neuron``: ``lif`` (exact LIF) or ``sdn`` (the checkpoint's SDN copies); None: the one our
    checkpoints record, else ``lif``. ``target``: a hardware target (e.g. ``"loihi2"``) refuses
    bidirectional models, which look ahead in time.
    """
    return model_from_checkpoint(read_checkpoint(path), f"'{path}'", neuron, prenorm, target)


def require_fixed_point(config: SpikingSSMConfig, what: str) -> None:
    """One line for a configuration fixed point cannot run (:mod:`.spiking_ssm_quantize` quantizes the
    rest): bidirectional (it looks ahead), a pre-norm LayerNorm (it does not fold into a per-channel
    affine) and the SDN (a training surrogate: hardware runs the exact LIF)."""
    require_streamable(config, what)
    if config.prenorm and config.norm == "layer":
        raise SilifDeployError(f"{what}: a pre-norm LayerNorm normalizes across channels, which no fixed-point stage "
                               "computes (it does not fold into a per-channel affine): such models are float-only")
    if config.neuron == "sdn":
        raise SilifDeployError(f"{what}: fixed point runs the exact LIF; the SDN is a training surrogate with no "
                               "integer form: drop --neuron sdn")


# ---------------------------------------------------------------------------------------------------
# Size and training
# ---------------------------------------------------------------------------------------------------
def parameter_counts(model: SpikingSSMNet) -> dict[str, int]:
    """Trainable parameters by part: encoder, backbone (inert post-norm norms included, the frozen
    SDN copies excluded: they are buffers and never train), decoder, total (spec §6 counts)."""
    counts = {"encoder": 0, "backbone": 0, "decoder": 0}
    for name, p in model.named_parameters():
        counts[name.split(".", 1)[0]] += p.numel()
    counts["total"] = sum(counts.values())
    return counts


@torch.no_grad()
def describe(model: SpikingSSMNet) -> list[str]:
    """What ``silif-deploy inspect`` prints for a SpikingSSM / binary-S4D float model: family (binary
    S4D labelled a reconstruction), sizes, norm placement, neuron, parameters, and per block the range
    of |λ| and θ, and what the deployment chain can do with it today."""
    cfg = model.config
    label = BINARY_S4D_LABEL if cfg.family == FAMILY_BINARY_S4D else "SpikingSSM (Shen et al., AAAI 2025)"
    soma = {"lif": f"exact LIF (tau {LIF_TAU}, threshold 1, hard reset to 0, spike when >=)",
            "sdn": "the authors' SDN (surrogate dynamic network, 153 frozen weights)",
            "heaviside": "Heaviside [y >= 0] (no membrane)"}[cfg.neuron]
    counts = parameter_counts(model)
    lines = [
        f"model: {label}",
        f"  {cfg.d_input} inputs -> encoder -> {cfg.n_layers} blocks of H = {cfg.d_model} channels, N = {cfg.d_state} "
        f"({cfg.d_state // 2} complex modes per channel) -> mean over time -> decoder -> {cfg.n_classes} classes",
        f"  kernel {'SSMKernelDiag (trainable B)' if cfg.trainable_B else 'S4DKernel'}; "
        f"{'bidirectional (looks ahead: float only)' if cfg.bidirectional else 'causal'}; "
        f"{'pre-norm ' + ('BatchNorm' if cfg.norm == 'batch' else 'LayerNorm') if cfg.prenorm else 'post-norm (the norms are computed and discarded)'}",
        f"  neuron: {soma}",
        f"  parameters: {counts['total']:,} (encoder {counts['encoder']:,}, backbone {counts['backbone']:,}, "
        f"decoder {counts['decoder']:,})",
        "blocks:",
    ]
    for i, layer in enumerate(model.backbone.s4_layers):
        p = layer.s4d_params() if not cfg.bidirectional else None
        if p is None:
            lines.append(f"  block {i}: bidirectional kernel (no streaming form)")
            continue
        mag, theta = p.lam.abs(), p.theta
        lines.append(f"  block {i}: |lambda| {float(mag.min()):.6f}…{float(mag.max()):.6f}, threshold theta "
                     f"{float(theta.min()):.4g}…{float(theta.max()):.4g}, D {float(p.d.min()):.4g}…{float(p.d.max()):.4g}")
    if cfg.bidirectional or (cfg.prenorm and cfg.norm == "layer"):
        lines.append("deployment: float only (" + ("bidirectional: it looks ahead in time" if cfg.bidirectional
                                                  else "pre-norm LayerNorm: it does not fold") + ")")
    else:
        lines.append("deployment: --target nir (exact round trip), --target loihi2 (fixed point, the exact LIF soma; "
                     "calibrate with --calibrate), --engine fixed on its artifact")
    return lines


def make_optimizer(model: nn.Module, lr: float = 0.01, weight_decay: float = 0.01) -> torch.optim.AdamW:
    """The authors' optimizer (S4 ``train.py`` ``configure_optimizers``): AdamW(lr, weight_decay) over the
    parameters without ``_optim``, then one group per distinct ``_optim`` override (the SSM kernel's
    dt and A, and B/C of ``SSMKernelDiag``: lr = min(lr, 0.001), weight decay 0 except on C)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([p for p in params if not hasattr(p, "_optim")], lr=lr, weight_decay=weight_decay)
    overrides = list(dict.fromkeys(frozenset(p._optim.items()) for p in params if hasattr(p, "_optim")))
    for hp in sorted(overrides, key=sorted):
        group = [p for p in params if hasattr(p, "_optim") and frozenset(p._optim.items()) == hp]
        optimizer.add_param_group({"params": group, "lr": lr, "weight_decay": weight_decay, **dict(hp)})
    return optimizer


def train_step(
    model: SpikingSSMNet, optimizer: torch.optim.Optimizer, x: torch.Tensor, labels: torch.Tensor
) -> float:
    """One optimizer step on a batch (kernel form, BPTT through the exact LIF or the SDN's surrogate):
    cross-entropy of the logits; returns the batch loss before the step."""
    model.train()
    loss = F.cross_entropy(model(x), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


# ---------------------------------------------------------------------------------------------------
# The float network as numpy (what NIR export and quantization read)
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class S4DBlockArrays:
    """One block in float64 / complex128, every fold applied, for the streaming form:

    u_t = norm_scale·x_t + norm_shift (pre-norm BatchNorm folded; identity when post-norm: inert);
    ξ_t = lam·ξ_{t−1} + u_t;  y_t = (2·Re Σ_n c_n·ξ_{t,n} + d·u_t) / theta;  s_t = neuron(y_t);
    z_t = (glu_w[:H]·s_t + glu_b[:H]) ⊙ σ(glu_w[H:]·s_t + glu_b[H:]);  x_t ← x_t + z_t.
    """

    norm_scale: np.ndarray  # (H,)
    norm_shift: np.ndarray  # (H,)
    lam: np.ndarray  # (H, N/2) complex
    c: np.ndarray  # (H, N/2) complex: C′ with B and the zero-order hold folded in
    d: np.ndarray  # (H,)
    theta: np.ndarray  # (H,) exp(ln_vth); ones for binary S4D
    glu_w: np.ndarray  # (2H, H): value rows then gate rows
    glu_b: np.ndarray  # (2H,)


@dataclass(frozen=True)
class SpikingSSMArrays:
    """The whole network: ``encoder_w`` (H, d_input), ``encoder_b``, the blocks, then the mean over time
    and ``decoder_w`` (classes, H), ``decoder_b``. ``config.neuron`` names the soma the model ran."""

    config: SpikingSSMConfig
    encoder_w: np.ndarray
    encoder_b: np.ndarray
    blocks: tuple[S4DBlockArrays, ...]
    decoder_w: np.ndarray
    decoder_b: np.ndarray


def _np(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    return t.numpy().astype(np.complex128 if t.is_complex() else np.float64)


@torch.no_grad()
def extract_arrays(model: SpikingSSMNet) -> SpikingSSMArrays:
    """The float network as numpy; λ and C′ discretized in float64 from the trained parameters."""
    cfg = model.config
    require_streamable(cfg, "the streaming form")
    if cfg.prenorm and cfg.norm == "layer":
        raise SilifDeployError(
            "a pre-norm LayerNorm does not fold into a per-channel affine: such models are float-only"
        )
    blocks = []
    for layer, norm in zip(model.backbone.s4_layers, model.backbone.norms):
        h = cfg.d_model
        if cfg.prenorm:
            scale = _np(norm.weight) / np.sqrt(_np(norm.running_var) + norm.eps)
            shift = _np(norm.bias) - scale * _np(norm.running_mean)
        else:
            scale, shift = np.ones(h), np.zeros(h)
        _, lam, c = copy.deepcopy(layer.kernel).double().discrete()
        ln_vth = getattr(layer, "ln_vth", None)
        theta = np.broadcast_to(np.exp(_np(ln_vth).reshape(-1)), (h,)).copy() if ln_vth is not None else np.ones(h)
        conv = layer.output_linear[0]
        blocks.append(S4DBlockArrays(scale, shift, _np(lam), _np(c[0]), _np(layer.D[0]), theta,
                                     _np(conv.weight[..., 0]), _np(conv.bias)))
    return SpikingSSMArrays(cfg, _np(model.encoder.weight), _np(model.encoder.bias), tuple(blocks),
                            _np(model.decoder.weight), _np(model.decoder.bias))
