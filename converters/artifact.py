"""The fixed-point network file (``<name>.loihi2.h5``): the contract between PyTorch and hardware.

HDF5 written with h5py; readable with numpy + h5py alone (no torch). Layout, format version 2
(``docs/artifact.md``; version 1 is the same without ``stages`` and ``states``: a chain)::

    /                  attrs: format = "silif-deploy-fixed-point", format_version = 2,
                              model_type, n_inputs, n_classes, input_frac_bits,
                              stages (JSON: the graph of stages in run order, each
                              {"name", "type": dense | neurons | add | glu | softmax_sum |
                              mean_linear, "inputs", and "layer": i for a Dense and the neuron
                              stage that is its only reader, "group": j for any other stage
                              with arrays, an Add's "bits", "overflow", "lags" where not the
                              defaults}),
                              identity (the content hash at export, :func:`artifact_identity`;
                              ``inspect`` tells an artifact edited since from an exported one),
                              provenance (JSON: tool version, source and NIR SHA-256, profile name),
                              quantization (JSON: per-layer diagnostics)
    /profile           attr text: the hardware profile's TOML, verbatim
    /layers/<i>        one per neuron stage in run order, with the Dense that feeds it: hidden
                       layers, then the readout (kind "cuba")
        attrs: kind, states (JSON: the kind's state names), scale, weight_exp, num_weight_bits,
               graded, and every scalar parameter
        weights        (out, in) int32 Dense weights (Lava's grid)
        <param>        (out,) int64 per-neuron parameter arrays of the kind's record
        row_exp        (out,) int64 per-row exponents, where the Dense has them
    /stages/<j>        stage j of ``stages`` when it is no layer's half: a Dense (as a layer's
                       Dense fields), a neuron stage (kind, states, scale, parameters), a GLU
                       (its scalar parameters), a mean_linear (float64 weights, bias; attr scale)
    /float_model       the float network it came from (``--engine float``):
        attrs: config (JSON); datasets: the state_dict, one per key

Every integer array is stored exactly; readers check the format marker and version.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import h5py
import numpy as np

from silif_deploy.converters.files import atomic_output, require_file
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.dense import DenseSynapse, weight_grid
from silif_deploy.hw_models.glu import GluParams
from silif_deploy.hw_models.network import (
    Add, Dense, FixedLayer, FixedPointNetwork, Glu, MeanLinear, Neurons, SoftmaxSum, Stage, graph_problem, inputs_of,
    layer_pairs, neuron_count,
)
from silif_deploy.hw_models.neuron_cuba import DECAY_BITS
from silif_deploy.hw_models.neuron_kinds import KINDS, READOUT_KIND
from silif_deploy.hw_models.profile import profile_from_text

ARTIFACT_FORMAT = "silif-deploy-fixed-point"
ARTIFACT_VERSION = 2
STAGE_TYPES = {Dense: "dense", Neurons: "neurons", Add: "add", Glu: "glu", SoftmaxSum: "softmax_sum",
               MeanLinear: "mean_linear"}
ADD_DEFAULTS = {"bits": 0, "overflow": "saturate", "lags": [0, 0]}
"""An Add's fields as the file writes them only where they differ (older residual files match)."""


def write_artifact(network: FixedPointNetwork, path: str | os.PathLike) -> None:
    """Write ``network`` atomically (a failed write leaves no file)."""
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({
                "format": ARTIFACT_FORMAT, "format_version": ARTIFACT_VERSION,
                "model_type": network.model_type, "n_inputs": network.n_inputs,
                "n_classes": network.n_classes, "input_frac_bits": network.input_frac_bits,
                "provenance": json.dumps(network.provenance, sort_keys=True),
                "identity": artifact_identity(network),
                "quantization": json.dumps(network.quantization, sort_keys=True, default=_json_default),
                "stages": json.dumps(_stage_list(network)),
            })
            f.create_group("profile").attrs["text"] = network.profile.source_text
            layers = f.create_group("layers")
            for i, layer in enumerate(network.layers):
                _write_layer(layers.create_group(str(i)), layer)
            grouped = _grouped(network)
            if grouped:
                groups = f.create_group("stages")
                for j in grouped:
                    _write_stage(groups.create_group(str(j)), network.stages[j])
            if network.float_model is not None:
                fm = f.create_group("float_model")
                fm.attrs["config"] = json.dumps(network.float_model["config"])
                for key, value in network.float_model["state_dict"].items():
                    fm.create_dataset(key, data=value)


