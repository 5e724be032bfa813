"""Run our exact NIR files in PyTorch with nirtorch 2.6: node maps, and one call that applies them.

::

    from silif_deploy.converters.nirtorch_maps import nir_to_torch
    net = nir_to_torch("model.nir")        # nirtorch's GraphModule; call it once per time step
    state = None
    for x_t in x.unbind(1):                 # x: (batch, time, channels) float32
        u_t, state = net(x_t, state)        # u_t: the readout's value at step t

nirtorch executes the graph (edges, evaluation order, state); :data:`NODE_MAP` gives each node a
module that computes what our float model computes, in the same float32 operations:

* ``Affine`` (ours: ``nir_ext = "batchnorm_fold"``): ``BatchNorm1d(W·x)`` from the payload's
  unfolded W and BatchNorm statistics (the folded ``weight``/``bias`` agree with them only to
  rounding; nirtorch's own Affine map also drops the bias).
* A neuron subgraph (``nir_ext`` silif … rf): nirtorch would recurse into its primitives, so it is
  replaced, in memory only, by a :class:`NeuronLayer` node that runs our float layer's one-step
  ``step`` (its family's pure step function) with the coefficients rebuilt from the payload by :func:`~.nir_import.from_nir` (which
  first checks the body against the payload). The primitives alone run in
  ``nir_interpret.interpret``; plain nirtorch maps of them agree to float32 rounding (docs/nir.md).
* The readout ``LI``: ``u_t = α·u_{t−1} + (1 − α)·I_t`` with the payload's α.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
import torch

from silif_deploy.converters.families.readout import ReadoutCoefficients, readout_step
from silif_deploy.converters.nir_import import from_nir, read_nir


@dataclass(eq=False)
class NeuronLayer(nir.NIRNode):
    """In memory only, never written: one hidden layer of ours, to run as its float module."""

    layer: Any
    init_state: str = "zeros"

    def __post_init__(self) -> None:
        self.input_type = {"input": np.array([self.layer.n_hidden])}
        self.output_type = {"output": np.array([self.layer.n_hidden])}


class NeuronStep(torch.nn.Module):
    """``(I_t, state) -> (s_t, state)``: the layer's own ``step`` (update rule in its docstring)."""

    def __init__(self, node: NeuronLayer) -> None:
        super().__init__()
        self.layer, self.init_state = node.layer, node.init_state
        with torch.no_grad():
            self.params = node.layer.params()

    def forward(self, x: torch.Tensor, state=None):
        if state is None:
            state = self.layer.initial_state(x.shape[0], self.init_state, x)
        return self.layer.step(x, state, self.params)


class ReadoutStep(torch.nn.Module):
    """:func:`~silif_deploy.converters.families.readout.readout_step` with the readout LI's payload α (float32)."""

    def __init__(self, node: nir.LI) -> None:
        super().__init__()
        self.params = ReadoutCoefficients(torch.as_tensor(np.asarray(node.metadata["alpha"], np.float32)))

    def forward(self, x: torch.Tensor, state=None):
        return readout_step(x, torch.zeros_like(x) if state is None else state, self.params)


def _affine(node: nir.Affine) -> torch.nn.Module:
    """W then BatchNorm (eval) from the payload, as the float layer computes its input current."""
    meta = node.metadata
    w = torch.as_tensor(np.asarray(meta["weight"]))
    linear = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    norm = torch.nn.BatchNorm1d(w.shape[0], eps=float(meta["bn_eps"]))
    with torch.no_grad():
        linear.weight.copy_(w)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(norm, name).copy_(torch.as_tensor(np.asarray(meta[f"bn_{name}"])))
    return torch.nn.Sequential(linear, norm).eval()


NODE_MAP = {
    nir.Input: lambda node: torch.nn.Identity(),
    nir.Output: lambda node: torch.nn.Identity(),
    nir.Affine: _affine,
    nir.LI: ReadoutStep,
    NeuronLayer: NeuronStep,
}
"""nirtorch node maps for the graphs :func:`nir_to_torch` prepares (pass ``default_map={}``:
nirtorch's defaults would otherwise override nothing here, but drop Affine biases elsewhere)."""


def nir_to_torch(source: str | os.PathLike | nir.NIRGraph) -> torch.nn.Module:
    """One call: our exact NIR file (or graph) as nirtorch's step-by-step GraphModule (module docstring)."""
    import nirtorch

    graph = source if isinstance(source, nir.NIRGraph) else read_nir(source)
    model = from_nir(graph, source="NIR graph" if isinstance(source, nir.NIRGraph) else f"'{source}'")
    nodes = dict(graph.nodes)
    subgraphs = [name for name, node in sorted(nodes.items()) if isinstance(node, nir.NIRGraph)]
    for name, layer in zip(subgraphs, model.hidden_layers):
        nodes[name] = NeuronLayer(layer, model.config.init_state)
    prepared = nir.NIRGraph(nodes=nodes, edges=graph.edges, metadata=graph.metadata, type_check=False)
    return nirtorch.nir_to_torch(prepared, NODE_MAP, default_map={})


def run_steps(net: torch.nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Run (batch, time, channels) step by step; the readout trajectory (batch, time, classes)."""
    state, outputs = None, []
    with torch.no_grad():
        for x_t in torch.as_tensor(np.asarray(x), dtype=torch.float32).unbind(1):
            u, state = net(x_t, state)
            outputs.append(u)
    return torch.stack(outputs, 1).numpy()
