"""``silif-deploy compare``: several models on the same input, one efficiency table (the paper's comparison).

Per model (SiLIF-family chains and the spiking SSMs alike): parameters, buffers (real states: ``neurons.md``
§11, §15.3; SpikingSSM H·N + H per block) and dynamic memory, accuracy of the float model and of the
fixed-point network, SOP per sample (binary presynaptic events × fan-out) and hidden sparsity of both,
graded multiply-accumulates (``hw_models/stage_metrics.py``: the S4D rotation and input, the readout,
the GLU, the encoder on dense input; for a chain, the synaptic ops of its layers fed graded payloads),
neuron updates, energy per inference under the chosen energy profile (from the fixed-point activity)
and under every shipped profile, and fixed-versus-float fidelity. A checkpoint is quantized in memory
with the hardware profile, its state scales calibrated on the same input (as ``export --calibrate``
does); an artifact is used as it is, against the float model it carries.

With ``-o``: ``compare.json``, ``compare.md`` and ``compare.png`` (accuracy against energy per
inference, float and fixed point, with the fixed-point Pareto front), written together.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from silif_deploy.hw_models.energy_profile import DEFAULT_ENERGY_PROFILE, available_energy_profiles
from silif_deploy.hw_models.profile import DEFAULT_PROFILE

HELP = "run several checkpoints / artifacts on one input and tabulate parameters, buffers, SOPs, sparsity, energy and fidelity"
COLUMNS = {
    "model": "model",
    "model_type": "type",
    "parameters": "params",
    "buffers": "buffers",
    "accuracy_float": "acc. (float)",
    "accuracy_fixed": "acc. (fixed)",
    "sop_float": "SOP/sample (float)",
    "sop_fixed": "SOP/sample (fixed)",
    "graded_macs_fixed": "graded MAC/sample",
    "neuron_updates": "neuron updates",
    "sparsity_float": "sparsity (float)",
    "sparsity_fixed": "sparsity (fixed)",
    "energy_uj": "energy µJ",
    "dynamic_energy_uj": "dynamic µJ",
    "dense_mac_energy_uj": "dense-MAC µJ",
    "prediction_agreement": "pred. agreement",
    "spike_agreement": "spike agreement",
}
"""The table's columns (row key → header); ``energy_uj_by_profile`` has a table of its own."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL", help="checkpoints (.pt/.pth), NIR files or artifacts (.loihi2.h5)")
    p.add_argument("--input", required=True, help="input: .npy/.npz (batch, time, channels) or an SHD/SSC .h5 file")
    p.add_argument("--energy-profile", default=DEFAULT_ENERGY_PROFILE,
                   help=f"energy profile of the energy columns and the plot: {', '.join(available_energy_profiles())} "
                        f"or a .toml path (default {DEFAULT_ENERGY_PROFILE}); every shipped profile is also tabulated")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help=f"hardware profile for quantizing checkpoints (default {DEFAULT_PROFILE}); artifacts keep theirs")
    p.add_argument("--model-type", default=None,
                   help="adlif or cadlif: used for checkpoints whose keys cannot tell the two apart")
    p.add_argument("-o", "--outdir", default=None, help="also write compare.json, compare.md and compare.png there")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from silif_deploy.converters.datasets import open_input
    from silif_deploy.converters.files import provenance, staged_outputs
    from silif_deploy.deploy.reporting import write_json, write_text
    from silif_deploy.hw_models.energy_profile import load_energy_profile
    from silif_deploy.hw_models.profile import load_profile

    load_energy_profile(args.energy_profile)  # bad profiles fail before any run
    hardware = load_profile(args.profile)
    data = open_input(args.input)
    data.start_hashing()
    rows = [compare_row(path, data, hardware, args.energy_profile, args.model_type)
            for path in tqdm(args.models, desc="models", unit="model", disable=len(args.models) < 2)]
    print(format_table(rows))
    if args.outdir:
        result = {
            "provenance": provenance(input_sha256=data.source_sha256, hardware_profile=hardware.name,
                                     energy_profile=str(args.energy_profile)),
            "input": {"path": str(args.input), "samples": int(data.shape[0]), "steps": int(data.shape[1]),
                      "labelled": data.labels is not None},
            "columns": COLUMNS,
            "energy_profiles": list(rows[0]["energy_uj_by_profile"]),
            "models": rows,
        }
        out = Path(args.outdir)
        with staged_outputs(out) as stage:  # the three files appear together, or none
            write_json(result, stage / "compare.json")
            write_text(render_markdown(rows, result) + "\n", stage / "compare.md")
            write_pareto_plot(rows, result, stage / "compare.png")
        print(f"wrote {out / 'compare.json'}, {out / 'compare.md'}, {out / 'compare.png'}")
    return 0