def _grouped(network: FixedPointNetwork) -> list[int]:
    """The indices of the stages with arrays of their own: no layer's half, not an Add or softmax_sum."""
    paired = {st.name for pair in layer_pairs(network.stages) for st in pair}
    return [j for j, st in enumerate(network.stages)
            if st.name not in paired and isinstance(st, (Dense, Neurons, Glu, MeanLinear))]


def _stage_list(network: FixedPointNetwork) -> list[dict[str, Any]]:
    """The graph as the file's ``stages`` attribute: a Dense and the neuron stage it feeds name
    the layer group that holds them, other stages with arrays their ``/stages`` group."""
    layer_of = {}
    for i, (dense, neurons) in enumerate(layer_pairs(network.stages)):
        layer_of[neurons.name] = layer_of[dense.name] = i
    grouped = set(_grouped(network))
    entries = []
    for j, st in enumerate(network.stages):
        entry: dict[str, Any] = {"name": st.name, "type": STAGE_TYPES[type(st)], "inputs": list(inputs_of(st))}
        if st.name in layer_of:
            entry["layer"] = layer_of[st.name]
        elif j in grouped:
            entry["group"] = j
        if isinstance(st, Add):
            fields = {"bits": int(st.bits), "overflow": st.overflow, "lags": [int(v) for v in st.lags]}
            entry.update({k: v for k, v in fields.items() if v != ADD_DEFAULTS[k]})
        entries.append(entry)
    return entries


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _write_dense(g: h5py.Group, syn: DenseSynapse) -> None:
    g.attrs.update({"weight_exp": syn.weight_exp, "num_weight_bits": syn.num_weight_bits, "graded": syn.graded})
    g.create_dataset("weights", data=syn.weights.astype(np.int32), compression="gzip")
    if syn.row_exp is not None:
        g.create_dataset("row_exp", data=np.asarray(syn.row_exp, np.int64))


def _write_params(g: h5py.Group, params: Any) -> None:
    for name, value in params._asdict().items():
        if isinstance(value, np.ndarray):
            g.create_dataset(name, data=value.astype(np.int64))
        else:
            g.attrs[name] = int(value)


def _write_neurons(g: h5py.Group, kind: str, params: Any, scale: int) -> None:
    g.attrs.update({"kind": kind, "states": json.dumps(KINDS[kind].states), "scale": scale})
    _write_params(g, params)


def _write_layer(g: h5py.Group, layer: FixedLayer) -> None:
    _write_neurons(g, layer.kind, layer.params, layer.scale)
    _write_dense(g, layer.synapse)


def _write_stage(g: h5py.Group, stage: Stage) -> None:
    """A stage that is no layer's half: its arrays and scalars."""
    if isinstance(stage, Dense):
        _write_dense(g, stage.synapse)
    elif isinstance(stage, Neurons):
        _write_neurons(g, stage.kind, stage.params, stage.scale)
    elif isinstance(stage, Glu):
        _write_params(g, stage.params)
    else:
        g.create_dataset("weights", data=np.asarray(stage.weights, np.float64))
        g.create_dataset("bias", data=np.asarray(stage.bias, np.float64))
        g.attrs["scale"] = float(stage.scale)


