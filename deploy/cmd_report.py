"""``silif-deploy report``: energy, latency and core mapping of a fixed-point artifact on an input."""

from __future__ import annotations

import argparse
from pathlib import Path

from silif_deploy.hw_models.energy_profile import DEFAULT_ENERGY_PROFILE, available_energy_profiles

HELP = "estimate energy per inference (by layer and cause), latency and core mapping of an artifact on an input"
OUT_FILES = ("report.json", "report.md", "report.png", "energy.png")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifact", help="fixed-point artifact (.loihi2.h5) from `silif-deploy export`")
    p.add_argument("--input", required=True, help="input: .npy/.npz (batch, time, channels) or an SHD/SSC .h5 file")
    p.add_argument("--energy-profile", default=DEFAULT_ENERGY_PROFILE,
                   help=f"energy profile: {', '.join(available_energy_profiles())} or a .toml path "
                        f"(default {DEFAULT_ENERGY_PROFILE})")
    p.add_argument("-o", "--outdir", default=None,
                   help=f"output folder for {', '.join(OUT_FILES)} (default: <artifact name>_report)")
    from silif_deploy.deploy.sharding import add_scheduler_argument

    add_scheduler_argument(p, shard_size=True)


def run(args: argparse.Namespace) -> int:
    from silif_deploy.converters.artifact import read_artifact
    from silif_deploy.converters.datasets import open_input
    from silif_deploy.converters.files import provenance, sha256_file, staged_outputs
    from silif_deploy.deploy import energy_report, reporting, sharding
    from silif_deploy.hw_models import metrics
    from silif_deploy.hw_models.energy_profile import load_energy_profile
    from silif_deploy.hw_models.simulator import simulate

    network = read_artifact(args.artifact)
    energy_report.chip_mapping(network, load_energy_profile(args.energy_profile))  # refuse before the runs
    description = metrics.describe_fixed(network)
    scheduler = sharding.scheduler_address(args.scheduler)
    if scheduler is None:
        source = open_input(args.input, n_channels=network.n_inputs)
        source.start_hashing()
        reference = reporting.float_reference(network, args.artifact)
        evaluation = reporting.evaluate(description, source, lambda xb: simulate(network, xb), reference,
                                        desc="fixed point + float" if reference else "fixed point")
        input_sha256, is_counts = source.source_sha256, source.is_counts
    else:  # shards of samples on the cluster, each evaluated as above, their tallies added in shard order
        with sharding.dask_client(scheduler=scheduler) as client:
            info = sharding.inspect_input(client, args.input, network.n_inputs)
            evaluation = sharding.merge_evaluations(sharding.map_shards(
                client, sharding.evaluate_shard, args.input, args.artifact, shard_size=args.shard_size,
                desc="report shards"))
        input_sha256, is_counts = info.sha256, info.is_counts
    report = metrics.build_report(
        description, evaluation.tally,
        input_info={"kind": "file", "path": str(args.input), "sha256": input_sha256, "is_counts": is_counts},
        provenance=provenance(artifact_sha256=sha256_file(args.artifact), input_sha256=input_sha256,
                              hardware_profile=network.profile.name, energy_profile=str(args.energy_profile),
                              artifact_provenance=network.provenance),
        profile=reporting.profile_section(network), fidelity=evaluation.fidelity,
        quantization=network.quantization, model=reporting.model_section(network, args.artifact),
    )
    report = energy_report.add_energy_sections(report, network, args.energy_profile)
    outdir = Path(args.outdir) if args.outdir else Path(f"{Path(args.artifact).name.split('.')[0]}_report")
    with staged_outputs(outdir) as stage:  # the four files appear together, or none of them
        json_path, md_path, png_path, energy_png = (stage / name for name in OUT_FILES)
        reporting.write_json(report, json_path)
        reporting.write_markdown(report, md_path)
        reporting.write_plot(report, evaluation.trace, png_path)
        energy_report.write_energy_plot(report, energy_png)
    reporting.print_summary(report)
    for line in energy_report.summary_lines(report):
        print(line)
    print(f"wrote {', '.join(str(outdir / name) for name in OUT_FILES)}")
    return 0
