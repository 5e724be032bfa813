"""Energy profiles: per-event energies, times and chip figures, each with its source and status.

Profiles are TOML files shipped in ``hw_models/energy_profiles/`` (``loihi2``, ``loihi1``,
``sanafe-loihi``, ``generic-45nm``); a user may pass the path of their own. A profile holds

* ``[constants.<name>]``: ``value``, ``unit``, ``status`` (how solid: :data:`STATUSES`) and
  ``source`` (where it comes from). Chip figures for core mapping are constants with the names
  in :data:`CHIP_FIGURES`. Constants no cost refers to are context (e.g. measured board figures).
* ``[costs.<event>]``: how one event of :data:`COSTS` is charged, as weighted sums of constants::

      energy (pJ) = Σ_k count_k · constant_k   over the ``energy`` table (pJ constants)
      time   (ns) = Σ_k count_k · constant_k   over the ``time`` table (ns constants)
      power  (W)  = Σ_k count_k · constant_k   over the ``power`` table (W constants)

  with its own ``status`` and ``source`` (why these terms and counts). An event a profile does
  not price is not charged, and reports say so.
* ``[mapping] state_in_core_memory``: whether neuron state counts against ``memory_per_core``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.profile import read_profile_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (the Lava environment)
    import tomli as tomllib

ENERGY_PROFILE_DIR = Path(__file__).with_name("energy_profiles")
DEFAULT_ENERGY_PROFILE = "loihi2"

STATUSES = ("measured-silicon", "pre-silicon", "model", "paper", "derived", "secondary", "unverified", "assumed")
"""How solid a figure is: measured on silicon, circuit simulation, a simulator's calibrated preset,
quoted from a paper, derived from such figures, a secondary source, seen once, or assumed."""

UNITS = ("pJ", "ns", "W", "mJ", "fps", "count", "bytes")

COSTS: dict[str, str] = {
    "synaptic_op": "one synapse driven by a binary presynaptic event (one SOP)",
    "graded_synaptic_op": "one synapse driven by a graded / multi-count payload (default: as synaptic_op)",
    "neuron_update_active": "one neuron-state update",
    "neuron_update_inactive": "one step of a neuron not updated (steps x neurons - updates)",
    "spike_out": "one spike emitted by a neuron",
    "spike_message": "one spike message delivered to one destination core",
    "dense_mac": "one dense multiply-accumulate of the ANN-style comparison",
    "graded_mac": "one multiply-accumulate on graded values (S4D rotation, readout, GLU product, encoder; a sigmoid lookup)",
    "graded_add": "one add of two graded values (an Add stage: C + D, the residual; the decoder's pooling)",
    "graded_message": "one graded-payload message from a stage to one stage reading it",
    "static": "static power drawn over the run time",
    "step_sync": "per-step synchronization (barrier)",
}

CHIP_FIGURES = ("cores_per_chip", "neurons_per_core", "memory_per_core", "fan_in_per_core",
                "fan_out_per_core", "synapses_per_chip")
"""Constants core mapping reads; ``synapses_per_chip`` is optional, the others required."""

_TERM_UNITS = {"energy": "pJ", "time": "ns", "power": "W"}


@dataclass(frozen=True)
class Constant:
    """One figure: ``value`` in ``unit``, with how solid it is (``status``) and where it comes from."""

    name: str
    value: float
    unit: str
    status: str
    source: str

    def describe(self) -> str:
        """``value unit (status)``, e.g. ``23.6 pJ (pre-silicon)``."""
        return f"{self.value:g} {self.unit} ({self.status})"


@dataclass(frozen=True)
class Cost:
    """How one event is charged: {constant: count} tables for energy, time and power."""

    name: str
    energy: dict[str, float]
    time: dict[str, float]
    power: dict[str, float]
    status: str
    source: str


@dataclass(frozen=True)
class EnergyProfile:
    name: str
    description: str
    constants: dict[str, Constant]
    costs: dict[str, Cost]
    state_in_core_memory: bool
    origin: str

    def _sum(self, event: str, table: str) -> float | None:
        cost = self.costs.get(event)
        terms = getattr(cost, table) if cost else {}
        if not terms:
            return None
        return float(sum(count * self.constants[name].value for name, count in terms.items()))

    def energy_pj(self, event: str) -> float | None:
        """Energy of one ``event`` in pJ, or None when the profile does not price it."""
        return self._sum(event, "energy")

    def time_ns(self, event: str) -> float | None:
        """Time of one ``event`` in ns, or None when the profile has no timing for it."""
        return self._sum(event, "time")

    def power_w(self, event: str) -> float | None:
        return self._sum(event, "power")

    def chip_figure(self, name: str) -> Constant | None:
        return self.constants.get(name) if name in CHIP_FIGURES else None

    def used_constants(self) -> set[str]:
        return {k for c in self.costs.values() for table in (c.energy, c.time, c.power) for k in table}

    def to_dict(self) -> dict[str, Any]:
        """Everything the profile says, for reports: constants (with ``use``) and costs."""
        used = self.used_constants()
        return {
            "name": self.name,
            "description": self.description,
            "origin": self.origin,
            "constants": {
                c.name: {"value": c.value, "unit": c.unit, "status": c.status, "source": c.source,
                         "use": "cost" if c.name in used else "chip" if c.name in CHIP_FIGURES else "context"}
                for c in self.constants.values()
            },
            "costs": {
                c.name: {"energy_pj": self.energy_pj(c.name), "time_ns": self.time_ns(c.name),
                         "power_w": self.power_w(c.name), "terms": {**c.energy, **c.time, **c.power},
                         "status": c.status, "source": c.source}
                for c in self.costs.values()
            },
            "state_in_core_memory": self.state_in_core_memory,
        }


def available_energy_profiles() -> list[str]:
    return sorted(p.stem for p in ENERGY_PROFILE_DIR.glob("*.toml"))


def load_energy_profile(name_or_path: str | Path | None = None) -> EnergyProfile:
    """Load a shipped energy profile by name, or a user's TOML file by path."""
    ref = str(name_or_path or DEFAULT_ENERGY_PROFILE)
    path = Path(ref)
    if not (path.suffix == ".toml" and path.is_file()):
        path = ENERGY_PROFILE_DIR / f"{ref}.toml"
        if not path.is_file():
            raise SilifDeployError(
                f"unknown energy profile '{ref}'; use one of {', '.join(available_energy_profiles())} or a .toml path"
            )
    return energy_profile_from_text(read_profile_text(path), origin=str(path))


