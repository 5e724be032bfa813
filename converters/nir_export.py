"""Export a float SiLIF-family network to NIR 1.0.8: standard primitives plus an exact payload.

Graph (design: ``../shared/spec/nir.md`` §10; file format and every payload key: ``docs/nir.md``)::

    Input → [Affine (BatchNorm folded) → neuron subgraph] × L → Affine (BatchNorm folded) → LI → Output

* **Body.** Every node is a standard NIR primitive, so stock ``nir.read`` loads the file. Each
  hidden layer is a subgraph of ``Input``, ``LI``, ``Threshold``, ``Scale`` and ``Output`` nodes
  with recurrent edges that states the neuron's step exactly (in real arithmetic) under
  :data:`~silif_deploy.converters.nir_interpret.PER_STEP_READING`. Node names carry a zero-padded
  index so that alphabetical order (the order ``nir.read`` returns) is the evaluation order.
* **Payload.** The ``metadata`` of each node we write carries the exact truth in its trained dtype:
  the discrete coefficients the recurrence uses (``layer.coefficients()``), the trained parameters
  they come from, and on each ``Affine`` the unfolded W and BatchNorm statistics. The reader
  (:mod:`~silif_deploy.converters.nir_import`) rebuilds the float32 model from the payload
  bit-exactly and refuses a file whose body disagrees with it.
* **Profiles.** ``exact`` (default) is the above. ``lif-compat`` is a labelled, lossy interop
  file: one ``LIF`` per layer in snntorch's conventions (adaptation and oscillation dropped).

``dt`` (seconds per step) only scales the body's time constants; it never changes the discrete
coefficients. It is the model config's ``extra["dt"]`` (the training data's bin width) when present,
else :data:`DEFAULT_DT`, the 4 ms SSC bin width 1.2 s / 299 of the shipped checkpoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nir
import numpy as np

from silif_deploy.converters.datasets import BINNING
from silif_deploy.converters.families import family, readout
from silif_deploy.converters.files import atomic_output, provenance
from silif_deploy.converters.float_params import FloatLayer, FloatNetwork, float_network, native
from silif_deploy.converters.nir_body import THRESHOLD, Template, assemble, f32
from silif_deploy.converters.nir_interpret import PER_STEP_READING
from silif_deploy.errors import SilifDeployError

NIR_EXT = "silif-deploy"
"""``nir_ext`` of the root graph: this file was written by silif-deploy."""
NIR_EXT_VERSION = 1
PROFILES = ("exact", "lif-compat")

_SSC_STEPS, _SSC_MAX_TIME = BINNING["ssc"]
DEFAULT_DT = _SSC_MAX_TIME / (_SSC_STEPS - 1)
"""Seconds per step when the config does not say: SSC's 4 ms binning, max_time / (nb_steps − 1)."""
SNNTORCH_DT = 1e-4
"""The step snntorch's NIR importer hard-codes (``nir.md`` §5); the lif-compat profile writes for it."""

SPIKE_CONVENTION = "s_t in {0, 1} is a per-step value (not a Dirac impulse): s_t = H(v_t - threshold), H strict"
DECISION_RULE = "prediction = argmax_k sum_t softmax_k(u_t), u_t = the readout LI's value at step t (host side)"
BATCHNORM_FOLD = (
    "Affine.weight = diag(gamma/sigma)*W, Affine.bias = beta - gamma*running_mean/sigma, "
    "sigma = sqrt(running_var + eps); W = metadata weight, gamma/beta = bn_weight/bn_bias"
)
DEGENERATE_RULE = (
    "1 marks a neuron whose decay has no LI time constant: alpha/beta == 1 -> tau = 2^26*dt "
    "(float32 exp(-dt/tau) == 1), == 0 -> tau = 2^-7*dt (exp(-128) == 0 in float32), body exact to "
    "~1.5e-8 per step; |lambda| outside (0, 1) -> the p, q LIs decay by 1/2 and their self-loops carry "
    "the rest (body exact)"
)
def graph_template(model_type: str, n_hidden: int, profile: str = "exact") -> Template:
    """The root graph: Input, (Affine, neuron) per hidden layer, readout Affine and neuron, Output."""
    neuron = "LIF" if profile == "lif-compat" else "NIRGraph"
    prefix = "lif" if profile == "lif-compat" else model_type
    roles: list[tuple[str, str, tuple[str, ...]]] = [("input", "Input", ())]
    previous = "input"
    for i in range(n_hidden):
        roles += [(f"affine{i}", "Affine", (previous,)), (f"{prefix}{i}", neuron, (f"affine{i}",))]
        previous = f"{prefix}{i}"
    roles += [
        ("readout_affine", "Affine", (previous,)),
        ("readout", "LIF" if profile == "lif-compat" else "LI", ("readout_affine",)),
        ("output", "Output", ("readout",)),
    ]
    return tuple(roles)


