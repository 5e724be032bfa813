"""The float network as plain numpy: folded weights, biases and discrete coefficients per layer.

This is what the quantizer reads (it imports no torch). BatchNorm folds into the weights and a
per-neuron bias (``neurons.md`` §12): W' = diag(γ/σ)·W, c = β_bn − γ·μ/σ, σ = √(var + eps).
The neuron's own input gain is kept apart in ``gain`` (it multiplies a state in SiLIF, so it
cannot always be folded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FloatLayer:
    """One layer in float64 for quantization.

    ``coefficients`` and ``gain`` (it multiplies the input current) are what the kind's family
    extracts (:mod:`silif_deploy.converters.families`): adaptive ``alpha``, ``beta``, ``a``, ``b``
    with gain 1 − α; resonate ``lam_re``, ``lam_im`` with gain 2b (C-SiLIF, v = 2u) or Δt (RF);
    readout (cuba) ``alpha`` with gain 1 − α.
    """

    kind: str
    weight: np.ndarray
    bias: np.ndarray
    gain: np.ndarray
    coefficients: dict[str, np.ndarray] = field(default_factory=dict)
    stated: dict[str, Any] = field(default_factory=dict)
    """The coefficients as the layer's forward pass computes them, in their own dtype (float32,
    complex64), and its untrained constants (RF's Euler step): what the NIR payload states and
    the NIR body is built from, so that NIR and quantization read one extraction."""

    @property
    def size(self) -> int:
        return int(self.weight.shape[0])


@dataclass
class FloatNetwork:
    model_type: str
    n_inputs: int
    hidden: list[FloatLayer]
    readout: FloatLayer


def first_difference(a: FloatNetwork, b: FloatNetwork) -> str | None:
    """Where two float networks differ (exact equality of every array, dtype included), else None."""
    if (a.model_type, a.n_inputs, len(a.hidden)) != (b.model_type, b.n_inputs, len(b.hidden)):
        return (f"the network ({a.model_type}, {a.n_inputs} inputs, {len(a.hidden)} hidden layers against "
                f"{b.model_type}, {b.n_inputs}, {len(b.hidden)})")
    for i, (x, y) in enumerate(zip([*a.hidden, a.readout], [*b.hidden, b.readout])):
        where = f"layer {i}" if i < len(a.hidden) else "the readout"
        if x.kind != y.kind:
            return f"{where}: kind {x.kind} against {y.kind}"
        arrays = {"weight": (x.weight, y.weight), "bias": (x.bias, y.bias), "gain": (x.gain, y.gain)}
        if x.coefficients.keys() != y.coefficients.keys():
            return f"{where}: coefficients {sorted(x.coefficients)} against {sorted(y.coefficients)}"
        arrays |= {k: (v, y.coefficients[k]) for k, v in x.coefficients.items()}
        if x.stated.keys() != y.stated.keys():
            return f"{where}: stated coefficients {sorted(x.stated)} against {sorted(y.stated)}"
        arrays |= {f"stated {k}": (np.asarray(v), np.asarray(y.stated[k])) for k, v in x.stated.items()}
        for name, (u, v) in arrays.items():
            if u.dtype != v.dtype or u.shape != v.shape or not np.array_equal(u, v):
                return f"{where}: {name}"
    return None


def _fold_batchnorm(layer) -> tuple[np.ndarray, np.ndarray]:
    norm = layer.norm
    sigma = np.sqrt(norm.running_var.detach().double().numpy() + norm.eps)
    gamma = norm.weight.detach().double().numpy()
    scale = gamma / sigma
    weight = layer.W.weight.detach().double().numpy() * scale[:, None]
    bias = norm.bias.detach().double().numpy() - scale * norm.running_mean.detach().double().numpy()
    return weight, bias


def native(tensor) -> np.ndarray | np.generic:
    """A tensor's values in its own dtype; a 0-d tensor becomes a numpy scalar (HDF5 cannot
    compress scalar datasets, which ``nir.write`` would try for a 0-d array)."""
    array = tensor.detach().cpu().numpy().copy()
    return array[()] if array.ndim == 0 else array


def native_coefficients(layer) -> dict[str, np.ndarray | np.generic]:
    """``layer.coefficients()`` (the discrete coefficients its recurrence uses) in their own dtypes."""
    return {k: native(v) for k, v in layer.coefficients().items()}


def float_network(model) -> FloatNetwork:
    """Extract a :class:`FloatNetwork` from a ``SpikingNetwork`` (coefficients exactly as its forward
    pass computes them; each family's ``extract`` gives its gain and coefficients)."""
    import torch

    from silif_deploy.converters.families import family, readout
    from silif_deploy.hw_models.neuron_kinds import READOUT_KIND

    hidden = []
    with torch.no_grad():
        for layer in model.hidden_layers:
            weight, bias = _fold_batchnorm(layer)
            kind = family(layer.model_type)
            gain, coeffs = kind.extract(layer)
            stated = {**native_coefficients(layer), **kind.nir.payload_extra(layer)}
            hidden.append(FloatLayer(layer.model_type, weight, bias, gain, coeffs, stated))
        weight, bias = _fold_batchnorm(model.readout)
        gain, coeffs = readout.extract(model.readout)
        readout_layer = FloatLayer(READOUT_KIND, weight, bias, gain, coeffs, native_coefficients(model.readout))
    cfg = model.config
    return FloatNetwork(cfg.model_type, cfg.n_inputs, hidden, readout_layer)


def state_ranges(model, x: np.ndarray) -> tuple[list[float], float]:
    """Calibration: max |state| per hidden layer (in threshold units: a complex state's parts times
    its family's ``state_unit``, C-SiLIF in its v = 2u form) and max |u| of the readout, from a
    float run on ``x``."""
    import torch

    from silif_deploy.converters.families import family

    with torch.no_grad():
        _, _, readout_u, states = model.forward_all(torch.as_tensor(x, dtype=torch.float32), record_states=True)
    ranges = []
    for layer, st in zip(model.hidden_layers, states):
        peak = 0.0
        for v in st.values():
            if v.is_complex():
                v = torch.view_as_real(v) * family(layer.model_type).state_unit
            peak = max(peak, float(v.abs().max()))
        ranges.append(peak)
    return ranges, float(readout_u.abs().max())
