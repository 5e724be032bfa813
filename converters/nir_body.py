"""The building blocks of a neuron body in NIR, shared by every family and by the writer and reader.

A body is a template (roles, NIR node types, input roles, in evaluation order) whose node names
sort alphabetically in that order, built from standard primitives under
:data:`~silif_deploy.converters.nir_interpret.PER_STEP_READING`. A family
(:mod:`silif_deploy.converters.families`) states its coefficients as such a body and reads them
back; the helpers here are the parts they share: names and edges, LI time constants, and the
comparison of what a body states with what the payload says.
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from silif_deploy.converters.nir_interpret import li_step
from silif_deploy.errors import SilifDeployError

# A template lists (role, NIR type, input roles) in evaluation order; node names come from it.
Template = tuple[tuple[str, str, tuple[str, ...]], ...]

THRESHOLD = 1.0
BODY_RTOL = 1e-5
BODY_ATOL = 1e-6
"""Body vs payload tolerance: the body is float32 and exact only in real arithmetic, so agreement
is allclose (``nir.md`` §10.2); an edit of a time constant or gain by 0.01 % is caught."""

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


def assemble(template: Template, nodes: dict[str, nir.NIRNode], metadata: dict[str, Any]) -> nir.NIRGraph:
    """A type-checked NIRGraph with the template's names and edges."""
    names = node_names(template)
    return nir.NIRGraph(
        nodes={names[role]: nodes[role] for role, _, _ in template},
        edges=template_edges(template),
        metadata=metadata,
    )


def li_tau(decay: np.ndarray, dt: float, what: str) -> tuple[np.ndarray, np.ndarray]:
    """float32 τ with ``exp(−dt/τ) = decay`` and the mask of degenerate neurons (decay 0 or 1).

    Those get a finite surrogate (``DEGENERATE_RULE`` in :mod:`.nir_export`); a decay outside
    [0, 1] has no LI form.
    """
    decay = np.asarray(decay, dtype=np.float64)
    if np.any((decay < 0) | (decay > 1)):
        raise SilifDeployError(f"{what}: a decay lies outside [0, 1]; an LI node cannot state it")
    degenerate = (decay == 0) | (decay == 1)
    tau = -dt / np.log(np.where(degenerate, 0.5, decay))
    tau = np.where(decay == 1, dt * 2.0**26, np.where(decay == 0, dt * 2.0**-7, tau))
    return tau.astype(np.float32), degenerate


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def li(tau: np.ndarray) -> nir.LI:
    """An LI of time constants ``tau`` with r = 1 and v_leak = 0: the couplings carry every gain."""
    return nir.LI(tau=tau, r=np.ones_like(tau), v_leak=np.zeros_like(tau))


def threshold(h: int) -> nir.Threshold:
    return nir.Threshold(np.full(h, THRESHOLD, dtype=np.float32))


def agree(label: str, what: str, body, payload) -> None:
    """Refuse, naming the layer, where a value the body states differs from the payload's."""
    body = np.asarray(body, dtype=np.float64)
    payload = np.asarray(payload, dtype=np.float64)
    if body.shape != payload.shape:
        raise SilifDeployError(f"{label}: the body's {what} has shape {body.shape}, the payload's {payload.shape}")
    if not np.allclose(body, payload, rtol=BODY_RTOL, atol=BODY_ATOL):
        worst = float(np.max(np.abs(body - payload)))
        raise SilifDeployError(
            f"{label}: the body's {what} disagrees with the payload (largest difference {worst:.3g}); "
            "the file was edited or damaged: re-export it"
        )


def payload(meta: dict[str, Any], key: str, label: str) -> np.ndarray:
    if key not in meta:
        raise SilifDeployError(f"{label}: the payload has no '{key}'")
    return np.asarray(meta[key])


class BodyReader:
    """The primitives of one body as the per-step reading sees them, for a family's check."""

    def __init__(self, graph: nir.NIRGraph, template: Template, label: str) -> None:
        self.graph, self.names, self.label = graph, node_names(template), label
        self.dt = float(payload(graph.metadata, "dt", label))

    def scale(self, role: str) -> np.ndarray:
        return np.asarray(self.graph.nodes[self.names[role]].scale, dtype=np.float64)

    def li(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        """The LI's per-step (decay, input weight); r must be 1 and v_leak 0."""
        node = self.graph.nodes[self.names[role]]
        agree(self.label, f"{self.names[role]} r", node.r, np.ones_like(node.r))
        agree(self.label, f"{self.names[role]} v_leak", node.v_leak, np.zeros_like(node.v_leak))
        return li_step(node.tau, self.dt)

    def tau(self, role: str) -> np.ndarray:
        return self.graph.nodes[self.names[role]].tau