def read_artifact(path: str | os.PathLike) -> FixedPointNetwork:
    """Read and check an artifact: its structure, then every value against the legal range its
    hardware profile gives (:func:`check_network`); every problem is one :class:`SilifDeployError` line."""
    p = require_file(path, "artifact")
    try:
        f = h5py.File(p, "r")
    except OSError:
        raise SilifDeployError(f"'{p}' is not an HDF5 file (corrupted or wrong file?)") from None
    with f:
        if f.attrs.get("format") != ARTIFACT_FORMAT:
            raise SilifDeployError(
                f"'{p}' is not a silif-deploy fixed-point artifact; make one with: silif-deploy export MODEL --target loihi2"
            )
        try:
            version = _int(f.attrs["format_version"], "format_version")
            if version > ARTIFACT_VERSION:
                raise SilifDeployError(
                    f"'{p}' has artifact format version {version}; this silif-deploy reads up to {ARTIFACT_VERSION}: upgrade it"
                )
            profile = profile_from_text(_text(f["profile"].attrs["text"]), origin=f"{p}: profile")
            layers = [_read_layer(f["layers"][str(i)], version) for i in range(len(f["layers"]))]
            if version < 2 and len(layers) < 2:
                raise ValueError(f"{len(layers)} layers; an artifact holds hidden layers and a readout")
            stages = _read_stages(json.loads(f.attrs["stages"]), layers, f.get("stages")) if version >= 2 else None
            float_model = None
            if "float_model" in f:
                fm = f["float_model"]
                float_model = {"config": json.loads(fm.attrs["config"]),
                               "state_dict": {k: fm[k][()] for k in fm}}
            network = FixedPointNetwork(
                _text(f.attrs["model_type"]), _int(f.attrs["n_inputs"], "n_inputs"),
                stages if stages is not None else [],
                _int(f.attrs["input_frac_bits"], "input_frac_bits"), profile, json.loads(f.attrs["provenance"]),
                json.loads(f.attrs["quantization"]), float_model,
            )
            if stages is None:
                network.stages = FixedPointNetwork.chain(network.model_type, network.n_inputs, layers[:-1], layers[-1],
                                                         network.input_frac_bits, profile).stages
        except SilifDeployError:
            raise
        except (KeyError, ValueError, TypeError, OSError, AttributeError, IndexError, RuntimeError) as err:
            raise SilifDeployError(f"'{p}' is a damaged artifact ({type(err).__name__}: {err})") from None
    _check_shapes(network, p)
    problem = graph_problem(network.stages, network.n_inputs)
    if problem is not None:
        raise SilifDeployError(f"'{p}': {problem}; the file was edited or damaged: export the model again")
    check_network(network, p)
    return network


def _read_stages(entries: Any, layers: list[FixedLayer], groups: h5py.Group | None) -> list[Stage]:
    """The ``stages`` attribute as stages; every layer group is one Dense and one neuron stage,
    every other stage with arrays reads its ``/stages`` group."""
    if not isinstance(entries, list):
        raise ValueError("'stages' is not a list")
    stages: list[Stage] = []
    used: list[tuple[str, int]] = []
    for entry in entries:
        name, kind, inputs = _text(entry["name"]), _text(entry["type"]), [_text(i) for i in entry["inputs"]]
        if kind not in STAGE_TYPES.values():
            raise ValueError(f"stage '{name}' has type '{kind}', not one of {', '.join(STAGE_TYPES.values())}")
        if len(inputs) != (2 if kind == "add" else 1):
            raise ValueError(f"stage '{name}' ({kind}) has {len(inputs)} inputs")
        if kind in ("dense", "neurons") and "layer" in entry:
            i = _int(entry["layer"], f"stage {name} layer")
            if not 0 <= i < len(layers) or (kind, i) in used:
                raise ValueError(f"stage '{name}' names layer {i}, which is missing or already taken")
            used.append((kind, i))
            layer = layers[i]
            stages.append(Dense(name, inputs[0], layer.synapse) if kind == "dense" else
                          Neurons(name, inputs[0], layer.kind, layer.params, layer.scale))
        elif kind in ("dense", "neurons", "glu", "mean_linear"):
            j = _int(entry["group"], f"stage {name} group")
            if groups is None or str(j) not in groups:
                raise ValueError(f"stage '{name}' names group /stages/{j}, which is missing")
            stages.append(_read_stage(groups[str(j)], kind, name, inputs[0]))
        elif kind == "add":
            fields = {**ADD_DEFAULTS, **{k: entry[k] for k in ADD_DEFAULTS if k in entry}}
            lags = [_int(v, f"stage {name} lags") for v in fields["lags"]]
            if len(lags) != 2:
                raise ValueError(f"stage '{name}' has {len(lags)} lags; an Add has one per source")
            stages.append(Add(name, (inputs[0], inputs[1]), _int(fields["bits"], f"stage {name} bits"),
                              _text(fields["overflow"]), (lags[0], lags[1])))
        else:
            stages.append(SoftmaxSum(name, inputs[0]))
    if len(used) != 2 * len(layers):
        raise ValueError(f"the stages use {len(used)} of the {2 * len(layers)} Dense and neuron halves of the layers")
    # layer i is the i-th neuron stage fed by a Dense of its own (the order the writer keeps)
    pairs = layer_pairs(stages)
    if len(pairs) != len(layers):
        raise ValueError(f"the stages make {len(pairs)} layers (Dense and neuron stage pairs), the file holds {len(layers)}")
    for i, (dense, neurons) in enumerate(pairs):
        if neurons.params is not layers[i].params or dense.synapse is not layers[i].synapse:
            raise ValueError(f"neuron stage '{neurons.name}' is not fed by the Dense of its own layer {i}: "
                             "layers are stored in run order")
    return stages


