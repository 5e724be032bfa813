"""The float network: N hidden spiking layers and the leaky-integrator readout (``neurons.md`` §2).

``SpikingNetwork.snn`` is a ``ModuleList`` whose last entry is the readout, so the ``state_dict``
keys are the authors' (``snn.0.W.weight``, ``snn.0.dt``, ..., ``snn.L.alpha``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from silif_deploy.converters.families import family
from silif_deploy.converters.families.readout import ReadoutLayer
from silif_deploy.converters.torch_neurons import InitState
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.run_result import RunResult


@dataclass
class NetworkConfig:
    """Everything needed to rebuild a network before its weights are loaded."""

    model_type: str
    n_inputs: int
    hidden_sizes: list[int]
    n_classes: int
    pdrop: float = 0.1
    init_state: InitState = "zeros"
    dt_min: float = 0.01
    dt_max: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        family(self.model_type)  # refuses an unknown type in one line
        if self.init_state not in ("zeros", "random"):
            raise SilifDeployError(f"init_state must be 'zeros' or 'random', not '{self.init_state}'")
        self.hidden_sizes = [int(h) for h in self.hidden_sizes]
        sizes = [int(self.n_inputs), *self.hidden_sizes, int(self.n_classes)]
        if not self.hidden_sizes or min(sizes) < 1:
            raise SilifDeployError(
                f"layer sizes must be positive with at least one hidden layer, not {sizes} "
                "(inputs, hidden..., classes)"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SpikingNetwork(nn.Module):
    """Hidden layers ``Linear → BatchNorm1d → neuron → Dropout``, then ``ReadoutLayer``.

    ``model(x)`` returns the scores (batch, classes): the time sum of per-step softmaxes of the
    readout. :meth:`run` returns every layer's spikes and the readout trajectory as numpy arrays.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        n_in = config.n_inputs
        kind = family(config.model_type)
        extra = [getattr(config, name) for name in kind.config_args]  # e.g. C-SiLIF's dt_min, dt_max
        for h in config.hidden_sizes:
            layers.append(kind.layer(n_in, h, config.pdrop, *extra))
            n_in = h
        layers.append(ReadoutLayer(n_in, config.n_classes))
        self.snn = nn.ModuleList(layers)

    @property
    def hidden_layers(self) -> list[nn.Module]:
        return list(self.snn)[:-1]

    @property
    def readout(self) -> ReadoutLayer:
        return self.snn[-1]  # type: ignore[return-value]

    def forward_all(
        self, x: torch.Tensor, record_states: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, list[dict[str, torch.Tensor]]]:
        """Return (scores, spikes per hidden layer, readout trajectory, states per hidden layer)."""
        spikes, states = [], []
        h = x
        for layer in self.hidden_layers:
            h, st = layer(h, init_state=self.config.init_state, record_states=record_states)
            spikes.append(h)
            states.append(st)
        scores, readout_u = self.readout(h, init_state=self.config.init_state)
        return scores, spikes, readout_u, states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[0]

    @torch.no_grad()
    def run(self, x: np.ndarray | torch.Tensor, record_states: bool = False) -> RunResult:
        """Run on (batch, time, channels) and return numpy outputs with the engines' common keys."""
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        scores, spikes, readout_u, states = self.forward_all(xt, record_states=record_states)
        recorded = None
        if record_states:
            recorded = {
                f"{name}_{i}": v.numpy() for i, st in enumerate(states) for name, v in st.items()
            }
        return RunResult(
            scores=scores.numpy(),
            spikes=[s.numpy() > 0 for s in spikes],
            readout_u=readout_u.numpy(),
            states=recorded,
        )

    def parameter_count(self) -> int:
        """Trainable parameters (BN affine included, running statistics excluded), ``neurons.md`` §11."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

