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
from silif_deploy.converters.files import atomic_output, provenance
from silif_deploy.converters.float_params import float_network
from silif_deploy.converters.nir_interpret import PER_STEP_READING, li_step
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

THRESHOLD = 1.0
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
EQUATIONS = {
    "silif": "w_t = beta*w_{t-1} + a*u_{t-1} + b*s_{t-1}; u_t = alpha*(u_{t-1} - s_{t-1}) + (1-alpha)*(I_t - w_t); "
             "s_t = H(u_t - 1)",
    "lif": "u_t = alpha*(u_{t-1} - s_{t-1}) + (1-alpha)*I_t; s_t = H(u_t - 1)",
    "csilif": "u_t = lambda*(u_{t-1} - 0.5*s_{t-1}) + b*I_t (complex u); s_t = H(2*Re(u_t) - 1); "
              "body state p = 2*Re(u), q = 2*Im(u)",
    "rf": "u_t = u_{t-1} + euler_dt*(A*u_{t-1} + I_t) - s_{t-1} (complex u, lambda = 1 + euler_dt*A); "
          "s_t = H(Re(u_t) - 1); body state p = Re(u), q = Im(u)",
    "readout": "u_t = alpha*u_{t-1} + (1-alpha)*I_t",
}
EQUATIONS["adlif"] = EQUATIONS["cadlif"] = EQUATIONS["silif"]

# A template lists (role, NIR type, input roles) in evaluation order; node names come from it.
Template = tuple[tuple[str, str, tuple[str, ...]], ...]

ADAPTIVE_BODY: Template = (
    ("in", "Input", ()),
    ("w", "LI", ("u2w", "s2w")),          # back-edges: u_{t-1}, s_{t-1}
    ("w2u", "Scale", ("w",)),             # w_t, same step
    ("u", "LI", ("in", "w2u", "s2u")),    # s2u is a back-edge: the reset uses s_{t-1}
    ("spk", "Threshold", ("u",)),
    ("s2u", "Scale", ("spk",)),
    ("u2w", "Scale", ("u",)),
    ("s2w", "Scale", ("spk",)),
    ("out", "Output", ("spk",)),
)
LIF_BODY: Template = (
    ("in", "Input", ()),
    ("u", "LI", ("in", "s2u")),
    ("spk", "Threshold", ("u",)),
    ("s2u", "Scale", ("spk",)),
    ("out", "Output", ("spk",)),
)
RESONATE_BODY: Template = (
    ("in", "Input", ()),
    ("in2p", "Scale", ("in",)),
    ("p", "LI", ("in2p", "p2p", "q2p", "s2p")),
    ("q", "LI", ("p2q", "q2q", "s2q")),
    ("spk", "Threshold", ("p",)),
    ("p2p", "Scale", ("p",)),
    ("q2p", "Scale", ("q",)),
    ("p2q", "Scale", ("p",)),
    ("q2q", "Scale", ("q",)),
    ("s2p", "Scale", ("spk",)),
    ("s2q", "Scale", ("spk",)),
    ("out", "Output", ("spk",)),
)
# RF's reset touches p only: no s2q node.
RF_BODY: Template = tuple(
    (role, kind, tuple(i for i in inputs if i != "s2q")) for role, kind, inputs in RESONATE_BODY if role != "s2q"
)
BODIES: dict[str, Template] = {
    "silif": ADAPTIVE_BODY, "adlif": ADAPTIVE_BODY, "cadlif": ADAPTIVE_BODY,
    "lif": LIF_BODY, "csilif": RESONATE_BODY, "rf": RF_BODY,
}
RESET_TIMING = {"rf": "after_update"}
"""Reset timing per kind; every other kind subtracts s_{t−1} before the leak (``prev_step_before_leak``)."""


PORT_ROLES = ("input", "output")
"""The root graph's ports, named ``input`` and ``output`` as NIR's own examples name them: loaders
that look ports up by name (spyx starts from ``input``) find them. Alphabetically they stay first
and last among the ``n<index>_`` nodes. Files written before (``n0_input`` … ``n7_output``) are
still read (``legacy_ports``)."""


