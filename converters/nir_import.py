"""Read NIR files back: checks on the file, then the float model rebuilt bit-exactly from the payload.

Reader rules (``../shared/spec/nir.md`` §10.3; format in ``docs/nir.md``):

1. :func:`read_nir` refuses, with one line each: a missing file, a file that is not HDF5, an HDF5
   file that is not NIR, a NIR version outside the 1.0 series, a node type NIR does not know, and a
   graph whose shapes do not chain (stock ``nir.read`` type checking).
2. :func:`from_nir` recognises our graph and subgraphs by their ``nir_ext`` markers, checks the
   structure (names, node types, edges, shapes) against what :mod:`nir_export` writes, and rebuilds
   the model **from the payload arrays**: W, BatchNorm statistics and trained neuron parameters go
   through :func:`~silif_deploy.converters.checkpoint.build_model`, then every coefficient the model
   computes must equal the payload's coefficient bit for bit.
3. The body must say what the payload says: the coefficients read from the primitives under the
   per-step reading agree with the payload (allclose, :data:`~.nir_body.BODY_RTOL`), and each Affine equals the
   BatchNorm fold of its payload. Otherwise the file was edited: refuse, naming the layer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np

from silif_deploy.converters.families import family, readout
from silif_deploy.converters.files import refuse_damaged, require_file, sha256_file
from silif_deploy.converters.nir_body import THRESHOLD, BodyReader, agree, node_names, payload, template_edges
from silif_deploy.converters.nir_export import NIR_EXT, NIR_EXT_VERSION, graph_template, payload_key, state_key
from silif_deploy.errors import SilifDeployError

NIR_SERIES = "1.0"
"""Files written by nir 1.0.x are read; other series changed the format (``nir.md`` §1)."""


def read_nir(path: str | os.PathLike) -> nir.NIRGraph:
    """Read a NIR file with stock ``nir.read`` (type checking on), after checks that fail in one line."""
    p = require_file(path, "NIR file")
    if not h5py.is_hdf5(p):
        raise SilifDeployError(f"'{p}' is not a NIR file: it is not HDF5")
    try:
        with h5py.File(p, "r") as f:
            if "version" not in f or "node" not in f or "type" not in f["node"]:
                raise SilifDeployError(f"'{p}' is an HDF5 file but not a NIR graph (no /version and /node)")
            version = f["version"][()]
            version = version.decode() if isinstance(version, bytes) else str(version)
            if version.split(".")[:2] != NIR_SERIES.split("."):
                raise SilifDeployError(
                    f"'{p}' was written by NIR {version}; this tool reads NIR {NIR_SERIES}.x files "
                    f"(nir {nir.version}): re-export it with nir {nir.version}"
                )
            _check_node_types(f["node"], p, "")
    except OSError as err:
        raise SilifDeployError(f"'{p}' cannot be read as HDF5 ({_first_line(err)})") from None
    try:
        return nir.read(p)
    except ValueError as err:
        if "type mismatch" in str(err):
            raise SilifDeployError(f"'{p}': shapes do not chain: {_first_line(err)}") from None
        raise SilifDeployError(f"'{p}' is not a valid NIR graph: {_first_line(err)}") from None
    except (KeyError, TypeError, AssertionError) as err:
        raise SilifDeployError(f"'{p}' is not a valid NIR graph: {_first_line(err) or type(err).__name__}") from None


def _check_node_types(group: h5py.Group, p: Path, path: str) -> None:
    """Walk the node groups; stock NIR turns one unknown type into a bare AssertionError."""
    kind = group["type"][()]
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    try:
        nir.ir.str2NIRNode(kind)
    except AssertionError:
        raise SilifDeployError(
            f"'{p}': node '{path or '<root>'}' has type '{kind}', which NIR {nir.version} does not define"
        ) from None
    if kind == "NIRGraph":
        if "nodes" not in group:
            raise SilifDeployError(f"'{p}': graph '{path or '<root>'}' has no nodes")
        for name, child in group["nodes"].items():
            _check_node_types(child, p, f"{path}.{name}" if path else name)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else ""


@refuse_damaged("silif-deploy NIR file")
def model_from_nir_file(path: str | os.PathLike):
    """The eval-mode float model stored in a NIR file we wrote (exact profile)."""
    graph = read_nir(path)
    model = from_nir(graph, source=f"'{Path(path).name}'")
    model.source_sha256 = sha256_file(path)
    return model


def check_round_trip(path: str | os.PathLike, expected) -> None:
    """Read the NIR file at ``path`` back and refuse, in one line, unless its float network equals
    ``expected`` (a :class:`~silif_deploy.converters.float_params.FloatNetwork`) bit for bit."""
    from silif_deploy.converters.float_params import first_difference, float_network

    where = first_difference(expected, float_network(model_from_nir_file(path)))
    if where is not None:
        raise SilifDeployError(
            f"'{Path(path).name}' read back does not give the exported float network ({where} differs); "
            "nothing was written: please report this as a bug"
        )


def from_nir(graph: nir.NIRGraph, source: str = "NIR graph"):
    """Rebuild the eval-mode ``SpikingNetwork`` of an exact-profile graph written by :mod:`nir_export`
    (a SpikingSSM / binary-S4D graph: its ``SpikingSSMNet``, :mod:`nir_spiking_ssm`).

    The float32 outputs equal the exported model's bit for bit. ``source`` names the graph in errors.
    """
    meta = graph.metadata
    if meta.get("nir_ext") != NIR_EXT:
        raise SilifDeployError(
            f"{source} was not written by silif-deploy (no nir_ext = '{NIR_EXT}' in the graph metadata); "
            "only silif-deploy exports can be rebuilt as a model"
        )
    _check_version(meta, source)
    if meta.get("nir_ext_profile") != "exact":
        raise SilifDeployError(
            f"{source} is a lossy '{meta.get('nir_ext_profile')}' export and cannot be rebuilt; "
            "export the checkpoint with --nir-profile exact"
        )
    from silif_deploy.converters.nir_spiking_ssm import is_spiking_ssm_graph

    if is_spiking_ssm_graph(graph):
        from silif_deploy.converters.nir_spiking_ssm import from_nir as spiking_ssm_from_nir

        return spiking_ssm_from_nir(graph, source)
    config = _config(meta, source)  # NetworkConfig refuses an unknown model type
    kind, n_hidden = config["model_type"], len(config["hidden_sizes"])
    template = graph_template(kind, n_hidden)
    legacy = node_names(template, legacy_ports=True)["input"] in graph.nodes  # written before the ports were renamed
    check_structure(graph, template, source, legacy)
    names = node_names(template, legacy)
    _check_shapes(graph, names, kind, [config["n_inputs"], *config["hidden_sizes"], config["n_classes"]], source)

    layers = []  # (index, Affine, neuron node, label) for the hidden layers, then the readout
    for i in range(n_hidden + 1):
        neuron_role = f"{kind}{i}" if i < n_hidden else "readout"
        label = f"{source} {f'layer {i}' if i < n_hidden else 'readout'} ('{names[neuron_role]}')"
        affine = graph.nodes[names[f"affine{i}" if i < n_hidden else "readout_affine"]]
        layers.append((i, affine, graph.nodes[names[neuron_role]], label))

    state: dict[str, np.ndarray] = {}
    for i, affine, neuron, label in layers:
        check_marker(affine.metadata, "batchnorm_fold", label)
        check_marker(neuron.metadata, kind if i < n_hidden else readout.NIR_EXT, label)
        if i < n_hidden:
            check_structure(neuron, family(kind).nir.template, label)
            _check_body(kind, neuron, label)
        else:
            readout.check_nir(neuron, label)
        state.update({f"snn.{i}.{k}": v for k, v in _layer_state(affine.metadata, neuron.metadata, label).items()})

    from silif_deploy.converters.checkpoint import build_model, import_torch
    from silif_deploy.converters.float_params import float_network

    torch = import_torch()
    model = build_model({k: torch.tensor(v) for k, v in state.items()}, config, source=source)
    folded = float_network(model)
    for (i, affine, neuron, label), layer, fold in zip(layers, model.snn, [*folded.hidden, folded.readout]):
        if float(payload(affine.metadata, "bn_eps", label)) != layer.norm.eps:
            raise SilifDeployError(f"{label}: BatchNorm eps {affine.metadata['bn_eps']} is not {layer.norm.eps}")
        agree(label, "Affine weight (BatchNorm fold of the payload W)", affine.weight, fold.weight)
        agree(label, "Affine bias (BatchNorm fold of the payload)", affine.bias, fold.bias)
        _check_coefficients(layer, neuron.metadata, label)
    return model


def _check_version(meta: dict[str, Any], source: str) -> None:
    version = _int(meta.get("nir_ext_version"))
    if version < 1 or version > NIR_EXT_VERSION:
        raise SilifDeployError(
            f"{source} uses silif-deploy NIR extension version {version}; this tool reads 1…{NIR_EXT_VERSION}: "
            "upgrade silif-deploy"
        )


def _config(meta: dict[str, Any], source: str) -> dict[str, Any]:
    """The NetworkConfig (as a dict) from the graph metadata: model_type, init_state, config_json."""
    from silif_deploy.converters.torch_network import NetworkConfig

    try:
        rest = json.loads(str(meta["config_json"]))
        config = NetworkConfig(**rest, model_type=str(meta["model_type"]), init_state=str(meta["init_state"]))
    except (KeyError, TypeError, ValueError) as err:
        raise SilifDeployError(f"{source}: graph metadata lacks a readable model config ({_first_line(err)})") from None
    return config.to_dict()


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def check_structure(graph: nir.NIRGraph, template, label: str, legacy_ports: bool = False) -> None:
    """Node names, node types and edges exactly as the template writes them."""
    names = node_names(template, legacy_ports)
    expected = {names[role]: kind for role, kind, _ in template}
    found = {name: type(node).__name__ for name, node in graph.nodes.items()}
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or extra:
        raise SilifDeployError(
            f"{label}: nodes differ from what silif-deploy writes (missing {missing}, unexpected {extra})"
        )
    for name, kind in expected.items():
        if found[name] != kind:
            raise SilifDeployError(f"{label}: node '{name}' is a {found[name]}, expected a {kind}; not handled here")
    edges = template_edges(template, legacy_ports)
    if len(graph.edges) != len(edges) or set(map(tuple, graph.edges)) != set(edges):
        raise SilifDeployError(f"{label}: edges differ from what silif-deploy writes")


def _check_shapes(graph: nir.NIRGraph, names: dict[str, str], kind: str, sizes: list[int], source: str) -> None:
    """Input → Affine → neuron → ... → Affine → LI → Output with the config's sizes."""
    def fail(node: str, what: str, shape, expected) -> None:
        raise SilifDeployError(
            f"{source}: shapes do not chain: '{node}' {what} has shape {tuple(shape)}, expected {tuple(expected)}"
        )

    n_in = graph.nodes[names["input"]].input_type["input"]
    if tuple(n_in) != (sizes[0],):
        fail(names["input"], "input", n_in, (sizes[0],))
    for i in range(len(sizes) - 1):
        hidden = i < len(sizes) - 2
        affine_name = names[f"affine{i}" if hidden else "readout_affine"]
        affine = graph.nodes[affine_name]
        if affine.weight.shape != (sizes[i + 1], sizes[i]):
            fail(affine_name, "weight", affine.weight.shape, (sizes[i + 1], sizes[i]))
        if affine.bias.shape != (sizes[i + 1],):
            fail(affine_name, "bias", affine.bias.shape, (sizes[i + 1],))
        neuron_name = names[f"{kind}{i}" if hidden else "readout"]
        neuron = graph.nodes[neuron_name]
        inner = neuron.nodes.items() if hidden else [("", neuron)]
        for name, node in inner:
            for field in ("tau", "r", "v_leak", "threshold", "scale"):
                value = getattr(node, field, None)
                if value is not None and np.shape(value) != (sizes[i + 1],):
                    fail(f"{neuron_name}.{name}".rstrip("."), field, np.shape(value), (sizes[i + 1],))
            for port in ("input_type", "output_type") if isinstance(node, nir.Input | nir.Output) else ():
                (shape,) = getattr(node, port).values()
                if tuple(shape) != (sizes[i + 1],):
                    fail(f"{neuron_name}.{name}", port, shape, (sizes[i + 1],))
    out = graph.nodes[names["output"]].output_type["output"]
    if tuple(out) != (sizes[-1],):
        fail(names["output"], "output", out, (sizes[-1],))


