"""The float network as plain numpy: folded weights, biases and discrete coefficients per layer.

This is what the quantizer reads (it imports no torch). BatchNorm folds into the weights and a
per-neuron bias (``neurons.md`` §12): W' = diag(γ/σ)·W, c = β_bn − γ·μ/σ, σ = √(var + eps).
The neuron's own input gain is kept apart in ``gain`` (it multiplies a state in SiLIF, so it
cannot always be folded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FloatLayer:
    """One layer in float64 for quantization.

    ``coefficients`` by kind — adaptive (silif, adlif, cadlif, lif): ``alpha``, ``beta``, ``a``,
    ``b`` (lif: β = a = b = 0); resonate (csilif, rf): ``lam_re``, ``lam_im``; readout (cuba):
    ``alpha``. ``gain`` multiplies the input current: 1 − α (adaptive, readout), 2b (C-SiLIF in
    its v = 2u form), Δt (RF).
    """

    kind: str
    weight: np.ndarray
    bias: np.ndarray
    gain: np.ndarray
    coefficients: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.weight.shape[0])


@dataclass
class FloatNetwork:
    model_type: str
    n_inputs: int
    hidden: list[FloatLayer]
    readout: FloatLayer


def _fold_batchnorm(layer) -> tuple[np.ndarray, np.ndarray]:
    norm = layer.norm
    sigma = np.sqrt(norm.running_var.detach().double().numpy() + norm.eps)
    gamma = norm.weight.detach().double().numpy()
    scale = gamma / sigma
    weight = layer.W.weight.detach().double().numpy() * scale[:, None]
    bias = norm.bias.detach().double().numpy() - scale * norm.running_mean.detach().double().numpy()
    return weight, bias


def float_network(model) -> FloatNetwork:
    """Extract a :class:`FloatNetwork` from a ``SpikingNetwork`` (coefficients exactly as its forward pass computes them)."""
    import torch

    hidden = []
    with torch.no_grad():
        for layer in model.hidden_layers:
            weight, bias = _fold_batchnorm(layer)
            c = {k: v.detach() for k, v in layer.coefficients().items()}
            kind = layer.model_type
            if kind in ("csilif", "rf"):
                lam = c["lambda"].numpy().astype(np.complex128)
                coeffs = {"lam_re": lam.real, "lam_im": lam.imag}
                gain = 2.0 * c["b"].double().numpy() if kind == "csilif" else np.full(layer.n_hidden, layer.dt_step)
            else:
                alpha = c["alpha"].double().numpy()
                zeros = np.zeros_like(alpha)
                coeffs = {
                    "alpha": alpha,
                    "beta": c["beta"].double().numpy() if "beta" in c else zeros,
                    "a": c["a"].double().numpy() if "a" in c else zeros,
                    "b": c["b"].double().numpy() if "b" in c else zeros,
                }
                gain = 1.0 - c["alpha"].double().numpy()
            hidden.append(FloatLayer(kind, weight, bias, gain, coeffs))
        ro = model.readout
        weight, bias = _fold_batchnorm(ro)
        alpha = ro.coefficients()["alpha"].double().numpy()
        readout = FloatLayer("cuba", weight, bias, 1.0 - alpha, {"alpha": alpha})
    cfg = model.config
    return FloatNetwork(cfg.model_type, cfg.n_inputs, hidden, readout)


def state_ranges(model, x: np.ndarray) -> tuple[list[float], float]:
    """Calibration: max |state| per hidden layer (in threshold units; C-SiLIF in its v = 2u form)
    and max |u| of the readout, from a float run on ``x``."""
    import torch

    with torch.no_grad():
        _, _, readout_u, states = model.forward_all(torch.as_tensor(x, dtype=torch.float32), record_states=True)
    ranges = []
    for layer, st in zip(model.hidden_layers, states):
        peak = 0.0
        for v in st.values():
            if v.is_complex():
                v = torch.view_as_real(v) * (2.0 if layer.model_type == "csilif" else 1.0)
            peak = max(peak, float(v.abs().max()))
        ranges.append(peak)
    return ranges, float(readout_u.abs().max())
