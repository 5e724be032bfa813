"""The sweep's outputs: ``sweep.json``, ``sweep.md``, two PNG plots and the derived profiles.

``accuracy_energy.png``: fixed-point accuracy against energy per inference, one colour per model,
its Pareto front (no other configuration of that model is both cheaper and more accurate) drawn
as a line, float accuracy dashed. ``accuracy_drop_bits.png``: the accuracy drop against each swept
bit width (one panel per width; every configuration a point, the best drop at each width a line).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from silif_deploy.converters.files import atomic_output
from silif_deploy.deploy.plots import pyplot, save_png
from silif_deploy.deploy.sweep import BIT_KEYS, SweepResult

OUT_FILES = ("sweep.json", "sweep.md", "accuracy_energy.png", "accuracy_drop_bits.png")
PROFILE_DIR = "profiles"
_AXIS_LABELS = {"weight_bits": "weight bits", "coefficient_bits": "coefficient bits", "state_bits": "state bits"}


def numeric_json(rows: list[dict[str, Any]]) -> str:
    """The rows as canonical JSON: what must be the same bytes whatever the cluster."""
    return json.dumps(rows, sort_keys=True, allow_nan=False)


def write_all(result: SweepResult, outdir: str | os.PathLike) -> list[Path]:
    """Write every output into ``outdir``; return their paths."""
    out = Path(outdir)
    paths = []
    for name, text in result.profiles.items():
        path = out / PROFILE_DIR / f"{name}.toml"
        with atomic_output(path) as tmp:
            tmp.write_text(text)
        paths.append(path)
    json_path, md_path, energy_png, bits_png = (out / name for name in OUT_FILES)
    with atomic_output(json_path) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    with atomic_output(md_path) as tmp:
        tmp.write_text(render_markdown(result))
    plot_accuracy_energy(result.rows, energy_png)
    plot_drop_bits(result.rows, bits_png)
    return [json_path, md_path, energy_png, bits_png, *paths]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["model", "w", "c", "s", "acc. float %", "acc. fixed %", "drop pp", "spike agreement", "SOP/sample",
              "energy µJ", "degenerate", "overflows/sample", "note"]
    body = []
    for r in rows:
        bits = [str(r["weight_bits"]), str(r["coefficient_bits"]), str(r["state_bits"])]
        if r["status"] != "ok":
            body.append([r["model"], *bits, *["–"] * 8, f"cannot build: {r['reason']}"])
            continue
        agreement = ", ".join(f"{name} {100 * v:.3f}" for name, v in r["spike_agreement"].items())
        body.append([
            r["model"], *bits, _pct(r["accuracy_float"]), _pct(r["accuracy_fixed"]), f"{r['accuracy_drop_pp']:.2f}",
            agreement, f"{r['sop']:,.0f}", "–" if r["energy_uj"] is None else f"{r['energy_uj']:,.2f}",
            f"{r['degenerate_neurons']:,}", f"{r['overflow_events']:,.2f}", r["reason"] or "",
        ])
    return header, body


def format_table(rows: list[dict[str, Any]]) -> str:
    header, body = table(rows)
    cells = [header, *body]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header) - 1)]
    return "\n".join("  ".join([c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
                               + [r[-1]]).rstrip() for r in cells)


def render_markdown(result: SweepResult) -> str:
    header, body = table(result.rows)
    data, prov, run = result.data, result.provenance, result.run
    where = (f"{run['workers']} Dask workers ({run['threads']} threads)" if run["dask"] else "in one process (no Dask)")
    lines = [
        "# silif-deploy sweep", "",
        f"Data `{data['path']}`: {data['samples']:,} samples × {data['steps']} steps × {data['channels']} channels, "
        f"in {data['shards']} shards of {data['shard_size']}; base hardware profile `{prov['hardware_profile']}`, "
        f"energy profile `{prov['energy_profile']}`; {prov['producer']} {prov['producer_version']}; "
        f"{run['tasks']} tasks {where}, {run['wall_s']:,.1f} s.", "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
        *["| " + " | ".join(r) + " |" for r in body], "",
        "w, c, s: weight, coefficient and state bits of the derived profile (`profiles/<name>.toml`). Accuracies "
        "on the data's labels, float and bit-accurate fixed point; drop: float − fixed in percentage points. Spike "
        "agreement: fraction of equal (sample, step, neuron) entries of fixed vs float, per hidden layer, in %. "
        "SOP and energy per inference from the fixed-point run; degenerate: neurons whose dynamics rounding "
        "changed in kind (β = 1, α = 0 or 1, λ = 0, |λ| ≥ 1, zero gain); overflows: states per sample that hit "
        "their overflow rule.",
        "", "![accuracy vs energy](accuracy_energy.png)", "", "![accuracy drop vs bit widths](accuracy_drop_bits.png)",
    ]
    return "\n".join(lines) + "\n"


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (energy, accuracy) points no other point beats on both, by rising energy."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _built(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    models: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "ok":
            models.setdefault(r["model"], []).append(r)
    return models


def plot_accuracy_energy(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    for k, (model, built) in enumerate(_built(rows).items()):
        color = f"C{k % 10}"
        built = [r for r in built if r["energy_uj"] is not None]
        points = [(r["energy_uj"], 100 * r["accuracy_fixed"]) for r in built]
        if not points:
            continue
        ax.scatter(*zip(*points), color=color, s=18, label=model)
        front = pareto_front(points)
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color=color, lw=1.2)
        for i in front:
            r = built[i]
            ax.annotate(f"w{r['weight_bits']} c{r['coefficient_bits']} s{r['state_bits']}", points[i],
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(100 * built[0]["accuracy_float"], color=color, ls="--", lw=0.8)
    ax.set_xlabel("energy per inference (µJ)")
    ax.set_ylabel("fixed-point accuracy (%)")
    ax.set_title("accuracy vs energy (line: Pareto front; dashed: float accuracy)")
    ax.legend(fontsize=8)
    save_png(fig, path)


def plot_drop_bits(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, len(BIT_KEYS), figsize=(4 * len(BIT_KEYS), 4), constrained_layout=True, sharey=True)
    for ax, key in zip(axes, BIT_KEYS):
        for k, (model, built) in enumerate(_built(rows).items()):
            color = f"C{k % 10}"
            ax.scatter([r[key] for r in built], [r["accuracy_drop_pp"] for r in built], color=color, s=14,
                       alpha=0.6, label=model)
            widths = sorted({r[key] for r in built})
            ax.plot(widths, [min(r["accuracy_drop_pp"] for r in built if r[key] == w) for w in widths], color=color)
        ax.set_xlabel(_AXIS_LABELS[key])
        ax.axhline(0, color="k", lw=0.6)
    axes[0].set_ylabel("accuracy drop (pp, float − fixed)")
    axes[0].legend(fontsize=8)
    fig.suptitle("accuracy drop against each bit width (line: best configuration at that width)")
    save_png(fig, path)
