"""The report's ``energy`` and ``mapping`` sections: estimates from a report's per-layer activity.

:func:`add_energy_sections` extends a report of :func:`silif_deploy.hw_models.metrics.build_report`
(a fixed-point run) with

* ``mapping``: placement on one chip's cores (:mod:`~silif_deploy.hw_models.core_mapping`), from
  the energy profile's chip figures, or the default ``loihi2`` profile's when it has none;
* ``energy``: energy per inference by layer and by cause, latency, the ANN-style dense cost
  (:mod:`~silif_deploy.hw_models.energy`), and the profile with every constant's status and source.

:func:`markdown_lines` and :func:`write_energy_plot` render them.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from silif_deploy.deploy.plots import pyplot, save_png
from silif_deploy.hw_models.core_mapping import ChipMapping, layer_shapes, map_to_cores
from silif_deploy.hw_models.energy import CAUSES, estimate_energy
from silif_deploy.hw_models.energy_profile import DEFAULT_ENERGY_PROFILE, EnergyProfile, load_energy_profile
from silif_deploy.hw_models.metrics import json_safe
from silif_deploy.hw_models.network import FixedPointNetwork
from silif_deploy.hw_models.stage_metrics import compartment_shapes, cores_per_row

CAUSE_LABELS = {"synaptic_ops": "synaptic ops", "graded_ops": "graded ops", "neuron_updates": "neuron updates",
                "spikes_routing": "spikes + routing", "static": "static"}


def _causes(energy: Mapping[str, Any]) -> list[str]:
    """The causes a report shows: graded operations only where there are any (graph networks)."""
    return [c for c in CAUSES if c != "graded_ops" or energy["by_cause_uj"].get(c)]


def add_energy_sections(
    report: dict[str, Any], network: FixedPointNetwork, energy_profile: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Return ``report`` with ``mapping`` and ``energy`` sections for ``network`` under ``energy_profile``.

    Raises :class:`~silif_deploy.errors.SilifDeployError` when the network cannot fit one chip.
    """
    profile = load_energy_profile(energy_profile)
    mapping = chip_mapping(network, profile)
    cores = mapping.cores if network.is_chain else \
        cores_per_row(network, report["layers"], {p.name: p.cores for p in mapping.layers})
    estimate = estimate_energy(report["layers"], profile, cores=cores, input_steps=report["totals"]["input_steps"])
    return {**report, "mapping": json_safe(mapping.to_dict()),
            "energy": json_safe({**estimate.to_dict(), "profile": profile.to_dict()})}


def chip_mapping(network: FixedPointNetwork, profile: EnergyProfile) -> ChipMapping:
    """Placement on the chip of ``profile``, or of the default profile when it has no chip figures."""
    chip = profile if profile.chip_figure("cores_per_chip") is not None else load_energy_profile(DEFAULT_ENERGY_PROFILE)
    return map_to_cores(layer_shapes(network) if network.is_chain else compartment_shapes(network), chip)


def _uj(value: float | None) -> str:
    return "–" if value is None else f"{value:,.3f}"