def compare_row(path: str, data, hardware, energy_profile: str, model_type: str | None) -> dict[str, Any]:
    """One model's row: float and fixed-point runs of ``data`` (an InputSource) in one pass, their
    metrics, energy under ``energy_profile`` and every shipped profile, and fidelity (a checkpoint's
    calibration is one float pass before)."""
    from silif_deploy.deploy.report_builder import build_report

    model, network = _float_and_fixed(path, data, hardware, model_type)
    built = build_report(network, data, model_source=path, float_model=model, energy_profile=energy_profile,
                         float_counts=True, desc=f"{Path(path).name}: float + fixed point")
    float_report, fixed_report = built.float_report, built.report
    ft, xt, fid, energy = float_report["totals"], fixed_report["totals"], fixed_report["fidelity"], fixed_report["energy"]
    return {
        "model": Path(path).name,
        "model_type": network.model_type,
        "parameters": ft["parameters"],
        "buffers": ft["buffers"],
        "dynamic_memory_bits": xt["dynamic_memory_bits"],
        "accuracy_float": ft["accuracy"],
        "accuracy_fixed": xt["accuracy"],
        "sop_float": ft["sop"],
        "sop_fixed": xt["sop"],
        "graded_macs_fixed": graded_macs(fixed_report),
        "neuron_updates": xt["neuron_updates"],
        "sparsity_float": ft["sparsity"],
        "sparsity_fixed": xt["sparsity"],
        "energy_uj": energy["total_uj"],
        "dynamic_energy_uj": energy["dynamic_uj"],
        "dense_mac_energy_uj": energy["ann_comparison"]["dense_mac_energy_uj"],
        "prediction_agreement": fid["prediction_agreement"],
        "spike_agreement": float(np.mean([layer["spike_agreement"] for layer in fid["layers"]])),
        "energy_by_cause_uj": energy["by_cause_uj"],
        "energy_uj_by_profile": energy_by_profile(fixed_report, network),
        "cores": fixed_report["mapping"]["total_cores"],
        "effective_sop_fixed": xt["effective_sop"],
    }


def graded_macs(report: dict[str, Any]) -> float:
    """Graded multiply-accumulates per sample: a stage report's own count; for a chain of layers, the
    synaptic ops of the layers fed graded payloads (its input layer on counts or values: these are also
    in its SOPs, the paper's convention)."""
    totals = report["totals"]
    if totals.get("graded_macs") is not None:
        return float(totals["graded_macs"])
    return float(sum(layer["sop"] for layer in report["layers"] if layer.get("graded")))


def energy_by_profile(report: dict[str, Any], network) -> dict[str, dict[str, float | None]]:
    """Total and dynamic energy per inference (µJ) of a fixed-point report's activity under every
    shipped energy profile (no new run: the profile only prices the counts); None where the network
    does not fit the profile's chip."""
    from silif_deploy.deploy.energy_report import add_energy_sections
    from silif_deploy.errors import SilifDeployError
    from silif_deploy.hw_models.energy_profile import available_energy_profiles

    out: dict[str, dict[str, float | None]] = {}
    for name in available_energy_profiles():
        try:
            energy = add_energy_sections(report, network, name)["energy"]
            out[name] = {"total_uj": energy["total_uj"], "dynamic_uj": energy["dynamic_uj"]}
        except SilifDeployError:
            out[name] = {"total_uj": None, "dynamic_uj": None}
    return out


def _float_and_fixed(path: str, x, hardware, model_type: str | None):
    """The float model and the fixed-point network of one source (checkpoints quantized in memory)."""
    from silif_deploy.converters.artifact import float_model_from_artifact, read_artifact
    from silif_deploy.deploy.engines import load_float_model, source_kind
    from silif_deploy.deploy.pipeline import quantize_model
    from silif_deploy.errors import SilifDeployError

    def check_channels(expected: int) -> None:  # before the calibration pass reads the input
        if x.shape[-1] != expected:
            raise SilifDeployError(f"input has {x.shape[-1]} channels, '{path}' expects {expected}")

    if source_kind(path) == "artifact":
        network = read_artifact(path)
        check_channels(network.n_inputs)
        return float_model_from_artifact(path), network
    try:
        model = load_float_model(path, for_fixed_point="compare")
    except SilifDeployError:
        if model_type is None:
            raise
        model = load_float_model(path, model_type=model_type, for_fixed_point="compare")
    check_channels(model.config.n_inputs)
    return model, quantize_model(model, hardware, x)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key.startswith("accuracy"):
        return f"{100 * value:.2f} %"
    if key.startswith(("sparsity", "prediction", "spike")):
        return f"{value:.4f}"
    if key.endswith("_uj"):
        return f"{value:,.1f}"
    if isinstance(value, (int, float)):
        return f"{value:,.2f}" if key.startswith("sop") else f"{value:,.0f}"
    return str(value)


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [list(COLUMNS.values())] + [[_cell(k, row[k]) for k in COLUMNS] for row in rows]