def energy_profile_from_text(text: str, origin: str = "text") -> EnergyProfile:
    """Parse and check an energy profile; every problem is one :class:`SilifDeployError` line."""
    try:
        data = tomllib.loads(text)
        constants = {name: _constant(name, entry) for name, entry in data.get("constants", {}).items()}
        costs = {name: _cost(name, entry) for name, entry in data.get("costs", {}).items()}
        profile = EnergyProfile(
            name=str(data["name"]), description=str(data.get("description", "")),
            constants=constants, costs=costs,
            state_in_core_memory=bool(data.get("mapping", {}).get("state_in_core_memory", True)),
            origin=origin,
        )
    except (KeyError, TypeError, ValueError, AttributeError, tomllib.TOMLDecodeError) as err:
        raise SilifDeployError(f"energy profile '{origin}' is invalid: {type(err).__name__}: {err}") from None
    problems = _problems(profile)
    if problems:
        raise SilifDeployError(f"energy profile '{origin}': {'; '.join(problems)}")
    return profile


def _constant(name: str, entry: dict) -> Constant:
    return Constant(name, float(entry["value"]), str(entry["unit"]), str(entry["status"]), str(entry["source"]))


def _cost(name: str, entry: dict) -> Cost:
    tables = {t: {str(k): float(v) for k, v in entry.get(t, {}).items()} for t in _TERM_UNITS}
    return Cost(name, tables["energy"], tables["time"], tables["power"], str(entry["status"]), str(entry["source"]))


def _problems(p: EnergyProfile) -> list[str]:
    problems = []
    for name in CHIP_FIGURES:  # core mapping divides by these
        if name in p.constants and not p.constants[name].value > 0:
            problems.append(f"constant '{name}' must be > 0 (a chip has at least one of each)")
    for c in p.constants.values():
        if c.unit not in UNITS:
            problems.append(f"constant '{c.name}' has unit '{c.unit}'; use one of {', '.join(UNITS)}")
        if c.status not in STATUSES:
            problems.append(f"constant '{c.name}' has status '{c.status}'; use one of {', '.join(STATUSES)}")
        if not c.source.strip():
            problems.append(f"constant '{c.name}' needs a source")
        if not (math.isfinite(c.value) and c.value >= 0):
            problems.append(f"constant '{c.name}' must be a finite value >= 0")
    for cost in p.costs.values():
        if cost.name not in COSTS:
            problems.append(f"unknown cost '{cost.name}' (known: {', '.join(COSTS)})")
        if cost.status not in STATUSES:
            problems.append(f"cost '{cost.name}' has status '{cost.status}'; use one of {', '.join(STATUSES)}")
        if not cost.source.strip():
            problems.append(f"cost '{cost.name}' needs a source")
        for table, unit in _TERM_UNITS.items():
            for term, count in getattr(cost, table).items():
                if term not in p.constants:
                    problems.append(f"cost '{cost.name}' refers to unknown constant '{term}'")
                elif p.constants[term].unit != unit:
                    problems.append(f"cost '{cost.name}': {table} term '{term}' must be in {unit}")
                if not (math.isfinite(count) and count >= 0):
                    problems.append(f"cost '{cost.name}': count of '{term}' must be >= 0")
    return problems
