"""``silif-deploy compare``: several models on the same input, one efficiency table (the paper's comparison).

Per model: parameters and buffers (``neurons.md`` §11, §15.3), SOP per sample and hidden sparsity of
the float model (the paper's figures) and of the fixed-point network, energy per inference under an
energy profile (from the fixed-point activity), and fixed-versus-float fidelity. A checkpoint is
quantized in memory with the hardware profile, its state scales calibrated on the same input (as
``export --calibrate`` does); an artifact is used as it is, against the float model it carries.
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
    "sop_float": "SOP/sample (float)",
    "sop_fixed": "SOP/sample (fixed)",
    "sparsity_float": "sparsity (float)",
    "sparsity_fixed": "sparsity (fixed)",
    "energy_uj": "energy µJ",
    "dynamic_energy_uj": "dynamic µJ",
    "dense_mac_energy_uj": "dense-MAC µJ",
    "prediction_agreement": "pred. agreement",
    "spike_agreement": "spike agreement",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL", help="checkpoints (.pt/.pth), NIR files or artifacts (.loihi2.h5)")
    p.add_argument("--input", required=True, help="input: .npy/.npz (batch, time, channels) or an SHD/SSC .h5 file")
    p.add_argument("--energy-profile", default=DEFAULT_ENERGY_PROFILE,
                   help=f"energy profile: {', '.join(available_energy_profiles())} or a .toml path (default {DEFAULT_ENERGY_PROFILE})")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help=f"hardware profile for quantizing checkpoints (default {DEFAULT_PROFILE}); artifacts keep theirs")
    p.add_argument("--model-type", default=None,
                   help="adlif or cadlif: used for checkpoints whose keys cannot tell the two apart")
    p.add_argument("-o", "--outdir", default=None, help="also write compare.json and compare.md there")


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
            "input": {"path": str(args.input), "samples": int(data.shape[0]), "steps": int(data.shape[1])},
            "columns": COLUMNS,
            "models": rows,
        }
        out = Path(args.outdir)
        with staged_outputs(out) as stage:  # both files appear together, or neither
            write_json(result, stage / "compare.json")
            write_text(render_markdown(rows, result) + "\n", stage / "compare.md")
        print(f"wrote {out / 'compare.json'}, {out / 'compare.md'}")
    return 0


def compare_row(path: str, data, hardware, energy_profile: str, model_type: str | None) -> dict[str, Any]:
    """One model's row: float and fixed-point runs of ``data`` (an InputSource) in one pass, their
    metrics, energy and fidelity (a checkpoint's calibration is one float pass before)."""
    from silif_deploy.deploy.report_builder import build_report
    from silif_deploy.errors import SilifDeployError

    channels = data.shape[-1]
    model, network = _float_and_fixed(path, data, hardware, model_type)
    if channels != network.n_inputs:
        raise SilifDeployError(f"input has {channels} channels, '{path}' expects {network.n_inputs}")
    built = build_report(network, data, model_source=path, float_model=model, energy_profile=energy_profile,
                         float_counts=True, desc=f"{Path(path).name}: float + fixed point")
    float_report, fixed_report = built.float_report, built.report
    ft, xt, fid, energy = float_report["totals"], fixed_report["totals"], fixed_report["fidelity"], fixed_report["energy"]
    return {
        "model": Path(path).name,
        "model_type": network.model_type,
        "parameters": ft["parameters"],
        "buffers": ft["buffers"],
        "sop_float": ft["sop"],
        "sop_fixed": xt["sop"],
        "sparsity_float": ft["sparsity"],
        "sparsity_fixed": xt["sparsity"],
        "energy_uj": energy["total_uj"],
        "dynamic_energy_uj": energy["dynamic_uj"],
        "dense_mac_energy_uj": energy["ann_comparison"]["dense_mac_energy_uj"],
        "prediction_agreement": fid["prediction_agreement"],
        "spike_agreement": float(np.mean([layer["spike_agreement"] for layer in fid["layers"]])),
        "accuracy_float": ft["accuracy"],
        "accuracy_fixed": xt["accuracy"],
        "energy_by_cause_uj": energy["by_cause_uj"],
        "cores": fixed_report["mapping"]["total_cores"],
        "effective_sop_fixed": xt["effective_sop"],
    }


def _float_and_fixed(path: str, x, hardware, model_type: str | None):
    """The float model and the fixed-point network of one source (checkpoints quantized in memory)."""
    from silif_deploy.converters.artifact import float_model_from_artifact, read_artifact
    from silif_deploy.deploy.engines import load_float_model, source_kind
    from silif_deploy.deploy.pipeline import quantize_model
    from silif_deploy.errors import SilifDeployError

    if source_kind(path) == "artifact":
        return float_model_from_artifact(path), read_artifact(path)
    try:
        model = load_float_model(path, for_fixed_point="compare")
    except SilifDeployError:
        if model_type is None:
            raise
        model = load_float_model(path, model_type=model_type, for_fixed_point="compare")
    return model, quantize_model(model, hardware, x)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key.startswith(("sparsity", "prediction", "spike")):
        return f"{value:.4f}"
    if key.endswith("_uj"):
        return f"{value:,.1f}"
    if isinstance(value, (int, float)):
        return f"{value:,.2f}" if key.startswith("sop") else f"{value:,}"
    return str(value)


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [list(COLUMNS.values())] + [[_cell(k, row[k]) for k in COLUMNS] for row in rows]


def format_table(rows: list[dict[str, Any]]) -> str:
    cells = table_rows(rows)
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in cells)


def render_markdown(rows: list[dict[str, Any]], result: dict[str, Any]) -> str:
    header, *body = table_rows(rows)
    inp = result["input"]
    return "\n".join([
        "# silif-deploy compare", "",
        f"Input `{inp['path']}`: {inp['samples']} samples × {inp['steps']} steps; hardware profile "
        f"`{result['provenance']['hardware_profile']}`, energy profile `{result['provenance']['energy_profile']}`.", "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
        *["| " + " | ".join(r) + " |" for r in body], "",
        "Parameters: trainable (BatchNorm affine included); buffers: hidden neurons × real states; SOP: non-zero "
        "presynaptic activations × fan-out per sample (input and readout synapses included); sparsity: fraction "
        "of silent steps per hidden neuron; energy: fixed-point activity under the energy profile; agreements: "
        "fixed vs float (predictions; spikes per (step, neuron), mean over hidden layers).",
    ])
