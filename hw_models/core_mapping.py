"""Estimate how a network would be placed on neuromorphic cores, from an energy profile's chip figures.

Every layer is split evenly over the fewest cores that satisfy, per core (figures of
:data:`~.energy_profile.CHIP_FIGURES`, each with its status)::

    neurons                     ≤ neurons_per_core
    neurons · bits per neuron   ≤ 8 · memory_per_core        bits per neuron = fan_in · weight_bits
                                                              (+ state_bits if state_in_core_memory)
    fan_in                      ≤ fan_in_per_core             (input axons: one per presynaptic neuron)
    neurons · destination cores ≤ fan_out_per_core            (output axons: one per neuron and core
                                                              of the next layer; the readout's 1 = host)

and the network must fit one chip: Σ cores ≤ cores_per_chip, Σ synapses ≤ synapses_per_chip (when
given). Routing tables, microcode and delays are not counted. A fan-in above the axon limit cannot
be split across cores (no multi-compartment merging is modelled) and is refused.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.energy_profile import Constant, EnergyProfile
from silif_deploy.hw_models.metrics import layer_names
from silif_deploy.hw_models.network import FixedPointNetwork

_REQUIRED_FIGURES = ("cores_per_chip", "neurons_per_core", "memory_per_core", "fan_in_per_core", "fan_out_per_core")
_SPIKE_BIT = 1


@dataclass(frozen=True)
class LayerShape:
    """What placement needs of a layer: its size, fan-in, weight width and per-neuron state memory."""

    name: str
    neurons: int
    fan_in: int
    weight_bits: int
    state_bits: int

    @property
    def synapses(self) -> int:
        return self.neurons * self.fan_in


@dataclass(frozen=True)
class LayerPlacement:
    """One layer on ``cores`` cores; per-core figures are for the fullest core.

    ``tightest_limit`` names the constraint allowing the fewest neurons per core (a
    :data:`CHIP_FIGURES` name): the one that sets the core count when ``cores`` > 1.
    """

    name: str
    neurons: int
    cores: int
    neurons_per_core: int
    synaptic_bytes_per_core: float
    state_bytes_per_core: float
    fan_in: int
    output_axons_per_core: int
    tightest_limit: str


@dataclass(frozen=True)
class ChipMapping:
    """A network placed on one chip: per-layer placements and the chip figures used, with their status."""

    profile: str
    layers: list[LayerPlacement]
    total_cores: int
    figures: dict[str, dict[str, Any]]
    state_in_core_memory: bool

    @property
    def cores(self) -> list[int]:
        return [p.cores for p in self.layers]

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "total_cores": self.total_cores,
                "state_in_core_memory": self.state_in_core_memory,
                "layers": [asdict(p) for p in self.layers], "figures": self.figures}


def layer_shapes(network: FixedPointNetwork) -> list[LayerShape]:
    """Shapes of the hidden layers and the readout.

    State memory per neuron: the kind's real states and every per-neuron parameter array, each held
    in a state-width word (an assumption: Loihi 2's per-neuron memory layout is not public), plus
    the previous-spike bit.
    """
    shapes = []
    for name, layer in zip(layer_names(len(network.hidden)), network.layers):
        per_neuron_params = sum(1 for v in layer.params._asdict().values() if hasattr(v, "shape"))
        words = layer.buffers_per_neuron + per_neuron_params
        shapes.append(LayerShape(name, layer.size, layer.synapse.fan_in, layer.synapse.num_weight_bits,
                                 words * network.profile.state_bits + _SPIKE_BIT))
    return shapes


def map_to_cores(shapes: list[LayerShape], profile: EnergyProfile) -> ChipMapping:
    """Place ``shapes`` (input side first) on one chip of ``profile``; refuse what cannot fit."""
    figures = _figures(profile)
    value = {name: int(c.value) for name, c in figures.items()}
    placements: list[LayerPlacement] = []
    destinations = 1  # the readout sends to the host
    for shape in reversed(shapes):
        placement = _place(shape, destinations, value, profile)
        placements.insert(0, placement)
        destinations = placement.cores
    total = sum(p.cores for p in placements)
    if total > value["cores_per_chip"]:
        per_layer = ", ".join(f"{p.name} {p.cores}" for p in placements)
        raise SilifDeployError(
            f"network does not fit one {profile.name} chip: it needs {total} cores ({per_layer}) and breaks "
            f"cores_per_chip = {figures['cores_per_chip'].describe()}; make the layers smaller"
        )
    synapses = figures.get("synapses_per_chip")
    n_synapses = sum(s.synapses for s in shapes)
    if synapses is not None and n_synapses > synapses.value:
        raise SilifDeployError(
            f"network does not fit one {profile.name} chip: {n_synapses:,} synapses break "
            f"synapses_per_chip = {synapses.describe()}; make the layers smaller"
        )
    described = {k: {"value": c.value, "unit": c.unit, "status": c.status, "source": c.source}
                 for k, c in figures.items()}
    return ChipMapping(profile.name, placements, total, described, profile.state_in_core_memory)


def _figures(profile: EnergyProfile) -> dict[str, Constant]:
    figures = {name: profile.chip_figure(name) for name in (*_REQUIRED_FIGURES, "synapses_per_chip")}
    missing = [name for name in _REQUIRED_FIGURES if figures[name] is None]
    if missing:
        raise SilifDeployError(
            f"energy profile '{profile.name}' has no chip figures for core mapping ({', '.join(missing)}); "
            "use a chip profile such as loihi2"
        )
    return {k: v for k, v in figures.items() if v is not None}


def _place(shape: LayerShape, destinations: int, value: dict[str, int], profile: EnergyProfile) -> LayerPlacement:
    def refuse(what: str, figure: str) -> SilifDeployError:
        return SilifDeployError(
            f"network does not fit one {profile.name} chip: {shape.name} {what}, which breaks "
            f"{figure} = {profile.constants[figure].describe()}"
        )

    if shape.fan_in > value["fan_in_per_core"]:
        raise refuse(f"has fan-in {shape.fan_in}", "fan_in_per_core")
    if destinations > value["fan_out_per_core"]:
        raise refuse(f"must reach {destinations} cores per neuron", "fan_out_per_core")
    bits = shape.fan_in * shape.weight_bits + (shape.state_bits if profile.state_in_core_memory else 0)
    by_memory = value["memory_per_core"] * 8 // bits
    if by_memory == 0:
        raise refuse(f"needs {bits / 8:,.0f} bytes per neuron", "memory_per_core")
    bounds = {
        "neurons_per_core": value["neurons_per_core"],
        "memory_per_core": by_memory,
        "fan_out_per_core": value["fan_out_per_core"] // destinations,
    }
    limit = min(bounds, key=bounds.__getitem__)
    cores = math.ceil(shape.neurons / bounds[limit])
    per_core = math.ceil(shape.neurons / cores)
    return LayerPlacement(
        name=shape.name, neurons=shape.neurons, cores=cores, neurons_per_core=per_core,
        synaptic_bytes_per_core=per_core * shape.fan_in * shape.weight_bits / 8,
        state_bytes_per_core=per_core * shape.state_bits / 8,
        fan_in=shape.fan_in, output_axons_per_core=per_core * destinations, tightest_limit=limit,
    )
