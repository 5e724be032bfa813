"""The float network as the per-layer metrics see it, read from its ``state_dict`` keys.

The key knowledge (``snn.<i>.W.weight``, ``snn.<i>.norm.*``, BatchNorm running statistics) belongs
to the float side; :mod:`silif_deploy.hw_models.metrics` counts and reports on the
:class:`~silif_deploy.hw_models.metrics.NetworkDescription` made here.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from silif_deploy.hw_models.metrics import FLOAT_BITS, LayerDescription, NetworkDescription, layer_names
from silif_deploy.hw_models.neuron_kinds import KINDS, READOUT_KIND

_BN_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def parameter_counts(state_dict: Mapping[str, Any], n_layers: int) -> list[int]:
    """Trainable parameters per layer (``snn.<i>.*`` entries except BatchNorm running statistics)."""
    counts = [0] * n_layers
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] != "snn" or parts[-1] in _BN_STATISTICS:
            continue
        counts[int(parts[1])] += int(np.prod(np.shape(value), dtype=np.int64))
    return counts


def describe_float(config: Mapping[str, Any], state_dict: Mapping[str, Any]) -> NetworkDescription:
    """Description of a float network from its config and (numpy) ``state_dict``.

    A weight counts as non-zero when W ≠ 0 and its row's BatchNorm γ ≠ 0 (BN folds γ/σ into W).
    The float readout keeps one state (its membrane u); a hidden layer keeps the kind's states.
    """
    n_layers = len(config["hidden_sizes"]) + 1
    params = parameter_counts(state_dict, n_layers)
    layers = []
    for i, name in enumerate(layer_names(n_layers - 1)):
        w = np.asarray(state_dict[f"snn.{i}.W.weight"], np.float64)
        gamma = np.asarray(state_dict[f"snn.{i}.norm.weight"], np.float64)
        hidden = i < n_layers - 1
        kind = config["model_type"] if hidden else READOUT_KIND
        layers.append(LayerDescription(
            name=name, kind=kind, weights=w * (gamma != 0)[:, None],
            states_per_neuron=KINDS[kind].buffers if hidden else 1, state_bits=FLOAT_BITS,
            weight_bits=FLOAT_BITS, parameters=params[i], hidden=hidden, graded=i == 0,
        ))
    return NetworkDescription("float", str(config["model_type"]), layers)