def payload_key(key: str) -> tuple[str, str]:
    """Where a layer's ``state_dict`` entry goes: (``"affine"`` or ``"neuron"``, metadata key).

    W and the BatchNorm entries go to the Affine (``weight``, ``bn_<name>``), the neuron's trained
    parameters to the neuron node (``trained_<name>``). :func:`state_key` is the inverse.
    """
    if key == "W.weight":
        return "affine", "weight"
    if key.startswith("norm."):
        return "affine", "bn_" + key.removeprefix("norm.")
    return "neuron", "trained_" + key


def state_key(meta_key: str) -> str | None:
    """The ``state_dict`` key a payload entry holds (inverse of :func:`payload_key`), else None."""
    if meta_key == "weight":
        return "W.weight"
    if meta_key.startswith("bn_") and meta_key != "bn_eps":
        return "norm." + meta_key.removeprefix("bn_")
    if meta_key.startswith("trained_"):
        return meta_key.removeprefix("trained_")
    return None


def model_dt(config) -> tuple[float, str]:
    """(seconds per step, where it came from) for a :class:`NetworkConfig`."""
    if "dt" in config.extra:
        return float(config.extra["dt"]), "model config extra['dt'] (the training data's bin width)"
    return DEFAULT_DT, f"default: the SSC 4 ms bin width {_SSC_MAX_TIME:g} s / {_SSC_STEPS - 1}"


def _neuron_subgraph(layer, folded: FloatLayer, index: int, dt: float) -> nir.NIRGraph:
    """The layer's body as its family states it from the float network's ``stated`` coefficients,
    and the payload: those coefficients and the trained parameters of ``layer`` they came from."""
    kind = folded.kind
    body = family(kind).nir
    nodes, flags = body.build(dict(folded.stated), dt, f"layer {index} ({kind})")
    metadata: dict[str, Any] = {
        "nir_ext": kind,
        "nir_ext_version": NIR_EXT_VERSION,
        "layer": index,
        "dt": dt,
        "discretization": PER_STEP_READING,
        "equations": body.equations,
        "spike_convention": SPIKE_CONVENTION,
        "reset": "subtract",
        "reset_timing": body.reset_timing,
        "threshold": THRESHOLD,
        "degenerate_rule": DEGENERATE_RULE,
        **folded.stated,
        **flags,
    }
    for key, value in layer.state_dict().items():
        where, meta_key = payload_key(key)
        if where == "neuron":
            metadata[meta_key] = native(value)
    return assemble(body.template, nodes, metadata)


def _affine(layer, folded, index: int) -> nir.Affine:
    """The BatchNorm-folded Affine; its metadata keeps W and the BatchNorm statistics unfolded."""
    metadata: dict[str, Any] = {
        "nir_ext": "batchnorm_fold",
        "nir_ext_version": NIR_EXT_VERSION,
        "layer": index,
        "fold": BATCHNORM_FOLD,
        "bn_eps": float(layer.norm.eps),
    }
    for key, value in layer.state_dict().items():
        where, meta_key = payload_key(key)
        if where == "affine":
            metadata[meta_key] = native(value)
    return nir.Affine(weight=f32(folded.weight), bias=f32(folded.bias), metadata=metadata)


def _graph_metadata(model, source_sha256: str | None, profile: str, dt: float, dt_source: str) -> dict[str, Any]:
    config = model.config
    rest = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "init_state")}
    return {
        "nir_ext": NIR_EXT,
        "nir_ext_version": NIR_EXT_VERSION,
        "nir_ext_profile": profile,
        "lossy": profile != "exact",
        **provenance(source_sha256=source_sha256),
        "nir_version": nir.version,
        "model_type": config.model_type,
        "init_state": config.init_state,
        "initial_state_note": "NIR has no initial state; every state starts at 'zeros' unless init_state says "
                              "'random' (fresh U[0, 1) draws per call, neurons.md section 8)",
        "dt": dt,
        "dt_source": dt_source,
        "decision_rule": DECISION_RULE,
        "config_json": json.dumps(rest, sort_keys=True),
    }


def _exact_graph(model, folded: FloatNetwork, metadata: dict[str, Any], dt: float) -> nir.NIRGraph:
    kind = model.config.model_type
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([model.config.n_inputs]))}
    for i, layer in enumerate(model.hidden_layers):
        nodes[f"affine{i}"] = _affine(layer, folded.hidden[i], i)
        nodes[f"{kind}{i}"] = _neuron_subgraph(layer, folded.hidden[i], i, dt)
    nodes["readout_affine"] = _affine(model.readout, folded.readout, len(model.hidden_layers))
    nodes["readout"] = readout.to_nir(folded.readout, native(model.readout.alpha), len(model.hidden_layers), dt,
                                      {"nir_ext": readout.NIR_EXT, "nir_ext_version": NIR_EXT_VERSION})
    nodes["output"] = nir.Output(np.array([model.config.n_classes]))
    return assemble(graph_template(kind, len(model.hidden_layers)), nodes, metadata)