def _read_stage(g: h5py.Group, kind: str, name: str, source: str) -> Stage:
    if kind == "dense":
        return Dense(name, source, _read_dense(g))
    if kind == "neurons":
        neuron_kind, params, scale = _read_neurons(g, 2)
        return Neurons(name, source, neuron_kind, params, scale)
    if kind == "glu":
        return Glu(name, source, _read_params(g, GluParams))
    weights, bias = g["weights"][()], g["bias"][()]
    if weights.dtype.kind != "f" or bias.dtype.kind != "f":
        raise ValueError(f"'{g.name}' weights and bias are not float arrays")
    return MeanLinear(name, source, weights.astype(np.float64), bias.astype(np.float64), float(g.attrs["scale"]))


def _int(value: Any, name: str) -> int:
    """An integer attribute, refusing floats that int() would truncate and booleans."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"'{name}' is {value!r}, not an integer")
    return int(value)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return value


def _int_array(g: h5py.Group, name: str) -> np.ndarray:
    data = g[name]
    if not isinstance(data, h5py.Dataset) or not np.issubdtype(data.dtype, np.integer):
        raise ValueError(f"'{g.name}/{name}' is not an integer array")
    return data[()].astype(np.int64)


def _read_neurons(g: h5py.Group, version: int) -> tuple[str, Any, int]:
    kind = _text(g.attrs["kind"])
    if kind not in KINDS:
        raise ValueError(f"unknown neuron kind '{kind}'")
    if version >= 2 and tuple(json.loads(g.attrs["states"])) != KINDS[kind].states:
        raise ValueError(f"'{g.name}' declares states {json.loads(g.attrs['states'])}, but kind '{kind}' has "
                         f"{list(KINDS[kind].states)}")
    return kind, _read_params(g, KINDS[kind].params_type), _int(g.attrs["scale"], "scale")


def _read_params(g: h5py.Group, params_type: type) -> Any:
    """An integer parameter record: its arrays from datasets, its scalars from attributes."""
    values = {}
    for name in params_type._fields:
        values[name] = _int_array(g, name) if name in g else _int(g.attrs[name], f"{g.name} {name}")
    return params_type(**values)


def _read_dense(g: h5py.Group) -> DenseSynapse:
    weights = _int_array(g, "weights")
    if weights.ndim != 2:
        raise ValueError(f"'{g.name}/weights' has shape {weights.shape}, expected (neurons, inputs)")
    return DenseSynapse(weights, _int(g.attrs["weight_exp"], "weight_exp"),
                        _int(g.attrs["num_weight_bits"], "num_weight_bits"), bool(g.attrs["graded"]),
                        _int_array(g, "row_exp") if "row_exp" in g else None)


def _read_layer(g: h5py.Group, version: int) -> FixedLayer:
    kind, params, scale = _read_neurons(g, version)
    return FixedLayer(kind, _read_dense(g), params, scale)


def _check_shapes(network: FixedPointNetwork, p) -> None:
    """Chains: each layer takes what the one before sends. Every layer: one entry per neuron."""
    n_in, chain = network.n_inputs, network.is_chain
    for i, layer in enumerate(network.layers):
        if layer.synapse.fan_in != n_in and chain:
            raise SilifDeployError(f"'{p}': layer {i} takes {layer.synapse.fan_in} inputs but receives {n_in}")
        for name, value in layer.params._asdict().items():
            if isinstance(value, np.ndarray) and value.shape != (layer.size,):
                raise SilifDeployError(f"'{p}': layer {i} parameter '{name}' has shape {value.shape}, expected ({layer.size},)")
        n_in = layer.size
    for stage in network.neuron_stages:
        shapes = {name: np.shape(v) for name, v in stage.params._asdict().items() if isinstance(v, np.ndarray)}
        if len(set(shapes.values())) > 1 or any(len(shape) != 1 for shape in shapes.values()):
            raise SilifDeployError(f"'{p}': neuron stage '{stage.name}' has parameter arrays of shapes {shapes}; "
                                   "one entry per neuron each")


THRESHOLD_LIMIT = 1 << 40
"""Thresholds above every state are legal (a layer that never spikes); the bound keeps θ·s and
u − θ far inside int64."""
INPUT_FRAC_LIMIT = 32


def check_network(network: FixedPointNetwork, source: object = "network") -> None:
    """Every value of a fixed-point network within the legal range of its hardware profile.

    What the quantizer writes, so that the compiled kernels (int64 arithmetic, shifts) and Lava
    compute the same thing: weights on the layer's weight grid (Lava's even/odd rule up to 8
    bits) and exponents within the profile's, coefficients k/2^F with |k| ≤ 2^F, biases within
    the mantissa·2^exponent format, thresholds > 0, the profile's shifts, state widths and
    overflow rules, at least one neuron per layer. A refusal names the layer, the field and the
    legal range.
    """
    prof = network.profile
    one = 1 << prof.coefficient_bits
    half = prof.state_max + 1
    rules = prof.overflow_codes
    m_max = (1 << (prof.bias_mantissa_bits - 1)) - 1
    bias_limit = m_max << prof.bias_exponent_max

    def refuse(layer: str, field: str, value: object, legal: str) -> None:
        raise SilifDeployError(f"'{source}': {layer} {field} = {value} is outside the legal range {legal} of hardware "
                               f"profile '{prof.name}'; the file was edited or damaged: export the model again")

    def within(layer: str, field: str, value, low: int, high: int) -> None:
        arr = np.asarray(value)
        bad = (arr < low) | (arr > high)
        if bad.any():
            shown = arr[bad].flat[0]
            refuse(layer, field, int(shown) if arr.ndim == 0 else f"{int(shown)} ({int(bad.sum())} of {arr.size} values)",
                   f"{low}…{high}")

    def equal(layer: str, field: str, value: int, want: int, why: str) -> None:
        if value != want:
            refuse(layer, field, value, f"{want} ({why})")

    if network.n_inputs < 1:
        raise SilifDeployError(f"'{source}': n_inputs = {network.n_inputs}; a network needs at least one input")
    within("network", "input_frac_bits", network.input_frac_bits, -INPUT_FRAC_LIMIT, INPUT_FRAC_LIMIT)

    def check_dense(name: str, syn: DenseSynapse) -> None:
        within(name, "num_weight_bits", syn.num_weight_bits, 2, prof.weight_bits)
        step, w_min, w_max = weight_grid(syn.num_weight_bits)
        within(name, "weights", syn.weights, w_min, w_max)
        if step > 1 and (syn.weights % step).any():
            odd = syn.weights[syn.weights % step != 0].flat[0]
            refuse(name, "weights", f"{int(odd)} (not a multiple of {step})",
                   f"multiples of {step} in {w_min}…{w_max} ({syn.num_weight_bits}-bit Lava Dense weights)")
        within(name, "weight_exp", syn.weight_exp, prof.weight_exp_min, prof.weight_exp_max)
        if syn.row_exp is not None:
            within(name, "weight_exp + row_exp", syn.exponents, prof.weight_exp_min, prof.weight_exp_max)

    def check_neurons(name: str, kind_name: str, par: Any, scale: int, size: int) -> None:
        if size < 1:
            raise SilifDeployError(f"'{source}': {name} has 0 neurons; every layer needs at least one")
        fields = par._fields
        within(name, "scale", scale, 1, THRESHOLD_LIMIT)
        if "input_shift" in fields:
            equal(name, "input_shift", par.input_shift, prof.input_shift, "the profile's state.input_shift")
        if "half" in fields:
            equal(name, "half", par.half, half, f"2^(state.bits − 1) for {prof.state_bits}-bit states")
        if kind_name == READOUT_KIND:
            within(name, "du", par.du, 0, (1 << DECAY_BITS) - 1)
            within(name, "dv", par.dv, 0, (1 << DECAY_BITS) - 1)
            within(name, "bias_mant", par.bias_mant, -m_max, m_max)
            within(name, "bias_exp", par.bias_exp, 0, prof.bias_exponent_max)
            within(name, "vth", par.vth, 0, (1 << prof.threshold_mantissa_bits) - 1)
            equal(name, "threshold_exponent", par.threshold_exponent, prof.threshold_exponent,
                  "the profile's threshold.exponent")
            return
        kind = KINDS[kind_name]  # what the kind declares about its own fields
        if "frac_bits" in fields:
            equal(name, "frac_bits", par.frac_bits, prof.coefficient_bits, "the profile's coefficients.bits")
        if "threshold" in fields and "threshold" not in kind.state_valued:
            within(name, "threshold", par.threshold, 1, THRESHOLD_LIMIT)
        within(name, "bias", par.bias, -bias_limit, bias_limit)
        for field in kind.coefficients:
            within(name, field, getattr(par, field), -one, one)
        for field in kind.state_valued:
            within(name, field, getattr(par, field), -prof.state_max, prof.state_max)
        for field, rule in kind.overflow_rules:
            equal(name, field, getattr(par, field), rules[rule], f"the profile's {rule}_overflow")
        for field, value, why in kind.fixed:
            equal(name, field, getattr(par, field), value, why)

    softmax = isinstance(network.stages[-1], SoftmaxSum)
    layers = network.layers
    for i, layer in enumerate(layers):
        readout = softmax and i == len(layers) - 1
        name = f"layer {i} ({'readout' if readout else layer.kind})"
        if softmax and readout != (layer.kind == READOUT_KIND):
            raise SilifDeployError(f"'{source}': {name} has neuron kind '{layer.kind}'; hidden layers are one of "
                                   f"{', '.join(k for k in KINDS if k != 'cuba')} and the last layer is 'cuba'")
        if layer.size < 1:
            raise SilifDeployError(f"'{source}': {name} has 0 neurons; every layer needs at least one")
        check_dense(name, layer.synapse)
        check_neurons(name, layer.kind, layer.params, layer.scale, layer.size)
    paired = {st.name for pair in layer_pairs(network.stages) for st in pair}
    for stage in network.stages:
        name = f"stage '{stage.name}'"
        if stage.name in paired:
            continue
        if isinstance(stage, Dense):
            check_dense(name, stage.synapse)
        elif isinstance(stage, Neurons):
            check_neurons(name, stage.kind, stage.params, stage.scale, neuron_count(stage))
        elif isinstance(stage, Glu):
            within(name, "gate_frac", stage.params.gate_frac, 0, GATE_FRAC_LIMIT)
            within(name, "bias_a", stage.params.bias_a, -prof.state_max, prof.state_max)
            within(name, "bias_g", stage.params.bias_g, -prof.state_max, prof.state_max)
            equal(name, "half", stage.params.half, half, f"2^(state.bits − 1) for {prof.state_bits}-bit values")
            equal(name, "mode", stage.params.mode, rules["membrane"], "the profile's membrane_overflow")
        elif isinstance(stage, Add) and stage.bits:
            within(name, "bits", stage.bits, 2, 63)
        elif isinstance(stage, MeanLinear):
            if not (np.isfinite(stage.weights).all() and np.isfinite(stage.bias).all()):
                refuse(name, "weights", "not finite", "finite float64 values")
            if not (np.isfinite(stage.scale) and stage.scale > 0):
                refuse(name, "scale", stage.scale, "a finite value > 0")


GATE_FRAC_LIMIT = 40
"""A GLU gate's fraction bits: beyond 40 every gate of a 24- or 32-bit value is within one table step of 0."""


