"""What every float PyTorch layer shares: the spike function, the hidden-layer structure, initial states.

The neurons themselves live one family per module in :mod:`silif_deploy.converters.families`
(``../shared/spec/neurons.md`` §2–§9), faithful to the authors' ``models/snns.py``: same
parametrization, initialization, update order, reset, clamps, boxcar surrogate and ``state_dict``
key names, so their checkpoints load unchanged and reproduce their spikes. Each hidden layer is
``Linear (no bias) → BatchNorm1d → neuron → Dropout`` (:class:`HiddenLayer`); a family supplies the
neuron as a pure step function ``step(current, state, params) -> (spikes, state)`` over typed
``NamedTuple`` records.

torch is optional here: the Lava environment (Python 3.10, no torch) imports the family modules for
their quantization and NIR reading; only building a layer needs torch.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, NamedTuple

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - the Lava environment
    torch = nn = None  # type: ignore[assignment]

from silif_deploy.errors import SilifDeployError

InitState = Literal["zeros", "random"]


if torch is not None:
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
    Module: type = nn.Module
else:  # pragma: no cover - the Lava environment: the step functions are never called there
    BoxcarSpike = spike = None  # type: ignore[assignment,misc]

    class Module:  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise SilifDeployError(
                "this step needs PyTorch, which is not installed here: pip install 'silif-deploy[torch]'"
            )


def uniform(shape: int, low: float, high: float):
    """A trainable parameter drawn from U[low, high) (the authors' initializations)."""
    return nn.Parameter(torch.empty(shape).uniform_(low, high))


class HiddenLayer(Module):
    """Shared structure of a hidden layer: ``W`` (Linear, no bias), ``norm`` (BatchNorm1d), neuron, dropout.

    Subclasses name their family's records and step (``State``, ``step``), and define
    :meth:`coefficients` (the discrete per-neuron coefficients the recurrence uses, clamps applied,
    float32 exactly as the forward pass computes them: the exporters read these, never the raw
    trained logs), :meth:`params` (those coefficients as the step's parameter record) and
    :meth:`initial_state`. States start at zero unless ``init_state="random"`` (the authors' fresh
    U[0, 1) draw on every call, in the order of ``neurons.md`` §8).
    """

    model_type: str = ""
    state_names: tuple[str, ...] = ()
    """The recorded states (the step's state record also carries the last spikes ``s``)."""
    xavier_init = False
    step: Callable[..., tuple[Any, NamedTuple]]

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

    def params(self) -> NamedTuple:
        raise NotImplementedError

    def initial_state(self, batch: int, init_state: InitState, like: torch.Tensor) -> NamedTuple:
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, init_state: InitState = "zeros", record_states: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run the layer over (batch, time, n_in); return spikes (batch, time, H) and, on request, states."""
        current = self.input_current(x)
        params = self.params()
        state = self.initial_state(x.shape[0], init_state, current)
        spikes, traces = [], []
        for t in range(current.shape[1]):
            s, state = self.step(current[:, t], state, params)
            spikes.append(s)
            if record_states:
                traces.append(state)
        out = self.drop(torch.stack(spikes, dim=1))
        states = {}
        if record_states:
            for name in self.state_names:
                states[name] = torch.stack([getattr(tr, name) for tr in traces], dim=1)
        return out, states


def real_states(n: int, batch: int, init_state: InitState, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``n`` real (batch, H) states: zeros, or U[0, 1) draws in order."""
    shape = (batch, like.shape[-1])
    if init_state == "random":
        return tuple(torch.rand(shape, dtype=like.dtype, device=like.device) for _ in range(n))
    return tuple(torch.zeros(shape, dtype=like.dtype, device=like.device) for _ in range(n))


def complex_states(batch: int, init_state: InitState, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A complex64 state u and a real spike state s: zeros, or U[0, 1) draws (u first)."""
    shape = (batch, like.shape[-1])
    if init_state == "random":
        u0 = torch.rand(shape, dtype=torch.complex64, device=like.device)
        return u0, torch.rand(shape, dtype=like.dtype, device=like.device)
    return (torch.zeros(shape, dtype=torch.complex64, device=like.device),
            torch.zeros(shape, dtype=like.dtype, device=like.device))