LIF_COMPAT_NOTE = (
    "lossy interop profile: one LIF per layer for snntorch.import_from_nir (dt = 1e-4, beta = 1 - dt/tau, "
    "r = tau/dt, reset to zero). The membrane decay is alpha (silif/adlif/cadlif/lif) or |lambda| "
    "(csilif/rf, phase dropped), clipped below 1; the input gain (1 - alpha, 2b or euler dt) is folded "
    "into the Affine; adaptation and the subtractive reset are dropped. Not equivalent to the model."
)


def _lif(decay: np.ndarray, threshold: float, index: int) -> nir.LIF:
    decay = np.clip(decay, 0.0, np.nextafter(np.float32(1), np.float32(0)))
    tau = SNNTORCH_DT / (1.0 - decay)
    h = decay.shape[0]
    return nir.LIF(
        tau=f32(tau), r=f32(tau / SNNTORCH_DT), v_leak=np.zeros(h, np.float32),
        v_threshold=np.full(h, threshold, dtype=np.float32), v_reset=np.zeros(h, np.float32),
        metadata={"nir_ext_profile": "lif-compat", "lossy": True, "layer": index},
    )


def _lif_compat_graph(model, folded: FloatNetwork, metadata: dict[str, Any]) -> nir.NIRGraph:
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([model.config.n_inputs]))}
    layers = [*folded.hidden, folded.readout]
    for i, layer in enumerate(layers):
        c = layer.coefficients
        decay = c["alpha"] if "alpha" in c else np.hypot(c["lam_re"], c["lam_im"])
        affine = nir.Affine(weight=f32(layer.gain[:, None] * layer.weight), bias=f32(layer.gain * layer.bias))
        if i < len(folded.hidden):
            nodes[f"affine{i}"], nodes[f"lif{i}"] = affine, _lif(decay, THRESHOLD, i)
        else:  # the readout integrates and never fires: largest float32 threshold
            nodes["readout_affine"], nodes["readout"] = affine, _lif(decay, float(np.finfo(np.float32).max), i)
    nodes["output"] = nir.Output(np.array([model.config.n_classes]))
    template = graph_template(model.config.model_type, len(folded.hidden), "lif-compat")
    return assemble(template, nodes, metadata)


def to_nir(model, source_sha256: str | None = None, profile: str = "exact",
           folded: FloatNetwork | None = None) -> nir.NIRGraph:
    """The NIR graph of a float ``SpikingNetwork`` (see the module docstring and ``docs/nir.md``), or of
    a ``SpikingSSMNet`` (:mod:`.nir_spiking_ssm`, exact profile only).

    ``source_sha256`` defaults to the model's own ``source_sha256`` (set by ``load_model``).
    ``profile`` is ``"exact"`` (default; round-trips bit-exactly) or ``"lif-compat"`` (lossy).
    ``folded``: the model's :func:`~silif_deploy.converters.float_params.float_network` when the
    caller has it already (the export quantizes the same one); else it is extracted here.
    """
    if profile not in PROFILES:
        raise SilifDeployError(f"unknown NIR profile '{profile}'; choose one of: {', '.join(PROFILES)}")
    from silif_deploy.converters.families.spiking_ssm import SpikingSSMNet

    if isinstance(model, SpikingSSMNet):  # a whole-network family: its graph is nir_spiking_ssm's
        if profile != "exact":
            raise SilifDeployError(f"a {model.config.family} model has only the exact NIR profile, not '{profile}'")
        from silif_deploy.converters.nir_spiking_ssm import to_nir as spiking_ssm_to_nir

        return spiking_ssm_to_nir(model, source_sha256=source_sha256)
    source_sha256 = source_sha256 or getattr(model, "source_sha256", None)
    folded = folded if folded is not None else float_network(model)
    if profile == "exact":
        dt, dt_source = model_dt(model.config)
        return _exact_graph(model, folded, _graph_metadata(model, source_sha256, profile, dt, dt_source), dt)
    metadata = _graph_metadata(model, source_sha256, profile, SNNTORCH_DT, "snntorch's fixed import step")
    metadata["lossy_note"] = LIF_COMPAT_NOTE
    return _lif_compat_graph(model, folded, metadata)


def write_nir(
    model, path: str | os.PathLike, source_sha256: str | None = None, profile: str = "exact",
    folded: FloatNetwork | None = None,
) -> Path:
    """Write :func:`to_nir` of ``model`` to ``path`` with ``nir.write``, atomically; return the path."""
    graph = to_nir(model, source_sha256=source_sha256, profile=profile, folded=folded)
    target = Path(path)
    with atomic_output(target) as tmp:
        nir.write(tmp, graph)
    return target
