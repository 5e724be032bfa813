"""The ``lif-compat`` NIR profile read as snntorch 1.0.0 reads it: a lossy reading (numpy only).

``export --nir-profile lif-compat`` writes one ``LIF`` per layer for consumers that know only LIF
(adaptation, oscillation and the subtractive reset dropped). This module runs such a file the way
snntorch's ``import_from_nir`` builds it (``Linear(W, b)`` then ``Leaky(beta = 1 − 1e-4/τ,
threshold, reset_mechanism="zero", reset_delay=False)``), so that ``simulate`` shows what a
consumer gets and :func:`agreement` measures how far that is from the exact model. Per layer and
step, in float32::

    I_t = W·x_t + b;   v_t = β·v_{t−1} + I_t;   s_t = H(v_t − θ) (strict);   v_t = 0 where s_t

The readout's threshold is float32's largest, so it never fires; its trajectory v_t is scored by
the graph's decision rule (argmax_k Σ_t softmax_k(v_t)).
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from silif_deploy.converters.nir_export import SNNTORCH_DT
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.run_result import RunResult
from silif_deploy.hw_models.simulator import softmax_sum

LOSSY_LABEL = ("lossy lif-compat reading (one LIF per layer as snntorch reads it: reset to zero, adaptation "
               "and oscillation dropped); not the exact model")


def is_lif_compat(graph: nir.NIRGraph) -> bool:
    return graph.metadata.get("nir_ext_profile") == "lif-compat"


def _chain(graph: nir.NIRGraph) -> list[tuple[nir.Affine, nir.LIF]]:
    """(Affine, LIF) pairs from the Input to the Output, following the edges."""
    nxt = {src: dst for src, dst in graph.edges}
    name = next(n for n, node in graph.nodes.items() if isinstance(node, nir.Input))
    layers, pending = [], None
    while name in nxt:
        name = nxt[name]
        node = graph.nodes[name]
        if isinstance(node, nir.Affine):
            pending = node
        elif isinstance(node, nir.LIF) and pending is not None:
            layers.append((pending, node))
            pending = None
        elif not isinstance(node, nir.Output):
            raise SilifDeployError(f"node '{name}' is a {type(node).__name__}; a lif-compat graph holds Affine and LIF")
    return layers


def layer_sizes(graph: nir.NIRGraph) -> list[int]:
    """Inputs, then the neurons of each layer (the last is the readout)."""
    layers = _chain(graph)
    return [int(layers[0][0].weight.shape[1]), *(int(affine.weight.shape[0]) for affine, _ in layers)]


def run_lif_compat(graph: nir.NIRGraph, x: np.ndarray) -> RunResult:
    """Run (batch, time, channels) through a lif-compat graph (module docstring)."""
    if not is_lif_compat(graph):
        raise SilifDeployError("not a lif-compat NIR graph (nir_ext_profile is not 'lif-compat')")
    layers = _chain(graph)
    h = np.asarray(x, np.float32)
    outputs = []
    for affine, lif in layers:
        if np.any(lif.v_leak != 0):
            raise SilifDeployError("a lif-compat LIF with v_leak ≠ 0: snntorch refuses it, and so does this reading")
        beta = np.clip((1 - SNNTORCH_DT / lif.tau).astype(np.float32), 0, 1)
        # snntorch divides the threshold by r·dt/τ unless that is allclose to 1 (our export makes it 1)
        w_scale = lif.r * SNNTORCH_DT / lif.tau
        theta = np.float32(np.unique(lif.v_threshold if np.allclose(w_scale, 1.0) else lif.v_threshold / np.unique(w_scale)[0])[0])
        current = h @ affine.weight.T.astype(np.float32) + affine.bias.astype(np.float32)
        v = np.zeros(current.shape[::2], np.float32)
        spikes, trace = np.zeros(current.shape, np.float32), np.zeros(current.shape, np.float32)
        for t in range(current.shape[1]):
            v = beta * v + current[:, t]
            s = v > theta
            v = np.where(s, np.float32(0), v)
            spikes[:, t], trace[:, t] = s, v
        outputs.append((spikes, trace))
        h = spikes
    readout_u = outputs[-1][1]
    return RunResult(scores=softmax_sum(readout_u.astype(np.float64)),
                     spikes=[s > 0 for s, _ in outputs[:-1]], readout_u=readout_u)


def agreement(exact: RunResult, lossy: RunResult) -> dict[str, Any]:
    """How far the lossy reading is from the exact model on one input: predictions and spikes."""
    same = exact.prediction == lossy.prediction
    spikes = [float(np.mean(a == b)) for a, b in zip(exact.spikes, lossy.spikes)]
    return {"samples": int(same.size), "predictions_equal": int(same.sum()), "spike_agreement": spikes}
