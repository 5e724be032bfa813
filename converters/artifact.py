"""The fixed-point network file (``<name>.loihi2.h5``): the contract between PyTorch and hardware.

HDF5 written with h5py; readable with numpy + h5py alone (no torch). Layout, format version 1::

    /                  attrs: format = "silif-deploy-fixed-point", format_version = 1,
                              model_type, n_inputs, n_classes, input_frac_bits,
                              provenance (JSON: tool version, source and NIR SHA-256, profile name),
                              quantization (JSON: per-layer diagnostics)
    /profile           attr text: the hardware profile's TOML, verbatim
    /layers/<i>        i = 0..L−1 hidden layers, then L = the readout (kind "cuba")
        attrs: kind, scale, weight_exp, num_weight_bits, graded, and every scalar parameter
        weights        (out, in) int32 Dense weights (Lava's grid)
        <param>        (out,) int64 per-neuron parameter arrays of the kind's record
    /float_model       the float network it came from (``--engine float``):
        attrs: config (JSON); datasets: the state_dict, one per key

Every integer array is stored exactly; readers check the format marker and version.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from silif_deploy.converters.files import atomic_output, require_file
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.dense import DenseSynapse
from silif_deploy.hw_models.network import FixedLayer, FixedPointNetwork
from silif_deploy.hw_models.neuron_kinds import KINDS
from silif_deploy.hw_models.profile import profile_from_text

ARTIFACT_FORMAT = "silif-deploy-fixed-point"
ARTIFACT_VERSION = 1


def write_artifact(network: FixedPointNetwork, path: str | os.PathLike) -> None:
    """Write ``network`` atomically (a failed write leaves no file)."""
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({
                "format": ARTIFACT_FORMAT, "format_version": ARTIFACT_VERSION,
                "model_type": network.model_type, "n_inputs": network.n_inputs,
                "n_classes": network.n_classes, "input_frac_bits": network.input_frac_bits,
                "provenance": json.dumps(network.provenance, sort_keys=True),
                "quantization": json.dumps(network.quantization, sort_keys=True, default=_json_default),
            })
            f.create_group("profile").attrs["text"] = network.profile.source_text
            layers = f.create_group("layers")
            for i, layer in enumerate(network.layers):
                _write_layer(layers.create_group(str(i)), layer)
            if network.float_model is not None:
                fm = f.create_group("float_model")
                fm.attrs["config"] = json.dumps(network.float_model["config"])
                for key, value in network.float_model["state_dict"].items():
                    fm.create_dataset(key, data=value)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _write_layer(g: h5py.Group, layer: FixedLayer) -> None:
    syn = layer.synapse
    g.attrs.update({"kind": layer.kind, "scale": layer.scale, "weight_exp": syn.weight_exp,
                    "num_weight_bits": syn.num_weight_bits, "graded": syn.graded})
    g.create_dataset("weights", data=syn.weights.astype(np.int32), compression="gzip")
    for name, value in layer.params._asdict().items():
        if isinstance(value, np.ndarray):
            g.create_dataset(name, data=value.astype(np.int64))
        else:
            g.attrs[name] = int(value)


def read_artifact(path: str | os.PathLike) -> FixedPointNetwork:
    """Read and check an artifact; every problem is one clear :class:`SilifDeployError` line."""
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
        version = int(f.attrs["format_version"])
        if version > ARTIFACT_VERSION:
            raise SilifDeployError(
                f"'{p}' has artifact format version {version}; this silif-deploy reads up to {ARTIFACT_VERSION}: upgrade it"
            )
        try:
            profile = profile_from_text(f["profile"].attrs["text"])
            layers = [_read_layer(f["layers"][str(i)]) for i in range(len(f["layers"]))]
            float_model = None
            if "float_model" in f:
                fm = f["float_model"]
                float_model = {"config": json.loads(fm.attrs["config"]),
                               "state_dict": {k: fm[k][()] for k in fm}}
            network = FixedPointNetwork(
                model_type=str(f.attrs["model_type"]), n_inputs=int(f.attrs["n_inputs"]),
                hidden=layers[:-1], readout=layers[-1], input_frac_bits=int(f.attrs["input_frac_bits"]),
                profile=profile, provenance=json.loads(f.attrs["provenance"]),
                quantization=json.loads(f.attrs["quantization"]), float_model=float_model,
            )
        except (KeyError, ValueError, TypeError, OSError) as err:
            raise SilifDeployError(f"'{p}' is a damaged artifact ({type(err).__name__}: {err})") from None
    _check_chain(network, p)
    return network


def _read_layer(g: h5py.Group) -> FixedLayer:
    kind = str(g.attrs["kind"])
    if kind not in KINDS:
        raise ValueError(f"unknown neuron kind '{kind}'")
    params_type = KINDS[kind].params_type
    values = {}
    for name in params_type._fields:
        values[name] = g[name][()].astype(np.int64) if name in g else int(g.attrs[name])
    syn = DenseSynapse(g["weights"][()].astype(np.int64), int(g.attrs["weight_exp"]),
                       int(g.attrs["num_weight_bits"]), bool(g.attrs["graded"]))
    return FixedLayer(kind, syn, params_type(**values), int(g.attrs["scale"]))


def _check_chain(network: FixedPointNetwork, p) -> None:
    n_in = network.n_inputs
    for i, layer in enumerate(network.layers):
        if layer.synapse.fan_in != n_in:
            raise SilifDeployError(f"'{p}': layer {i} takes {layer.synapse.fan_in} inputs but receives {n_in}")
        for name, value in layer.params._asdict().items():
            if isinstance(value, np.ndarray) and value.shape != (layer.size,):
                raise SilifDeployError(f"'{p}': layer {i} parameter '{name}' has shape {value.shape}, expected ({layer.size},)")
        n_in = layer.size


def float_model_from_artifact(path: str | os.PathLike):
    """The float PyTorch network an artifact was quantized from (needs the torch extra)."""
    network = read_artifact(path)
    if network.float_model is None:
        raise SilifDeployError(f"'{path}' carries no float model; run --engine float on the source checkpoint")
    from silif_deploy.converters.checkpoint import build_model, import_torch

    torch = import_torch()
    state = {k: torch.as_tensor(v) for k, v in network.float_model["state_dict"].items()}
    return build_model(state, network.float_model["config"], source=f"'{path}' float model")