def node_names(template: Template, legacy_ports: bool = False) -> dict[str, str]:
    """Role → node name ``n<index>_<role>``, the index zero-padded so alphabetical order = template
    order; the root's ports are plain ``input``/``output`` (:data:`PORT_ROLES`) unless ``legacy_ports``."""
    width = len(str(len(template) - 1))
    return {role: role if role in PORT_ROLES and not legacy_ports else f"n{i:0{width}d}_{role}"
            for i, (role, _, _) in enumerate(template)}


def template_edges(template: Template, legacy_ports: bool = False) -> list[tuple[str, str]]:
    names = node_names(template, legacy_ports)
    return [(names[src], names[role]) for role, _, inputs in template for src in inputs]


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


def assemble(template: Template, nodes: dict[str, nir.NIRNode], metadata: dict[str, Any]) -> nir.NIRGraph:
    """A type-checked NIRGraph with the template's names and edges."""
    names = node_names(template)
    return nir.NIRGraph(
        nodes={names[role]: nodes[role] for role, _, _ in template},
        edges=template_edges(template),
        metadata=metadata,
    )


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


def li_tau(decay: np.ndarray, dt: float, what: str) -> tuple[np.ndarray, np.ndarray]:
    """float32 τ with ``exp(−dt/τ) = decay`` and the mask of degenerate neurons (decay 0 or 1).

    Those get a finite surrogate (:data:`DEGENERATE_RULE`); a decay outside [0, 1] has no LI form.
    """
    decay = np.asarray(decay, dtype=np.float64)
    if np.any((decay < 0) | (decay > 1)):
        raise SilifDeployError(f"{what}: a decay lies outside [0, 1]; an LI node cannot state it")
    degenerate = (decay == 0) | (decay == 1)
    tau = -dt / np.log(np.where(degenerate, 0.5, decay))
    tau = np.where(decay == 1, dt * 2.0**26, np.where(decay == 0, dt * 2.0**-7, tau))
    return tau.astype(np.float32), degenerate


def _f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def _numpy(tensor) -> np.ndarray | np.generic:
    """A tensor's values in its own dtype; a 0-d tensor becomes a numpy scalar (HDF5 cannot
    compress scalar datasets, which ``nir.write`` would try for a 0-d array)."""
    array = tensor.detach().cpu().numpy().copy()
    return array[()] if array.ndim == 0 else array


def _li(tau: np.ndarray) -> nir.LI:
    return nir.LI(tau=tau, r=np.ones_like(tau), v_leak=np.zeros_like(tau))


def _adaptive_body(kind: str, c: dict[str, np.ndarray], dt: float, what: str) -> tuple[dict, dict]:
    """SiLIF / adLIF / cAdLIF (and LIF, without w) as LIs with Scale couplings; ``nir.md`` §10.2."""
    alpha = c["alpha"].astype(np.float64)
    tau_u, degenerate_alpha = li_tau(alpha, dt, f"{what} alpha")
    gain_u = 1.0 / li_step(tau_u, dt)[1]  # an LI's input enters times (1 − d): undo it on the couplings
    h = alpha.shape[0]
    nodes = {
        "in": nir.Input(np.array([h])),
        "u": _li(tau_u),
        "spk": nir.Threshold(np.full(h, THRESHOLD, dtype=np.float32)),
        "s2u": nir.Scale(_f32(-alpha * gain_u)),
        "out": nir.Output(np.array([h])),
    }
    flags = {"degenerate_alpha": degenerate_alpha}
    if kind != "lif":
        tau_w, degenerate_beta = li_tau(c["beta"], dt, f"{what} beta")
        gain_w = 1.0 / li_step(tau_w, dt)[1]
        nodes |= {
            "w": _li(tau_w),
            "w2u": nir.Scale(np.full(h, -1.0, dtype=np.float32)),
            "u2w": nir.Scale(_f32(c["a"].astype(np.float64) * gain_w)),
            "s2w": nir.Scale(_f32(c["b"].astype(np.float64) * gain_w)),
        }
        flags["degenerate_beta"] = degenerate_beta
    return nodes, flags