def check_marker(meta: dict[str, Any], expected: str, label: str) -> None:
    if meta.get("nir_ext") != expected:
        raise SilifDeployError(f"{label}: payload marker nir_ext is {meta.get('nir_ext')!r}, expected '{expected}'")
    if _int(meta.get("nir_ext_version")) != NIR_EXT_VERSION:
        raise SilifDeployError(f"{label}: payload version {meta.get('nir_ext_version')} is not {NIR_EXT_VERSION}")


def _check_body(kind: str, graph: nir.NIRGraph, label: str) -> None:
    """Read the coefficients the primitives state under the per-step reading (the family's
    ``read``); each must agree with the payload."""
    body = family(kind).nir
    reader = BodyReader(graph, body.template, label)
    spk = graph.nodes[reader.names["spk"]].threshold
    agree(label, "threshold", spk, np.full_like(spk, THRESHOLD))
    for what, stated, expected in body.read(reader, graph.metadata):
        agree(label, what, stated, expected)


def _layer_state(affine_meta: dict[str, Any], neuron_meta: dict[str, Any], label: str) -> dict[str, np.ndarray]:
    """The layer's ``state_dict`` entries from the Affine payload (W, BatchNorm) and the neuron's."""
    state = {}
    for where, meta in (("affine", affine_meta), ("neuron", neuron_meta)):
        for key, value in meta.items():
            target = state_key(key)
            if target is None:
                continue
            if payload_key(target) != (where, key):
                raise SilifDeployError(f"{label}: payload key '{key}' does not belong in the {where} metadata")
            state[target] = np.asarray(value)
    return state


def _check_coefficients(layer, meta: dict[str, Any], label: str) -> None:
    """The rebuilt layer computes exactly the payload's coefficients (same dtype, same bits) and has
    its constants (RF's euler_dt)."""
    if hasattr(layer, "model_type"):  # a hidden layer (the readout has no constants)
        for key, value in family(layer.model_type).nir.payload_extra(layer).items():
            if float(payload(meta, key, label)) != value:
                raise SilifDeployError(f"{label}: payload {key} {meta[key]} is not the {layer.model_type} layer's {value}")
    for key, value in layer.coefficients().items():
        computed = value.detach().cpu().numpy()
        stored = payload(meta, key, label)
        if stored.dtype != computed.dtype or not np.array_equal(stored, computed):
            raise SilifDeployError(
                f"{label}: payload coefficient '{key}' differs from the one its trained parameters give; "
                "the file was edited or damaged: re-export it"
            )
