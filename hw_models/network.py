"""The fixed-point network in memory: what the artifact file holds and every engine runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.neuron_kinds import KINDS
from silif_deploy.hw_models.profile import HardwareProfile


@dataclass
class FixedLayer:
    """One layer: the Dense synapse feeding it and its neurons.

    ``scale`` is the state scale: the integer that stands for 1.0 of the float state (the
    threshold θ of a hidden layer; the readout's membrane unit).
    """

    kind: str
    synapse: DenseSynapse
    params: NamedTuple
    scale: int

    @property
    def size(self) -> int:
        return self.synapse.fan_out

    @property
    def buffers_per_neuron(self) -> int:
        return KINDS[self.kind].buffers


@dataclass
class FixedPointNetwork:
    """Hidden layers, then the CUBA readout. Inputs arrive as graded payloads
    x_int = round(x · 2^input_frac_bits) (event counts: input_frac_bits = 0, used as-is)."""

    model_type: str
    n_inputs: int
    hidden: list[FixedLayer]
    readout: FixedLayer
    input_frac_bits: int
    profile: HardwareProfile
    provenance: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    float_model: dict[str, Any] | None = None

    @classmethod
    def chain(cls, model_type: str, n_inputs: int, hidden: list[FixedLayer], readout: FixedLayer,
              input_frac_bits: int, profile: HardwareProfile, provenance: dict[str, Any] | None = None,
              quantization: dict[str, Any] | None = None, float_model: dict[str, Any] | None = None,
              ) -> "FixedPointNetwork":
        """The chain every SiLIF-style model is: (Dense, neurons) per hidden layer, then the readout."""
        return cls(model_type, n_inputs, hidden, readout, input_frac_bits, profile, provenance or {},
                   quantization or {}, float_model)

    @property
    def layers(self) -> list[FixedLayer]:
        return [*self.hidden, self.readout]

    @property
    def n_classes(self) -> int:
        return self.readout.size

    @property
    def delay(self) -> int:
        """Steps between an input frame and the readout step it drives: one per Dense."""
        return len(self.hidden) + 1

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """The graded payload the input source sends: round(x·2^f), clipped to the message width."""
        limit = (1 << self.profile.input_message_bits) - 1
        # 2.0**f, not 1 << f: f < 0 when real inputs peak above the payload width
        scaled = np.rint(np.asarray(x, np.float64) * 2.0**self.input_frac_bits)
        return np.clip(scaled, -limit, limit).astype(np.int64)