def markdown_lines(report: Mapping[str, Any]) -> list[str]:
    """The ``## Energy`` and ``## Mapping`` Markdown sections (empty when the report has none)."""
    energy, mapping = report.get("energy"), report.get("mapping")
    out: list[str] = []
    if energy:
        prof = energy["profile"]
        shown = _causes(energy)[:-1]  # per layer: every cause but static
        out += ["", f"## Energy per inference (profile `{prof['name']}`)", "", prof["description"], "",
                "| layer | " + " | ".join(CAUSE_LABELS[c] for c in shown) + " | total |",
                "|---|" + "---|" * (len(shown) + 1)]
        for layer in energy["layers_uj"]:
            out.append(f"| {layer['name']} | " + " | ".join(_uj(layer[c]) for c in shown) + f" | {_uj(layer['total'])} |")
        causes = energy["by_cause_uj"]
        out.append("| static (chip) | " + "| " * len(shown) + _uj(causes["static"]) + " |")
        out.append("| **total** | " + " | ".join(_uj(causes[c]) for c in shown) + f" | **{_uj(energy['total_uj'])}** |")
        lat, ann = energy["latency"], energy["ann_comparison"]
        out += ["", "Energies in µJ per inference."]
        if lat["step_ns"] is not None:
            out.append(f"Latency: {lat['step_ns'] / 1e3:,.2f} µs per step (mean-activity step), "
                       f"{lat['inference_ns'] / 1e6:,.3f} ms per inference ({lat['inference_steps']} steps).")
        else:
            out.append("Latency: the profile has no timing figures.")
        out.append(f"ANN-style comparison: {ann['dense_macs']:,.0f} dense MACs per inference"
                   + (f", {_uj(ann['dense_mac_energy_uj'])} µJ under this profile." if ann["dense_mac_energy_uj"] is not None else "."))
        if energy["not_charged"]:
            out.append("Not charged: " + "; ".join(energy["not_charged"]) + ".")
        out += ["", "| constant | value | status | source |", "|---|---|---|---|"]
        for name, c in prof["constants"].items():
            out.append(f"| {name} ({c['use']}) | {c['value']:g} {c['unit']} | {c['status']} | {c['source']} |")
    if mapping:
        out += ["", f"## Mapping onto cores (profile `{mapping['profile']}`)", "",
                "| layer | neurons | cores | neurons/core | synaptic KB/core | state KB/core | fan-in | output axons/core | tightest limit |",
                "|---|---|---|---|---|---|---|---|---|"]
        for p in mapping["layers"]:
            out.append(f"| {p['name']} | {p['neurons']:,} | {p['cores']} | {p['neurons_per_core']:,} | "
                       f"{p['synaptic_bytes_per_core'] / 1024:,.1f} | {p['state_bytes_per_core'] / 1024:,.1f} | "
                       f"{p['fan_in']:,} | {p['output_axons_per_core']:,} | {p['tightest_limit']} |")
        figures = ", ".join(f"{k} {v['value']:g} {v['unit']} ({v['status']})" for k, v in mapping["figures"].items())
        out += ["", f"Total: {mapping['total_cores']} cores. Chip figures: {figures}."
                + ("" if mapping["state_in_core_memory"] else " Neuron state is held apart from the core memory.")]
    return out


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """Energy, latency and mapping in three console lines."""
    energy, mapping = report["energy"], report["mapping"]
    causes = energy["by_cause_uj"]
    lat = energy["latency"]
    ann = energy["ann_comparison"]
    return [
        f"Energy ({energy['profile']['name']}): {energy['total_uj']:,.2f} µJ per inference = "
        + " + ".join(f"{CAUSE_LABELS[c]} {causes[c]:,.2f}" for c in _causes(energy))
        + (f"; dense-MAC equivalent {ann['dense_mac_energy_uj']:,.2f} µJ" if ann["dense_mac_energy_uj"] is not None else ""),
        "Latency: " + (f"{lat['step_ns'] / 1e3:,.2f} µs per step, {lat['inference_ns'] / 1e6:,.3f} ms per inference"
                       if lat["step_ns"] is not None else "no timing figures in this profile"),
        f"Mapping ({mapping['profile']}): {mapping['total_cores']} cores ("
        + ", ".join(f"{p['name']} {p['cores']}" for p in mapping["layers"]) + ")",
    ]


def write_energy_plot(report: Mapping[str, Any], path: str | os.PathLike) -> None:
    """PNG: energy per layer stacked by cause (plus static), and the totals next to the ANN-style dense cost."""
    plt = pyplot()
    import numpy as np

    energy = report["energy"]
    names = [layer["name"] for layer in energy["layers_uj"]] + ["static"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True, width_ratios=[2, 1])
    bottom = np.zeros(len(names))
    for i, cause in enumerate(_causes(energy)):
        values = np.array([layer.get(cause, 0.0) for layer in energy["layers_uj"]]
                          + [energy["by_cause_uj"]["static"] if cause == "static" else 0.0])
        ax.bar(names, values, bottom=bottom, label=CAUSE_LABELS[cause], color=f"C{i}")
        bottom += values
    if len(names) > 8:  # a graph network's stages
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.set_ylabel("µJ per inference")
    ax.set_title(f"energy by layer and cause (profile {energy['profile']['name']}; total {energy['total_uj']:,.1f} µJ)")
    ax.legend()
    bars = {"SNN total": energy["total_uj"], "SNN dynamic": energy["dynamic_uj"]}
    if energy["ann_comparison"]["dense_mac_energy_uj"] is not None:
        bars["dense MACs"] = energy["ann_comparison"]["dense_mac_energy_uj"]
    values = list(bars.values())
    ax2.bar(list(bars), values, color=["C0", "C1", "C7"][: len(bars)])
    for i, v in enumerate(values):
        ax2.annotate(f"{v:,.1f}", (i, v), ha="center", va="bottom", fontsize=8)
    ax2.set_yscale("log")
    ax2.set_ylim(min(values) / 10, max(values) * 3)
    ax2.set_ylabel("µJ per inference")
    ax2.set_title("spiking vs ANN-style dense cost")
    save_png(fig, path)
