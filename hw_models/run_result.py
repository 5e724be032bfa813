"""What every engine (float, fixed, lava) returns for one batch: the common output keys."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RunResult:
    """Outputs of one run over a batch.

    ``scores`` (batch, classes): the time sum of per-step softmaxes of the readout;
    ``spikes[i]`` (batch, time, neurons, bool): hidden layer i; ``readout_u`` (batch, time,
    classes): the readout membrane (dequantized for fixed point); ``states``: optional state
    trajectories keyed ``<state>_<layer>`` (integers for fixed point); ``diagnostics``: per-sample
    engine counters (fixed point: ``overflow_events`` (batch, layers), ``readout_spikes``; a network with
    Add or GLU stages also ``stage_overflow_events`` (batch, those stages in stage order)).
    """

    scores: np.ndarray
    spikes: list[np.ndarray]
    readout_u: np.ndarray
    states: dict[str, np.ndarray] | None = None
    diagnostics: dict[str, np.ndarray] | None = None

    @property
    def prediction(self) -> np.ndarray:
        return np.argmax(self.scores, axis=1)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The ``OUT.npz`` keys: scores, prediction, spikes_<i>, readout_u, and state_<name>."""
        arrays = {"scores": self.scores, "prediction": self.prediction, "readout_u": self.readout_u}
        for i, s in enumerate(self.spikes):
            arrays[f"spikes_{i}"] = s.astype(bool)
        for name, v in (self.states or {}).items():
            arrays[f"state_{name}"] = v
        return arrays

    @classmethod
    def concatenate(cls, parts: list["RunResult"]) -> "RunResult":
        """Join batch chunks along the batch axis."""
        states = None
        if parts[0].states is not None:
            states = {k: np.concatenate([p.states[k] for p in parts]) for k in parts[0].states}  # type: ignore[index]
        diagnostics = None
        if parts[0].diagnostics is not None:
            diagnostics = {k: np.concatenate([p.diagnostics[k] for p in parts]) for k in parts[0].diagnostics}  # type: ignore[index]
        return cls(
            scores=np.concatenate([p.scores for p in parts]),
            spikes=[np.concatenate([p.spikes[i] for p in parts]) for i in range(len(parts[0].spikes))],
            readout_u=np.concatenate([p.readout_u for p in parts]),
            states=states,
            diagnostics=diagnostics,
        )