def format_table(rows: list[dict[str, Any]]) -> str:
    cells = table_rows(rows)
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in cells)


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in body]]


def render_markdown(rows: list[dict[str, Any]], result: dict[str, Any]) -> str:
    header, *body = table_rows(rows)
    inp = result["input"]
    profiles = result["energy_profiles"]
    energy_header = ["model", *[f"{p} total µJ" for p in profiles], *[f"{p} dynamic µJ" for p in profiles]]
    energy_body = [[row["model"], *[_cell("_uj", row["energy_uj_by_profile"][p]["total_uj"]) for p in profiles],
                    *[_cell("_uj", row["energy_uj_by_profile"][p]["dynamic_uj"]) for p in profiles]] for row in rows]
    return "\n".join([
        "# silif-deploy compare", "",
        f"Input `{inp['path']}`: {inp['samples']} samples × {inp['steps']} steps; hardware profile "
        f"`{result['provenance']['hardware_profile']}`, energy profile `{result['provenance']['energy_profile']}`.", "",
        *_markdown_table(header, body), "",
        "## Energy per inference under every energy profile", "",
        *_markdown_table(energy_header, energy_body), "",
        "Parameters: trainable (BatchNorm affine included); buffers: real states (hidden neurons × states; SpikingSSM "
        "H·N per S4D plus H per LIF soma); accuracy: on the input's labels, the float model and the bit-accurate "
        "fixed-point simulator; SOP: binary presynaptic events × fan-out per sample (input and readout synapses "
        "included; count input counts as events); graded MACs: multiply-accumulates on graded values per sample "
        "(S4D rotation and input, readout, GLU, encoder on dense input; for the SiLIF chains the input layer's "
        "synaptic ops on graded payloads, also inside their SOPs); neuron updates: neuron-steps per sample; "
        "sparsity: fraction of silent steps per spiking neuron; energy: fixed-point activity under the energy "
        "profile (dynamic: without static power); agreements: fixed vs float (predictions; spikes per (step, neuron), mean over the spiking layers). "
        "`compare.png`: accuracy against energy per inference.",
    ])


def write_pareto_plot(rows: list[dict[str, Any]], result: dict[str, Any], path: Path) -> None:
    """PNG: accuracy (fixed point filled, float hollow) against total and dynamic energy per inference
    under the chosen profile, the fixed-point Pareto front dashed; without labels, a note instead."""
    from silif_deploy.deploy.plots import pyplot, save_png
    from silif_deploy.deploy.sweep_report import pareto_front

    plt = pyplot()
    from matplotlib import ticker

    profile = result["provenance"]["energy_profile"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
    for ax, key, title in zip(axes, ("energy_uj", "dynamic_energy_uj"), ("total", "dynamic (no static power)")):
        ax.set_title(f"accuracy vs {title} energy ({profile})")
        ax.set_xlabel("µJ per inference")
        ax.set_ylabel("accuracy (%)")
        usable = [r for r in rows if r["accuracy_fixed"] is not None and r[key] is not None and r[key] > 0]
        if not usable:
            ax.text(0.5, 0.5, "no labels in the input: no accuracy to plot", ha="center", va="center",
                    transform=ax.transAxes)
            continue
        for i, r in enumerate(usable):
            color = f"C{i}"
            ax.scatter(r[key], 100 * r["accuracy_fixed"], color=color, s=50, label=f"{r['model']} ({r['model_type']})")
            if r["accuracy_float"] is not None:
                ax.scatter(r[key], 100 * r["accuracy_float"], facecolors="none", edgecolors=color, s=50)
            ax.annotate(r["model_type"], (r[key], 100 * r["accuracy_fixed"]), textcoords="offset points",
                        xytext=(5, -10), fontsize=8)
        front = [usable[i] for i in pareto_front([(r[key], r["accuracy_fixed"]) for r in usable])]
        ax.plot([r[key] for r in front], [100 * r["accuracy_fixed"] for r in front], "k--", lw=0.8,
                label="Pareto front (fixed point)")
        energies = [r[key] for r in usable]
        if max(energies) > 10 * min(energies):  # a log axis only where the energies span decades
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.margins(x=0.15, y=0.15)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=7,
               title="filled: fixed point; hollow: float", title_fontsize=7)
    save_png(fig, path)