IDENTITY_SCHEME = b"silif-deploy-artifact-identity/1"


def recorded_identity(path: str | os.PathLike) -> str | None:
    """The identity an artifact recorded when it was written (None for files older than that)."""
    with h5py.File(require_file(path, "artifact"), "r") as f:
        value = f.attrs.get("identity")
    return None if value is None else str(value)


def artifact_identity(network: FixedPointNetwork) -> str:
    """The SHA-256 of what the hardware runs: model type, input format, the profile's fields, the
    graph of stages unless it is a chain, and every layer's kind, scale, synapse and integer
    parameters, in a fixed order.

    Not the file's bytes: provenance (times, paths), quantization diagnostics and the float model
    the artifact carries do not enter, so exporting the same checkpoint twice with the same
    version and profile gives the same identity, and any change of a weight, parameter or profile
    field gives another.
    """
    digest = hashlib.sha256(IDENTITY_SCHEME)

    def put(label: str, value: object) -> None:
        arr = np.asarray(value)
        data = arr.astype("<i8").tobytes() if arr.dtype.kind in "biu" else str(value).encode()
        digest.update(f"{label}:{arr.shape}:{len(data)}:".encode() + data)

    put("model_type", network.model_type)
    put("n_inputs", network.n_inputs)
    put("input_frac_bits", network.input_frac_bits)
    put("profile", json.dumps(network.profile.to_dict(), sort_keys=True))
    if not network.is_chain:  # a chain's identity is its layers', as in format version 1
        put("stages", json.dumps(_stage_list(network)))
    for i, layer in enumerate(network.layers):
        syn = layer.synapse
        put(f"{i}.kind", layer.kind)
        for label, value in (("scale", layer.scale), ("weight_exp", syn.weight_exp),
                             ("num_weight_bits", syn.num_weight_bits), ("graded", int(syn.graded)),
                             ("weights", syn.weights), *layer.params._asdict().items()):
            put(f"{i}.{label}", value)
        if syn.row_exp is not None:
            put(f"{i}.row_exp", syn.row_exp)
    for j in _grouped(network):  # the stages that are no layer's half (none in chains and residual graphs)
        for label, value in _stage_fields(network.stages[j]):
            put(f"stage{j}.{label}", value)
    return digest.hexdigest()


