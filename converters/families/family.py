"""What a float neuron family declares: the record each family module fills and registers once.

A family module (``adaptive.py``, ``resonate.py``, a test's ``tests/families/<name>_float.py``)
owns everything kind-specific on the float side and hands it to the shared machinery as one
:class:`FloatFamily`:

* ``layer``: its torch layer (a :class:`~silif_deploy.converters.torch_neurons.HiddenLayer` whose
  ``step`` is the family's pure step function, update rule in its docstring);
* ``extract``: the layer's input gain and coefficients as float64 numpy (the
  :class:`~silif_deploy.converters.float_params.FloatLayer` the quantizer reads);
* ``nir``: its NIR body (:class:`NirBody`): template, payload texts, how the coefficients become
  primitives and how they are read back from them;
* ``quantize``: its integer parameter record and diagnostics from a quantized layer's shared parts
  (:class:`QuantizedInput`), and optionally ``input_norm`` and ``row_scales`` (per-row weight
  stretches: the input gain moves from the weights into the neuron's coefficient).

Checkpoint detection is by keys: a family is detected when a checkpoint layer's neuron keys are
exactly its layer's (``detect=False`` for a family whose keys another family has too and that the
user must name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from silif_deploy.converters.nir_body import BodyReader, Template


class QuantizedInput(NamedTuple):
    """The parts of a hidden layer's quantization that every family shares, handed to its ``quantize``.

    ``bias`` (integer, scaled by the state scale and the row stretches), ``threshold`` θ = S,
    ``row_scale`` r_n, ``half`` = 2^(state bits − 1), ``frac_bits`` F, ``input_shift``, and ``overflow``.
    """

    bias: np.ndarray
    threshold: int
    row_scale: np.ndarray
    half: int
    frac_bits: int
    input_shift: int
    overflow: dict[str, int]
    """The profile's overflow code per state class ("current", "membrane", "adaptation"): the
    family's record takes the one its hardware kind declares for each state."""


@dataclass(frozen=True)
class NirBody:
    """A family's NIR neuron subgraph, written and read from this one definition.

    ``build(coefficients, dt, what) -> (nodes by role, degenerate flags)`` states the payload's
    coefficients as primitives; ``read(body, payload) -> [(what, stated by the body, payload's)]``
    reads them back (the reader refuses any pair that disagrees). ``equations`` and
    ``reset_timing`` are written into the payload; ``payload_extra(layer)`` adds constants of the
    layer that are not trained (RF's Euler step), which the reader checks against the rebuilt layer.
    """

    template: Template
    equations: str
    build: Callable[[dict[str, np.ndarray], float, str], tuple[dict[str, Any], dict[str, np.ndarray]]]
    read: Callable[[BodyReader, dict[str, Any]], Iterator[tuple[str, np.ndarray, np.ndarray]]]
    reset_timing: str = "prev_step_before_leak"
    payload_extra: Callable[[Any], dict[str, float]] = lambda layer: {}


@dataclass(frozen=True)
class FloatFamily:
    """One hidden neuron kind on the float side (module docstring). ``name`` is also its hardware kind."""

    name: str
    layer: type
    extract: Callable[[Any], tuple[np.ndarray, dict[str, np.ndarray]]]
    nir: NirBody
    quantize: Callable[[Any, QuantizedInput], tuple[Any, dict[str, int | float]]]
    input_norm: Callable[[Any], float] | None = None
    """With ``row_scales``: the input scale G every weight row stretches towards (None: rows keep r = 1)."""
    row_scales: Callable[..., np.ndarray] | None = None
    detect: bool = True
    config_args: tuple[str, ...] = ()
    """``NetworkConfig`` fields the layer's constructor takes after (n_in, n_hidden, pdrop)."""
    state_unit: float = 1.0
    """Calibration: a complex state's parts times this are in threshold units (C-SiLIF: v = 2u)."""
