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
from silif_deploy.hw_models.stage_metrics import S4D_MULTIPLIES_PER_STATE, GraphDescription, StageDescription

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


SDN_KEY = ".neuron.model."
"""The SDN predictor's frozen copies in a SpikingSSM ``state_dict`` (never trained: not parameters)."""
SOMA_BUFFERS = {"lif": 1, "sdn": 8, "heaviside": 0}
"""Real states per channel of a SpikingSSM soma: the LIF's v; the SDN's window of its last 8 inputs;
binary S4D's comparator none."""


def graph_parameter_count(state_dict: Mapping[str, Any]) -> int:
    """Trainable parameters of a SpikingSSM / binary-S4D model: every entry but BatchNorm running
    statistics and the SDN's frozen copies (``spiking_ssm.md`` §5.1)."""
    return sum(int(np.prod(np.shape(v), dtype=np.int64)) for k, v in state_dict.items()
               if k.split(".")[-1] not in _BN_STATISTICS and SDN_KEY not in k)


def describe_spiking_ssm(config: Mapping[str, Any], state_dict: Mapping[str, Any]) -> GraphDescription:
    """The float SpikingSSM / binary-S4D model stage by stage, under the stage names of the
    quantized network's blueprint (``enc``, per block ``b<i>.s4d``, ``.C``, ``.D``, ``.y``, ``.soma``,
    ``.mix``, ``.glu``, ``.res``; ``decoder``) and the definitions of :mod:`~silif_deploy.hw_models.stage_metrics`;
    the readout C′ is block-diagonal (each channel reads its own N states)."""
    h, n_state, d_in = int(config["d_model"]), int(config["d_state"]), int(config["d_input"])
    modes = h * n_state // 2

    def graded(name: str, size: int, readers: int, **kw: Any) -> StageDescription:
        return StageDescription(name=name, size=size, messages_per_step=size * readers, message_bits=FLOAT_BITS, **kw)

    stages = [graded("input", d_in, 1, stage="input", kind="input"),
              StageDescription("enc", "dense", "graded", h, weights=np.asarray(state_dict["encoder.weight"]),
                               weight_bits=FLOAT_BITS, input_driven=True)]
    spiking, blocks = [], int(config["n_layers"])
    for i in range(blocks):
        b, key = f"b{i}", f"backbone.s4_layers.{i}"
        neuron = str(config.get("neuron", "lif"))
        mix = np.asarray(state_dict[f"{key}.output_linear.0.weight"])[..., 0]
        c = np.kron(np.eye(h), np.ones((1, n_state)))  # the readout's non-zero pattern: channel h reads its N states
        stages += [
            graded(f"{b}.s4d", 2 * modes, 1, stage="neurons", kind="s4d", neurons=modes, buffers=2 * modes,
                   state_bits=FLOAT_BITS, macs_per_step=S4D_MULTIPLIES_PER_STATE * modes),
            StageDescription(f"{b}.C", "dense", "graded", h, weights=c, weight_bits=FLOAT_BITS, macs_per_step=int(c.sum())),
            StageDescription(f"{b}.D", "dense", "graded", h, weights=np.diag(np.asarray(state_dict[f"{key}.D"])[0]),
                             weight_bits=FLOAT_BITS, macs_per_step=h),
            graded(f"{b}.y", h, 1, stage="add", kind="add", adds_per_step=h),
            StageDescription(f"{b}.soma", "neurons", neuron, h, neurons=h, buffers=SOMA_BUFFERS[neuron] * h,
                             state_bits=FLOAT_BITS, spike_index=i),
            StageDescription(f"{b}.mix", "dense", "binary", 2 * h, weights=mix, weight_bits=FLOAT_BITS, binary_source=i + 1),
            graded(f"{b}.glu", h, 1, stage="glu", kind="glu", macs_per_step=h, lookups_per_step=h),
            graded(f"{b}.res", h, 3 if i < blocks - 1 else 1, stage="add", kind="add", adds_per_step=h),  # next s4d, D, res
        ]
        spiking.append((f"{b}.soma", i))
    classes = int(config["n_classes"])
    stages.append(StageDescription("decoder", "decoder", "mean_linear", classes, adds_per_step=h, host_macs=h * classes,
                                   host=True))
    return GraphDescription("float", str(config["model_type"]), d_in, stages, list(range(len(spiking))), spiking,
                            parameters=graph_parameter_count(state_dict))


def describe_float(config: Mapping[str, Any], state_dict: Mapping[str, Any]) -> NetworkDescription | GraphDescription:
    """Description of a float network from its config and (numpy) ``state_dict`` (a SpikingSSM /
    binary-S4D model: :func:`describe_spiking_ssm`).

    A weight counts as non-zero when W ≠ 0 and its row's BatchNorm γ ≠ 0 (BN folds γ/σ into W).
    The float readout keeps one state (its membrane u); a hidden layer keeps the kind's states.
    """
    if "d_state" in config:
        return describe_spiking_ssm(config, state_dict)
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