def resonate_terms(
    kind: str, c: dict[str, np.ndarray], euler_dt: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(λ complex128, input gain, spike kick into p + i·q) of a C-SiLIF / RF layer in p, q form.

    C-SiLIF (v = 2u): p + iq ← λ·(p + iq − s) + 2b·I, so the kick is −λ. RF: p + iq ← λ·(p + iq)
    + Δt·I − s, λ = 1 + Δt·A evaluated in float64 from the trained A, and the kick is −1.
    """
    if kind == "csilif":
        lam = c["lambda"].astype(np.complex128)
        return lam, 2.0 * c["b"].astype(np.float64), -lam
    lam = 1.0 + euler_dt * c["A"].astype(np.complex128)
    return lam, np.full(lam.shape, float(euler_dt)), np.full(lam.shape, -1.0 + 0j)


def _resonate_body(kind: str, c: dict[str, np.ndarray], dt: float, euler_dt: float | None) -> tuple[dict, dict]:
    """The 2×2 real block of C-SiLIF / RF, exact per step: LIs p and q decay by |λ| and Scale
    self- and cross-couplings (back-edges) add the rotation, ``p2p = (Re λ − d)/(1 − d)``, ...
    """
    lam, gain, kick = resonate_terms(kind, c, euler_dt)
    magnitude = np.abs(lam)
    degenerate = (magnitude <= 0) | (magnitude >= 1)
    tau = _f32(-dt / np.log(np.where(degenerate, 0.5, magnitude)))
    d, weight = li_step(tau, dt)
    k = 1.0 / weight
    h = lam.shape[0]
    nodes = {
        "in": nir.Input(np.array([h])),
        "in2p": nir.Scale(_f32(gain * k)),
        "p": _li(tau),
        "q": _li(tau.copy()),
        "spk": nir.Threshold(np.full(h, THRESHOLD, dtype=np.float32)),
        "p2p": nir.Scale(_f32((lam.real - d) * k)),
        "q2p": nir.Scale(_f32(-lam.imag * k)),
        "p2q": nir.Scale(_f32(lam.imag * k)),
        "q2q": nir.Scale(_f32((lam.real - d) * k)),
        "s2p": nir.Scale(_f32(kick.real * k)),
        "out": nir.Output(np.array([h])),
    }
    if kind == "csilif":
        nodes["s2q"] = nir.Scale(_f32(kick.imag * k))
    return nodes, {"degenerate_lambda": degenerate}


def _neuron_subgraph(layer, index: int, dt: float) -> nir.NIRGraph:
    kind = layer.model_type
    what = f"layer {index} ({kind})"
    coefficients = {k: _numpy(v) for k, v in layer.coefficients().items()}
    euler_dt = getattr(layer, "dt_step", None)
    if kind in ("csilif", "rf"):
        nodes, flags = _resonate_body(kind, coefficients, dt, euler_dt)
    else:
        nodes, flags = _adaptive_body(kind, coefficients, dt, what)
    metadata: dict[str, Any] = {
        "nir_ext": kind,
        "nir_ext_version": NIR_EXT_VERSION,
        "layer": index,
        "dt": dt,
        "discretization": PER_STEP_READING,
        "equations": EQUATIONS[kind],
        "spike_convention": SPIKE_CONVENTION,
        "reset": "subtract",
        "reset_timing": RESET_TIMING.get(kind, "prev_step_before_leak"),
        "threshold": THRESHOLD,
        "degenerate_rule": DEGENERATE_RULE,
        **coefficients,
        **flags,
    }
    if euler_dt is not None:
        metadata["euler_dt"] = float(euler_dt)
    for key, value in layer.state_dict().items():
        where, meta_key = payload_key(key)
        if where == "neuron":
            metadata[meta_key] = _numpy(value)
    return assemble(BODIES[kind], nodes, metadata)


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
            metadata[meta_key] = _numpy(value)
    return nir.Affine(weight=_f32(folded.weight), bias=_f32(folded.bias), metadata=metadata)


def _readout(model, dt: float) -> nir.LI:
    readout = model.readout
    alpha = _numpy(readout.coefficients()["alpha"])
    tau, _ = li_tau(alpha, dt, "readout alpha")  # the clamp keeps α inside (0, 1)
    return nir.LI(tau=tau, r=np.ones_like(tau), v_leak=np.zeros_like(tau), metadata={
        "nir_ext": "readout",
        "nir_ext_version": NIR_EXT_VERSION,
        "layer": len(model.hidden_layers),
        "dt": dt,
        "discretization": PER_STEP_READING,
        "equations": EQUATIONS["readout"],
        "alpha": alpha,
        "trained_alpha": _numpy(readout.alpha),
    })


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


def _exact_graph(model, metadata: dict[str, Any], dt: float) -> nir.NIRGraph:
    folded = float_network(model)
    kind = model.config.model_type
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([model.config.n_inputs]))}
    for i, layer in enumerate(model.hidden_layers):
        nodes[f"affine{i}"] = _affine(layer, folded.hidden[i], i)
        nodes[f"{kind}{i}"] = _neuron_subgraph(layer, i, dt)
    nodes["readout_affine"] = _affine(model.readout, folded.readout, len(model.hidden_layers))
    nodes["readout"] = _readout(model, dt)
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
        tau=_f32(tau), r=_f32(tau / SNNTORCH_DT), v_leak=np.zeros(h, np.float32),
        v_threshold=np.full(h, threshold, dtype=np.float32), v_reset=np.zeros(h, np.float32),
        metadata={"nir_ext_profile": "lif-compat", "lossy": True, "layer": index},
    )


def _lif_compat_graph(model, metadata: dict[str, Any]) -> nir.NIRGraph:
    folded = float_network(model)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([model.config.n_inputs]))}
    layers = [*folded.hidden, folded.readout]
    for i, layer in enumerate(layers):
        c = layer.coefficients
        decay = c["alpha"] if "alpha" in c else np.hypot(c["lam_re"], c["lam_im"])
        affine = nir.Affine(weight=_f32(layer.gain[:, None] * layer.weight), bias=_f32(layer.gain * layer.bias))
        if i < len(folded.hidden):
            nodes[f"affine{i}"], nodes[f"lif{i}"] = affine, _lif(decay, THRESHOLD, i)
        else:  # the readout integrates and never fires: largest float32 threshold
            nodes["readout_affine"], nodes["readout"] = affine, _lif(decay, float(np.finfo(np.float32).max), i)
    nodes["output"] = nir.Output(np.array([model.config.n_classes]))
    template = graph_template(model.config.model_type, len(folded.hidden), "lif-compat")
    return assemble(template, nodes, metadata)


def to_nir(model, source_sha256: str | None = None, profile: str = "exact") -> nir.NIRGraph:
    """The NIR graph of a float ``SpikingNetwork`` (see the module docstring and ``docs/nir.md``).

    ``source_sha256`` defaults to the model's own ``source_sha256`` (set by ``load_model``).
    ``profile`` is ``"exact"`` (default; round-trips bit-exactly) or ``"lif-compat"`` (lossy).
    """
    if profile not in PROFILES:
        raise SilifDeployError(f"unknown NIR profile '{profile}'; choose one of: {', '.join(PROFILES)}")
    source_sha256 = source_sha256 or getattr(model, "source_sha256", None)
    if profile == "exact":
        dt, dt_source = model_dt(model.config)
        return _exact_graph(model, _graph_metadata(model, source_sha256, profile, dt, dt_source), dt)
    metadata = _graph_metadata(model, source_sha256, profile, SNNTORCH_DT, "snntorch's fixed import step")
    metadata["lossy_note"] = LIF_COMPAT_NOTE
    return _lif_compat_graph(model, metadata)


def write_nir(
    model, path: str | os.PathLike, source_sha256: str | None = None, profile: str = "exact"
) -> Path:
    """Write :func:`to_nir` of ``model`` to ``path`` with ``nir.write``, atomically; return the path."""
    graph = to_nir(model, source_sha256=source_sha256, profile=profile)
    target = Path(path)
    with atomic_output(target) as tmp:
        nir.write(tmp, graph)
    return target
