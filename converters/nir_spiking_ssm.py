"""SpikingSSM and binary S4D in NIR 1.0.8: standard primitives where NIR can say it, an exact payload.

Graph (``docs/nir.md``, section "SpikingSSM and binary S4D"), per step t, nodes in evaluation order::

    input → encoder (Affine) → per block i:
        [norm<i> (Affine: the pre-norm BatchNorm folded; absent post-norm, where the norms never act)]
        → s4d<i> (subgraph: the S4D recurrence as C-SiLIF's 2×2 LI/Scale construction, its readout)
        → lif<i> (LIF: the exact soma) | spike<i> (Threshold: binary S4D's Heaviside)
        → glu<i> (Affine: the GLU's value path; the gate is NOT expressible, see below)
        → res<i> (Scale of ones with two inputs: z + x, the residual add)
    → decoder (Affine, per step) → output;   logits = mean over t of the output (host side)

* **Body.** The S4D subgraph states ξ_t = λ ⊙ ξ_{t−1} + u_t in real form (p = Re ξ, q = Im ξ, one LI
  each per mode, decaying by |λ|, Scale self- and cross-couplings adding the rotation, as
  :mod:`~silif_deploy.converters.families.resonate` writes C-SiLIF) and y_t = (2·Re(C′ξ_t) + D·u_t)/θ
  as two Linear readouts and a Scale into its Output, under the per-step reading
  (:data:`~silif_deploy.converters.nir_interpret.PER_STEP_READING`, dt = 1 step: the S4D's own step
  is folded into λ). The LIF is NIR's LIF with v_t = 0.125·v_{t−1} + y_t in that reading.
* **Not expressible in NIR 1.0** (marked ``expressible: false`` with the reason on the node, listed
  in the root's ``not_expressible``): the GLU's gate (a product of two signals and a sigmoid: NIR has
  neither), the spike test's ``>=`` (NIR's LIF and Threshold fire on ``>``), the hard reset's timing
  is NIR's, and the time mean before the decoder (host side, as SiLIF's decision rule).
* **Payload.** Every ``state_dict`` entry in its trained dtype (``sd:<key>`` on the node it belongs
  to), the configuration (``config_json``: prenorm, neuron, ...), and the discrete λ and C′ in
  float64 (``lam_re``, ``lam_im``, ``c_re``, ``c_im``: NIR has no complex parameter). The reader
  rebuilds the model from the tensors, so it is the exported model bit for bit, and refuses a file
  whose body or discrete payload disagrees with it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nir
import numpy as np

from silif_deploy.converters.families import spiking_ssm as ssm
from silif_deploy.converters.families.resonate import read_rotation, rotation_body
from silif_deploy.converters.files import provenance
from silif_deploy.converters.float_params import native
from silif_deploy.converters.nir_body import BodyReader, Template, agree, assemble, f32, node_names, payload
from silif_deploy.converters.nir_export import NIR_EXT, NIR_EXT_VERSION
from silif_deploy.converters.nir_interpret import PER_STEP_READING, li_step
from silif_deploy.errors import SilifDeployError

DT = 1.0
"""Seconds per step of the per-step reading: one step (the S4D's own dt is inside λ)."""
STATE_PREFIX = "sd:"
"""Metadata key prefix of a ``state_dict`` entry: ``sd:<state_dict key>``."""

S4D_BODY: Template = (
    ("in", "Input", ()),
    ("in2p", "Linear", ("in",)),
    ("p", "LI", ("in2p", "p2p", "q2p")),
    ("q", "LI", ("p2q", "q2q")),
    ("p2y", "Linear", ("p",)),
    ("q2y", "Linear", ("q",)),
    ("in2y", "Scale", ("in",)),
    ("p2p", "Scale", ("p",)),
    ("q2p", "Scale", ("q",)),
    ("p2q", "Scale", ("p",)),
    ("q2q", "Scale", ("q",)),
    ("out", "Output", ("p2y", "q2y", "in2y")),
)
S4D_EQUATIONS = ("xi_t = lambda*xi_{t-1} + u_t (complex, per channel h and mode n, xi_{-1} = 0); "
                 "y_t = (2*Re sum_n C'_n*xi_{t,n} + D*u_t) / theta; body state p = Re xi, q = Im xi, "
                 "mode index h*(N/2) + n")
LIF_EQUATIONS = "v'_t = 0.125*v_{t-1} + y_t; s_t = [v'_t - 1 >= 0]; v_t = (1 - s_t)*v'_t (hard reset to 0)"
NOT_EXPRESSIBLE = {
    "glu": "z = (W_a*s + b_a) * sigmoid(W_b*s + b_b): NIR 1.0 has no product of two signals and no sigmoid; "
           "the glu Affine states the value path W_a*s + b_a only, the gate is in the payload",
    "spike_test": "the spike is [v - threshold >= 0] (non-strict); NIR's LIF and Threshold fire on v > threshold",
    "pooling": "logits = decoder(mean over t of the residual stream) = mean over t of the per-step decoder "
               "output: the time mean is host side (NIR has no pooling over time)",
}


def is_spiking_ssm_graph(graph: nir.NIRGraph) -> bool:
    """Whether a root graph we wrote holds a SpikingSSM / binary-S4D model."""
    return graph.metadata.get("model_type") in (ssm.FAMILY_SPIKING_SSM, ssm.FAMILY_BINARY_S4D)


def graph_template(config: ssm.SpikingSSMConfig) -> Template:
    """The root graph's roles in evaluation order (see the module docstring)."""
    roles: list[tuple[str, str, tuple[str, ...]]] = [("input", "Input", ()), ("encoder", "Affine", ("input",))]
    previous = "encoder"
    soma = ("spike", "Threshold") if config.neuron == "heaviside" else ("lif", "LIF")
    for i in range(config.n_layers):
        into = previous
        if config.prenorm:
            roles.append((f"norm{i}", "Affine", (previous,)))
            into = f"norm{i}"
        roles += [
            (f"s4d{i}", "NIRGraph", (into,)),
            (f"{soma[0]}{i}", soma[1], (f"s4d{i}",)),
            (f"glu{i}", "Affine", (f"{soma[0]}{i}",)),
            (f"res{i}", "Scale", (f"glu{i}", previous)),
        ]
        previous = f"res{i}"
    roles += [("decoder", "Affine", (previous,)), ("output", "Output", ("decoder",))]
    return tuple(roles)


def _state(model, prefix: str) -> dict[str, Any]:
    return {STATE_PREFIX + k: native(v) for k, v in model.state_dict().items() if k.startswith(prefix)}


def _marker(kind: str, **extra: Any) -> dict[str, Any]:
    return {"nir_ext": kind, "nir_ext_version": NIR_EXT_VERSION, **extra}


def _s4d_matrices(block: ssm.S4DBlockArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(spread (H·N/2, H): u_h into every mode of channel h; the p and q readouts (H, H·N/2):
    2·Re C′/θ_h and −2·Im C′/θ_h on the modes of channel h), in float64."""
    h, n2 = block.lam.shape
    spread = np.kron(np.eye(h), np.ones((n2, 1)))
    c = block.c.reshape(-1) / np.repeat(block.theta, n2)
    return spread, spread.T * 2.0 * c.real, spread.T * -2.0 * c.imag


def _s4d_body(block: ssm.S4DBlockArrays) -> dict[str, nir.NIRNode]:
    """The recurrence and readout of one block as primitives (module docstring)."""
    h = block.lam.shape[0]
    rotation, k, _ = rotation_body(block.lam.reshape(-1), DT)
    spread, p2y, q2y = _s4d_matrices(block)
    return {
        "in": nir.Input(np.array([h])),
        "in2p": nir.Linear(f32(spread * k[:, None])),
        **rotation,
        "p2y": nir.Linear(f32(p2y)),
        "q2y": nir.Linear(f32(q2y)),
        "in2y": nir.Scale(f32(block.d / block.theta)),
        "out": nir.Output(np.array([h])),
    }


def to_nir(model: ssm.SpikingSSMNet, source_sha256: str | None = None) -> nir.NIRGraph:
    """The NIR graph of a causal SpikingSSM / binary-S4D float model with the exact LIF or the Heaviside."""
    cfg = model.config
    ssm.require_streamable(cfg, "NIR")
    if cfg.neuron == "sdn":
        raise SilifDeployError("NIR states the exact LIF soma (what hardware runs); the SDN is a training surrogate "
                               "with no NIR form: load the model with neuron 'lif'")
    arrays = ssm.extract_arrays(model)
    h = cfg.d_model
    nodes: dict[str, nir.NIRNode] = {
        "input": nir.Input(np.array([cfg.d_input])),
        "encoder": nir.Affine(weight=f32(arrays.encoder_w), bias=f32(arrays.encoder_b),
                              metadata=_marker("affine", **_state(model, "encoder."))),
    }
    for i, block in enumerate(arrays.blocks):
        layer = f"backbone.s4_layers.{i}."
        norm_state = _state(model, f"backbone.norms.{i}.")
        if cfg.prenorm:
            nodes[f"norm{i}"] = nir.Affine(weight=f32(np.diag(block.norm_scale)), bias=f32(block.norm_shift),
                                           metadata=_marker("batchnorm_fold", layer=i, **norm_state))
            norm_state = {}
        s4d_state = {k: v for k, v in _state(model, layer).items() if ".output_linear." not in k}
        s4d_meta = _marker(
            "s4d", layer=i, dt=DT, discretization=PER_STEP_READING, equations=S4D_EQUATIONS,
            lam_re=block.lam.real, lam_im=block.lam.imag, c_re=block.c.real, c_im=block.c.imag,
            d=block.d, theta=block.theta, **s4d_state,
            **({"inert_norm": "post-norm: the authors' code computes this norm and discards it"} if norm_state else {}),
            **norm_state,
        )
        nodes[f"s4d{i}"] = assemble(S4D_BODY, _s4d_body(block), s4d_meta)
        if cfg.neuron == "heaviside":
            nodes[f"spike{i}"] = nir.Threshold(np.zeros(h, np.float32), metadata=_marker(
                "heaviside", layer=i, equations="s_t = [y_t >= 0] (binary S4D, a reconstruction)",
                expressible=False, not_expressible=NOT_EXPRESSIBLE["spike_test"]))
        else:
            decay = np.full(h, ssm.LIF_TAU)
            tau = -DT / np.log(decay)
            nodes[f"lif{i}"] = nir.LIF(
                tau=f32(tau), r=f32(1.0 / -np.expm1(-DT / tau)), v_leak=np.zeros(h, np.float32),
                v_threshold=np.ones(h, np.float32), v_reset=np.zeros(h, np.float32),
                metadata=_marker("spiking_ssm_lif", layer=i, dt=DT, equations=LIF_EQUATIONS, decay=ssm.LIF_TAU,
                                 threshold=1.0, expressible=False, not_expressible=NOT_EXPRESSIBLE["spike_test"]))
        nodes[f"glu{i}"] = nir.Affine(weight=f32(block.glu_w[:h]), bias=f32(block.glu_b[:h]), metadata=_marker(
            "glu", layer=i, expressible=False, not_expressible=NOT_EXPRESSIBLE["glu"],
            **{k: v for k, v in _state(model, layer).items() if ".output_linear." in k}))
        nodes[f"res{i}"] = nir.Scale(np.ones(h, np.float32), metadata=_marker(
            "residual", layer=i, equations="x_t <- z_t + x_t (the two inputs summed)"))
    nodes["decoder"] = nir.Affine(weight=f32(arrays.decoder_w), bias=f32(arrays.decoder_b), metadata=_marker(
        "affine", expressible=False, not_expressible=NOT_EXPRESSIBLE["pooling"], **_state(model, "decoder.")))
    nodes["output"] = nir.Output(np.array([cfg.n_classes]))
    metadata = {
        "nir_ext": NIR_EXT,
        "nir_ext_version": NIR_EXT_VERSION,
        "nir_ext_profile": "exact",
        "lossy": False,
        **provenance(source_sha256=source_sha256 or getattr(model, "source_sha256", None)),
        "nir_version": nir.version,
        "model_type": cfg.family,
        "model_label": ssm.BINARY_S4D_LABEL if cfg.family == ssm.FAMILY_BINARY_S4D else "SpikingSSM",
        "dt": DT,
        "discretization": PER_STEP_READING,
        "decision_rule": "prediction = argmax_k of the logits, logits = mean over t of the output (host side)",
        "not_expressible": json.dumps(NOT_EXPRESSIBLE, sort_keys=True),
        "config_json": json.dumps(ssm.SpikingSSMConfig.to_dict(cfg), sort_keys=True),
    }
    return assemble(graph_template(cfg), nodes, metadata)


# ------------------------------------------------------------------------------------------- reading


def _collect_state(node: nir.NIRNode, state: dict[str, np.ndarray]) -> None:
    for key, value in getattr(node, "metadata", {}).items():
        if key.startswith(STATE_PREFIX):
            state[key[len(STATE_PREFIX):]] = np.asarray(value)
    for child in getattr(node, "nodes", {}).values():
        _collect_state(child, state)


def from_nir(graph: nir.NIRGraph, source: str = "NIR graph") -> ssm.SpikingSSMNet:
    """Rebuild the eval-mode model of a graph :func:`to_nir` wrote: from the payload's tensors (so bit
    for bit the exported model), after checking the structure, and that the body and the discrete
    payload state that same model."""
    from silif_deploy.converters.checkpoint import import_torch
    from silif_deploy.converters.nir_import import check_marker, check_structure

    torch = import_torch()
    try:
        config = ssm.SpikingSSMConfig.from_dict(json.loads(str(graph.metadata["config_json"])))
    except (KeyError, TypeError, ValueError) as err:
        raise SilifDeployError(f"{source}: graph metadata lacks a readable SpikingSSM config ({err})") from None
    template = graph_template(config)
    check_structure(graph, template, source)
    names = node_names(template)
    state: dict[str, np.ndarray] = {}
    _collect_state(graph, state)
    model = ssm.model_from_state({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, config)
    arrays = ssm.extract_arrays(model)
    h = config.d_model

    def node(role: str):
        return graph.nodes[names[role]]

    def label(role: str) -> str:
        return f"{source} ('{names[role]}')"

    def affine(role: str, kind: str, weight: np.ndarray, bias: np.ndarray) -> None:
        check_marker(node(role).metadata, kind, label(role))
        agree(label(role), "Affine weight", node(role).weight, weight)
        agree(label(role), "Affine bias", node(role).bias, bias)

    affine("encoder", "affine", arrays.encoder_w, arrays.encoder_b)
    affine("decoder", "affine", arrays.decoder_w, arrays.decoder_b)
    for i, block in enumerate(arrays.blocks):
        if config.prenorm:
            affine(f"norm{i}", "batchnorm_fold", np.diag(block.norm_scale), block.norm_shift)
        affine(f"glu{i}", "glu", block.glu_w[:h], block.glu_b[:h])
        _check_s4d(node(f"s4d{i}"), block, label(f"s4d{i}"), S4D_BODY)
        if config.neuron == "heaviside":
            check_marker(node(f"spike{i}").metadata, "heaviside", label(f"spike{i}"))
            agree(label(f"spike{i}"), "threshold", node(f"spike{i}").threshold, np.zeros(h))
        else:
            lif = node(f"lif{i}")
            check_marker(lif.metadata, "spiking_ssm_lif", label(f"lif{i}"))
            decay, weight = li_step(lif.tau, DT)
            agree(label(f"lif{i}"), "decay", decay, np.full(h, ssm.LIF_TAU))
            agree(label(f"lif{i}"), "input gain", weight * lif.r, np.ones(h))
            agree(label(f"lif{i}"), "threshold", lif.v_threshold, np.ones(h))
            agree(label(f"lif{i}"), "reset", lif.v_reset, np.zeros(h))
        agree(label(f"res{i}"), "residual scale", node(f"res{i}").scale, np.ones(h))
    return model


def _check_s4d(graph: nir.NIRGraph, block: ssm.S4DBlockArrays, label: str, template: Template) -> None:
    """The discrete payload equals what the rebuilt block computes (bit for bit); the body states it."""
    from silif_deploy.converters.nir_import import check_marker, check_structure

    check_marker(graph.metadata, "s4d", label)
    check_structure(graph, template, label)
    meta = graph.metadata
    for key, value in (("lam_re", block.lam.real), ("lam_im", block.lam.imag), ("c_re", block.c.real),
                       ("c_im", block.c.imag), ("d", block.d), ("theta", block.theta)):
        stored = payload(meta, key, label)
        if stored.dtype != value.dtype or not np.array_equal(stored, value):
            raise SilifDeployError(f"{label}: payload '{key}' differs from the one its trained parameters give; "
                                   "the file was edited or damaged: re-export it")
    body = BodyReader(graph, template, label)
    checks, weight = read_rotation(body, block.lam.reshape(-1))
    for what, stated, expected in checks:
        agree(label, what, stated, expected)
    spread, p2y, q2y = _s4d_matrices(block)
    agree(label, "input spread", weight[:, None] * graph.nodes[body.names["in2p"]].weight, spread)
    agree(label, "2 Re C'/theta (p readout)", graph.nodes[body.names["p2y"]].weight, p2y)
    agree(label, "-2 Im C'/theta (q readout)", graph.nodes[body.names["q2y"]].weight, q2y)
    agree(label, "D/theta", body.scale("in2y"), block.d / block.theta)


def check_round_trip(path: str | os.PathLike, model: ssm.SpikingSSMNet) -> None:
    """Refuse, in one line, unless the file at ``path`` reads back as ``model``: the same configuration
    and every ``state_dict`` tensor equal bit for bit (so the same outputs bit for bit)."""
    import torch

    from silif_deploy.converters.nir_import import model_from_nir_file

    back = model_from_nir_file(path)
    theirs, ours = back.state_dict(), model.state_dict()
    same = back.config == model.config and theirs.keys() == ours.keys() and all(
        theirs[k].dtype == v.dtype and torch.equal(theirs[k], v) for k, v in ours.items())
    if not same:
        raise SilifDeployError(f"'{Path(path).name}' read back does not give the exported SpikingSSM model; "
                               "nothing was written: please report this as a bug")
