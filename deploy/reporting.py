"""The per-layer report on disk and on screen: JSON, Markdown table, PNG summary, console table.

The report is built by :mod:`.report_builder` (numbers from :mod:`silif_deploy.hw_models.metrics`,
schema in ``docs/report.md``); this module renders and writes it (atomically), and every command's
report files are written here.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from silif_deploy.converters.files import atomic_output
from silif_deploy.deploy.plots import pyplot, save_png
from silif_deploy.deploy import energy_report

if TYPE_CHECKING:
    from silif_deploy.deploy.report_builder import BuiltReport, SampleTrace


# --------------------------------------------------------------------------------------------
# Writers.


def write_report(built: BuiltReport, json_path: str | os.PathLike, md_path: str | os.PathLike,
                 png_path: str | os.PathLike, energy_png: str | os.PathLike | None = None) -> None:
    """The report's files: JSON, Markdown, the PNG summary and (``energy_png``) the energy plot."""
    write_json(built.report, json_path)
    write_markdown(built.report, md_path)
    write_plot(built.report, built.trace, png_path)
    if energy_png is not None:
        energy_report.write_energy_plot(built.report, energy_png)


def write_json(report: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Strict JSON (no NaN), indented, atomically."""
    write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", path)


def write_markdown(report: Mapping[str, Any], path: str | os.PathLike) -> None:
    write_text(render_markdown(report), path)


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


def _agreement(report: Mapping[str, Any]) -> dict[str, float]:
    fid = report.get("fidelity") or {}
    return {layer["name"]: layer["spike_agreement"] for layer in fid.get("layers", [])}


def is_stage_report(report: Mapping[str, Any]) -> bool:
    """Whether the report's rows are the stages of a graph network (SpikingSSM, binary S4D)."""
    return report.get("rows") == "stages"


def stage_table_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-stage table of a graph network, then the totals."""
    agree = _agreement(report)
    header = ["stage", "kind", "neurons", "values", "buffers", "weights", "graded MACs", "adds", "σ lookups",
              "graded msgs", "SOP/sample", "eff. SOP", "spikes", "sparsity", "overflows", "spike agr."]

    def overflow(row: Mapping[str, Any]) -> str:
        return _fmt(row["overflow_events"], 1) if row.get("overflow_counted", True) else "not counted"

    rows = []
    for r in report["layers"]:
        rows.append([
            r["name"] + (" (host)" if r.get("host") else ""), r["kind"], _fmt(r["neurons"]), _fmt(r["values"]),
            _fmt(r["buffers"]), f"{r['weights']:,}/{r['synapses']:,}" if r["synapses"] else "–",
            _fmt(r["graded_macs"]), _fmt(r["graded_adds"]), _fmt(r["sigmoid_lookups"]), _fmt(r["graded_messages"]),
            _fmt(r["sop"]), _fmt(r["effective_sop"]), _fmt(r["spikes"], 1), _fmt(r["sparsity"], 4),
            overflow(r) if r["stage"] in ("neurons", "add", "glu") else "–", _fmt(agree.get(r["name"]), 4),
        ])
    t = report["totals"]
    rows.append(["total", "", _fmt(t["neurons"]), "", _fmt(t["buffers"]), f"{t['weights']:,}/{t['synapses']:,}",
                 _fmt(t["graded_macs"]), _fmt(t["graded_adds"]), _fmt(t["sigmoid_lookups"]), _fmt(t["graded_messages"]),
                 _fmt(t["sop"]), _fmt(t["effective_sop"]), _fmt(t["spikes"], 1), _fmt(t["sparsity"], 4),
                 _fmt(t["overflow_events"], 1), ""])
    return header, rows


def table_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-layer table (one row per layer, then the totals; a graph
    network's: :func:`stage_table_rows`)."""
    if is_stage_report(report):
        return stage_table_rows(report)
    agree = _agreement(report)
    header = ["layer", "kind", "neurons", "buffers", "weights", "w bits", "w exp", "scale",
              "SOP/sample", "eff. SOP", "spikes", "sparsity", "overflows", "spike agr."]
    rows = []
    for layer in report["layers"]:
        rows.append([
            layer["name"], layer["kind"], _fmt(layer["neurons"]), _fmt(layer["buffers"]),
            f"{layer['weights']:,}/{layer['synapses']:,}", str(layer["weight_bits"]),
            _fmt(layer.get("weight_exp")) if "weight_exp" in layer else "–",
            _fmt(layer.get("state_scale")) if "state_scale" in layer else "–",
            _fmt(layer["sop"]), _fmt(layer["effective_sop"]), _fmt(layer["spikes"], 1),
            _fmt(layer["sparsity"], 4), _fmt(layer["overflow_events"], 1),
            _fmt(agree.get(layer["name"]), 4),
        ])
    t = report["totals"]
    rows.append(["total", "", _fmt(t["neurons"]), _fmt(t["buffers"]), f"{t['weights']:,}/{t['synapses']:,}",
                 "", "", "", _fmt(t["sop"]), _fmt(t["effective_sop"]), _fmt(t["spikes"], 1),
                 _fmt(t["sparsity"], 4), _fmt(t["overflow_events"], 1), ""])
    return header, rows


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """Input, totals and fidelity in a few sentences (Markdown-safe)."""
    inp, t = report["input"], report["totals"]
    lines = [
        f"Input: {inp.get('kind', 'file')}, {inp['samples']} samples × {inp['steps']} steps × "
        f"{inp['channels']} channels; {inp['nonzero_bins']:,.1f} non-zero bins per sample "
        f"(activity {100 * inp['activity']:.2f} %)"
        + (f", {inp['events']:,.1f} events per sample." if inp.get("events") is not None else "."),
    ]
    if is_stage_report(report):
        lines += _stage_summary(t)
    else:
        lines.append(
            f"Per sample: SOP {t['sop']:,.2f}, effective SOP {t['effective_sop']:,.2f}, "
            f"{t['spikes']:,.1f} hidden spikes, sparsity {_fmt(t['sparsity'], 5)}, "
            f"{t['neuron_updates']:,} neuron updates over {t['steps']} steps; buffers {t['buffers']:,}, "
            f"parameters {_fmt(t['parameters'])}.")
    if t.get("overflow_events"):
        lines.append(f"{t['overflow_events']:,.1f} states per sample hit their overflow limit (wrap or saturate): "
                     "states outgrow the scale; export with --calibrate INPUT on representative data.")
    if t.get("accuracy") is not None:
        lines.append(f"Accuracy on the labels: {100 * t['accuracy']:.2f} %.")
    fid = report.get("fidelity")
    if fid:
        lines.append(
            f"Fixed vs float: prediction agreement {100 * fid['prediction_agreement']:.2f} % "
            f"({fid['prediction_disagreements']} of {fid['samples']} differ); spike agreement "
            + ", ".join(f"{layer['name']} {100 * layer['spike_agreement']:.3f} %" for layer in fid["layers"])
            + f"; readout error max {fid['readout_max_abs_error']:.4g}, mean {fid['readout_mean_abs_error']:.4g} "
            + ("logits (the decoder's per-step output)." if is_stage_report(report) else "thresholds.")
        )
    return lines


def _stage_summary(t: Mapping[str, Any]) -> list[str]:
    """A graph network's work, graded first: its SOPs are a small part of it (``spiking_ssm.md`` §11)."""
    lines = [
        f"Per sample, graded work (dense every step): {t['graded_macs']:,.0f} graded MACs, {t['graded_adds']:,.0f} adds, "
        f"{t['sigmoid_lookups']:,.0f} sigmoid lookups, {t['graded_messages']:,.0f} graded messages "
        f"({t['graded_message_bits'] / 8e3:,.1f} kB of payload); spiking work: SOP {t['sop']:,.2f} (binary presynaptic "
        f"events × fan-out), effective SOP {t['effective_sop']:,.2f}, {t['spikes']:,.1f} spikes "
        f"({t['spike_message_bits'] / 8e3:,.3f} kB as 1-bit events), sparsity {_fmt(t['sparsity'], 5)}.",
        f"{t['neuron_updates']:,} neuron updates over {t['steps']} steps; buffers {t['buffers']:,} real states; "
        f"parameters {_fmt(t['parameters'])}. SOPs alone understate this model's cost: compare the energy by cause.",
    ]
    if t.get("overflow_not_counted"):
        lines.append("Not counted by the simulator: overflows of the Add and GLU stages ("
                     + ", ".join(t["overflow_not_counted"]) + "); the neuron stages' overflows are counted.")
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    model = report.get("model") or {}
    profile = report.get("profile")
    title = f"# silif-deploy report: {model.get('source', model.get('model_type', ''))}"
    meta = (f"Engine `{report['engine']}`, model type `{model.get('model_type')}`"
            + (f", hardware profile `{profile['name']}`" if profile else "")
            + f"; schema `{report['schema']}` v{report['schema_version']}"
            + f", {report['provenance'].get('producer', 'silif-deploy')} {report['provenance'].get('producer_version', '')}.")
    header, rows = table_rows(report)
    out = [title, "", meta, "", *[f"- {line}" for line in summary_lines(report)], "",
           "## Per stage (per sample)" if is_stage_report(report) else "## Per layer (per sample)", "",
           "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    if is_stage_report(report):
        out += ["", "SOP: binary presynaptic events (spikes) × fan-out, only for synapses fed by spikes; effective SOP "
                "counts only non-zero weights; graded MACs, adds and σ lookups: graded work, counted apart (dense every "
                "step except the input-driven encoder); graded msgs: values sent to each reading stage; buffers: real "
                "states; sparsity: fraction of silent steps per soma neuron (`docs/report.md`)."]
    else:
        out += ["", "SOP: non-zero presynaptic activations × fan-out (input and readout synapses included); "
                "effective SOP counts only non-zero weights; sparsity: fraction of silent steps per hidden "
                "neuron; buffers: hidden neurons × states (`docs/report.md`)."]
    quant = report.get("quantization")
    if quant:
        out += ["", "## Quantization", ""]
        out += [f"- {w}" for w in quant["warnings"]] or ["- no warnings"]
    out += energy_report.markdown_lines(report)  # energy + mapping sections, when present
    return "\n".join(out) + "\n"


def format_table(report: Mapping[str, Any]) -> str:
    """The per-layer table as aligned plain text (for the terminal)."""
    header, rows = table_rows(report)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    return "\n".join(lines)


def print_summary(report: Mapping[str, Any]) -> None:
    print(format_table(report))
    for line in summary_lines(report):
        print(line)
    quant = report.get("quantization")
    if quant and quant["warnings"]:
        print("quantization warnings:")
        for w in quant["warnings"]:
            print(f"  {w}")


def write_plot(report: Mapping[str, Any], trace: SampleTrace, path: str | os.PathLike) -> None:
    """PNG summary: SOP and sparsity bars per layer, a spike raster per hidden layer (first sample),
    and fixed vs float readout traces of the first sample's three highest-scoring classes."""
    plt = pyplot()

    layers = report["layers"]
    hidden = [layer for layer in layers if layer["sparsity"] is not None]
    fid = {layer["name"]: layer for layer in (report.get("fidelity") or {}).get("layers", [])}
    steps = report["input"]["steps"]
    fig = plt.figure(figsize=(12, 4 + 2.2 * len(hidden)), constrained_layout=True)
    grid = fig.add_gridspec(2 + len(hidden), 2, height_ratios=[1.2] + [1.0] * len(hidden) + [1.2])

    ax = fig.add_subplot(grid[0, 0])
    pos = np.arange(len(layers))
    if is_stage_report(report):  # graded work next to the SOPs, on a log scale: SOPs alone would mislead
        t = report["totals"]
        ax.bar(pos - 0.2, [layer["graded_macs"] + layer["graded_adds"] + layer["sigmoid_lookups"] for layer in layers],
               0.4, label="graded MACs + adds + σ")
        ax.bar(pos + 0.2, [layer["sop"] for layer in layers], 0.4, label="SOP")
        ax.set_yscale("log")
        ax.set_xticks(pos, [layer["name"] for layer in layers], rotation=60, fontsize=7)
        ax.set_title(f"operations per stage (graded {t['graded_macs'] + t['graded_adds'] + t['sigmoid_lookups']:,.0f}, "
                     f"SOP {t['sop']:,.0f})")
    else:
        ax.bar(pos - 0.2, [layer["sop"] for layer in layers], 0.4, label="SOP")
        ax.bar(pos + 0.2, [layer["effective_sop"] for layer in layers], 0.4, label="effective SOP")
        ax.set_xticks(pos, [layer["name"] for layer in layers])
        ax.set_title(f"synaptic operations (total {report['totals']['sop']:,.0f})")
    ax.set_ylabel("per sample")
    ax.legend()

    ax = fig.add_subplot(grid[0, 1])
    pos = np.arange(len(hidden))
    ax.bar(pos - 0.2, [layer["sparsity"] for layer in hidden], 0.4, label=report["engine"])
    if fid:
        ax.bar(pos + 0.2, [1 - fid[layer["name"]]["spikes_float"] / (steps * layer["neurons"]) for layer in hidden],
               0.4, label="float")
    ax.set_xticks(pos, [layer["name"] for layer in hidden])
    ax.set_ylim(min([layer["sparsity"] for layer in hidden] + [1.0]) * 0.98, 1.0)
    ax.set_title("sparsity (fraction of silent steps per neuron)")
    ax.legend()

    for row, (layer, spikes) in enumerate(zip(hidden, trace.spikes), start=1):
        ax = fig.add_subplot(grid[row, :])
        t, n = np.nonzero(spikes)
        ax.scatter(t, n, s=0.5, c="k", marker=".", linewidths=0)
        ax.set_xlim(0, spikes.shape[0])
        ax.set_ylim(0, spikes.shape[1])
        ax.set_ylabel("neuron")
        ax.set_title(f"{layer['name']} spikes, sample 0 ({len(t)} spikes)")

    ax = fig.add_subplot(grid[-1, :])
    top = np.argsort(trace.readout.sum(axis=0))[::-1][:3]
    for k, color in zip(top, ("C0", "C1", "C2")):
        ax.plot(trace.readout[:, k], color=color, label=f"class {k} ({report['engine']})")
        if trace.readout_float is not None:
            ax.plot(trace.readout_float[:, k], color=color, ls="--", label=f"class {k} (float)")
    ax.set_xlabel("step")
    ax.set_ylabel("decoder logits" if is_stage_report(report) else "readout u")
    ax.set_title("decoder output per step, sample 0" if is_stage_report(report) else "readout membrane, sample 0")
    ax.legend(ncol=3, fontsize=8)

    save_png(fig, path)
