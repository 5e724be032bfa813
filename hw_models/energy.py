"""Energy and latency per inference from per-layer activity, under an energy profile.

Input: the per-layer entries of the report (:func:`.metrics.layer_metrics`: hidden layers, then the
readout), per-sample means: ``sop`` (presynaptic events × fan-out), ``presynaptic_events``,
``spikes`` (emitted), ``neuron_updates``, ``neurons``, ``synapses`` (N_in·N_out), ``steps`` (the
steps the engine runs), ``graded`` (the layer receives graded / multi-count payloads), ``name``.

Energy of layer l (pJ), with E(event) the profile's cost (:mod:`.energy_profile`)::

    synaptic_ops   = sop · E(synaptic_op)           (E(graded_synaptic_op) if the layer is graded)
    graded_ops     = (graded_macs + sigmoid_lookups) · E(graded_mac) + graded_adds · E(graded_add)
    neuron_updates = updates · E(neuron_update_active)
                   + (steps·neurons − updates) · E(neuron_update_inactive)
    spikes_routing = spikes · E(spike_out) + presynaptic_events · cores_l · E(spike_message)
                   + graded_messages · E(graded_message)
    static         = P(static) · latency per inference            (chip level, not per layer)

Each presynaptic event sends one message to every core of the receiving layer (``cores_l``, from
:mod:`.core_mapping`; 1 when no mapping is given). Latency uses the mean step::

    core time_l    = (sop·t(syn) + updates·t(active) + inactive·t(inactive) + spikes·t(spike_out)
                      + (graded_macs + sigmoid_lookups)·t(graded_mac) + graded_adds·t(graded_add))
                     / (steps · cores_l)
    step time      = max_l core time_l + t(spike_message) + t(step_sync)
    inference time = step time · steps

The graded counts (``graded_macs``, ``graded_adds``, ``sigmoid_lookups``, ``graded_messages``) are the
per-stage rows of a graph network (:mod:`.stage_metrics`); a layer without them has none (0).

ANN-style comparison: dense MACs = T · Σ_l synapses_l per inference (T = ``input_steps``, the
input's length), at E(dense_mac) each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.energy_profile import EnergyProfile

CAUSES = ("synaptic_ops", "graded_ops", "neuron_updates", "spikes_routing", "static")
"""The energy split: synaptic operations (SOPs), graded operations (MACs, adds, lookups), neuron
updates, spikes and messages with their routing, static power."""
GRADED = ("graded_macs", "graded_adds", "sigmoid_lookups", "graded_messages")
"""A row's graded counts (0 when absent: a chain's layers)."""

_REQUIRED = ("sop", "presynaptic_events", "spikes", "neuron_updates", "neurons", "synapses", "steps")
_PJ_PER_UJ = 1e6


@dataclass
class LayerEnergy:
    """Dynamic energy of one layer per inference, in pJ, by cause."""

    name: str
    synaptic_ops: float
    neuron_updates: float
    spikes_routing: float
    graded_ops: float = 0.0

    @property
    def total(self) -> float:
        return self.synaptic_ops + self.graded_ops + self.neuron_updates + self.spikes_routing


@dataclass
class EnergyEstimate:
    """Energy (pJ) and latency (ns) of one inference under ``profile``.

    ``not_charged`` lists the events the profile does not price (they add 0); latency fields are
    None when the profile has no timing figures, and then static energy is not charged either.
    """

    profile: str
    layers: list[LayerEnergy]
    static: float
    step_ns: float | None
    inference_steps: int
    inference_ns: float | None
    dense_macs: float
    dense_mac_energy: float | None
    not_charged: list[str] = field(default_factory=list)

    @property
    def by_cause(self) -> dict[str, float]:
        return {
            "synaptic_ops": sum(l.synaptic_ops for l in self.layers),
            "graded_ops": sum(l.graded_ops for l in self.layers),
            "neuron_updates": sum(l.neuron_updates for l in self.layers),
            "spikes_routing": sum(l.spikes_routing for l in self.layers),
            "static": self.static,
        }

    @property
    def total(self) -> float:
        return sum(self.by_cause.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON form; energies in µJ per inference, times in ns."""
        return {
            "profile": self.profile,
            "unit": "uJ per inference",
            "total_uj": self.total / _PJ_PER_UJ,
            "dynamic_uj": (self.total - self.static) / _PJ_PER_UJ,
            "by_cause_uj": {k: v / _PJ_PER_UJ for k, v in self.by_cause.items()},
            "layers_uj": [
                {"name": l.name, "synaptic_ops": l.synaptic_ops / _PJ_PER_UJ, "graded_ops": l.graded_ops / _PJ_PER_UJ,
                 "neuron_updates": l.neuron_updates / _PJ_PER_UJ,
                 "spikes_routing": l.spikes_routing / _PJ_PER_UJ, "total": l.total / _PJ_PER_UJ}
                for l in self.layers
            ],
            "latency": {"step_ns": self.step_ns, "inference_steps": self.inference_steps,
                        "inference_ns": self.inference_ns},
            "ann_comparison": {
                "dense_macs": self.dense_macs,
                "dense_mac_energy_uj": None if self.dense_mac_energy is None else self.dense_mac_energy / _PJ_PER_UJ,
            },
            "not_charged": self.not_charged,
        }


def dense_macs(layers: Sequence[Mapping[str, Any]], input_steps: int) -> float:
    """ANN-style dense multiply-accumulates per inference: T · Σ_l N_in·N_out (NeuroBench ``Dense``)."""
    return float(input_steps * sum(l["synapses"] for l in layers))


