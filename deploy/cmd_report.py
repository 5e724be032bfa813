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
    from silif_deploy.converters.files import staged_outputs
    from silif_deploy.deploy import energy_report, reporting
    from silif_deploy.deploy.report_builder import report_on_artifact

    built = report_on_artifact(args.artifact, args.input, args.energy_profile, args.scheduler, args.shard_size)
    outdir = Path(args.outdir) if args.outdir else Path(f"{Path(args.artifact).name.split('.')[0]}_report")
    with staged_outputs(outdir) as stage:  # the four files appear together, or none of them
        reporting.write_report(built, *(stage / name for name in OUT_FILES))
    reporting.print_summary(built.report)
    for line in energy_report.summary_lines(built.report):
        print(line)
    print(f"wrote {', '.join(str(outdir / name) for name in OUT_FILES)}")
    return 0
