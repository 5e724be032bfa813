"""``silif-deploy sweep``: precision sweeps over checkpoints and a whole data set, on Dask (docs/scaling.md)."""

from __future__ import annotations

import argparse

from silif_deploy.hw_models.energy_profile import DEFAULT_ENERGY_PROFILE
from silif_deploy.hw_models.profile import DEFAULT_PROFILE

HELP = "quantize checkpoints under every combination of bit widths, simulate them on a whole data set and tabulate accuracy, fidelity and energy"


def bit_list(text: str) -> list[int]:
    """``4,6,8`` → [4, 6, 8] (argparse reports a bad list as a usage error, exit 2)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of bit widths, e.g. 4,6,8") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one bit width, e.g. 4,6,8")
    return list(dict.fromkeys(values))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from silif_deploy.deploy.sharding import DEFAULT_SHARD_SIZE, add_scheduler_argument

    p.add_argument("checkpoints", nargs="+", metavar="CKPT", help="trained checkpoints (.pt/.pth) or NIR files")
    p.add_argument("--data", required=True, help="labelled test data: SHD/SSC .h5 or .npz with labels, a path or a URL (read by the workers)")
    p.add_argument("--weight-bits", type=bit_list, default=None, help="e.g. 4,6,8 (default: the base profile's)")
    p.add_argument("--coefficient-bits", type=bit_list, default=None, help="e.g. 8,12,16 (default: the base profile's)")
    p.add_argument("--state-bits", type=bit_list, default=None, help="e.g. 16,24 (default: the base profile's)")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"base hardware profile (default {DEFAULT_PROFILE})")
    p.add_argument("--energy-profile", default=DEFAULT_ENERGY_PROFILE,
                   help=f"energy profile name or .toml path (default {DEFAULT_ENERGY_PROFILE})")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the embedded Dask cluster (default: one per core; 0: no Dask, in this process)")
    add_scheduler_argument(p)  # an existing cluster wins over --workers
    p.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE,
                   help=f"samples per task (default {DEFAULT_SHARD_SIZE}); results do not depend on it beyond float rounding order")
    p.add_argument("--max-samples", type=int, default=None, help="only the first N samples (a quick look)")
    p.add_argument("--binning", default=None, help="for .h5 data: shd, ssc, ssc10 (default: the model's, else from the file name)")
    p.add_argument("--model-type", default=None, help="adlif or cadlif, for checkpoints whose keys cannot tell")
    p.add_argument("-o", "--outdir", required=True, help="output folder: sweep.json, sweep.md, two PNG plots, profiles/")


def run(args: argparse.Namespace) -> int:
    from silif_deploy.converters.files import require_file
    from silif_deploy.deploy import sharding, sweep, sweep_report
    from silif_deploy.errors import SilifDeployError
    from silif_deploy.hw_models.energy_profile import load_energy_profile
    from silif_deploy.hw_models.profile import load_profile

    for path in args.checkpoints:
        require_file(path, "checkpoint")
    if not sharding.is_url(args.data):
        require_file(args.data, "data")
    if args.shard_size < 1 or (args.max_samples is not None and args.max_samples < 1):
        raise SilifDeployError("--shard-size and --max-samples must be at least 1")
    base = load_profile(args.profile)
    load_energy_profile(args.energy_profile)  # a bad profile fails before any work
    configs = sweep.configurations(base, args.weight_bits, args.coefficient_bits, args.state_bits)
    with sharding.dask_client(args.workers, args.scheduler) as client:
        result = sweep.run_sweep(args.checkpoints, args.data, configs, base, client, args.energy_profile,
                                 shard_size=args.shard_size, model_type=args.model_type, binning=args.binning,
                                 max_samples=args.max_samples)
    paths = sweep_report.write_all(result, args.outdir)
    print(sweep_report.format_table(result.rows))
    print(f"wrote {', '.join(str(p) for p in paths[:4])} and {len(paths) - 4} derived profiles")
    return 0