def _stage_fields(stage: Stage) -> list[tuple[str, Any]]:
    """What the hardware runs of a stage with arrays of its own, as (label, value) pairs."""
    if isinstance(stage, Dense):
        syn = stage.synapse
        return [("weight_exp", syn.weight_exp), ("num_weight_bits", syn.num_weight_bits), ("graded", int(syn.graded)),
                ("weights", syn.weights), ("row_exp", -1 if syn.row_exp is None else syn.row_exp)]
    if isinstance(stage, Neurons):
        return [("kind", stage.kind), ("scale", stage.scale), *stage.params._asdict().items()]
    if isinstance(stage, Glu):
        return list(stage.params._asdict().items())
    return [("weights", np.asarray(stage.weights, np.float64).tobytes().hex()),
            ("bias", np.asarray(stage.bias, np.float64).tobytes().hex()), ("scale", repr(float(stage.scale)))]


def float_model_from_artifact(path: str | os.PathLike):
    """The float PyTorch network an artifact was quantized from (needs the torch extra)."""
    network = read_artifact(path)
    if network.float_model is None:
        raise SilifDeployError(f"'{path}' carries no float model; run --engine float on the source checkpoint")
    from silif_deploy.converters.checkpoint import CHECKPOINT_FORMAT, build_model, import_torch
    from silif_deploy.converters.families import spiking_ssm

    torch = import_torch()
    state = {k: torch.as_tensor(v) for k, v in network.float_model["state_dict"].items()}
    saved = {"format": CHECKPOINT_FORMAT, "config": network.float_model["config"], "state_dict": state}
    found = spiking_ssm.detect_checkpoint(saved)  # SpikingSSM / binary S4D: a whole-network family of its own
    if found is not None:
        return spiking_ssm.model_from_checkpoint(found, f"'{path}' float model")
    return build_model(state, network.float_model["config"], source=f"'{path}' float model")