def estimate_energy(
    layers: Sequence[Mapping[str, Any]],
    profile: EnergyProfile,
    cores: Sequence[int] | None = None,
    input_steps: int | None = None,
) -> EnergyEstimate:
    """Energy split by layer and cause, latency and the ANN-style cost (module docstring).

    ``cores``: cores per layer (default 1 each); ``input_steps``: T of the dense comparison
    (default: the layers' ``steps``).
    """
    _check(layers, cores)
    cores = list(cores) if cores is not None else [1] * len(layers)
    e = {event: profile.energy_pj(event) or 0.0 for event in
         ("synaptic_op", "neuron_update_active", "neuron_update_inactive", "spike_out", "spike_message",
          "graded_mac", "graded_add", "graded_message")}
    e_graded = profile.energy_pj("graded_synaptic_op")
    per_layer = []
    for i, (l, n_cores) in enumerate(zip(layers, cores)):
        e_syn = e_graded if l.get("graded") and e_graded is not None else e["synaptic_op"]
        g = _graded(l)
        per_layer.append(LayerEnergy(
            name=str(l.get("name", f"layer {i}")),
            synaptic_ops=l["sop"] * e_syn,
            neuron_updates=l["neuron_updates"] * e["neuron_update_active"]
            + _inactive_updates(l) * e["neuron_update_inactive"],
            spikes_routing=l["spikes"] * e["spike_out"] + l["presynaptic_events"] * n_cores * e["spike_message"]
            + g["graded_messages"] * e["graded_message"],
            graded_ops=(g["graded_macs"] + g["sigmoid_lookups"]) * e["graded_mac"] + g["graded_adds"] * e["graded_add"],
        ))
    inference_steps = int(layers[0]["steps"])
    step_ns = _step_time_ns(layers, cores, profile)
    inference_ns = None if step_ns is None else step_ns * inference_steps
    power = profile.power_w("static")
    static = power * inference_ns * 1e3 if power is not None and inference_ns is not None else 0.0  # W·ns = 1e3 pJ
    macs = dense_macs(layers, inference_steps if input_steps is None else input_steps)
    e_mac = profile.energy_pj("dense_mac")
    return EnergyEstimate(
        profile=profile.name, layers=per_layer, static=static, step_ns=step_ns,
        inference_steps=inference_steps, inference_ns=inference_ns, dense_macs=macs,
        dense_mac_energy=None if e_mac is None else macs * e_mac,
        not_charged=_not_charged(profile, step_ns is not None, any(any(_graded(l).values()) for l in layers)),
    )


def _graded(layer: Mapping[str, Any]) -> dict[str, float]:
    return {key: float(layer.get(key) or 0.0) for key in GRADED}


def _inactive_updates(layer: Mapping[str, Any]) -> float:
    return max(layer["steps"] * layer["neurons"] - layer["neuron_updates"], 0.0)


def _step_time_ns(layers: Sequence[Mapping[str, Any]], cores: Sequence[int], profile: EnergyProfile) -> float | None:
    """Mean step time: the busiest core's work, one message latency and the barrier (None without timings)."""
    t_syn = profile.time_ns("synaptic_op")
    t_active = profile.time_ns("neuron_update_active")
    if t_syn is None or t_active is None:
        return None
    t_graded = profile.time_ns("graded_synaptic_op") or t_syn
    t_inactive = profile.time_ns("neuron_update_inactive") or 0.0
    t_spike = profile.time_ns("spike_out") or 0.0
    t_mac, t_add = profile.time_ns("graded_mac") or t_graded, profile.time_ns("graded_add") or t_graded
    busiest = max(
        ((t_graded if l.get("graded") else t_syn) * l["sop"] + t_active * l["neuron_updates"]
         + t_inactive * _inactive_updates(l) + t_spike * l["spikes"]
         + t_mac * (_graded(l)["graded_macs"] + _graded(l)["sigmoid_lookups"]) + t_add * _graded(l)["graded_adds"])
        / (l["steps"] * n)
        for l, n in zip(layers, cores)
    )
    return busiest + (profile.time_ns("spike_message") or 0.0) + (profile.time_ns("step_sync") or 0.0)


def _not_charged(profile: EnergyProfile, has_timing: bool, graded: bool = False) -> list[str]:
    missing = [f"{event} (not in profile)" for event in
               ("synaptic_op", "neuron_update_active", "neuron_update_inactive", "spike_out", "spike_message",
                "dense_mac") if event not in profile.costs]
    missing += [f"{event} (not in profile)" for event in ("graded_mac", "graded_add", "graded_message")
                if event not in profile.costs and graded]
    if "static" not in profile.costs:
        missing.append("static (not in profile)")
    elif not has_timing:
        missing.append("static (profile has no timing figures for the run time)")
    return missing


def _check(layers: Sequence[Mapping[str, Any]], cores: Sequence[int] | None) -> None:
    if not layers:
        raise SilifDeployError("energy estimate needs at least one layer of activity")
    for i, l in enumerate(layers):
        missing = [k for k in _REQUIRED if k not in l]
        if missing:
            raise SilifDeployError(f"activity of layer {i} lacks {', '.join(missing)}")
        if l["steps"] <= 0:
            raise SilifDeployError(f"activity of layer {i} has {l['steps']} steps; need at least 1")
    if cores is not None and (len(cores) != len(layers) or min(cores) < 1):
        raise SilifDeployError(f"cores per layer {list(cores)} do not match the {len(layers)} layers")
