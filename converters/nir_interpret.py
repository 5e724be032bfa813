"""Run a NIR graph of standard primitives with numpy, under silif-deploy's per-step reading.

NIR states continuous-time dynamics and leaves the discretization to the consumer (``nir.md`` §5).
The graphs we write are meant to be read step by step with a fixed ``dt`` as follows
(:data:`PER_STEP_READING`, recorded in every file):

* each step, a graph evaluates its nodes in **alphabetical order of their names** (the order
  ``nir.read`` returns them in); a subgraph node evaluates its own nodes the same way;
* an edge whose source comes **before** its target in that order delivers the source's value of
  the current step; any other edge (a back-edge, including a self-loop) delivers the source's value
  of the previous step (zero at the first step);
* several edges into one node are summed;
* ``LI`` (ZOH, the input held over the step): ``v_t = d·v_{t−1} + (1 − d)·(r·x_t + v_leak)`` with
  ``d = exp(−dt/τ)`` and ``1 − d = −expm1(−dt/τ)``, from ``v_0 = 0``;
* ``Threshold``: ``H(x_t − θ)`` with H strict (1 where x > θ), on the current value;
* ``Affine``: ``W·x + b``; ``Linear``: ``W·x``; ``Scale``: ``s ⊙ x``; ``Input`` / ``Output`` pass
  their value through.

This interpreter reads only the primitives (never the ``metadata`` payload), so it checks that a
file's body states the dynamics on its own. It handles one ``Input`` and one ``Output`` per graph
and the node types above; anything else is refused with one line. Arithmetic is float64.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import nir
import numpy as np

from silif_deploy.errors import SilifDeployError

PER_STEP_READING = (
    "silif-deploy per-step reading v1: each step a graph evaluates its nodes in alphabetical order "
    "of their names; an edge from a node earlier in that order delivers its current-step value, any "
    "other edge (back-edge, self-loop) the previous-step value (0 at the first step); fan-in is "
    "summed; LI: v_t = d*v_{t-1} + (1-d)*(r*x_t + v_leak), d = exp(-dt/tau), v_0 = 0; "
    "Threshold: H(x_t - theta), strict; Affine W*x+b; Linear W*x; Scale s*x"
)
"""The discretization rule, verbatim as written into every file we produce."""

HANDLED = (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Scale, nir.LI, nir.Threshold, nir.NIRGraph)


@dataclass
class Interpretation:
    """``output`` (batch, time, n_out): the graph's Output per step; ``traces``: requested node
    values (batch, time, n) keyed by dotted path, e.g. ``"n2_silif0.n3_u"``."""

    output: np.ndarray
    traces: dict[str, np.ndarray]


def li_step(tau: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """An LI node's per-step decay ``d = exp(−dt/τ)`` and input weight ``1 − d``, float64.

    ``1 − d`` is evaluated as ``−expm1(−dt/τ)``: for d close to 1 (β ≈ 1 − 10⁻⁸ in the SiLIF
    checkpoint) the subtraction would lose the digits that the couplings' 1/(1 − d) gains rely on.
    """
    rate = -dt / np.asarray(tau, dtype=np.float64)
    return np.exp(rate), -np.expm1(rate)


def node_size(node: nir.NIRNode) -> int:
    """Number of values a node emits per step."""
    if isinstance(node, nir.NIRGraph):
        (shape,) = node.output_type.values()
    else:
        shape = node.output_type["output"]
    return int(np.prod(shape))


class _GraphProgram:
    """One graph compiled for stepping: evaluation order, per-node sources, LI decays."""

    def __init__(self, graph: nir.NIRGraph, dt: float, path: str) -> None:
        self.graph, self.path = graph, path
        self.order = sorted(graph.nodes)
        position = {name: i for i, name in enumerate(self.order)}
        kinds = {name: type(node) for name, node in graph.nodes.items()}
        for name, kind in kinds.items():
            if kind not in HANDLED:
                raise SilifDeployError(
                    f"node '{path}{name}' is a {kind.__name__}; the interpreter handles "
                    f"{', '.join(k.__name__ for k in HANDLED)}"
                )
        inputs = [n for n in self.order if kinds[n] is nir.Input]
        outputs = [n for n in self.order if kinds[n] is nir.Output]
        if len(inputs) != 1 or len(outputs) != 1:
            raise SilifDeployError(
                f"graph '{path or '<root>'}' has {len(inputs)} Input and {len(outputs)} Output nodes; "
                "the interpreter needs exactly one of each"
            )
        self.input, self.output = inputs[0], outputs[0]
        # (source, delivers the current step's value?) for every edge into each node
        self.sources: dict[str, list[tuple[str, bool]]] = {name: [] for name in self.order}
        for src, dst in graph.edges:
            self.sources[dst].append((src, position[src] < position[dst]))
        self.sizes = {name: node_size(node) for name, node in graph.nodes.items()}
        self.decay = {  # name → (d, 1 − d)
            name: li_step(node.tau, dt) for name, node in graph.nodes.items() if isinstance(node, nir.LI)
        }
        self.children = {
            name: _GraphProgram(node, dt, f"{path}{name}.")
            for name, node in graph.nodes.items() if isinstance(node, nir.NIRGraph)
        }

    def reset(self, batch: int) -> None:
        self.previous = {name: np.zeros((batch, n)) for name, n in self.sizes.items()}
        self.membrane = {name: np.zeros((batch, self.sizes[name])) for name in self.decay}
        for child in self.children.values():
            child.reset(batch)

    def step(self, x: np.ndarray, record: dict[str, list[np.ndarray]]) -> np.ndarray:
        current: dict[str, np.ndarray] = {}
        for name in self.order:
            node = self.graph.nodes[name]
            if name == self.input:
                value = x
            else:
                value = self._apply(name, node, self._gather(name, current, x.shape[0]), record)
            current[name] = value
            key = self.path + name
            if key in record:
                record[key].append(value)
        self.previous = current
        return current[self.output]

    def _gather(self, name: str, current: dict[str, np.ndarray], batch: int) -> np.ndarray:
        """The summed input of ``name`` this step (zeros for a node without incoming edges)."""
        total = None
        for src, same_step in self.sources[name]:
            contribution = current[src] if same_step else self.previous[src]
            total = contribution if total is None else total + contribution
        return np.zeros((batch, self._fan_in(name))) if total is None else total

    def _fan_in(self, name: str) -> int:
        node = self.graph.nodes[name]
        if isinstance(node, nir.Affine | nir.Linear):
            return int(node.weight.shape[1])
        if isinstance(node, nir.NIRGraph):
            child = self.children[name]
            return child.sizes[child.input]
        return self.sizes[name]

    def _apply(self, name: str, node: nir.NIRNode, x: np.ndarray, record) -> np.ndarray:
        if isinstance(node, nir.Output):
            return x
        if isinstance(node, nir.Affine):
            return x @ np.asarray(node.weight, dtype=np.float64).T + np.asarray(node.bias, dtype=np.float64)
        if isinstance(node, nir.Linear):
            return x @ np.asarray(node.weight, dtype=np.float64).T
        if isinstance(node, nir.Scale):
            return x * np.asarray(node.scale, dtype=np.float64)
        if isinstance(node, nir.Threshold):
            return (x > np.asarray(node.threshold, dtype=np.float64)).astype(np.float64)
        if isinstance(node, nir.LI):
            d, weight = self.decay[name]
            drive = np.asarray(node.r, dtype=np.float64) * x + np.asarray(node.v_leak, dtype=np.float64)
            self.membrane[name] = d * self.membrane[name] + weight * drive
            return self.membrane[name]
        return self.children[name].step(x, record)  # NIRGraph


def interpret(
    graph: nir.NIRGraph, x: np.ndarray, dt: float | None = None, record: Collection[str] = ()
) -> Interpretation:
    """Run ``x`` (batch, time, n_in) through ``graph`` under :data:`PER_STEP_READING`.

    ``dt`` defaults to the graph's ``metadata["dt"]``. ``record`` names nodes (dotted paths into
    subgraphs) whose per-step values to return.
    """
    if dt is None:
        if "dt" not in graph.metadata:
            raise SilifDeployError("the graph's metadata has no 'dt'; pass dt explicitly")
        dt = float(graph.metadata["dt"])
    program = _GraphProgram(graph, float(dt), "")
    x = np.asarray(x, dtype=np.float64)
    n_in = program.sizes[program.input]
    if x.ndim != 3 or x.shape[2] != n_in:
        raise SilifDeployError(f"input has shape {x.shape}; the graph expects (batch, time, {n_in})")
    program.reset(x.shape[0])
    recorded: dict[str, list[np.ndarray]] = {key: [] for key in record}
    outputs = [program.step(x[:, t], recorded) for t in range(x.shape[1])]
    missing = [key for key, values in recorded.items() if not values]
    if missing:
        raise SilifDeployError(f"cannot record {missing}: no such node in the graph")
    return Interpretation(
        output=np.stack(outputs, axis=1),
        traces={key: np.stack(values, axis=1) for key, values in recorded.items()},
    )
